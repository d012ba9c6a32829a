//! Reading a request body, within a size limit and a deadline.
//!
//! A body is collected frame by frame so the limit holds whether or not the
//! client declared a `Content-Length`, and a declared length over the limit
//! is refused before a byte of it is read. The deadline covers the whole
//! body: hyper's header timeout ends where the body begins, and without
//! this a client that sends half a body would hold its connection forever.
//!
//! Refusing a body mid-upload raises a TCP problem: if the server closes
//! while unread bytes sit in its receive buffer, the kernel answers with a
//! reset and the client may never see the 413. So the rest of an oversized
//! body is read and thrown away in the background, for a bounded number of
//! bytes and time, while the 413 goes out; within those bounds the
//! connection even stays usable.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, EXPECT};
use hyper::{HeaderMap, Request};
use tokio::time::{Instant, timeout_at};

use super::error::{ApiError, Code};
use super::state::Config;

/// How long an oversized body is drained after the 413 before giving up on
/// the connection.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Most a body buffer reserves before its bytes arrive.
const PREALLOCATE: u64 = 64 * 1024;

/// A deadline for a timeout too long to add to now: a year from now.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// Reads the whole body of `request`.
pub async fn read(request: Request<Incoming>, config: &Config) -> Result<Bytes, ApiError> {
    let max = config.max_body;
    let (parts, mut body) = request.into_parts();
    let declared = declared_length(&parts.headers);
    if declared.is_some_and(|n| n > max as u64) {
        drain(body, &parts.headers, max);
        return Err(too_large(max));
    }
    let deadline = Instant::now()
        .checked_add(config.read_timeout)
        .unwrap_or_else(far_future);
    // The declared length is the client's word, not memory to hand out:
    // reserve a little and let the buffer grow with what actually arrives.
    let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n.min(PREALLOCATE) as usize));
    loop {
        let frame = match timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    Code::RequestTimeout,
                    format!(
                        "the body did not arrive within {:?} ({} bytes received)",
                        config.read_timeout,
                        buf.len()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::new(
                    Code::InvalidJson,
                    format!("the body could not be read: {e}"),
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing we use.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > max {
            drain(body, &parts.headers, max);
            return Err(too_large(max));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        Code::BodyTooLarge,
        format!("the body is larger than the limit of {max} bytes"),
    )
}

/// Reads and discards up to twice the limit in the background. A client
/// that asked `Expect: 100-continue` has sent nothing yet; dropping the body
/// unread tells hyper to skip the `100 Continue`, so it never sends the rest.
fn drain(mut body: Incoming, headers: &HeaderMap, max: usize) {
    if headers.contains_key(EXPECT) {
        return;
    }
    let budget = max.saturating_mul(2).max(64 * 1024);
    tokio::spawn(async move {
        let deadline = Instant::now() + DRAIN_TIME;
        let mut seen = 0usize;
        while seen <= budget {
            match timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    seen += frame.data_ref().map_or(0, |d| d.len());
                }
                _ => return,
            }
        }
    });
}
