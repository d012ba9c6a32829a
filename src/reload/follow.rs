//! Following a database source: its first full read, then its changes,
//! for as long as the server runs.
//!
//! One [`Follower`] per source. It keeps its own connection (with a
//! `LISTEN`), wakes on a notification or every poll interval (the safety
//! net for notifications lost with a dropped connection), reads what
//! changed since its position ([`crate::postgres`] explains why positions
//! are transaction horizons), and applies it to the serving snapshot under
//! the reloader's lock: a new store generation that shares everything the
//! change did not touch, published atomically.
//!
//! What can go wrong, and what happens then:
//! - the database is unreachable or restarts: the last good snapshot keeps
//!   serving, the follower reconnects with backoff (100 ms up to 5 s) and
//!   carries on from its position, so nothing committed meanwhile is lost;
//! - the change log was pruned past its position (it was away longer than
//!   the log's retention): it reads the source in full again, in the
//!   background, and swaps the result in;
//! - a row does not fit the schema (or duplicates a file's entity, or
//!   closes a cycle): that entity keeps its last good version, the refusal
//!   is logged and kept in the status, and every other row is applied.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::load::{DatabaseSource, Refusal, RowBatch, Scope};
use crate::postgres::{Changes, Connection, ReadError};
use crate::snapshot::Snapshot;

use super::Reloader;

/// Where a follower publishes: the serving state.
pub trait Target: Send + Sync {
    /// The snapshot serving now (`None` before the first one).
    fn current(&self) -> Option<Arc<Snapshot>>;
    /// Makes `snapshot` the serving one; returns the one it replaced.
    fn publish(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>>;
}

/// How many recent refusals a source's status keeps.
const REFUSALS_KEPT: usize = 20;

/// The least time between two reads of the change log. A stream of
/// changes (a thousand a second) then costs a read, a store generation and
/// a publish per twenty milliseconds of changes, not per change (at 10 ms
/// a stream of 1,000 changes/s took 11% of the 1M-member sidecar's
/// decisions, `benches/postgres.rs`); a lone change waits for none of it.
const MIN_GAP: Duration = Duration::from_millis(20);

/// A database source's state, for `/v1/status`.
#[derive(Debug, Clone)]
pub struct DatabaseStatus {
    /// The source without its password.
    pub source: String,
    /// `reading` (a full read), `following`, or `reconnecting`.
    pub state: &'static str,
    /// The transaction horizon everything before which is applied.
    pub position: Option<u64>,
    /// Change-log rows applied since start.
    pub changes_applied: u64,
    /// When the newest applied change was written, and how long after that
    /// it was serving.
    pub last_change: Option<(SystemTime, Duration)>,
    pub full_reads: u64,
    /// The last thing that went wrong, until a read succeeds again.
    pub last_error: Option<(SystemTime, String)>,
    /// The most recent refused rows (at most twenty), newest last.
    pub refused: Vec<Refusal>,
    pub refused_total: u64,
}

pub(crate) struct Follower {
    index: usize,
    source: DatabaseSource,
    poll: Duration,
    status: Mutex<DatabaseStatus>,
}

/// Doubles from 100 ms up to 5 s between attempts.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

impl Follower {
    pub(crate) fn new(index: usize, source: DatabaseSource, poll: Duration) -> Follower {
        let status = DatabaseStatus {
            source: source.label().to_owned(),
            state: "reading",
            position: None,
            changes_applied: 0,
            last_change: None,
            full_reads: 0,
            last_error: None,
            refused: Vec::new(),
            refused_total: 0,
        };
        Follower {
            index,
            source,
            poll,
            status: Mutex::new(status),
        }
    }

    pub(crate) fn label(&self) -> &str {
        self.source.label()
    }

