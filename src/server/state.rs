//! What every request shares: the settings and the current snapshot.
//!
//! The snapshot sits in an `ArcSwapOption` so the decision path takes it with
//! one atomic load and no lock, and whoever loads a new one (the first load
//! now, the hot-reload watcher later) publishes it with one atomic swap: a
//! request in flight keeps the `Arc` it took and finishes on the snapshot it
//! started with, while the next request sees the new one. `None` means "not
//! loaded yet", which is what `/readyz` reports.
//!
//! Reloads go through the state's [`Reloader`] (when the server was started
//! from files): file events and SIGHUP only *ask* for a reload through a
//! `Notify`, which folds a burst of requests into one pending attempt, and a
//! single task performs it; `POST /v1/reload` performs one directly and
//! waits for its outcome. The reloader itself keeps attempts one at a time.
//!
//! The state is passed explicitly (an `Arc<State>` per connection), never
//! kept in a global, so tests run several servers side by side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::auth::Guard;
use super::decision_log::DecisionLog;
use super::metrics::Metrics;
use super::shadow::Shadow;
use crate::reload::{Outcome, Reloader, Target};
use crate::snapshot::Snapshot;

/// How the server treats requests and connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body: usize,
    /// Most items in one `/v1/batch_is_authorized` request (or AuthZEN
    /// `evaluations`).
    pub max_batch: usize,
    /// Most connections served at once; at the limit new ones wait in the
    /// kernel's backlog until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and then
    /// its body; also how long a new connection may stay silent.
    pub read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing their
    /// connections anyway.
    pub shutdown_timeout: Duration,
    /// The AuthZEN PDP identifier the metadata advertises (`None`: from
    /// the host each request names).
    pub pdp_url: Option<String>,
    /// The address listened on (`0.0.0.0:8700`, `unix:/run/d.sock`): what
    /// the AuthZEN metadata advertises when there is no `pdp_url` and the
    /// request names no usable host (`None`, or a Unix socket: localhost).
    pub listen: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body: 1 << 20,
            max_batch: 100,
            max_connections: 10_000,
            read_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            pdp_url: None,
            listen: None,
        }
    }
}

/// The state shared by every connection of one server.
pub struct State {
    config: Config,
    current: ArcSwapOption<Snapshot>,
    draining: AtomicBool,
    started_at: SystemTime,
    reloader: Option<Reloader>,
    /// How files are watched (`on`, `off`, `poll:2s`), for `/v1/status`.
    watch: String,
    reload_wanted: Notify,
    /// Who may call what (bearer tokens); open everywhere by default.
    guard: Guard,
    /// The request path's counters, read by `/metrics`.
    metrics: Arc<Metrics>,
    /// Where decisions are logged (`--decision-log`), if anywhere.
    decision_log: Option<DecisionLog>,
    /// What the gateway endpoints answered (for /metrics).
    gateway: super::gateway::Counters,
    /// The candidate policies answering beside the live ones
    /// (`--shadow`); set once, after the first load, before serving.
    shadow: OnceLock<Shadow>,
}

impl State {
    /// A state with no snapshot yet: the server answers health checks and
    /// reports itself not ready until one is published.
    pub fn new(config: Config) -> Self {
        State {
            config,
            current: ArcSwapOption::empty(),
            draining: AtomicBool::new(false),
            started_at: SystemTime::now(),
            reloader: None,
            watch: "off".to_owned(),
            reload_wanted: Notify::new(),
            guard: Guard::open(),
            metrics: Arc::new(Metrics::default()),
            decision_log: None,
            gateway: Default::default(),
            shadow: OnceLock::new(),
        }
    }

    /// The same state, logging decisions to `log` (which should count its
    /// dropped lines in this state's [`State::metrics`]).
    pub fn with_decision_log(self, log: DecisionLog) -> Self {
        State {
            decision_log: Some(log),
            ..self
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts answering every decision with `shadow`'s candidate too.
    /// Only the first call takes effect: the shadow is set up once.
    pub fn set_shadow(&self, shadow: Shadow) {
        let _ = self.shadow.set(shadow);
    }

    pub fn shadow(&self) -> Option<&Shadow> {
        self.shadow.get()
    }

    pub fn decision_log(&self) -> Option<&DecisionLog> {
        self.decision_log.as_ref()
    }

    /// A state (not ready yet) that can reload itself from files.
    pub fn with_reloader(config: Config, reloader: Reloader, watch: impl Into<String>) -> Self {
        State {
            reloader: Some(reloader),
            watch: watch.into(),
            ..State::new(config)
        }
    }

    /// The same state, with `guard` deciding who may call what.
    pub fn with_guard(self, guard: Guard) -> Self {
        State { guard, ..self }
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn reloader(&self) -> Option<&Reloader> {
        self.reloader.as_ref()
    }

    pub fn watch(&self) -> &str {
        &self.watch
    }

    /// One reload attempt, now; `None` when the server has no files to
    /// reload from.
    pub async fn reload(&self) -> Option<Outcome> {
        let reloader = self.reloader.as_ref()?;
        let started = Instant::now();
        let outcome = reloader
            .reload(|| self.snapshot(), |s| self.publish(s))
            .await;
        self.metrics.reload(started.elapsed());
        Some(outcome)
    }

    /// Asks the reload task for an attempt; callable from any thread, and
    /// requests made while one is running fold into one more attempt.
    pub fn request_reload(&self) {
        self.reload_wanted.notify_one();
    }

    /// Performs requested reloads until the process ends.
    pub async fn reload_requests(&self) {
        loop {
            self.reload_wanted.notified().await;
            self.reload().await;
        }
    }

    /// A state that is ready at once.
    pub fn with_snapshot(config: Config, snapshot: Snapshot) -> Self {
        let state = State::new(config);
        state.publish(snapshot);
        state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The snapshot to answer from. Take it once per request (or batch) and
    /// answer everything from that one `Arc`, so a publish in between cannot
    /// mix two snapshots into one answer.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// Makes `snapshot` the one new requests are answered from; returns the
    /// one it replaces (requests still holding it finish on it).
    pub fn publish(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>> {
        self.publish_shared(Arc::new(snapshot))
    }

    /// [`State::publish`] for a snapshot already shared.
    pub fn publish_shared(&self, snapshot: Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        self.current.swap(Some(snapshot))
    }

    /// True while a snapshot is active and the server is not shutting down.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.current.load().is_some()
    }

    /// True once shutdown has begun: `/readyz` then says 503 so a load
    /// balancer stops sending new work while in-flight requests finish.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn gateway_counters(&self) -> &super::gateway::Counters {
        &self.gateway
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }
}

/// Database followers publish into the state like reloads do.
impl Target for State {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot()
    }

    fn publish(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>> {
        State::publish(self, snapshot)
    }
}
