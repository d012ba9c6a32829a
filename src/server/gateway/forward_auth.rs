//! Traefik's ForwardAuth middleware (and APISIX's forward-auth plugin,
//! which sends the same headers).
//!
//! The proxy calls `/ext/forward-auth` (Traefik with the original method,
//! APISIX with GET or POST) carrying the original headers plus
//! `X-Forwarded-Method`, `X-Forwarded-Uri` (path and query) and
//! `X-Forwarded-Host`. A 2xx lets the request through, copying the headers
//! named in `authResponseHeaders`; any other answer goes to the client as
//! is.

use hyper::StatusCode;
use hyper::http::request::Parts;

use super::{HyperHeaders, Reply, check, observed};
use crate::gateway::Request;
use crate::server::metrics;
use crate::server::request_id::Arrival;
use crate::server::respond::Body;
use crate::server::state::State;

pub fn answer(state: &State, parts: &Parts, arrival: &Arrival) -> hyper::Response<Body> {
    let headers = &parts.headers;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(method), Some(uri)) = (get("x-forwarded-method"), get("x-forwarded-uri")) else {
        return super::nginx::missing("X-Forwarded-Method and X-Forwarded-Uri");
    };
    let lookup = HyperHeaders(headers);
    let request = Request::from_target(method, uri, &lookup);
    let checked = check(state, &request);
    let response = Reply::of(&checked, StatusCode::BAD_REQUEST).into_response();
    observed(
        state,
        metrics::Endpoint::GatewayForwardAuth,
        arrival,
        checked,
    );
    response
}
