//! Which endpoint answers a request.
//!
//! A handful of fixed paths do not need a router: a `match` on the path
//! finds the endpoint, and the endpoint knows its one method, which is what
//! a 405 and its `Allow` header are built from. The endpoints themselves
//! live with their protocol: [`super::v1`] (doorman's decision API),
//! [`super::authzen`] (AuthZEN 1.0, which answers its own wrong methods so
//! that they too carry its request identifier) and [`super::admin`]
//! (health, status, policies, reload).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::error::{ApiError, Code};
use super::respond::{Body, refuse, respond, wrong_method};
use super::state::State;
use super::{admin, authzen, gateway, v1};

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
    if let Some(endpoint) = authzen::Endpoint::find(path) {
        return authzen::handle(endpoint, state, request).await;
    }
    // Gateways send the original request's method, whatever it is.
    if let Some(endpoint) = gateway::find(path) {
        return gateway::handle(endpoint, state, request).await;
    }
    let Some(route) = Route::find(path) else {
        return refuse(&ApiError::new(
            Code::NotFound,
            format!("no endpoint at {path}"),
        ));
    };
    let (method, allow) = route.method();
    if request.method() != method {
        return wrong_method(path, allow);
    }
    match route {
        Route::Healthz => respond(StatusCode::OK, &json!({"status": "ok"})),
        Route::Readyz => admin::readyz(&state),
        Route::Status => admin::status(&state),
        Route::Policies => admin::policies(&state),
        Route::IsAuthorized => v1::single(state, request).await,
        Route::BatchIsAuthorized => v1::batch(state, request).await,
        Route::Reload => admin::reload(state).await,
    }
}
