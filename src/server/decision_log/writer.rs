//! The decision log's thread: takes records off the queue, formats them and
//! writes them, off the async runtime.
//!
//! The file side follows what log rotation does to it:
//!
//! - it is opened with `O_APPEND`, so after logrotate's `copytruncate` the
//!   next write lands at the new end rather than at the old offset (which
//!   would leave a hole of zeros the size of the old file);
//! - every [`FLUSH_EVERY`] the path is looked at again: when it names a
//!   different file than the one open (logrotate's rename, then a new
//!   file) or none, the open file is flushed and closed and the path opened
//!   (created) again;
//! - opening happens here, never at start-up, because opening a FIFO for
//!   writing blocks until someone reads it; meanwhile the queue fills and
//!   requests' lines are dropped and counted, requests go on;
//! - a failure to open or write is logged once (until it works again), the
//!   lines are counted as dropped, and opening is retried every second.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::line::Format;
use super::{FLUSH_EVERY, Queued, Target};
use crate::server::metrics::Metrics;

/// How long the thread waits for a line before looking at the clock (for
/// flushing, rotation, shutdown).
const TICK: Duration = Duration::from_millis(100);

pub(super) fn spawn(
    target: Target,
    format: Format,
    queue: Receiver<Queued>,
    metrics: Arc<Metrics>,
    closing: Arc<AtomicBool>,
    done: SyncSender<()>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("decision-log".into())
        .spawn(move || {
            let mut sink = Sink::new(target);
            let mut flushed = Instant::now();
            loop {
                match queue.recv_timeout(TICK) {
                    Ok(q) => sink.write(&format.line(q.record, q.time, q.latency_us), &metrics),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if closing.load(Ordering::Relaxed) {
                    while let Ok(q) = queue.try_recv() {
                        sink.write(&format.line(q.record, q.time, q.latency_us), &metrics);
                    }
                    break;
                }
                if flushed.elapsed() >= FLUSH_EVERY {
                    sink.tick();
                    flushed = Instant::now();
                }
            }
            sink.flush();
            let _ = done.send(());
        })?;
    Ok(())
}

enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File(FileSink),
}

impl Sink {
    fn new(target: Target) -> Sink {
        match target {
            Target::Stdout => Sink::Stdout(BufWriter::new(std::io::stdout())),
            Target::File(path) => Sink::File(FileSink {
                path,
                open: None,
                retry_at: Instant::now(),
                complained: false,
            }),
        }
    }

    fn write(&mut self, line: &[u8], metrics: &Metrics) {
        let ok = match self {
            Sink::Stdout(out) => out.write_all(line).is_ok(),
            Sink::File(f) => f.write(line),
        };
        if !ok {
            metrics.decision_log_dropped(1);
        }
    }

    /// The once-a-second work: flush, and follow a rotated file.
    fn tick(&mut self) {
        match self {
            Sink::Stdout(out) => {
                let _ = out.flush();
            }
            Sink::File(f) => {
                f.flush();
                if f.open.is_some() && f.rotated() {
                    tracing::info!(path = %f.path.display(), "decision log: the file was rotated; reopening");
                    f.open = None;
                }
                if f.open.is_none() && Instant::now() >= f.retry_at {
                    f.reopen();
                }
            }
        }
    }

    fn flush(&mut self) {
        match self {
            Sink::Stdout(out) => {
                let _ = out.flush();
            }
            Sink::File(f) => f.flush(),
        }
    }
}

struct FileSink {
    path: PathBuf,
    /// The open file and which file it is.
    open: Option<(BufWriter<File>, Identity)>,
    /// No attempt to open before this (after a failure).
    retry_at: Instant,
    /// A failure was logged and nothing has worked since.
    complained: bool,
}

impl FileSink {
    /// Writes one line; false when it was dropped.
    fn write(&mut self, line: &[u8]) -> bool {
        if self.open.is_none() && Instant::now() >= self.retry_at {
            self.reopen();
        }
        let Some((out, _)) = &mut self.open else {
            return false;
        };
        match out.write_all(line) {
            Ok(()) => true,
            Err(e) => {
                self.failed("cannot write to", &e);
                self.open = None;
                false
            }
        }
    }

    fn reopen(&mut self) {
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|file| {
                let id = Identity::of(&file.metadata()?);
                Ok((BufWriter::with_capacity(64 * 1024, file), id))
            });
        match opened {
            Ok(open) => {
                if self.complained {
                    tracing::info!(path = %self.path.display(), "decision log: writing again");
                    self.complained = false;
                }
                self.open = Some(open);
            }
            Err(e) => self.failed("cannot open", &e),
        }
    }

    fn flush(&mut self) {
        if let Some((out, _)) = &mut self.open
            && let Err(e) = out.flush()
        {
            self.failed("cannot write to", &e);
            self.open = None;
        }
    }

    fn failed(&mut self, what: &str, e: &std::io::Error) {
        if !self.complained {
            tracing::error!(
                path = %self.path.display(),
                "decision log: {what} the file: {e}; lines are dropped until it works, retried every second"
            );
            self.complained = true;
        }
        self.retry_at = Instant::now() + FLUSH_EVERY;
    }

    /// Whether the path no longer names the open file.
    fn rotated(&self) -> bool {
        let Some((_, open)) = &self.open else {
            return false;
        };
        match std::fs::metadata(&self.path) {
            Ok(now) => Identity::of(&now) != *open,
            Err(_) => true,
        }
    }
}

/// Which file a path names: device and inode (on Unix; elsewhere every
/// file looks the same, so only copytruncate-style rotation is followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity(u64, u64);

impl Identity {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity(metadata.dev(), metadata.ino())
    }

    #[cfg(not(unix))]
    fn of(_: &std::fs::Metadata) -> Identity {
        Identity(0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(path: PathBuf) -> FileSink {
        FileSink {
            path,
            open: None,
            retry_at: Instant::now(),
            complained: false,
        }
    }

    #[test]
    fn a_renamed_file_is_noticed_and_a_new_one_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.log");
        let mut s = sink(path.clone());
        assert!(s.write(b"one\n"));
        s.flush();
        assert!(!s.rotated());
        std::fs::rename(&path, dir.path().join("decisions.log.1")).unwrap();
        assert!(s.rotated(), "the path names no file now");
        std::fs::write(&path, b"").unwrap();
        assert!(s.rotated(), "the path names another file");
        s.open = None;
        assert!(s.write(b"two\n"));
        s.flush();
        assert!(!s.rotated());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let old = std::fs::read_to_string(dir.path().join("decisions.log.1")).unwrap();
        assert_eq!(old, "one\n");
    }

    #[test]
    fn after_a_truncation_writes_land_at_the_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.log");
        let mut s = sink(path.clone());
        assert!(s.write(b"a long first line\n"));
        s.flush();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        assert!(!s.rotated(), "truncation keeps the file");
        assert!(s.write(b"next\n"));
        s.flush();
        assert_eq!(std::fs::read(&path).unwrap(), b"next\n");
    }

    #[test]
    fn a_path_that_cannot_be_opened_drops_lines_and_retries_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path().join("no/such/dir/decisions.log"));
        assert!(!s.write(b"x\n"));
        assert!(s.complained);
        assert!(s.retry_at > Instant::now());
        assert!(!s.write(b"y\n"), "no new attempt before the retry time");
    }
}
