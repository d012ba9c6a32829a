//! Keeping the serving snapshot current: file reloads and database
//! changes, one writer at a time.
//!
//! Three parts. The file watcher ([`watch`]) only signals; it never loads.
//! The [`Reloader`] does the loading, one attempt at a time, on a blocking
//! thread (parsing and file I/O must not hold the async workers), and hands
//! a snapshot to `publish` only when every file parsed and validated and
//! the revision actually changed. A broken edit therefore never replaces
//! anything: the last good snapshot keeps serving and the failure is
//! recorded, with its diagnostics, for `/v1/status`. Database sources are
//! followed by [`follow`], which applies their changes through the same
//! reloader lock, so a file reload and a database change never build on
//! the same snapshot at once and neither loses the other's work.
//!
//! A snapshot with database sources is published only when every source has
//! been read in full ([`Snapshot::is_complete`]): at start-up the reloader
//! keeps trying (the server stays unready and says why), and a reload that
//! changes the schema reads the databases again before it publishes.

mod follow;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use follow::{DatabaseStatus, Target};
pub use watch::{WatchGuard, WatchMode, is_dropping, parse_duration, watch};

use crate::diag::Diagnostic;
use crate::load::{LoadError, Sources, load_over};
use crate::snapshot::Snapshot;

/// Loads, but only trusts a load during which no input file changed: a
/// file written in place (truncate, then write) can be read half-written,
/// and half a policy file is often still valid Cedar. A load that raced a
/// write is done again once the files hold still.
fn load_settled(sources: &Sources, previous: Option<&Snapshot>) -> Result<Snapshot, LoadError> {
    const ATTEMPTS: usize = 5;
    let mut before = signature(sources);
    for _ in 1..ATTEMPTS {
        let result = load_over(sources, previous);
        let after = signature(sources);
        if after == before {
            return result;
        }
        tracing::debug!("input files changed while loading; loading again");
        std::thread::sleep(Duration::from_millis(50));
        before = signature(sources);
    }
    load_over(sources, previous)
}

/// Path, length and modification time of every input file.
fn signature(sources: &Sources) -> Signature {
    let routes: Vec<PathBuf> = sources
        .routes
        .iter()
        .flat_map(|r| crate::gateway::load::files_of(r))
        .collect();
    signature_of(
        std::iter::once(&sources.policies)
            .chain(sources.schema.iter())
            .chain(sources.entities.iter())
            .chain(routes.iter())
            .map(PathBuf::as_path),
    )
}

/// Path, length and modification time of each file under some roots: what
/// tells a settled set of files from one being written.
pub(crate) type Signature = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The [`Signature`] of every file under `roots`.
pub(crate) fn signature_of<'a>(roots: impl Iterator<Item = &'a Path>) -> Signature {
    roots
        .flat_map(|root| crate::load::list_files(root, |_| true).unwrap_or_default())
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// What one reload attempt did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new snapshot is active.
    Reloaded {
        previous: Option<String>,
        revision: String,
    },
    /// The files load cleanly and are what is already serving.
    Unchanged { revision: String },
    /// The files do not load; whatever was serving still is.
    Failed {
        active: Option<String>,
        error: LoadError,
    },
}

impl Outcome {
    /// `reloaded`, `unchanged` or `failed`: the name status and logs use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Reloaded { .. } => "reloaded",
            Outcome::Unchanged { .. } => "unchanged",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// The reload history `/v1/status` reports.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub successes: u64,
    pub failures: u64,
    pub unchanged: u64,
    /// When the last attempt finished, and what it did.
    pub last_attempt: Option<(SystemTime, &'static str)>,
    /// The last failure, until a later attempt finds the files good again.
    pub last_error: Option<(SystemTime, LoadError)>,
}

/// Loads snapshots for a running server, one attempt at a time.
pub struct Reloader {
    sources: Sources,
    /// Held across an attempt so two triggers (a file event and
    /// `POST /v1/reload`), or a reload and a database change, never load
    /// or publish concurrently.
    serial: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
    /// One per database source, in `sources.databases` order.
    followers: Vec<follow::Follower>,
}

impl Reloader {
    /// A reloader whose database sources (if any) are polled every second
    /// besides their notifications.
    pub fn new(sources: Sources) -> Self {
        Self::with_poll(sources, Duration::from_secs(1))
    }

    /// A reloader that polls its database sources for changes every `poll`
    /// (a safety net: notifications wake it sooner).
    pub fn with_poll(sources: Sources, poll: Duration) -> Self {
        let followers = sources
            .databases
            .iter()
            .enumerate()
            .map(|(i, source)| follow::Follower::new(i, source.clone(), poll))
            .collect();
        Reloader {
            sources,
            serial: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus::default()),
            followers,
        }
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Loads the files on a blocking thread, without recording anything:
    /// the start-up load, which decides whether the server runs at all.
    /// With database sources, their first read is retried (with backoff,
    /// reported in their status) until it succeeds: files that do not load
    /// end the server, a database that is down only delays it.
    pub async fn load_initial(&self) -> Result<Snapshot, LoadError> {
        let _one_at_a_time = self.serial.lock().await;
        let mut snapshot = self.load_blocking(None).await?;
        for follower in &self.followers {
            snapshot = follower.fill_until_read(snapshot).await;
        }
        Ok(snapshot)
    }

