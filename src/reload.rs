//! Hot reload: notice that input files changed, build a new snapshot off the
//! request path, and publish it only if it loaded cleanly.
//!
//! Two halves. The watcher only signals; it never loads. The [`Reloader`]
//! does the loading, one attempt at a time, on a blocking thread (parsing
//! and file I/O must not hold the async workers), and hands a snapshot to
//! `publish` only when every file parsed and validated and the revision
//! actually changed. A broken edit therefore never replaces anything: the
//! last good snapshot keeps serving and the failure is recorded, with its
//! diagnostics, for `/v1/status`.
//!
//! Shaped by how files really change in production:
//! - editors save by writing a temp file and renaming it over the original,
//!   and Kubernetes swaps a `..data` symlink to a new directory: a watch on
//!   a single file (or on a directory resolved through a symlink) silently
//!   goes stale. So directories are watched, each path's parent is watched
//!   too, and every watch is re-armed after each change;
//! - a save is a burst of events: they are debounced into one signal;
//! - editors leave droppings (`*.swp`, `*~`, `.#*`, vim's `4913`) that must
//!   not cause reloads;
//! - some file systems (NFS) deliver no events at all: `poll:2s` polls.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use notify_debouncer_full::notify::{
    self, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher,
};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, FileIdCache, NoCache, RecommendedCache,
    new_debouncer_opt,
};

use crate::diag::Diagnostic;
use crate::load::{LoadError, Sources, load};
use crate::snapshot::Snapshot;

/// How (and whether) to notice file changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Off,
    /// File system events (inotify and friends).
    Events,
    /// Poll file metadata and contents every interval.
    Poll(Duration),
}

impl FromStr for WatchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(WatchMode::Off),
            "on" | "events" => Ok(WatchMode::Events),
            _ => match s.strip_prefix("poll:") {
                Some(interval) => parse_duration(interval).map(WatchMode::Poll),
                None => Err(format!(
                    "`{s}`: expected on, off or poll:INTERVAL (e.g. poll:2s)"
                )),
            },
        }
    }
}

/// Parses `250ms`, `2s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration like 100ms or 2s"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: must be more than zero"));
    }
    Ok(d)
}

/// Editor and tool droppings that never warrant a reload.
pub fn is_dropping(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913"
}

/// A running watcher; dropping it stops the watch.
pub struct WatchGuard {
    stop: Arc<AtomicBool>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// One thing to watch: a configured input path.
struct Root {
    path: PathBuf,
}

/// Starts watching every input `sources` names and calls `changed` (from a
/// watcher thread) after each debounced burst of relevant changes.
/// Returns `None` for [`WatchMode::Off`].
pub fn watch(
    sources: &Sources,
    mode: WatchMode,
    debounce: Duration,
    changed: impl Fn() + Send + 'static,
) -> Result<Option<WatchGuard>, String> {
    let roots: Vec<Root> = std::iter::once(&sources.policies)
        .chain(sources.schema.iter())
        .chain(sources.entities.iter())
        .map(|p| Root {
            path: std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        })
        .collect();
    let (tx, rx) = mpsc::channel::<DebounceEventResult>();
    let stop = Arc::new(AtomicBool::new(false));
    match mode {
        WatchMode::Off => return Ok(None),
        WatchMode::Events => {
            let debouncer = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
                debounce,
                None,
                tx,
                RecommendedCache::new(),
                notify::Config::default(),
            )
            .map_err(|e| format!("cannot start the file watcher: {e}"))?;
            spawn_loop(debouncer, roots, rx, stop.clone(), changed)?;
        }
        WatchMode::Poll(interval) => {
            let config = notify::Config::default()
                .with_poll_interval(interval)
                .with_compare_contents(true);
            let debouncer = new_debouncer_opt::<_, PollWatcher, NoCache>(
                debounce.min(interval),
                None,
                tx,
                NoCache,
                config,
            )
            .map_err(|e| format!("cannot start the polling watcher: {e}"))?;
            spawn_loop(debouncer, roots, rx, stop.clone(), changed)?;
        }
    }
    Ok(Some(WatchGuard { stop }))
}

fn spawn_loop<W: Watcher + Send + 'static, C: FileIdCache + Send + 'static>(
    mut debouncer: Debouncer<W, C>,
    roots: Vec<Root>,
    rx: mpsc::Receiver<DebounceEventResult>,
    stop: Arc<AtomicBool>,
    changed: impl Fn() + Send + 'static,
) -> Result<(), String> {
    arm(&mut debouncer, &roots);
    std::thread::Builder::new()
        .name("doorman-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(Ok(events)) => {
                        if events.iter().any(|e| relevant(e, &roots)) {
                            // Re-arm first: a directory swapped through a
                            // symlink must be watched at its new target.
                            arm(&mut debouncer, &roots);
                            changed();
                        }
                    }
                    Ok(Err(errors)) => {
                        for e in errors {
                            tracing::warn!(error = %e, "file watcher error");
                        }
                        arm(&mut debouncer, &roots);
                        changed();
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            debouncer.stop_nonblocking();
        })
        .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
    Ok(())
}