    pub(crate) fn status(&self) -> DatabaseStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut DatabaseStatus)) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut status);
    }

    fn failed(&self, state: &'static str, error: &str) {
        tracing::warn!(source = self.label(), "database: {error}");
        self.update(|s| {
            s.state = state;
            s.last_error = Some((SystemTime::now(), error.to_owned()));
        });
    }

    fn refused(&self, refused: Vec<Refusal>) {
        if refused.is_empty() {
            return;
        }
        for r in &refused {
            tracing::warn!(source = self.label(), uid = %r.uid, "database row refused: {}", r.message);
        }
        self.update(|s| {
            s.refused_total += refused.len() as u64;
            s.refused.extend(refused);
            let excess = s.refused.len().saturating_sub(REFUSALS_KEPT);
            s.refused.drain(..excess);
        });
    }

    /// Whether `snapshot` holds this source's rows.
    pub(crate) fn is_read_in(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .databases()
            .get(self.index)
            .is_some_and(|d| d.position.is_some())
    }

    /// Where `snapshot`'s rows of this source are complete up to (0: not
    /// read).
    fn position_in(&self, snapshot: &Snapshot) -> u64 {
        snapshot
            .databases()
            .get(self.index)
            .and_then(|d| d.position)
            .unwrap_or(0)
    }

    /// Reads the source in full into `snapshot`, retrying until it works.
    pub(crate) async fn fill_until_read(&self, snapshot: Snapshot) -> Snapshot {
        let snapshot = Arc::new(snapshot);
        let mut backoff = Backoff::new();
        loop {
            match self.read_in(&snapshot).await {
                Ok(next) => return next,
                Err(e) => {
                    self.failed("reading", &e.0);
                    backoff.wait().await;
                }
            }
        }
    }

    /// Reads the source in full into `snapshot`, once.
    pub(crate) async fn fill_once(&self, snapshot: Snapshot) -> Result<Snapshot, String> {
        let snapshot = Arc::new(snapshot);
        self.read_in(&snapshot).await.map_err(|e| {
            self.failed("reading", &e.0);
            e.0
        })
    }

    async fn read_in(&self, snapshot: &Arc<Snapshot>) -> Result<Snapshot, ReadError> {
        self.update(|s| s.state = "reading");
        let mut connection = Connection::open(&self.source).await?;
        let (batch, position) = connection.read_all(snapshot, self.index).await?;
        let (next, refused) = self.apply(snapshot, Scope::Full, batch, position).await?;
        self.read_done(position, refused);
        Ok(next)
    }

    fn read_done(&self, position: u64, refused: Vec<Refusal>) {
        self.refused(refused);
        self.update(|s| {
            s.state = "following";
            s.position = Some(position);
            s.full_reads += 1;
            s.last_error = None;
        });
    }

    /// Applies `batch` to `snapshot` on the blocking pool (a full read
    /// puts a million records into a store).
    async fn apply(
        &self,
        snapshot: &Arc<Snapshot>,
        scope: Scope,
        batch: RowBatch,
        position: u64,
    ) -> Result<(Snapshot, Vec<Refusal>), ReadError> {
        let (snapshot, index) = (Arc::clone(snapshot), self.index);
        tokio::task::spawn_blocking(move || snapshot.with_database(index, scope, batch, position))
            .await
            .map_err(|e| ReadError(format!("applying rows failed: {e}")))?
            .map_err(|e| ReadError(e.to_string()))
    }

    /// Follows the source's changes into `target` for ever.
    pub(crate) async fn follow(&self, reloader: &Reloader, target: &dyn Target) {
        let mut backoff = Backoff::new();
        // Where this follower has read up to: at least where the serving
        // snapshot's rows are complete up to.
        let mut since: u64 = 0;
        loop {
            let mut connection = match Connection::open(&self.source).await {
                Ok(c) => c,
                Err(e) => {
                    self.failed("reconnecting", &e.0);
                    backoff.wait().await;
                    continue;
                }
            };
            let mut last_read: Option<tokio::time::Instant> = None;
            loop {
                let Some(current) = target.current() else {
                    connection.wait(self.poll).await;
                    continue;
                };
                if let Some(last) = last_read {
                    tokio::time::sleep_until(last + MIN_GAP).await;
                }
                last_read = Some(tokio::time::Instant::now());
                since = since.max(self.position_in(&current));
                let step = match connection.read_changes(since).await {
                    Ok(Some(changes)) => self.apply_changes(reloader, target, changes).await,
                    Ok(None) => self.resync(reloader, target, &mut connection).await,
                    Err(e) => Err(e),
                };
                match step {
                    Ok(position) => {
                        since = since.max(position);
                        backoff = Backoff::new();
                        self.update(|s| {
                            s.state = "following";
                            s.position = Some(since);
                            s.last_error = None;
                        });
                    }
                    Err(e) => {
                        self.failed("reconnecting", &e.0);
                        backoff.wait().await;
                        break;
                    }
                }
                connection.wait(self.poll).await;
            }
        }
    }

    /// Applies `changes` to whatever is serving by then; returns the
    /// position read up to.
    async fn apply_changes(
        &self,
        reloader: &Reloader,
        target: &dyn Target,
        changes: Changes,
    ) -> Result<u64, ReadError> {
        if changes.rows.is_empty() {
            return Ok(changes.position);
        }
        let _one_writer = reloader.serial.lock().await;
        let Some(current) = target.current() else {
            return Ok(0);
        };
        // A reload read the whole source again meanwhile, later than these
        // rows were read: they are older than what serves.
        let serving = self.position_in(&current);
        if serving > changes.position {
            return Ok(serving);
        }
        let (index, rows, position) = (self.index, changes.rows, changes.position);
        let (next, refused) = tokio::task::spawn_blocking(move || {
            let batch = current.read_rows(index, Scope::Changes, &rows);
            current.with_database(index, Scope::Changes, batch, position)
        })
        .await
        .map_err(|e| ReadError(format!("applying rows failed: {e}")))?
        .map_err(|e| ReadError(e.to_string()))?;
        // The status first: whoever sees the new answers sees the status
        // that explains them.
        let now = SystemTime::now();
        self.refused(refused);
        self.update(|s| {
            s.changes_applied += changes.count;
            s.last_change = changes
                .latest
                .map(|at| (at, now.duration_since(at).unwrap_or_default()));
        });
        publish(target, next);
        Ok(changes.position)
    }

    /// Reads the source in full again while the last good snapshot keeps
    /// serving, then swaps its rows in.
    async fn resync(
        &self,
        reloader: &Reloader,
        target: &dyn Target,
        connection: &mut Connection,
    ) -> Result<u64, ReadError> {
        tracing::warn!(
            source = self.label(),
            "database: the change log no longer reaches back to this source's position; \
             reading it in full again"
        );
        loop {
            let Some(before) = target.current() else {
                return Ok(0);
            };
            let (batch, position) = connection.read_all(&before, self.index).await?;
            let _one_writer = reloader.serial.lock().await;
            let Some(current) = target.current() else {
                return Ok(0);
            };
            let serving = self.position_in(&current);
            if serving > position {
                return Ok(serving);
            }
            match self.apply(&current, Scope::Full, batch, position).await {
                Ok((next, refused)) => {
                    self.read_done(position, refused);
                    publish(target, next);
                    return Ok(position);
                }
                // A reload changed the schema meanwhile: read again.
                Err(_) if current.schema_key() != before.schema_key() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Publishes `next`; the snapshot it replaces is freed off the async
/// workers (a large store takes a while to free).
fn publish(target: &dyn Target, next: Snapshot) {
    if let Some(old) = target.publish(next) {
        drop(tokio::task::spawn_blocking(move || drop(old)));
    }
}
