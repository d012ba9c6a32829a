//! Noticing that input files changed: the file watcher.
//!
//! The watcher only signals; it never loads (that is the [`super::Reloader`]'s
//! job). Shaped by how files really change in production:
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
use std::sync::{Arc, mpsc};
use std::time::Duration;

use notify_debouncer_full::notify::{
    self, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher,
};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, FileIdCache, NoCache, RecommendedCache,
    new_debouncer_opt,
};

use crate::load::Sources;

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

/// The longest duration a flag accepts: longer is a typo, and would
/// overflow deadline arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses `250ms`, `2s`, `1m` (at most a day).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration like 100ms or 2s"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: must be more than zero"));
    }
    if d > MAX_DURATION {
        return Err(format!("`{s}`: must be at most a day (24h)"));
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
    // A route map and its JWKS (as the route map names it at start-up).
    let routes: Vec<PathBuf> = sources
        .routes
        .iter()
        .flat_map(|r| crate::gateway::load::files_of(r))
        .collect();
    let roots: Vec<Root> = std::iter::once(&sources.policies)
        .chain(sources.schema.iter())
        .chain(sources.entities.iter())
        .chain(routes.iter())
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
    let mut armed = Vec::new();
    arm(&mut debouncer, &roots, &mut armed);
    std::thread::Builder::new()
        .name("doorman-watch".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(Ok(events)) => {
                        if events.iter().any(|e| relevant(e, &roots)) {
                            // Re-arm first: a directory swapped through a
                            // symlink must be watched at its new target.
                            arm(&mut debouncer, &roots, &mut armed);
                            changed();
                        }
                    }
                    Ok(Err(errors)) => {
                        for e in errors {
                            tracing::warn!(error = %e, "file watcher error");
                        }
                        arm(&mut debouncer, &roots, &mut armed);
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
/// replaced, deleted or re-created. `armed` holds what the last call
/// watched, so it can be let go first.
fn arm<W: Watcher, C: FileIdCache>(
    debouncer: &mut Debouncer<W, C>,
    roots: &[Root],
    armed: &mut Vec<PathBuf>,
) {
    for path in armed.drain(..) {
        let _ = debouncer.unwatch(&path);
    }
    for (path, mode) in watch_set(roots) {
        match debouncer.watch(&path, mode) {
            Ok(()) => armed.push(path),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot watch"),
        }
    }
}

/// What to watch, each directory once: a path already inside a recursive
/// watch is left to it (watching it again, non-recursively, would replace
/// the recursive watch on it), and recursion wins over no recursion.
fn watch_set(roots: &[Root]) -> Vec<(PathBuf, RecursiveMode)> {
    let mut recursive: Vec<PathBuf> = roots
        .iter()
        .filter(|r| r.path.is_dir())
        .map(|r| r.path.clone())
        .collect();
    recursive.sort();
    recursive.dedup();
    let outer: Vec<PathBuf> = recursive
        .iter()
        .filter(|p| !recursive.iter().any(|q| q != *p && p.starts_with(q)))
        .cloned()
        .collect();
    let covered = |p: &Path| outer.iter().any(|q| p.starts_with(q));
    let mut flat: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| r.path.parent().map(Path::to_path_buf))
        .filter(|p| !covered(p))
        .collect();
    flat.sort();
    flat.dedup();
    outer
        .into_iter()
        .map(|p| (p, RecursiveMode::Recursive))
        .chain(flat.into_iter().map(|p| (p, RecursiveMode::NonRecursive)))
        .collect()
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
    fn durations_are_bounded() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("307445734561825861m").is_err());
        assert!(parse_duration("18446744073709551615s").is_err());
        assert!(parse_duration("25h").is_err());
    }

    #[test]
    fn nested_roots_are_watched_once_recursively() {
        let dir = tempfile::tempdir().expect("temp dir");
        let m = dir.path().join("m");
        std::fs::create_dir_all(m.join("sub")).expect("mkdir");
        let roots = [m.clone(), m.join("s.cedarschema"), m.join("sub")]
            .into_iter()
            .map(|path| Root { path })
            .collect::<Vec<_>>();
        assert_eq!(
            watch_set(&roots),
            vec![
                (m.clone(), RecursiveMode::Recursive),
                (dir.path().to_path_buf(), RecursiveMode::NonRecursive),
            ]
        );
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
