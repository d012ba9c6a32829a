//! Writing an answer: every response body is one JSON document, built whole.
//!
//! Every protocol answers through [`respond`] (and refusals through
//! [`refuse`]), so every response carries `Content-Type: application/json`
//! and ends with a newline whoever wrote it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::error::{ApiError, Code};

/// Every response body is one buffer: answers are small and built whole.
pub type Body = Full<Bytes>;

/// A JSON response. Serializing these types cannot fail (no maps with
/// non-string keys), but if it ever did the client gets a 500, not a panic.
pub fn respond(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, bytes),
        Err(e) => {
            tracing::error!("cannot serialize a response: {e}");
            let e = ApiError::new(Code::Internal, "cannot serialize the response");
            with_body(
                e.status(),
                serde_json::to_vec(&e.body()).unwrap_or_default(),
            )
        }
    }
}

/// The response for a refused request.
pub fn refuse(error: &ApiError) -> Response<Body> {
    respond(error.status(), &error.body())
}

fn with_body(status: StatusCode, mut bytes: Vec<u8>) -> Response<Body> {
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The 405 for `path`, whose one method is `allow`; the `Allow` header
/// names it.
pub fn wrong_method(path: &str, allow: &'static str) -> Response<Body> {
    let mut response = refuse(&ApiError::new(
        Code::MethodNotAllowed,
        format!("{path} accepts {allow} only"),
    ));
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
