//! Shadow evaluation (`doorman serve --shadow DIR`): a candidate policy set
//! answers every decision beside the live one, so a team can watch what a
//! change would do on production traffic before promoting it.
//!
//! Shaped so that the candidate can never slow, fail or change an answer:
//!
//! - the request path hands over what it already owns (the query, the live
//!   answer, an `Arc` of the snapshot that answered, the request's id) to a
//!   bounded queue with `try_send`, after its response is serialized; an
//!   in-flight counter is checked first, so a full queue costs one atomic
//!   add and no copy;
//! - one background thread ([`worker`]) re-answers each question with the
//!   candidate over the *same* snapshot's entities and schema (a
//!   [`Candidate`] shares them: no second store) and compares decisions;
//!   its cost is bounded to that thread: when it falls behind, decisions
//!   are skipped and counted, never queued without bound;
//! - disagreements are counted (`doorman_shadow_decisions_total{outcome}`)
//!   and each is logged (target `doorman::shadow`) with both decisions and
//!   both sets of determining policies.
//!
//! The candidate directory is watched by polling (every second, off the
//! runtime): an edit is loaded and validated against the live schema; a
//! broken edit keeps the last good candidate and is reported in
//! `/v1/status`, as the live policies' reloads are.

mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hyper::header::HeaderValue;
use serde::Serialize;

use super::decision_log::Entities;
use super::metrics::Endpoint;
use crate::decide::{Answer, Query};
use crate::load::{Candidate, LoadError};
use crate::snapshot::Snapshot;

/// Decisions waiting for the shadow thread at most; past that they are
/// skipped.
pub const QUEUE: usize = 1024;

/// One decision to answer again with the candidate.
struct Job {
    live: Arc<Snapshot>,
    query: Query,
    answer: Answer,
    request_id: HeaderValue,
    endpoint: Endpoint,
    item: Option<usize>,
    entities: Option<Entities>,
}

/// What the shadow thread has found, read by `/metrics` and `/v1/status`.
#[derive(Debug, Default)]
pub struct Counts {
    pub agreed: AtomicU64,
    /// Live allowed, the candidate denies.
    pub allow_to_deny: AtomicU64,
    /// Live denied, the candidate allows.
    pub deny_to_allow: AtomicU64,
    /// The candidate refused the question (the live snapshot answered it).
    pub errors: AtomicU64,
    /// Not evaluated: the shadow thread was behind.
    pub skipped: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

/// The candidate's standing, for `/v1/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowView {
    /// The candidate policy directory (`--shadow`).
    pub policies: String,
    /// The candidate's revision (a hash of its policy files).
    pub revision: Option<String>,
    pub loaded_at: Option<String>,
    /// Policies and templates in the candidate.
    pub policy_count: Option<usize>,
    pub agreed: u64,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    pub errors: u64,
    pub skipped: u64,
    /// The last failed load of the candidate, while it is the newest
    /// attempt (the previous candidate keeps answering).
    pub last_error: Option<super::admin::ReloadError>,
}

/// The candidate's standing as the worker last left it.
#[derive(Debug, Default)]
struct Standing {
    revision: Option<String>,
    loaded_at: Option<SystemTime>,
    policy_count: Option<usize>,
    last_error: Option<(SystemTime, LoadError)>,
}

