//! Which endpoint answers a request, and the read-only endpoints themselves.
//!
//! Seven fixed paths do not need a router: a `match` on the path finds the
//! endpoint, and the endpoint knows its one method, which is what a 405 and
//! its `Allow` header are built from. The decision endpoints live in
//! [`super::authorize`]; everything here only reads the state.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::authorize;
use super::error::{ApiError, Code};
use super::json::{self, Body, Limits, Policies, Status};
use super::state::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Readyz,
    Status,
    Policies,
    IsAuthorized,
    BatchIsAuthorized,
    Reload,
}

impl Route {
    fn find(path: &str) -> Option<Route> {
        Some(match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/v1/status" => Route::Status,
            "/v1/policies" => Route::Policies,
            "/v1/is_authorized" => Route::IsAuthorized,
            "/v1/batch_is_authorized" => Route::BatchIsAuthorized,
            "/v1/reload" => Route::Reload,
            _ => return None,
        })
    }

    fn method(self) -> (Method, &'static str) {
        match self {
            Route::IsAuthorized | Route::BatchIsAuthorized | Route::Reload => {
                (Method::POST, "POST")
            }
            _ => (Method::GET, "GET"),
        }
    }
}

/// Answers one request. Never fails: every problem is an HTTP answer.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    // The log line needs the path kept past the request; skip the copy (and
    // the clock) on the hot path unless someone reads debug logs.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return dispatch(state, request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = dispatch(state, request).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn dispatch(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let Some(route) = Route::find(path) else {
        return json::refuse(&ApiError::new(
            Code::NotFound,
            format!("no endpoint at {path}"),
        ));
    };
    let (method, allow) = route.method();
    if request.method() != method {
        let mut response = json::refuse(&ApiError::new(
            Code::MethodNotAllowed,
            format!("{path} accepts {allow} only"),
        ));
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        return response;
    }
    match route {
        Route::Healthz => json::respond(StatusCode::OK, &json!({"status": "ok"})),
        Route::Readyz => readyz(&state),
        Route::Status => status(&state),
        Route::Policies => policies(&state),
        Route::IsAuthorized => authorize::single(state, request).await,
        Route::BatchIsAuthorized => authorize::batch(state, request).await,
        Route::Reload => reload(state).await,
    }
}

/// `POST /v1/reload`: one attempt, answered once it is over. 200 when the
/// files are good (reloaded, or unchanged), 422 when they are not (the
/// active snapshot keeps serving), so `curl -f` in a deploy script fails.
async fn reload(state: Arc<State>) -> Response<Body> {
    // Its own task: a client that hangs up must not cancel an attempt
    // half-way (nothing published, nothing recorded).
    let attempt = tokio::spawn(async move { state.reload().await });
    let Ok(outcome) = attempt.await else {
        return json::refuse(&ApiError::new(Code::Internal, "the reload task failed"));
    };
    let Some(outcome) = outcome else {
        return json::refuse(&ApiError::new(
            Code::NotFound,
            "this server was not started from files, so it cannot reload",
        ));
    };
    let status = match outcome {
        crate::reload::Outcome::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    json::respond(status, &json::Reloaded::from(&outcome))
}

fn readyz(state: &State) -> Response<Body> {
    match state.snapshot() {
        Some(s) if !state.is_draining() => json::respond(
            StatusCode::OK,
            &json!({"ready": true, "revision": s.revision()}),
        ),
        _ => json::refuse(&not_ready(state)),
    }
}

/// Why the server cannot answer yet (or any more).
pub fn not_ready(state: &State) -> ApiError {
    let message = if state.is_draining() {
        "the server is shutting down"
    } else {
        "no policy snapshot is loaded yet"
    };
    ApiError::new(Code::NotReady, message)
}

fn status(state: &State) -> Response<Body> {
    let snapshot = state.snapshot();
    let config = state.config();
    let limits = Limits {
        max_body: config.max_body,
        max_batch: config.max_batch,
    };
    json::respond(
        StatusCode::OK,
        &Status::new(
            state.is_ready(),
            snapshot.as_deref(),
            state.started_at(),
            limits,
        )
        .with_reloads(state),
    )
}

fn policies(state: &State) -> Response<Body> {
    match state.snapshot() {
        Some(s) => json::respond(
            StatusCode::OK,
            &Policies {
                revision: s.revision(),
                policies: s.policies(),
            },
        ),
        None => json::refuse(&not_ready(state)),
    }
}
