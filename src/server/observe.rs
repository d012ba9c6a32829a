//! What every protocol does with a decision once its answer is written:
//! count it, and hand it to the decision log when there is one.
//!
//! One function for all adapters, so a new protocol (a gateway) adds one
//! call. Called after the response is serialized, with the query and the
//! answer moved in: with no decision log this is two atomic adds.

use std::sync::Arc;

use super::decision_log::{Entities, Record};
use super::metrics::Endpoint;
use super::request_id::Arrival;
use super::state::State;
use crate::decide::{Answer, Query};
use crate::snapshot::Snapshot;

/// Where a decision was made.
pub struct Site<'a> {
    pub endpoint: Endpoint,
    pub arrival: &'a Arrival,
    /// The snapshot that answered.
    pub snapshot: &'a Arc<Snapshot>,
    /// The item's index within a batch.
    pub item: Option<usize>,
    /// The request-scoped entities, gathered only if the log includes them.
    pub entities: Option<&'a dyn Fn() -> Entities>,
}

/// Counts the decision and logs it.
pub fn decided(state: &State, site: &Site<'_>, query: Query, answer: Answer) {
    state.metrics().decision(site.endpoint, &answer);
    let Some(log) = state.decision_log() else {
        return;
    };
    let entities = match site.entities {
        Some(gather) if log.wants_entities() => Some(gather()),
        _ => None,
    };
    log.record(Record {
        request_id: site.arrival.id.clone(),
        endpoint: site.endpoint,
        item: site.item.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
        query,
        answer,
        snapshot: site.snapshot.clone(),
        arrived: site.arrival.at,
        entities,
    });
}