/// The running shadow: the request path's end of the queue.
#[derive(Debug)]
pub struct Shadow {
    dir: PathBuf,
    queue: SyncSender<Job>,
    /// Jobs queued and not yet taken by the worker.
    queued: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    standing: Arc<Mutex<Standing>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("query", &self.query)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Shadow {
    /// Starts the shadow thread with `first`, a candidate read from `dir`
    /// (see [`crate::load::load_candidate`]).
    pub fn start(dir: PathBuf, first: Candidate) -> std::io::Result<Shadow> {
        let (tx, rx) = sync_channel(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(Counts::default());
        let standing = Arc::new(Mutex::new(Standing::default()));
        worker::record_loaded(&standing, &first);
        worker::spawn(worker::Worker::new(
            dir.clone(),
            first,
            rx,
            queued.clone(),
            counts.clone(),
            standing.clone(),
        ))?;
        Ok(Shadow {
            dir,
            queue: tx,
            queued,
            counts,
            standing,
        })
    }

    /// Whether the queue has room; a caller that would have to copy what
    /// it hands over asks first. A `false` is counted as a skip.
    pub fn has_room(&self) -> bool {
        if self.queued.load(Ordering::Relaxed) < QUEUE {
            return true;
        }
        self.counts.skipped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Queues one answered decision for the candidate; never blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &self,
        live: &Arc<Snapshot>,
        endpoint: Endpoint,
        request_id: &HeaderValue,
        item: Option<usize>,
        query: Query,
        answer: Answer,
        entities: Option<Entities>,
    ) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            live: live.clone(),
            query,
            answer,
            request_id: request_id.clone(),
            endpoint,
            item,
            entities,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The candidate's revision, when one is loaded.
    pub fn revision(&self) -> Option<String> {
        self.standing.lock().ok()?.revision.clone()
    }

    /// What `/v1/status` says of the shadow.
    pub fn view(&self) -> ShadowView {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &*self.counts;
        let standing = self.standing.lock();
        let standing = standing.as_deref().ok();
        ShadowView {
            policies: self.dir.display().to_string(),
            revision: standing.and_then(|s| s.revision.clone()),
            loaded_at: standing
                .and_then(|s| s.loaded_at)
                .map(super::admin::rfc3339),
            policy_count: standing.and_then(|s| s.policy_count),
            agreed: load(&c.agreed),
            allow_to_deny: load(&c.allow_to_deny),
            deny_to_allow: load(&c.deny_to_allow),
            errors: load(&c.errors),
            skipped: load(&c.skipped),
            last_error: standing.and_then(|s| s.last_error.clone()).map(|(at, e)| {
                super::admin::ReloadError {
                    at: super::admin::rfc3339(at),
                    summary: e.to_string(),
                    diagnostics: e.diagnostics,
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::load::{Sources, load};

    fn bundled() -> Arc<Snapshot> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Arc::new(
            load(&Sources {
                policies: root.join("policies"),
                schema: Some(root.join("schema")),
                entities: vec![root.join("fixtures/entities")],
                databases: vec![],
                validation: crate::ValidationMode::Strict,
                routes: None,
            })
            .expect("the bundled model loads"),
        )
    }

    #[test]
    fn a_full_queue_skips_and_counts_instead_of_waiting() {
        let live = bundled();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        // No worker: nothing leaves the queue, and a send that waited for
        // room would hang this test.
        let (tx, _rx) = sync_channel(QUEUE);
        let shadow = Shadow {
            dir,
            queue: tx,
            queued: Arc::new(AtomicUsize::new(0)),
            counts: Arc::new(Counts::default()),
            standing: Arc::new(Mutex::new(Standing::default())),
        };
        let query = Query::parse(
            "Member::\"acme-ada\"",
            "ViewInbox",
            "Inbox::\"acme-support\"",
            json!({}),
        )
        .unwrap();
        let answer = live.decide(&query).unwrap();
        let id = HeaderValue::from_static("r");
        let mut offered = 0;
        for _ in 0..QUEUE + 7 {
            if shadow.has_room() {
                offered += 1;
                shadow.offer(
                    &live,
                    Endpoint::V1IsAuthorized,
                    &id,
                    None,
                    query.clone(),
                    answer.clone(),
                    None,
                );
            }
        }
        assert_eq!(offered, QUEUE);
        assert_eq!(shadow.counts().skipped.load(Ordering::Relaxed), 7);
        assert_eq!(shadow.queued.load(Ordering::Relaxed), QUEUE);
    }
}
