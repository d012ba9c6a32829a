//! AuthZEN 1.0 (the OpenID Authorization API) on the same listener: the
//! standard PDP API that gateways and SDKs call, with Cedar's answers
//! behind it.
//!
//! Five `POST` endpoints under `/access/v1/` and the metadata document at
//! `/.well-known/authzen-configuration`. This module holds what they share,
//! the transport rules of the spec's HTTPS binding:
//!
//! - a body must be sent as `Content-Type: application/json` (any other
//!   type: 400, as the spec asks, not 415);
//! - `X-Request-ID` is echoed on every answer, errors included, and one is
//!   made up when the client sent none (the spec lets a PDP generate it),
//!   so every answer can be found in logs (the router does this for every
//!   protocol, see `super::request_id`);
//! - an explanation (the policies that decided, those that failed) is
//!   given only when asked for with `Doorman-Explain: true`, because the
//!   default answers must be exactly the spec's (`{"decision": true}`);
//! - a refusal the headers alone decide (the Content-Type,
//!   `Doorman-Explain`) is given after the body is read, so the client's
//!   keep-alive connection survives it.
//!
//! The endpoints are [`evaluate`], [`search`] and [`metadata`]; [`read`]
//! reads bodies, [`question`] maps AuthZEN onto Cedar (the contract in the
//! README), [`token`] makes page tokens. Work is placed as for doorman's
//! own API ([`super::work`]): one small evaluation in place, batches and
//! searches on the blocking pool.

pub(crate) mod evaluate;
pub(super) mod metadata;
mod question;
mod read;
pub(crate) mod search;
mod token;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, Method, Request, Response};

pub use metadata::{parse_pdp_url, pdp_url_of};

use super::body;
use super::error::{ApiError, Code};
use super::metrics;
use super::request_id::Arrival;
use super::respond::{Body, refuse, wrong_method};
use super::state::State;
use super::work::{INLINE_BODY, offload};

/// The opt-in for explanations.
const EXPLAIN: &str = "doorman-explain";

/// An AuthZEN endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Evaluation,
    Evaluations,
    SearchSubject,
    SearchResource,
    SearchAction,
    Metadata,
}

impl Endpoint {
    const ALL: [Endpoint; 6] = [
        Endpoint::Evaluation,
        Endpoint::Evaluations,
        Endpoint::SearchSubject,
        Endpoint::SearchResource,
        Endpoint::SearchAction,
        Endpoint::Metadata,
    ];

    pub(super) fn find(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// Its `endpoint` label in metrics and the decision log.
    pub(super) fn metric(self) -> metrics::Endpoint {
        match self {
            Endpoint::Evaluation => metrics::Endpoint::AuthzenEvaluation,
            Endpoint::Evaluations => metrics::Endpoint::AuthzenEvaluations,
            Endpoint::SearchSubject => metrics::Endpoint::AuthzenSearchSubject,
            Endpoint::SearchResource => metrics::Endpoint::AuthzenSearchResource,
            Endpoint::SearchAction => metrics::Endpoint::AuthzenSearchAction,
            Endpoint::Metadata => metrics::Endpoint::AuthzenMetadata,
        }
    }

    /// Its path (the spec's default paths).
    pub(super) fn path(self) -> &'static str {
        match self {
            Endpoint::Evaluation => "/access/v1/evaluation",
            Endpoint::Evaluations => "/access/v1/evaluations",
            Endpoint::SearchSubject => "/access/v1/search/subject",
            Endpoint::SearchResource => "/access/v1/search/resource",
            Endpoint::SearchAction => "/access/v1/search/action",
            Endpoint::Metadata => "/.well-known/authzen-configuration",
        }
    }
}

/// Answers an AuthZEN request; never fails (every problem is an answer).
/// Its `X-Request-ID` is set by the router, as on every answer.
pub(super) async fn handle(
    endpoint: Endpoint,
    state: Arc<State>,
    request: Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    answer(endpoint, state, request, arrival).await
}

async fn answer(
    endpoint: Endpoint,
    state: Arc<State>,
    request: Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    let post = match endpoint {
        Endpoint::Evaluation => Post::Evaluation,
        Endpoint::Evaluations => Post::Evaluations,
        Endpoint::SearchSubject => Post::Search(search::Kind::Subject),
        Endpoint::SearchResource => Post::Search(search::Kind::Resource),
        Endpoint::SearchAction => Post::Search(search::Kind::Action),
        Endpoint::Metadata if request.method() == Method::GET => {
            return metadata::answer(&state, request.uri(), request.headers());
        }
        Endpoint::Metadata => return wrong_method(endpoint.path(), "GET"),
    };
    if request.method() != Method::POST {
        return wrong_method(endpoint.path(), "POST");
    }
    // What the headers say is judged now but refused only after the body
    // is read (and so consumed): an answer given over unread bytes would
    // cost the client its keep-alive connection.
    let explain = explain(request.headers());
    let json = is_json(request.headers());
    let body = match body::read(request, state.config()).await {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    if !json {
        return refuse(&ApiError::new(
            Code::InvalidContentType,
            "AuthZEN requests must be sent with Content-Type: application/json",
        ));
    }
    let explain = match explain {
        Ok(e) => e,
        Err(e) => return refuse(&e),
    };
    let inline = body.len() <= INLINE_BODY;
    match post {
        Post::Evaluation => {
            offload(inline, move || {
                evaluate::single(&state, &body, explain, &arrival)
            })
            .await
        }
        Post::Evaluations => {
            offload(false, move || {
                evaluate::batch(&state, &body, explain, &arrival)
            })
            .await
        }
        Post::Search(kind) => offload(false, move || search::answer(&state, kind, &body)).await,
    }
}

/// What a `POST` endpoint does.
#[derive(Debug, Clone, Copy)]
enum Post {
    Evaluation,
    Evaluations,
    Search(search::Kind),
}

/// `Content-Type: application/json`, parameters (`; charset=utf-8`) and
/// case aside.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `Doorman-Explain: true` (or `1`); absent, `false` or `0`: no.
fn explain(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(EXPLAIN) else {
        return Ok(false);
    };
    match value.to_str().map(str::trim) {
        Ok(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Ok(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        _ => Err(ApiError::at(
            Code::InvalidField,
            "Doorman-Explain",
            "must be true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    #[test]
    fn content_types_and_explain_headers_are_read_leniently_but_exactly() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[("content-type", "application/jsonx")])));
        assert!(!is_json(&headers(&[])));
        assert_eq!(explain(&headers(&[])), Ok(false));
        assert_eq!(explain(&headers(&[("doorman-explain", "TRUE")])), Ok(true));
        assert_eq!(explain(&headers(&[("doorman-explain", "0")])), Ok(false));
        assert!(explain(&headers(&[("doorman-explain", "yes")])).is_err());
    }
}
