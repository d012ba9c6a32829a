//! What every protocol does with a decision once its answer is written:
//! count it, and hand it to the decision log and the shadow candidate
//! (`--shadow`) when there are.
//!
//! One function for all adapters, so a new protocol (a gateway) adds one
//! call. Called after the response is serialized, with the query and the
//! answer moved in: with no decision log this is two atomic adds.

use std::sync::Arc;

use super::decision_log::{Entities, Record};
use super::metrics::Endpoint;
use super::request_id::Arrival;
use super::shadow::Shadow;
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

/// Counts the decision, logs it, and hands it to the shadow candidate.
pub fn decided(state: &State, site: &Site<'_>, query: Query, answer: Answer) {
    state.metrics().decision(site.endpoint, &answer);
    let shadow = state.shadow().filter(|s| s.has_room());
    let log = state.decision_log();
    if shadow.is_none() && log.is_none() {
        return;
    }
    let gather = |wanted: bool| match site.entities {
        Some(gather) if wanted => Some(gather()),
        _ => None,
    };
    // Only when both want them are the query and answer copied.
    let (query, answer) = match (shadow, log) {
        (Some(shadow), Some(_)) => {
            offer(shadow, site, query.clone(), answer.clone(), gather(true));
            (query, answer)
        }
        (Some(shadow), None) => return offer(shadow, site, query, answer, gather(true)),
        _ => (query, answer),
    };
    let Some(log) = log else {
        return;
    };
    log.record(Record {
        request_id: site.arrival.id.clone(),
        endpoint: site.endpoint,
        item: site.item.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
        query,
        answer,
        snapshot: site.snapshot.clone(),
        arrived: site.arrival.at,
        entities: gather(log.wants_entities()),
    });
}

fn offer(
    shadow: &Shadow,
    site: &Site<'_>,
    query: Query,
    answer: Answer,
    entities: Option<Entities>,
) {
    shadow.offer(
        site.snapshot,
        site.endpoint,
        &site.arrival.id,
        site.item,
        query,
        answer,
        entities,
    );
}
