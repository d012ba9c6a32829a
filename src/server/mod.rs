//! The HTTP sidecar behind `doorman serve`.
//!
//! Shaped like tokio's mini-redis: [`serve`] owns the accept loop and
//! graceful shutdown, state is passed explicitly as an `Arc<State>`, and
//! each file has one job:
//!
//! - `command`: the `serve` subcommand: flags, logging, the first load,
//!   signals.
//! - `listen`: binding TCP or a Unix socket and accepting connections.
//! - [`state`]: the settings and the current snapshot, swapped atomically.
//! - `routes`: which endpoint answers a request, and who may call it.
//! - [`auth`]: bearer tokens for the admin (and decision) endpoints.
//! - one module per protocol: `v1` (doorman's own decision API),
//!   `authzen` (AuthZEN 1.0: evaluation, evaluations, search, metadata) and
//!   `admin` (readiness, status, policies, reload), and `gateway`
//!   (reverse proxies' checks: Envoy HTTP and gRPC, nginx, Traefik).
//! - `body`: reading a body within a size limit and a deadline; `work`:
//!   whether its CPU work runs in place or on the blocking pool.
//! - `respond` / `error`: writing answers and refusals.
//! - `openapi`: the OpenAPI 3.1 document at `/openapi.json`.
//! - observing: [`metrics`] (`GET /metrics`, lock-free counters),
//!   `request_id` (`X-Request-ID` on every answer) and [`decision_log`]
//!   (one JSON line per decision, written off the runtime); [`shadow`]
//!   (a candidate policy set answering every decision beside the live
//!   one, off the request path).
//!
//! There is no web framework: hyper serves HTTP/1.1 (keep-alive) and HTTP/2
//! cleartext on the same listener (hyper-util's `auto` builder tells them
//! apart by the HTTP/2 preface), a dozen fixed paths need no router, and every
//! answer is a small JSON document built in one piece.

mod admin;
pub mod auth;
pub(crate) mod authzen;
mod body;
mod command;
pub mod decision_log;
mod error;
pub mod gateway;
mod listen;
pub mod metrics;
mod observe;
mod openapi;
pub mod request_id;
mod respond;
mod routes;
pub mod shadow;
pub mod state;
pub(crate) mod v1;
mod work;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use command::{ServeArgs, run_cli};
pub use error::{ApiError, Code};
pub use listen::{ListenAddr, Listener};
pub use state::{Config, State};
pub use v1::answer_body;

/// How long to wait before accepting again after an accept error (such as
/// running out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (for at most `shutdown_timeout`) and returns.
///
/// The server answers from whatever snapshot `state` holds at each request;
/// with none it is alive but not ready, so a caller may start serving before
/// the first load finishes and publish the snapshot when it does.
pub async fn serve(listener: Listener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let config = state.config().clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)))
        .keep_alive_timeout(Duration::from_secs(20));

    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    // At most this many connections at once: at the limit the loop stops
    // accepting (the kernel's backlog holds newcomers) until one closes,
    // as tokio's mini-redis does, instead of running out of descriptors.
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut at_limit = false;
    tokio::pin!(shutdown);
    loop {
        let room = permits.available_permits() > 0;
        if !room && !at_limit {
            tracing::warn!(
                limit = config.max_connections,
                "connection limit reached; new connections wait until one closes"
            );
        }
        at_limit = !room;
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept(), if room => {
                // Only this loop takes permits, and one is free.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    continue;
                };
                let served: Pin<Box<dyn Future<Output = ()> + Send>> = match accepted {
                    Ok(listen::Accepted::Tcp(io)) => {
                        Box::pin(connection(&builder, &graceful, io, &state))
                    }
                    #[cfg(unix)]
                    Ok(listen::Accepted::Unix(io)) => {
                        Box::pin(connection(&builder, &graceful, io, &state))
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                connections.spawn(async move {
                    served.await;
                    drop(permit);
                });
            },
            // Reap finished connections so the set does not grow forever.
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::error!("a connection task failed: {e}");
                }
            }
        }
    }

    state.start_draining();
    listener.close().await;
    tracing::info!(
        connections = connections.len(),
        "shutting down: no longer accepting; finishing in-flight requests"
    );
    let drained = tokio::time::timeout(config.shutdown_timeout, async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "requests still in flight after {:?}; closing their connections",
            config.shutdown_timeout
        );
        connections.shutdown().await;
    }
    tracing::info!("stopped");
}

/// One connection, ready to spawn. Until its first request arrives it is
/// closed after the read timeout: hyper's header timeout only starts once it
/// has chosen HTTP/1, and a client that connects and stays silent (or sends
/// half the HTTP/2 preface) would otherwise hold a connection forever.
fn connection<IO>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    io: IO,
    state: &Arc<State>,
) -> impl Future<Output = ()> + Send + 'static
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let spoke = Arc::new(AtomicBool::new(false));
    let service = {
        let state = state.clone();
        let spoke = spoke.clone();
        service_fn(move |request| {
            spoke.store(true, Ordering::Relaxed);
            let state = state.clone();
            async move { Ok::<_, Infallible>(routes::handle(state, request).await) }
        })
    };
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let conn = graceful.watch(conn);
    let silence = state.config().read_timeout;
    async move {
        let silent = async {
            tokio::time::sleep(silence).await;
            if spoke.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = conn => {
                if let Err(e) = result {
                    // Clients hanging up and header timeouts land here.
                    tracing::debug!("connection ended: {e}");
                }
            }
            () = silent => tracing::debug!("closing a connection that sent no request"),
        }
    }
}
