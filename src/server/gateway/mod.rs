//! Gateway adapters: reverse proxies asking "may this request through?".
//!
//! One file per protocol, each a thin translation: `envoy` (Envoy's
//! ext_authz HTTP service, `/ext/envoy/<original path>`), `grpc` (Envoy's
//! and Istio's ext_authz gRPC service, on its own listener), `nginx`
//! (`auth_request` to `/ext/nginx`) and `forward_auth` (Traefik's and
//! APISIX's forward-auth, `/ext/forward-auth`). Each builds a
//! [`gateway::Request`] from what its proxy sends and calls [`check`], the
//! one decision path they share: the snapshot's route map turns the request
//! into a `Query` (see [`crate::gateway`]), and the snapshot decides it
//! exactly as `/v1/is_authorized` would. [`Checked`] keeps the query, the
//! answer and the revision together, which is what a decision log needs.
//!
//! Statuses follow what the proxies can take: an allow is 200, a deny 403,
//! a missing or bad credential 401 with `WWW-Authenticate: Bearer`, a
//! request that matched a route but cannot fill it 400 (nginx: 403, since
//! it turns anything but 2xx/401/403 into a 500), and never a 5xx for a
//! deny or bad input, which Envoy would read as its own failure. Only "no
//! snapshot yet" is a 503.

mod envoy;
mod forward_auth;
pub mod grpc;
mod nginx;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::error::{ApiError, Code};
use super::metrics;
use super::observe::{self, Site};
use super::request_id::Arrival;
use super::respond::{Body, respond};
use super::state::State;
use crate::decide::{Answer, Decision, QueryError};
use crate::gateway::{self, Refusal, Resolved, Unmatched, Upstream};
use crate::snapshot::Snapshot;

/// Counters of what the gateway endpoints answered (all protocols).
#[derive(Debug, Default)]
pub struct Counters {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    /// Requests no route matched (allowed or denied by `unmatched`).
    pub unmatched: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub bad_request: AtomicU64,
}

impl Counters {
    fn count(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Decided { answer, .. } if answer.decision == Decision::Allow => &self.allowed,
            Outcome::Decided { .. } => &self.denied,
            Outcome::Unmatched { .. } => &self.unmatched,
            Outcome::Refused(Refusal::Unauthenticated { .. }) => &self.unauthenticated,
            Outcome::Refused(_) | Outcome::Invalid { .. } => &self.bad_request,
            Outcome::NotReady | Outcome::NoRouteMap => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What became of one gateway request.
#[derive(Debug)]
pub enum Outcome {
    /// No snapshot is loaded yet.
    NotReady,
    /// The server runs without `--routes`.
    NoRouteMap,
    /// No route matched; `allowed` is the route map's `unmatched`.
    Unmatched {
        allowed: bool,
    },
    /// No question to decide: no credential, or a request that cannot fill
    /// its route.
    Refused(Refusal),
    /// Cedar refused the query the route built (a context value the schema
    /// does not accept): bad input, never a deny by accident.
    Invalid {
        resolved: Resolved,
        error: QueryError,
    },
    Decided {
        resolved: Resolved,
        answer: Answer,
    },
}

/// One gateway check: the outcome and the snapshot that produced it (for
/// its revision and route map).
pub struct Checked {
    pub outcome: Outcome,
    pub snapshot: Option<Arc<Snapshot>>,
}

impl Checked {
    pub fn revision(&self) -> Option<&str> {
        self.snapshot.as_deref().map(Snapshot::revision)
    }
}

/// Counts a check's decision and hands it to the decision log, once its
/// answer is built (the query and answer move there; nothing is copied).
pub(super) fn observed(
    state: &State,
    endpoint: metrics::Endpoint,
    arrival: &Arrival,
    checked: Checked,
) {
    let Checked { outcome, snapshot } = checked;
    if let (Outcome::Decided { resolved, answer }, Some(snapshot)) = (outcome, snapshot.as_ref()) {
        let site = Site {
            endpoint,
            arrival,
            snapshot,
            item: None,
            entities: None,
        };
        observe::decided(state, &site, resolved.query, answer);
    }
}

/// The shared decision path of every gateway protocol.
pub fn check(state: &State, request: &gateway::Request<'_>) -> Checked {
    // Like `/v1`, requests still arriving while the server drains are
    // answered: they are in flight on connections being closed.
    let snapshot = match state.snapshot() {
        Some(s) => s,
        None => {
            return Checked {
                outcome: Outcome::NotReady,
                snapshot: None,
            };
        }
    };
    let outcome = match snapshot.route_map() {
        None => Outcome::NoRouteMap,
        Some(map) => match map.resolve(request) {
            Err(Refusal::NoRoute) => Outcome::Unmatched {
                allowed: map.unmatched == Unmatched::Allow,
            },
            Err(refusal) => Outcome::Refused(refusal),
            Ok(resolved) => match snapshot.decide(&resolved.query) {
                Ok(answer) => Outcome::Decided { resolved, answer },
                Err(error) => Outcome::Invalid { resolved, error },
            },
        },
    };
    state.gateway_counters().count(&outcome);
    Checked {
        outcome,
        snapshot: Some(snapshot),
    }
}

/// A check's answer in HTTP terms, for the protocols that speak HTTP (and
/// for gRPC's `denied_response`).
pub struct Reply {
    pub status: StatusCode,
    /// Headers for the upstream request (allow only).
    pub upstream: Vec<(HeaderName, HeaderValue)>,
    /// Why, for a refusal (also sent as `x-doorman-reason`).
    pub reason: Option<String>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
    pub body: ReplyBody,
}

/// The body of a gateway answer: the check's answer, or (no snapshot yet)
/// the usual error body.
#[derive(Debug)]
pub enum ReplyBody {
    Answer(GatewayAnswer),
    Error(ApiError),
}

impl Serialize for ReplyBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ReplyBody::Answer(a) => a.serialize(s),
            ReplyBody::Error(e) => e.body().serialize(s),
        }
    }
}

