//! Envoy's ext_authz gRPC service (`envoy.service.auth.v3.Authorization/Check`),
//! as Envoy's `grpc_service` and Istio's `envoyExtAuthzGrpc` provider call it.
//!
//! Served by tonic on its own listener (`serve --grpc-listen ADDR`), over
//! the same state as the HTTP server. A `CheckRequest`'s
//! `attributes.request.http` (method, path with its query string, headers)
//! goes through the same [`check`] as every other protocol. The answer:
//! `status` OK with an `ok_response` carrying the upstream headers (set,
//! never appended, so a client cannot smuggle its own `x-doorman-*`
//! value past them); or a `denied_response` with the HTTP status Envoy
//! sends the client (403, 401 with `WWW-Authenticate`, 400 for a request
//! that cannot fill its route), a JSON body, and `status`
//! PERMISSION_DENIED, UNAUTHENTICATED or INVALID_ARGUMENT. Only "not ready"
//! is a gRPC error (UNAVAILABLE), which Envoy treats as its own failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
    HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use hyper::StatusCode;
use tokio::sync::Notify;
use tonic::{Code, Status};

use super::{GatewayAnswer, Outcome, Reply, ReplyBody, check, observed};
use crate::decide::Decision;
use crate::gateway::{Headers, Request};
use crate::server::metrics;
use crate::server::request_id::{self, Arrival};
use crate::server::state::State;

/// The gRPC service over a server's state.
pub struct Service {
    state: Arc<State>,
}

impl Service {
    pub fn new(state: Arc<State>) -> Self {
        Service { state }
    }
}

/// Serves the ext_authz gRPC API on `listener` until `shutdown` completes,
/// then lets in-flight calls finish, for at most `drain` (a client that
/// keeps its HTTP/2 connection open after the GOAWAY must not hold the
/// process).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let stop = Arc::new(Notify::new());
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let server = tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Service::new(state)))
        .serve_with_incoming_shutdown(incoming, {
            let stop = stop.clone();
            async move { stop.notified().await }
        });
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served,
        () = shutdown => {
            // Stored as a permit if the server is not waiting yet.
            stop.notify_one();
            match tokio::time::timeout(drain, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!("gRPC connections still open after {drain:?}; closing them");
                    Ok(())
                }
            }
        }
    };
    if let Err(e) = served {
        tracing::error!("the gRPC server failed: {e}");
    }
}

/// The check request's headers: the `headers` map (keys lower-case), or
/// `header_map` when Envoy sends raw headers.
struct CheckHeaders<'a> {
    map: &'a HashMap<String, String>,
    raw: Option<&'a envoy_types::pb::envoy::config::core::v3::HeaderMap>,
}

impl Headers for CheckHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.map.get(name) {
            return Some(v);
        }
        let raw = self.raw?;
        raw.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| {
                if h.value.is_empty() {
                    std::str::from_utf8(&h.raw_value).ok()
                } else {
                    Some(h.value.as_str())
                }
            })
    }
}

#[tonic::async_trait]
impl Authorization for Service {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, Status> {
        let request = request.into_inner();
        // Envoy names the original request's id among its headers.
        let arrival = Arrival {
            id: arrival_id(&request),
            at: Instant::now(),
        };
        let Some(http) = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
        else {
            return Ok(tonic::Response::new(denied(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                "the CheckRequest has no attributes.request.http",
                None,
                ReplyBody::Answer(GatewayAnswer {
                    decision: Decision::Deny,
                    reason: Some("no attributes.request.http".to_owned()),
                    reasons: None,
                    revision: None,
                }),
            )));
        };
        let headers = CheckHeaders {
            map: &http.headers,
            raw: http.header_map.as_ref(),
        };
        let target = if http.path.is_empty() {
            "/"
        } else {
            http.path.as_str()
        };
        let checked = check(
            &self.state,
            &Request::from_target(&http.method, target, &headers),
        );
        if matches!(checked.outcome, Outcome::NotReady) {
            return Err(Status::unavailable("no policies loaded yet"));
        }
        let reply = Reply::of(&checked, StatusCode::BAD_REQUEST);
        observed(
            &self.state,
            metrics::Endpoint::GatewayEnvoyGrpc,
            &arrival,
            checked,
        );
        Ok(tonic::Response::new(response(reply)))
    }
}

/// The original request's `x-request-id` when Envoy passed an acceptable
/// one, else a new one.
fn arrival_id(request: &CheckRequest) -> hyper::header::HeaderValue {
    request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .and_then(|h| h.headers.get("x-request-id"))
        .filter(|id| request_id::acceptable(id.as_bytes()))
        .and_then(|id| hyper::header::HeaderValue::from_str(id).ok())
        .unwrap_or_else(request_id::generate)
}

fn response(reply: Reply) -> CheckResponse {
    if reply.status.is_success() {
        let mut ok = OkHttpResponseBuilder::new();
        for (name, value) in &reply.upstream {
            ok.add_header(
                name.as_str(),
                value.to_str().unwrap_or_default(),
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                true,
            );
        }
        let mut response = CheckResponse::with_status(Status::ok(""));
        response.set_http_response(ok);
        return response;
    }
    let code = match reply.status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        _ => Code::PermissionDenied,
    };
    let reason = reply.reason.clone().unwrap_or_default();
    denied(reply.status, code, &reason, reply.challenge, reply.body)
}

fn denied(
    status: StatusCode,
    code: Code,
    reason: &str,
    challenge: Option<&str>,
    body: ReplyBody,
) -> CheckResponse {
    let mut denied = DeniedHttpResponseBuilder::new();
    denied.set_http_status(http_status(status));
    denied.add_header("content-type", "application/json", None, false);
    if !reason.is_empty() {
        denied.add_header("x-doorman-reason", reason, None, false);
    }
    if let Some(challenge) = challenge {
        denied.add_header("www-authenticate", challenge, None, false);
    }
    // Serializing these types cannot fail (no maps with non-string keys).
    denied.set_body(serde_json::to_string(&body).unwrap_or_default());
    let mut response = CheckResponse::with_status(Status::new(code, reason));
    response.set_http_response(denied);
    response
}

fn http_status(status: StatusCode) -> HttpStatusCode {
    match status {
        StatusCode::UNAUTHORIZED => HttpStatusCode::Unauthorized,
        StatusCode::BAD_REQUEST => HttpStatusCode::BadRequest,
        _ => HttpStatusCode::Forbidden,
    }
}
