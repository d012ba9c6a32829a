//! Which endpoint answers a request.
//!
//! A handful of fixed paths do not need a router: a `match` on the path
//! finds the endpoint, and the endpoint knows its one method, which is what
//! a 405 and its `Allow` header are built from. The endpoints themselves
//! live with their protocol: [`super::v1`] (doorman's decision API),
//! [`super::authzen`] (AuthZEN 1.0, which answers its own wrong methods)
//! and [`super::admin`]
//! (health, status, policies, reload).
//!
//! Every route names its [`Access`] class here, in one exhaustive `match`
//! per protocol, so a route added later cannot be served without saying
//! who may call it; the state's [`super::auth::Guard`] checks the token
//! before the request's method or body is looked at (an unauthenticated
//! caller learns nothing but that a token is needed).
//!
//! Every answer leaves through [`handle`], which is why the request's
//! `X-Request-ID` is set and the request counted there, once, for every
//! endpoint (404s and 405s included).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::auth::Access;
use super::error::{ApiError, Code};
use super::metrics::Endpoint;
use super::request_id::{self, Arrival};
use super::respond::{Body, refuse, respond, wrong_method};
use super::state::State;
use super::{admin, authzen, gateway, metrics, openapi, v1};

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
    Metrics,
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
            "/metrics" => Route::Metrics,
            _ => return None,
        })
    }

    /// Who may call it.
    fn access(self) -> Access {
        match self {
            Route::Healthz | Route::Readyz | Route::OpenApi => Access::Open,
            Route::IsAuthorized | Route::BatchIsAuthorized => Access::Decision,
            Route::Status | Route::Policies | Route::Reload => Access::Admin,
            Route::Metrics => Access::Metrics,
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

/// Answers one request. Never fails: every problem is an HTTP answer, and
/// every answer carries the request's `X-Request-ID` and is counted.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let arrival = Arrival {
        id: request_id::of(request.headers()),
        at: Instant::now(),
    };
    let target = Target::find(request.uri().path());
    // The log line needs the method and path kept past the request; skip
    // the copies on the hot path unless someone reads debug logs.
    let line = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (request.method().clone(), request.uri().path().to_owned()));
    let metrics = state.metrics().clone();
    let id = arrival.id.clone();
    let mut response = dispatch(target, state, request, arrival.clone()).await;
    let took = arrival.at.elapsed();
    metrics.request(target.endpoint(), response.status(), took);
    if let Some((method, path)) = line {
        tracing::debug!(
            %method,
            %path,
            status = response.status().as_u16(),
            micros = took.as_micros() as u64,
            request_id = id.to_str().unwrap_or("-"),
            "request"
        );
    }
    response.headers_mut().insert(request_id::HEADER, id);
    response
}

/// What a path names.
#[derive(Debug, Clone, Copy)]
enum Target {
    AuthZen(authzen::Endpoint),
    /// A gateway's check (any method: gateways send the original one).
    Gateway(gateway::Endpoint),
    Route(Route),
    NotFound,
}

impl Target {
    fn find(path: &str) -> Target {
        if let Some(endpoint) = authzen::Endpoint::find(path) {
            return Target::AuthZen(endpoint);
        }
        if let Some(endpoint) = gateway::find(path) {
            return Target::Gateway(endpoint);
        }
        Route::find(path).map_or(Target::NotFound, Target::Route)
    }

    /// Its `endpoint` label.
    fn endpoint(self) -> Endpoint {
        match self {
            Target::AuthZen(e) => e.metric(),
            Target::Gateway(e) => e.metric(),
            Target::Route(r) => match r {
                Route::Healthz => Endpoint::Health,
                Route::Readyz => Endpoint::Ready,
                Route::Status => Endpoint::AdminStatus,
                Route::Policies => Endpoint::AdminPolicies,
                Route::IsAuthorized => Endpoint::V1IsAuthorized,
                Route::BatchIsAuthorized => Endpoint::V1BatchIsAuthorized,
                Route::Reload => Endpoint::AdminReload,
                Route::Metrics => Endpoint::Metrics,
                Route::OpenApi => Endpoint::OpenApi,
            },
            Target::NotFound => Endpoint::NotFound,
        }
    }
}

async fn dispatch(
    target: Target,
    state: Arc<State>,
    request: Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    let route = match target {
        Target::AuthZen(endpoint) => {
            if let Err(refused) = state
                .guard()
                .admit(authzen_access(endpoint), request.headers())
            {
                return refused;
            }
            return authzen::handle(endpoint, state, request, arrival).await;
        }
        // Open to the token guard: a gateway's request carries the end
        // user's credential, which the route map verifies.
        Target::Gateway(endpoint) => {
            return gateway::handle(endpoint, state, request, arrival).await;
        }
        Target::NotFound => {
            return refuse(&ApiError::new(
                Code::NotFound,
                format!("no endpoint at {}", request.uri().path()),
            ));
        }
        Target::Route(route) => route,
    };
    if let Err(refused) = state.guard().admit(route.access(), request.headers()) {
        return refused;
    }
    let path = request.uri().path();
    let (method, allow) = route.method();
    if request.method() != method {
        return wrong_method(path, allow);
    }
    match route {
        Route::Healthz => respond(StatusCode::OK, &json!({"status": "ok"})),
        Route::Readyz => admin::readyz(&state),
        Route::Status => admin::status(&state),
        Route::Policies => admin::policies(&state),
        Route::Metrics => metrics::answer(&state),
        Route::IsAuthorized => v1::single(state, request, arrival).await,
        Route::BatchIsAuthorized => v1::batch(state, request, arrival).await,
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
            assert!(
                Route::find(path).is_some()
                    || authzen::Endpoint::find(path).is_some()
                    || gateway::find(path).is_some(),
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