/// What a gateway check answers in its body, whatever the status: an
/// allow, a policy's deny, or a refusal with its reason.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayAnswer {
    /// `deny` for every refusal (401, 400, 403), not only a policy's.
    pub decision: Decision,
    /// Why, when no policy decided: no route matched, no or a bad
    /// credential, a route that cannot be filled, no route map, a proxy
    /// that did not send the original request (as `X-Doorman-Reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The policies that determined a decided check (empty for the
    /// default deny), as `/v1/is_authorized`'s `reasons`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// The snapshot that answered; absent when the proxy did not say what
    /// the original request was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

const REASON: HeaderName = HeaderName::from_static("x-doorman-reason");

impl Reply {
    /// `bad_input` is the status for a request that cannot fill its route:
    /// 400, or 403 where the proxy takes nothing else.
    pub fn of(checked: &Checked, bad_input: StatusCode) -> Reply {
        let revision = checked.revision().map(str::to_owned);
        let refusal = |status: StatusCode, reason: String| Reply {
            status,
            upstream: vec![],
            body: ReplyBody::Answer(GatewayAnswer {
                decision: Decision::Deny,
                reason: Some(reason.clone()),
                reasons: None,
                revision: revision.clone(),
            }),
            reason: Some(reason),
            challenge: None,
        };
        match &checked.outcome {
            Outcome::NotReady => Reply {
                body: ReplyBody::Error(ApiError::new(Code::NotReady, "no policies loaded yet")),
                ..refusal(StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned())
            },
            Outcome::NoRouteMap => refusal(
                StatusCode::FORBIDDEN,
                "doorman has no route map: start it with --routes FILE".to_owned(),
            ),
            Outcome::Unmatched { allowed: true } => Reply {
                status: StatusCode::OK,
                upstream: vec![],
                reason: None,
                challenge: None,
                body: ReplyBody::Answer(GatewayAnswer {
                    decision: Decision::Allow,
                    reason: Some("no route matches; unmatched: allow".to_owned()),
                    reasons: None,
                    revision: revision.clone(),
                }),
            },
            Outcome::Unmatched { allowed: false } => {
                refusal(StatusCode::FORBIDDEN, Refusal::NoRoute.reason())
            }
            Outcome::Refused(r @ Refusal::Unauthenticated { .. }) => Reply {
                challenge: Some("Bearer"),
                ..refusal(StatusCode::UNAUTHORIZED, r.reason())
            },
            Outcome::Refused(r) => refusal(bad_input, r.reason()),
            Outcome::Invalid { error, .. } => refusal(bad_input, error.to_string()),
            Outcome::Decided { resolved, answer } => {
                let body = ReplyBody::Answer(GatewayAnswer {
                    decision: answer.decision,
                    reason: None,
                    reasons: Some(answer.reasons.clone()),
                    revision: revision.clone(),
                });
                if answer.decision == Decision::Deny {
                    return Reply {
                        body,
                        ..refusal(StatusCode::FORBIDDEN, "denied by policy".to_owned())
                    };
                }
                let map = checked.snapshot.as_deref().and_then(Snapshot::route_map);
                Reply {
                    status: StatusCode::OK,
                    upstream: map.map_or_else(Vec::new, |m| {
                        upstream_headers(&m.upstream, resolved, answer, checked.revision())
                    }),
                    reason: None,
                    challenge: None,
                    body,
                }
            }
        }
    }

