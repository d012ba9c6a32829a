//! Envoy's ext_authz filter in HTTP mode.
//!
//! Envoy sends the check to `path_prefix` + the original request target,
//! with the original method and (the allowed) headers, and no body unless
//! asked. With `path_prefix: /ext/envoy`, `GET /inboxes/x?y=1` arrives as
//! `GET /ext/envoy/inboxes/x?y=1`. A 200 lets the request through (Envoy
//! copies the headers named in `allowed_upstream_headers` onto it); any
//! other status is sent to the client as is, which is why a deny is a 403
//! and never a 5xx (a 5xx is Envoy's own failure, and `failure_mode_allow`
//! would let the request through).

use hyper::StatusCode;
use hyper::http::request::Parts;

use super::{HyperHeaders, Reply, check, observed};
use crate::gateway::Request;
use crate::server::metrics;
use crate::server::request_id::Arrival;
use crate::server::respond::Body;
use crate::server::state::State;

const PREFIX: &str = "/ext/envoy";

pub fn answer(state: &State, parts: &Parts, arrival: &Arrival) -> hyper::Response<Body> {
    let target = parts.uri.path_and_query().map_or(PREFIX, |pq| pq.as_str());
    let original = target.strip_prefix(PREFIX).unwrap_or(target);
    // `/ext/envoy` alone (or `/ext/envoy?x`) is the root path.
    let rooted;
    let original = if original.starts_with('/') {
        original
    } else {
        rooted = format!("/{original}");
        &rooted
    };
    let headers = HyperHeaders(&parts.headers);
    let request = Request::from_target(parts.method.as_str(), original, &headers);
    let checked = check(state, &request);
    let response = Reply::of(&checked, StatusCode::BAD_REQUEST).into_response();
    observed(state, metrics::Endpoint::GatewayEnvoy, arrival, checked);
    response
}
