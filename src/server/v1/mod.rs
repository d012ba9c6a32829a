//! doorman's own decision endpoints: `/v1/is_authorized` and
//! `/v1/batch_is_authorized`.
//!
//! Each request reads its body, parses it, takes the current snapshot once
//! (one atomic load; a batch is answered whole from that one snapshot) and
//! asks the library. Policies were parsed and entities loaded when the
//! snapshot was built, so nothing here touches a file or a policy's text,
//! and request-scoped entities become a small overlay, never a copy of the
//! store.
//!
//! A single small request is answered in place; a batch or a large body
//! runs on the blocking pool (see [`super::work`]). Reading bodies is
//! [`read`] (with its typed fast path, [`fast`]); the answers' wire shapes
//! are [`answer`].

pub(super) mod answer;
pub(crate) mod fast;
pub(crate) mod read;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use answer::{BatchDecided, Decided, Outcome};
use read::{Brought, Item, ReadBatch};

use super::admin::not_ready;
use super::body;
use super::decision_log::Entities;
use super::error::{ApiError, Code};
use super::metrics::Endpoint;
use super::observe::{self, Site};
use super::request_id::Arrival;
use super::respond::{Body, refuse, respond};
use super::state::State;
use super::work::{INLINE_BODY, offload};
use crate::decide::{Answer, Query, QueryError};
use crate::entities::Overlay;
use crate::snapshot::Snapshot;

pub async fn single(
    state: Arc<State>,
    request: Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    let body = match body::read(request, state.config()).await {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    let inline = body.len() <= INLINE_BODY;
    offload(inline, move || answer_single(&state, &body, &arrival)).await
}

pub async fn batch(
    state: Arc<State>,
    request: Request<Incoming>,
    arrival: Arrival,
) -> Response<Body> {
    let body = match body::read(request, state.config()).await {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    offload(false, move || answer_batch(&state, &body, &arrival)).await
}

fn answer_single(state: &State, body: &Bytes, arrival: &Arrival) -> Response<Body> {
    let item = match read::parse_single(body) {
        Ok(item) => item,
        Err(e) => return refuse(&e),
    };
    let Some(snapshot) = state.snapshot() else {
        return refuse(&not_ready(state));
    };
    match decide(&snapshot, &item, None) {
        Ok(answer) => {
            let response = respond(StatusCode::OK, &Decided::new(&answer, snapshot.revision()));
            let entities = || Entities::V1Body {
                body: body.clone(),
                item: None,
            };
            let site = Site {
                endpoint: Endpoint::V1IsAuthorized,
                arrival,
                snapshot: &snapshot,
                item: None,
                entities: Some(&entities),
            };
            observe::decided(state, &site, item.query, answer);
            response
        }
        Err(e) => refuse(&e),
    }
}

/// What `/v1/is_authorized` answers for `body`, without the HTTP: the same
/// reading, entities and decision. Benchmarks and embedders call this.
pub fn answer_body(snapshot: &Snapshot, body: &[u8]) -> Result<Answer, ApiError> {
    decide(snapshot, &read::parse_single(body)?, None)
}

fn answer_batch(state: &State, body: &Bytes, arrival: &Arrival) -> Response<Body> {
    let batch = match read::parse_batch_body(body, state.config().max_batch) {
        Ok(b) => b,
        Err(e) => return refuse(&e),
    };
    let Some(snapshot) = state.snapshot() else {
        return refuse(&not_ready(state));
    };
    let decided = match decide_batch(&snapshot, batch) {
        Ok(d) => d,
        Err(e) => return refuse(&e),
    };
    state.metrics().batch(decided.len());
    // The queries outlive the answers' serialization only to be logged.
    let (responses, queries): (Vec<Outcome>, Vec<Option<Query>>) = decided
        .into_iter()
        .map(|(answer, query)| (answer.into(), query))
        .unzip();
    let response = respond(
        StatusCode::OK,
        &BatchDecided {
            responses: &responses,
            revision: snapshot.revision(),
        },
    );
    for (i, (outcome, query)) in responses.into_iter().zip(queries).enumerate() {
        if let (Outcome::Answer(answer), Some(query)) = (outcome, query) {
            let entities = || Entities::V1Body {
                body: body.clone(),
                item: Some(i),
            };
            let site = Site {
                endpoint: Endpoint::V1BatchIsAuthorized,
                arrival,
                snapshot: &snapshot,
                item: Some(i),
                entities: Some(&entities),
            };
            observe::decided(state, &site, query, answer);
        }
    }
    response
}

/// Each item of a batch: its answer or refusal, with its query when it had
/// one.
pub type ItemOutcomes = Vec<(Result<Answer, ApiError>, Option<Query>)>;

/// Answers every item of a batch: each item's answer or refusal (its
/// fields placed within `requests[i]`), with its query when it had one.
/// Refused whole only when the shared entities do not parse.
pub(crate) fn decide_batch(
    snapshot: &Snapshot,
    batch: ReadBatch<'_>,
) -> Result<ItemOutcomes, ApiError> {
    let ReadBatch { requests, entities } = batch;
    // Shared entities are parsed once for the whole batch; each item's own
    // entities are layered over them.
    let shared = entities
        .as_ref()
        .map(|e| overlay(snapshot, e))
        .transpose()?;
    Ok(requests
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Ok(item) => {
                let answer = decide(snapshot, &item, shared.as_ref())
                    .map_err(|e| e.within(&format!("requests[{i}]")));
                (answer, Some(item.query))
            }
            Err(e) => (Err(e), None),
        })
        .collect())
}

/// Answers one item. Errors name fields relative to the item; a batch
/// places them with [`ApiError::within`] (only when there is an error, so
/// an answered item costs no path string).
pub(crate) fn decide(
    snapshot: &Snapshot,
    item: &Item<'_>,
    shared: Option<&Overlay>,
) -> Result<Answer, ApiError> {
    let own = item
        .entities
        .as_ref()
        .map(|e| overlay(snapshot, e))
        .transpose()?;
    let layers: Vec<&Overlay> = own.iter().chain(shared).collect();
    snapshot
        .decide_with(&item.query, &layers)
        .map_err(query_error)
}

fn overlay(snapshot: &Snapshot, entities: &Brought<'_>) -> Result<Overlay, ApiError> {
    snapshot.overlay_read(&entities.items()).map_err(|e| {
        ApiError::at(
            Code::InvalidEntities,
            format!("entities[{}]", e.index),
            e.message,
        )
    })
}

fn query_error(e: QueryError) -> ApiError {
    let code = if e.field.starts_with("entities") {
        Code::InvalidEntities
    } else {
        Code::InvalidRequest
    };
    ApiError::at(code, e.field, e.message)
}
