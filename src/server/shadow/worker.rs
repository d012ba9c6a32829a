//! The shadow thread: takes answered decisions off the queue, answers each
//! again with the candidate, compares, counts and logs disagreements; and
//! between decisions, notices edits of the candidate directory.
//!
//! A plain thread, not a task: loading a candidate parses and validates
//! policies, and answering is CPU work, neither of which may hold the
//! async runtime. The candidate is paired with the snapshot that answered
//! each decision ([`Candidate::beside`]), so both sides saw exactly the
//! same entities, even across a reload between the answer and this.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::Value;

use super::{Counts, Job, Standing};
use crate::decide::{Answer, Decision};
use crate::entities::Overlay;
use crate::load::{Candidate, LoadError, load_candidate};
use crate::reload::{Signature, signature_of};
use crate::server::decision_log::Entities;
use crate::snapshot::Snapshot;

/// How often the candidate directory is looked at for edits.
pub const POLL: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    dir: PathBuf,
    candidate: Candidate,
    /// The candidate files as last loaded (or last failed to load).
    signature: Signature,
    /// The newest snapshot a decision came from, to load an edited
    /// candidate against (weak: the shadow never keeps a snapshot alive).
    live: Weak<Snapshot>,
    /// An edit seen while no live snapshot was at hand.
    stale: bool,
    queue: Receiver<Job>,
    queued: Arc<AtomicUsize>,
    counts: Arc<Counts>,
    standing: Arc<Mutex<Standing>>,
    /// The last v1 body read for its entities, so the items of one batch
    /// read their body once.
    body: Option<(Bytes, Value)>,
}

pub(super) fn spawn(worker: Worker) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("doorman-shadow".into())
        .spawn(move || worker.run())
        .map(drop)
}

pub(super) fn record_loaded(standing: &Mutex<Standing>, candidate: &Candidate) {
    if let Ok(mut s) = standing.lock() {
        s.revision = Some(candidate.revision().to_owned());
        s.loaded_at = Some(candidate.loaded_at());
        s.policy_count = Some(candidate.policies().len());
        s.last_error = None;
    }
}

impl Worker {
    pub(super) fn new(
        dir: PathBuf,
        candidate: Candidate,
        queue: Receiver<Job>,
        queued: Arc<AtomicUsize>,
        counts: Arc<Counts>,
        standing: Arc<Mutex<Standing>>,
    ) -> Worker {
        Worker {
            signature: signature_of(std::iter::once(dir.as_path())),
            dir,
            candidate,
            live: Weak::new(),
            stale: false,
            queue,
            queued,
            counts,
            standing,
            body: None,
        }
    }

    fn run(mut self) {
        let mut looked = Instant::now();
        loop {
            match self.queue.recv_timeout(POLL) {
                Ok(job) => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    self.answer(job);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // The server is gone.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if looked.elapsed() >= POLL {
                looked = Instant::now();
                self.look_for_edits();
            }
        }
    }

    fn look_for_edits(&mut self) {
        let now = signature_of(std::iter::once(self.dir.as_path()));
        if now == self.signature && !self.stale {
            return;
        }
        self.signature = now;
        match self.live.upgrade() {
            Some(live) => {
                self.stale = false;
                self.reload(&live, "the candidate policies changed");
            }
            None => self.stale = true,
        }
    }

