//! The decision log (`doorman serve --decision-log stdout|FILE`): one JSON
//! line per decision, in the format of docs/decision-log.md.
//!
//! Shaped so that logging can never slow or fail a request:
//!
//! - the request path only *moves* what it already owns (the [`Query`], the
//!   [`Answer`], the request's id, an `Arc` of the snapshot) into a
//!   [`Record`] and offers it to a bounded queue with `try_send`: no JSON,
//!   no lock, no allocation (the queue's slots are allocated once);
//! - a full queue drops the line, counts it in
//!   `doorman_decision_log_dropped_total` and warns at most once a minute;
//! - one background thread ([`writer`]) formats the lines ([`line`]),
//!   writes them, and deals with the file: opening it (which may block, as
//!   a FIFO without a reader does), logrotate's rename and `copytruncate`,
//!   and flushing every second and at shutdown.
//!
//! The API is protocol-agnostic: an adapter builds a [`Record`] (which
//! endpoint, which item of a batch, the query and the answer) after its
//! response is serialized and calls [`DecisionLog::record`]. Allows may be
//! sampled ([`sample`]); denies are always written. Masks ([`mask`]) and
//! the optional fields are applied on the writer thread.

mod line;
pub mod mask;
mod sample;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hyper::header::HeaderValue;
use serde_json::Value;

pub use line::{Format, timestamp};
pub use mask::Mask;
use sample::Sampler;

use super::metrics::{Endpoint, Metrics};
use crate::decide::{Answer, Decision, Query};
use crate::snapshot::Snapshot;

/// Lines waiting for the writer at most; past that they are dropped.
pub const QUEUE: usize = 4096;

/// How often the writer flushes and looks for a rotated file, at least.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s {
            "" => Err("give `stdout` or a file path".into()),
            "stdout" | "-" => Ok(Target::Stdout),
            path => Ok(Target::File(PathBuf::from(path))),
        }
    }
}

/// The `--decision-log*` flags, read.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub format: Format,
    /// The fraction of allows written (denies: all).
    pub allow_sample: f64,
}

/// One decision, handed over by an adapter. Everything in it is moved, not
/// copied: it is what the request already owned.
pub struct Record {
    /// The request's `X-Request-ID` (accepted or made up).
    pub request_id: HeaderValue,
    pub endpoint: Endpoint,
    /// The item's index within a batch.
    pub item: Option<u32>,
    pub query: Query,
    pub answer: Answer,
    /// The snapshot that answered (for its revision).
    pub snapshot: Arc<Snapshot>,
    /// When the request arrived.
    pub arrived: Instant,
    /// The request-scoped entities, when the log includes them.
    pub entities: Option<Entities>,
}

/// Request-scoped entities, in whatever form the adapter has them; turned
/// into Cedar JSON on the writer thread.
#[derive(Debug)]
pub enum Entities {
    /// A body of doorman's own API: its `entities`, or for item `i` of a
    /// batch `requests[i].entities` followed by the shared `entities`.
    V1Body { body: Bytes, item: Option<usize> },
    /// Already Cedar entity JSON (a list).
    Json(Value),
}

impl Entities {
    fn into_json(self) -> Value {
        match self {
            Entities::Json(v) => v,
            Entities::V1Body { body, item } => {
                let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(&body) else {
                    return Value::Array(vec![]);
                };
                let list = |v: Option<Value>| match v {
                    Some(Value::Array(items)) => items,
                    _ => vec![],
                };
                let mut out = match item {
                    None => vec![],
                    Some(i) => match top.get_mut("requests").and_then(|r| r.get_mut(i)) {
                        Some(Value::Object(item)) => list(item.remove("entities")),
                        _ => vec![],
                    },
                };
                out.extend(list(top.remove("entities")));
                Value::Array(out)
            }
        }
    }
}

/// What travels through the queue.
struct Queued {
    record: Record,
    time: SystemTime,
    latency_us: u64,
}