/// (Re-)establishes the watches: each root itself (recursively when it is
/// a directory) and its parent directory, which sees the root being
/// replaced, deleted or re-created.
fn arm<W: Watcher, C: FileIdCache>(debouncer: &mut Debouncer<W, C>, roots: &[Root]) {
    for root in roots {
        let _ = debouncer.unwatch(&root.path);
        if root.path.is_dir()
            && let Err(e) = debouncer.watch(&root.path, RecursiveMode::Recursive)
        {
            tracing::warn!(path = %root.path.display(), error = %e, "cannot watch");
        }
        if let Some(parent) = root.path.parent() {
            let _ = debouncer.unwatch(parent);
            if let Err(e) = debouncer.watch(parent, RecursiveMode::NonRecursive) {
                tracing::warn!(path = %parent.display(), error = %e, "cannot watch");
            }
        }
    }
}

/// An event matters when it touches a root or something under it, and is
/// not an editor dropping. Reads and metadata-only access do not count.
fn relevant(event: &DebouncedEvent, roots: &[Root]) -> bool {
    use notify::EventKind;
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| {
        !is_dropping(p)
            && roots
                .iter()
                .any(|r| p.starts_with(&r.path) || under_resolved(p, &r.path))
    })
}

/// Events for a directory reached through a symlink carry the resolved path.
fn under_resolved(event_path: &Path, root: &Path) -> bool {
    std::fs::canonicalize(root).is_ok_and(|real| event_path.starts_with(real))
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
    /// `POST /v1/reload`) never load or publish concurrently.
    serial: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
}

impl Reloader {
    pub fn new(sources: Sources) -> Self {
        Reloader {
            sources,
            serial: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus::default()),
        }
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Loads the files on a blocking thread, without recording anything:
    /// the start-up load, which decides whether the server runs at all.
    pub async fn load_initial(&self) -> Result<Snapshot, LoadError> {
        let _one_at_a_time = self.serial.lock().await;
        self.load_blocking().await
    }

    /// One reload attempt. `current` gives the active snapshot (read after
    /// the lock is taken, so it is never stale); `publish` makes a new one
    /// active and is only called with a snapshot that loaded cleanly.
    pub async fn reload(
        &self,
        current: impl FnOnce() -> Option<Arc<Snapshot>>,
        publish: impl FnOnce(Snapshot),
    ) -> Outcome {
        let _one_at_a_time = self.serial.lock().await;
        let active = current().map(|s| s.revision().to_owned());
        let outcome = match self.load_blocking().await {
            Ok(snapshot) if Some(snapshot.revision()) == active.as_deref() => Outcome::Unchanged {
                revision: snapshot.revision().to_owned(),
            },
            Ok(snapshot) => {
                let revision = snapshot.revision().to_owned();
                publish(snapshot);
                Outcome::Reloaded {
                    previous: active,
                    revision,
                }
            }
            Err(error) => Outcome::Failed { active, error },
        };
        self.record(&outcome);
        outcome
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn load_blocking(&self) -> Result<Snapshot, LoadError> {
        let sources = self.sources.clone();
        tokio::task::spawn_blocking(move || load(&sources))
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
        let result = match outcome {
            Outcome::Reloaded { .. } => {
                status.successes += 1;
                status.last_error = None;
                "reloaded"
            }
            Outcome::Unchanged { .. } => {
                status.unchanged += 1;
                status.last_error = None;
                "unchanged"
            }
            Outcome::Failed { error, .. } => {
                status.failures += 1;
                status.last_error = Some((now, error.clone()));
                "failed"
            }
        };
        status.last_attempt = Some((now, result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_modes_parse() {
        assert_eq!("off".parse(), Ok(WatchMode::Off));
        assert_eq!("on".parse(), Ok(WatchMode::Events));
        assert_eq!(
            "poll:2s".parse(),
            Ok(WatchMode::Poll(Duration::from_secs(2)))
        );
        assert_eq!(
            "poll:250ms".parse(),
            Ok(WatchMode::Poll(Duration::from_millis(250)))
        );
        assert!("poll:".parse::<WatchMode>().is_err());
        assert!("poll:0s".parse::<WatchMode>().is_err());
        assert!("sometimes".parse::<WatchMode>().is_err());
    }

    #[test]
    fn droppings_are_recognised() {
        for name in ["a.cedar.swp", "a.cedar~", ".#a.cedar", "4913", "x.swx"] {
            assert!(is_dropping(Path::new(name)), "{name}");
        }
        for name in ["a.cedar", "..data", "world.yaml", "schema.cedarschema"] {
            assert!(!is_dropping(Path::new(name)), "{name}");
        }
    }
}