    /// As an HTTP response: the upstream headers on an allow, the reason
    /// and challenge on a refusal.
    pub fn into_response(self) -> Response<Body> {
        let mut response = respond(self.status, &self.body);
        let headers = response.headers_mut();
        for (name, value) in self.upstream {
            headers.insert(name, value);
        }
        if let Some(reason) = &self.reason {
            headers.insert(REASON, header_value(reason));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

fn upstream_headers(
    wanted: &[(String, Upstream)],
    resolved: &Resolved,
    answer: &Answer,
    revision: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    wanted
        .iter()
        .filter_map(|(name, what)| {
            let value = match what {
                Upstream::Principal => resolved.query.principal.to_string(),
                Upstream::Action => resolved.query.action.to_string(),
                Upstream::Resource => resolved.query.resource.to_string(),
                Upstream::Policies => answer.reasons.join(","),
                Upstream::Revision => revision?.to_owned(),
            };
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                header_value(&value),
            ))
        })
        .collect()
}

/// A header value for any text: bytes a header cannot carry are
/// percent-encoded.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let encoded =
            percent_encoding::utf8_percent_encode(text, percent_encoding::CONTROLS).to_string();
        let ascii: String = encoded
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u32)
                }
            })
            .collect();
        HeaderValue::from_str(&ascii).unwrap_or_else(|_| HeaderValue::from_static("-"))
    })
}

/// A hyper header map as the route map reads headers.
pub(crate) struct HyperHeaders<'a>(pub &'a HeaderMap);

impl gateway::Headers for HyperHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name)?.to_str().ok()
    }
}

/// Which gateway endpoint a path is, if any.
pub fn find(path: &str) -> Option<Endpoint> {
    if path == "/ext/nginx" {
        Some(Endpoint::Nginx)
    } else if path == "/ext/forward-auth" {
        Some(Endpoint::ForwardAuth)
    } else if path == "/ext/envoy" || path.starts_with("/ext/envoy/") {
        Some(Endpoint::Envoy)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Envoy,
    Nginx,
    ForwardAuth,
}

impl Endpoint {
    /// Its `endpoint` label in metrics and the decision log.
    pub(super) fn metric(self) -> metrics::Endpoint {
        match self {
            Endpoint::Envoy => metrics::Endpoint::GatewayEnvoy,
            Endpoint::Nginx => metrics::Endpoint::GatewayNginx,
            Endpoint::ForwardAuth => metrics::Endpoint::GatewayForwardAuth,
        }
    }
}

/// Answers a gateway endpoint. The request's body is never read: every
/// protocol puts what matters in the method, the path and the headers.
pub async fn handle(
    endpoint: Endpoint,
    state: Arc<State>,
    request: hyper::Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    match endpoint {
        Endpoint::Envoy => envoy::answer(&state, &parts, &arrival),
        Endpoint::Nginx => nginx::answer(&state, &parts, &arrival),
        Endpoint::ForwardAuth => forward_auth::answer(&state, &parts, &arrival),
    }
}
