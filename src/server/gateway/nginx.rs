//! nginx's `auth_request`.
//!
//! nginx sends a `GET` subrequest without a body to the `auth_request`
//! location, carrying the original request's headers; the configuration
//! adds the original method and URI (`X-Original-Method`,
//! `X-Original-URI`, see the README). nginx lets the request through on a
//! 2xx, answers 401 or 403 itself, and turns any other status into a 500:
//! so every refusal here is a 401 or a 403 (a request that cannot fill its
//! route included), with the reason in `X-Doorman-Reason`.

use hyper::StatusCode;
use hyper::http::request::Parts;

use super::{GatewayAnswer, HyperHeaders, Reply, ReplyBody, check, observed};
use crate::decide::Decision;
use crate::gateway::Request;
use crate::server::metrics;
use crate::server::request_id::Arrival;
use crate::server::respond::Body;
use crate::server::state::State;

pub fn answer(state: &State, parts: &Parts, arrival: &Arrival) -> hyper::Response<Body> {
    let headers = &parts.headers;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(method), Some(uri)) = (get("x-original-method"), get("x-original-uri")) else {
        return missing("X-Original-Method and X-Original-URI");
    };
    let lookup = HyperHeaders(headers);
    let request = Request::from_target(method, uri, &lookup);
    let checked = check(state, &request);
    let response = Reply::of(&checked, StatusCode::FORBIDDEN).into_response();
    observed(state, metrics::Endpoint::GatewayNginx, arrival, checked);
    response
}

/// A proxy that does not say what the original request was: a 403 naming
/// the headers it must send (a misconfiguration must fail closed, and
/// visibly).
pub(super) fn missing(what: &str) -> hyper::Response<Body> {
    let reason = format!("the proxy must send {what}");
    Reply {
        status: StatusCode::FORBIDDEN,
        upstream: vec![],
        body: ReplyBody::Answer(GatewayAnswer {
            decision: Decision::Deny,
            reason: Some(reason.clone()),
            reasons: None,
            revision: None,
        }),
        reason: Some(reason),
        challenge: None,
    }
    .into_response()
}
