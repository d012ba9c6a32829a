//! Where a request's CPU work runs: in place, or on the blocking pool.
//!
//! Parsing and deciding are CPU work. A single small request takes
//! microseconds and runs in place on the async worker; a batch, a search or
//! a large body (up to `--max-body` of entities to parse) runs on tokio's
//! blocking pool, so that it cannot stall the other connections sharing
//! that worker thread. Every protocol's endpoints decide which by the same
//! rule, through [`offload`].

use hyper::Response;

use super::error::{ApiError, Code};
use super::respond::{Body, refuse};

/// Bodies up to this size may be answered on the async worker itself.
pub const INLINE_BODY: usize = 16 * 1024;

/// Runs `work` in place when `inline`, else on the blocking pool.
pub async fn offload<F>(inline: bool, work: F) -> Response<Body>
where
    F: FnOnce() -> Response<Body> + Send + 'static,
{
    if inline {
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!("a decision task failed: {e}");
            refuse(&ApiError::new(Code::Internal, "the decision task failed"))
        }
    }
}