    /// Loads the candidate again against `live`; a failure keeps the one
    /// there was.
    fn reload(&mut self, live: &Snapshot, why: &str) {
        match load_settled(&self.dir, live) {
            Ok((candidate, signature)) => {
                tracing::info!(
                    target: "doorman::shadow",
                    revision = candidate.revision(),
                    policies = candidate.policies().len(),
                    "{why}: candidate loaded"
                );
                record_loaded(&self.standing, &candidate);
                self.counts.reloads_ok.fetch_add(1, Ordering::Relaxed);
                self.candidate = candidate;
                self.signature = signature;
            }
            Err(e) => {
                for d in &e.diagnostics {
                    tracing::error!(target: "doorman::shadow", "{}: {}", d.location(), d.message);
                }
                tracing::error!(
                    target: "doorman::shadow",
                    "{why}, but the candidate does not load ({e}); the previous candidate stays"
                );
                if let Ok(mut s) = self.standing.lock() {
                    s.last_error = Some((SystemTime::now(), e));
                }
                self.counts.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn answer(&mut self, job: Job) {
        if !self.candidate.fits(&job.live) {
            // The live schema (or validation mode) changed under the
            // candidate: it must be validated against the new one.
            self.reload(&job.live, "the live schema changed");
        }
        if self.stale {
            self.stale = false;
            self.reload(&job.live, "the candidate policies changed");
        }
        self.live = Arc::downgrade(&job.live);
        if !self.candidate.fits(&job.live) {
            // Still not valid against the live schema: nothing to compare.
            self.counts.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let paired = self.candidate.beside(&job.live);
        let shadow = match self.layers(&paired, job.entities.as_ref(), job.item) {
            Ok(layers) => {
                let layers: Vec<&Overlay> = layers.iter().collect();
                paired
                    .decide_with(&job.query, &layers)
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        match shadow {
            Ok(shadow) => self.compare(&job, &shadow),
            Err(e) => {
                self.counts.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    target: "doorman::shadow",
                    request_id = ?job.request_id,
                    "the candidate refused a question the live policies answered: {e}"
                );
            }
        }
    }

    fn compare(&self, job: &Job, shadow: &Answer) {
        let counter = match (job.answer.decision, shadow.decision) {
            (a, b) if a == b => {
                self.counts.agreed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            (Decision::Allow, _) => &self.counts.allow_to_deny,
            (Decision::Deny, _) => &self.counts.deny_to_allow,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            target: "doorman::shadow",
            request_id = job.request_id.to_str().unwrap_or(""),
            endpoint = job.endpoint.as_str(),
            item = job.item,
            principal = %job.query.principal,
            action = %job.query.action,
            resource = %job.query.resource,
            live = %job.answer.decision,
            candidate = %shadow.decision,
            live_reasons = ?job.answer.reasons,
            candidate_reasons = ?shadow.reasons,
            live_revision = job.live.revision(),
            candidate_revision = self.candidate.revision(),
            "shadow disagrees"
        );
    }

    /// The request-scoped entities as the endpoint layered them: for a
    /// batch item its own over the batch's shared ones.
    fn layers(
        &mut self,
        paired: &Snapshot,
        entities: Option<&Entities>,
        item: Option<usize>,
    ) -> Result<Vec<Overlay>, String> {
        let lists: Vec<Value> = match entities {
            None => return Ok(Vec::new()),
            Some(Entities::Json(v)) => vec![v.clone()],
            Some(Entities::V1Body { body, .. }) => {
                let top = self.body_value(body);
                let own = item.and_then(|i| top.get("requests")?.get(i)?.get("entities"));
                own.into_iter()
                    .chain(top.get("entities"))
                    .cloned()
                    .collect()
            }
        };
        lists
            .into_iter()
            .map(|list| paired.overlay(list).map_err(|e| e.to_string()))
            .collect()
    }

    fn body_value(&mut self, body: &Bytes) -> &Value {
        let same = matches!(&self.body, Some((b, _)) if b.as_ptr() == body.as_ptr() && b.len() == body.len());
        if !same {
            let value = serde_json::from_slice(body).unwrap_or(Value::Null);
            self.body = Some((body.clone(), value));
        }
        static NULL: Value = Value::Null;
        self.body.as_ref().map_or(&NULL, |(_, v)| v)
    }
}

/// Loads the candidate, trusting only a load during which no file of it
/// changed (an editor's write can be caught half-way).
fn load_settled(dir: &Path, live: &Snapshot) -> Result<(Candidate, Signature), LoadError> {
    let mut before = signature_of(std::iter::once(dir));
    for _ in 0..4 {
        let result = load_candidate(dir, live);
        let after = signature_of(std::iter::once(dir));
        if after == before {
            return result.map(|c| (c, after));
        }
        std::thread::sleep(Duration::from_millis(50));
        before = after;
    }
    load_candidate(dir, live).map(|c| (c, before))
}