/// The running decision log: the request path's end of the queue.
#[derive(Debug)]
pub struct DecisionLog {
    queue: SyncSender<Queued>,
    sampler: Sampler,
    entities: bool,
    metrics: Arc<Metrics>,
    /// Seconds since `born` before which no new "dropped" warning is given.
    quiet_until: AtomicU64,
    born: Instant,
    closing: Arc<AtomicBool>,
    /// Says when the writer has drained and flushed.
    done: Mutex<Option<Receiver<()>>>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("request_id", &self.request_id)
            .field("endpoint", &self.endpoint)
            .field("item", &self.item)
            .field("query", &self.query)
            .field("answer", &self.answer)
            .field("revision", &self.snapshot.revision())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("record", &self.record)
            .finish()
    }
}

impl DecisionLog {
    /// Starts the writer thread; the file is opened there, so a target
    /// that blocks on open (a FIFO without a reader) cannot hold start-up.
    pub fn start(options: Options, metrics: Arc<Metrics>) -> std::io::Result<DecisionLog> {
        Self::start_with_queue(options, metrics, QUEUE)
    }

    fn start_with_queue(
        options: Options,
        metrics: Arc<Metrics>,
        queue: usize,
    ) -> std::io::Result<DecisionLog> {
        let (tx, rx) = sync_channel(queue);
        let (done_tx, done_rx) = sync_channel(1);
        let closing = Arc::new(AtomicBool::new(false));
        let entities = options.format.entities;
        writer::spawn(
            options.target,
            options.format,
            rx,
            metrics.clone(),
            closing.clone(),
            done_tx,
        )?;
        Ok(DecisionLog {
            queue: tx,
            sampler: Sampler::new(options.allow_sample),
            entities,
            metrics,
            quiet_until: AtomicU64::new(0),
            born: Instant::now(),
            closing,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Whether records should carry their request-scoped entities (an
    /// adapter can skip gathering them otherwise).
    pub fn wants_entities(&self) -> bool {
        self.entities
    }

    /// Queues the line for `record`, or drops it (sampled out, queue full).
    /// Never blocks.
    pub fn record(&self, record: Record) {
        if record.answer.decision == Decision::Allow && !self.sampler.keep() {
            return;
        }
        let queued = Queued {
            latency_us: u64::try_from(record.arrived.elapsed().as_micros()).unwrap_or(u64::MAX),
            time: SystemTime::now(),
            record,
        };
        match self.queue.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped("the queue is full (the writer is behind)"),
            Err(TrySendError::Disconnected(_)) => self.dropped("the writer has stopped"),
        }
    }

    fn dropped(&self, why: &str) {
        self.metrics.decision_log_dropped(1);
        let now = self.born.elapsed().as_secs();
        let quiet = self.quiet_until.load(Ordering::Relaxed);
        if now >= quiet
            && self
                .quiet_until
                .compare_exchange(quiet, now + 60, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                dropped_total = self.metrics.decision_log_dropped_total(),
                "decision log: dropping lines: {why}"
            );
        }
    }

    /// Lets the writer drain the queue, flush and stop; waits for that at
    /// most `limit` (a writer stuck opening a FIFO never finishes).
    /// Blocking: call it off the async runtime.
    pub fn close(&self, limit: Duration) {
        self.closing.store(true, Ordering::Relaxed);
        let done = self.done.lock().map(|mut d| d.take()).unwrap_or(None);
        if let Some(done) = done
            && done.recv_timeout(limit).is_err()
        {
            tracing::warn!("decision log: the writer did not finish within {limit:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn v1_bodies_give_their_request_scoped_entities() {
        let body = Bytes::from(
            json!({
                "requests": [{"entities": [{"uid": "a"}]}, {}],
                "entities": [{"uid": "s"}],
            })
            .to_string(),
        );
        let of = |item| {
            Entities::V1Body {
                body: body.clone(),
                item,
            }
            .into_json()
        };
        assert_eq!(of(Some(0)), json!([{"uid": "a"}, {"uid": "s"}]));
        assert_eq!(of(Some(1)), json!([{"uid": "s"}]));
        assert_eq!(of(None), json!([{"uid": "s"}]));
        let bad = Entities::V1Body {
            body: Bytes::from_static(b"{"),
            item: None,
        };
        assert_eq!(bad.into_json(), json!([]));
    }
}
