//! Which endpoint answers a request.
//!
//! A handful of fixed paths do not need a router: a `match` on the path
//! finds the endpoint, and the endpoint knows its one method, which is what
//! a 405 and its `Allow` header are built from. The endpoints themselves
//! live with their protocol: [`super::v1`] (doorman's decision API),
//! [`super::authzen`] (AuthZEN 1.0, which answers its own wrong methods so
//! that they too carry its request identifier) and [`super::admin`]
//! (health, status, policies, reload).
//!
//! Every route names its [`Access`] class here, in one exhaustive `match`
//! per protocol, so a route added later cannot be served without saying
//! who may call it; the state's [`super::auth::Guard`] checks the token
//! before the request's method or body is looked at (an unauthenticated
//! caller learns nothing but that a token is needed).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::auth::Access;
use super::error::{ApiError, Code};
use super::respond::{Body, refuse, respond, wrong_method};
use super::state::State;
use super::{admin, authzen, openapi, v1};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Readyz,
    Status,
    Policies,
    IsAuthorized,
    BatchIsAuthorized,
    Reload,
    OpenApi,
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
            "/openapi.json" => Route::OpenApi,
            _ => return None,
        })
    }

    /// Who may call it.
    fn access(self) -> Access {
        match self {
            Route::Healthz | Route::Readyz | Route::OpenApi => Access::Open,
            Route::IsAuthorized | Route::BatchIsAuthorized => Access::Decision,
            Route::Status | Route::Policies | Route::Reload => Access::Admin,
        }
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
    let path = crate::clip::clip(request.uri().path(), crate::clip::FIELD_CHARS).into_owned();
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
        let refused = state
            .guard()
            .admit(authzen_access(endpoint), request.headers())
            .err();
        return authzen::handle(endpoint, state, request, refused).await;
    }
    let Some(route) = Route::find(path) else {
        return refuse(&ApiError::new(
            Code::NotFound,
            format!("no endpoint at {path}"),
        ));
    };
    if let Err(refused) = state.guard().admit(route.access(), request.headers()) {
        return refused;
    }
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
        Route::OpenApi => respond(StatusCode::OK, &openapi::document(state.guard().view())),
    }
}

/// Who may call an AuthZEN endpoint: the metadata document is how a client
/// finds the rest, so it stays open.
fn authzen_access(endpoint: authzen::Endpoint) -> Access {
    use authzen::Endpoint as E;
    match endpoint {
        E::Metadata => Access::Open,
        E::Evaluation | E::Evaluations | E::SearchSubject | E::SearchResource | E::SearchAction => {
            Access::Decision
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document and the router list the same endpoints.
    #[test]
    fn every_documented_path_is_routed() {
        for path in openapi::PATHS {
            // Served once the metrics endpoint lands (another branch); the
            // access class it will take, `Access::Metrics`, exists already.
            if *path == "/metrics" {
                continue;
            }
            assert!(
                Route::find(path).is_some() || authzen::Endpoint::find(path).is_some(),
                "{path} is documented but not routed"
            );
        }
        let doc = openapi::document(super::super::auth::Guard::open().view());
        let documented: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut listed = openapi::PATHS.to_vec();
        listed.sort_unstable();
        let mut documented = documented;
        documented.sort_unstable();
        assert_eq!(documented, listed);
    }
}