    /// One reload attempt. `current` gives the active snapshot (read after
    /// the lock is taken, so it is never stale); `publish` makes a new one
    /// active, returning the one it replaced, and is only called with a
    /// snapshot that loaded cleanly.
    pub async fn reload(
        &self,
        current: impl FnOnce() -> Option<Arc<Snapshot>>,
        publish: impl FnOnce(Snapshot) -> Option<Arc<Snapshot>>,
    ) -> Outcome {
        let _one_at_a_time = self.serial.lock().await;
        let current = current();
        let active = current.as_ref().map(|s| s.revision().to_owned());
        let active_policies = current.as_ref().map_or(0, |s| s.policies().len());
        // Over the serving snapshot: entity files that did not change are
        // taken from it, not read again.
        let loaded = match self.load_blocking(current).await {
            // A schema change re-reads the databases against the new one.
            Ok(snapshot) if !snapshot.is_complete() => self.fill(snapshot).await,
            other => other,
        };
        let loaded = loaded.and_then(|snapshot| {
            // A directory caught empty half-way through a non-atomic deploy
            // would otherwise turn a working sidecar into deny-everything.
            if snapshot.policies().is_empty() && active_policies > 0 {
                Err(LoadError {
                    diagnostics: vec![Diagnostic::new(
                        &self.sources.policies,
                        0,
                        0,
                        format!(
                            "no policies found; refusing to replace the {active_policies} serving \
                             policies with none (restart to serve an empty set on purpose)"
                        ),
                    )],
                    summary: snapshot.summary(),
                })
            } else {
                Ok(snapshot)
            }
        });
        let mut replaced = None;
        let outcome = match loaded {
            Ok(snapshot) if Some(snapshot.revision()) == active.as_deref() => Outcome::Unchanged {
                revision: snapshot.revision().to_owned(),
            },
            Ok(snapshot) => {
                let revision = snapshot.revision().to_owned();
                replaced = publish(snapshot);
                Outcome::Reloaded {
                    previous: active,
                    revision,
                }
            }
            Err(error) => Outcome::Failed { active, error },
        };
        self.record(&outcome);
        // Freeing a large store takes a while: not on an async worker. (A
        // request still holding it frees it when it finishes instead.)
        if let Some(old) = replaced {
            drop(tokio::task::spawn_blocking(move || drop(old)));
        }
        outcome
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Each database source's state, in `--entities` order.
    pub fn databases(&self) -> Vec<DatabaseStatus> {
        self.followers
            .iter()
            .map(follow::Follower::status)
            .collect()
    }

    /// Follows every database source's changes into `target` until the
    /// process ends; call once the first snapshot is published.
    pub async fn follow(&self, target: &dyn Target) {
        let all = self.followers.iter().map(|f| f.follow(self, target));
        futures_util::future::join_all(all).await;
    }

    /// Reads every database source `snapshot` has not read, once each.
    async fn fill(&self, snapshot: Snapshot) -> Result<Snapshot, LoadError> {
        let mut snapshot = snapshot;
        for follower in &self.followers {
            if follower.is_read_in(&snapshot) {
                continue;
            }
            let summary = snapshot.summary();
            snapshot = follower
                .fill_once(snapshot)
                .await
                .map_err(|message| LoadError {
                    diagnostics: vec![Diagnostic::new(
                        std::path::Path::new(follower.label()),
                        0,
                        0,
                        message,
                    )],
                    summary,
                })?;
        }
        Ok(snapshot)
    }

    async fn load_blocking(&self, previous: Option<Arc<Snapshot>>) -> Result<Snapshot, LoadError> {
        let sources = self.sources.clone();
        tokio::task::spawn_blocking(move || load_settled(&sources, previous.as_deref()))
            .await
            .unwrap_or_else(|e| {
                Err(LoadError {
                    diagnostics: vec![Diagnostic::new(
                        &self.sources.policies,
                        0,
                        0,
                        format!("the loading task failed: {e}"),
                    )],
                    summary: String::new(),
                })
            })
    }

    fn record(&self, outcome: &Outcome) {
        let now = SystemTime::now();
        match outcome {
            Outcome::Reloaded { previous, revision } => tracing::info!(
                previous = previous.as_deref().unwrap_or("none"),
                %revision,
                "reloaded"
            ),
            Outcome::Unchanged { revision } => {
                tracing::debug!(%revision, "reload: files unchanged")
            }
            Outcome::Failed { active, error } => {
                for d in &error.diagnostics {
                    tracing::error!("{}: {}", d.location(), d.message);
                }
                tracing::error!(
                    active = active.as_deref().unwrap_or("none"),
                    "reload failed, still serving the active revision: {error}"
                );
            }
        }
        let Ok(mut status) = self.status.lock() else {
            return;
        };
        match outcome {
            Outcome::Reloaded { .. } => {
                status.successes += 1;
                status.last_error = None;
            }
            Outcome::Unchanged { .. } => {
                status.unchanged += 1;
                status.last_error = None;
            }
            Outcome::Failed { error, .. } => {
                status.failures += 1;
                status.last_error = Some((now, error.clone()));
            }
        }
        status.last_attempt = Some((now, outcome.as_str()));
    }
}
