//! `doorman serve`: flags, logging, the first load and the signals that end
//! the process; everything else is the library's [`super::serve`].
//!
//! The listener is bound before the snapshot is loaded, and the load runs on
//! the blocking pool: an orchestrator sees the port open (and `/healthz`
//! answering, `/readyz` saying 503) at once, and a large model does not hold
//! the runtime while it parses. A model that fails to load ends the process
//! with status 1 after logging every diagnostic, as `doorman check` would
//! print them.
//!
//! With `--watch` on (the default) the file watcher starts before the first
//! load, so an edit made while the model is still loading is not missed;
//! its signals, and SIGHUP's, ask the state's reload task for an attempt.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tracing_subscriber::EnvFilter;

use super::auth::{self, Guard, MetricsAuth};
use super::decision_log::{self, DecisionLog};
use super::listen::{ListenAddr, Listener};
use super::shadow::Shadow;
use super::state::{Config, State};
use crate::cli::LoadArgs;
use crate::load::Sources;
use crate::reload::{Reloader, WatchMode, parse_duration, watch};
use crate::snapshot::Snapshot;

/// Flags of `doorman serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// 127.0.0.1:8700, or unix:/path/doorman.sock
    #[arg(
        long,
        env = "DOORMAN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8700"
    )]
    pub listen: ListenAddr,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "DOORMAN_MAX_BODY", value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Most requests in one /v1/batch_is_authorized call (or AuthZEN
    /// evaluations request).
    #[arg(
        long,
        env = "DOORMAN_MAX_BATCH",
        value_name = "N",
        default_value_t = 100
    )]
    pub max_batch: usize,
    /// Most connections served at once (HTTP and Unix socket); at the
    /// limit new connections wait until one closes.
    #[arg(long, env = "DOORMAN_MAX_CONNECTIONS", value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Time a client has to send a request's headers, then its body
    /// (e.g. 30s, 500ms); also how long an idle connection is kept.
    #[arg(long, env = "DOORMAN_READ_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub read_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[arg(long, env = "DOORMAN_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Reload when policy, schema or entity files change: on, off, or
    /// poll:INTERVAL (e.g. poll:2s) for file systems without events (NFS).
    #[arg(long, env = "DOORMAN_WATCH", value_name = "MODE", default_value = "on", value_parser = parse_watch)]
    pub watch: (WatchMode, String),
    /// How long file events must settle before a reload starts.
    #[arg(long, env = "DOORMAN_RELOAD_DEBOUNCE", value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub reload_debounce: Duration,
    /// How often database sources are polled for changes besides their
    /// notifications (a safety net for notifications lost in transit).
    #[arg(long, env = "DOORMAN_DATABASE_POLL", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub database_poll: Duration,
    /// Threads answering requests (default: one per core). A sidecar given
    /// part of a machine should say how much; batches and large bodies
    /// run on a separate blocking pool.
    #[arg(long, env = "DOORMAN_WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// Most threads of the blocking pool, which runs batches, searches,
    /// large bodies and reloads (default: four per worker, at least 8);
    /// more such work waits its turn. That work is CPU-bound, so threads
    /// beyond the cores add no throughput, and each one keeps memory.
    #[arg(long, env = "DOORMAN_BLOCKING_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub blocking_threads: Option<u16>,
    /// The AuthZEN PDP identifier in /.well-known/authzen-configuration
    /// (default: http:// and the listen address; for a wildcard address
    /// or a Unix socket, the host[:port] the request names).
    #[arg(long, env = "DOORMAN_AUTHZEN_PDP_URL", value_name = "URL", value_parser = super::authzen::parse_pdp_url)]
    pub authzen_pdp_url: Option<String>,
    /// Bearer tokens (one a line, # comments) that /v1/status,
    /// /v1/policies and /v1/reload then require; re-read when it changes.
    #[arg(long, env = "DOORMAN_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Bearer tokens that the decision endpoints (/v1/is_authorized,
    /// /v1/batch_is_authorized, AuthZEN's /access/v1/*) then require;
    /// admin tokens do not open them.
    #[arg(long, env = "DOORMAN_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Who may read /metrics: open, or admin (an admin token).
    #[arg(
        long,
        env = "DOORMAN_METRICS_AUTH",
        value_name = "WHO",
        value_enum,
        default_value_t
    )]
    pub metrics_auth: MetricsAuth,
    /// Also serve Envoy's ext_authz gRPC API (Istio's envoyExtAuthzGrpc)
    /// on this HOST:PORT; it answers through the route map (--routes).
    #[arg(long, env = "DOORMAN_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<std::net::SocketAddr>,
    /// Write one JSON line per decision to `stdout` or to FILE (appended;
    /// follows log rotation). Format: docs/decision-log.md.
    #[arg(long, env = "DOORMAN_DECISION_LOG", value_name = "stdout|FILE")]
    pub decision_log: Option<decision_log::Target>,
    /// Optional decision-log fields: `context`, `entities` (comma-separated).
    #[arg(
        long,
        env = "DOORMAN_DECISION_LOG_INCLUDE",
        value_name = "FIELDS",
        value_delimiter = ',',
        requires = "decision_log"
    )]
    pub decision_log_include: Vec<Include>,
    /// Decision-log values written as "***": JSON pointers into the line,
    /// `*` for any key or index (/context/ssn, /entities/*/attrs/email);
    /// comma-separated or repeated.
    #[arg(
        long,
        env = "DOORMAN_DECISION_LOG_MASK",
        value_name = "POINTERS",
        value_delimiter = ',',
        value_parser = decision_log::Mask::parse,
        requires = "decision_log"
    )]
    pub decision_log_mask: Vec<decision_log::Mask>,
    /// The fraction of allows written to the decision log (0 to 1); denies
    /// are always written.
    #[arg(
        long,
        env = "DOORMAN_DECISION_LOG_ALLOW_SAMPLE",
        value_name = "FRACTION",
        default_value_t = 1.0,
        value_parser = parse_fraction,
        requires = "decision_log"
    )]
    pub decision_log_allow_sample: f64,
    /// A candidate policy directory answered beside the live policies for
    /// every decision (same schema and entities, off the request path):
    /// disagreements are counted in /metrics and logged; it is reloaded
    /// when its files change.
    #[arg(long, env = "DOORMAN_SHADOW", value_name = "DIR")]
    pub shadow: Option<PathBuf>,
}

/// An optional field of the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Include {
    Context,
    Entities,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction from 0 to 1 (such as 0.1)")),
    }
}

/// Keeps the flag's text for `/v1/status` beside the parsed mode.
fn parse_watch(s: &str) -> Result<(WatchMode, String), String> {
    s.parse().map(|mode| (mode, s.to_owned()))
}

impl ServeArgs {
    pub fn config(&self) -> Config {
        Config {
            max_body: self.max_body,
            max_batch: self.max_batch,
            max_connections: self.max_connections as usize,
            read_timeout: self.read_timeout,
            shutdown_timeout: self.shutdown_timeout,
            pdp_url: self.authzen_pdp_url.clone(),
            listen: None,
        }
    }

    /// Reads the token files (blocking: before the runtime starts).
    pub fn guard(&self) -> Result<Guard, String> {
        Guard::load(
            self.admin_token_file.as_deref(),
            self.auth_token_file.as_deref(),
            self.metrics_auth,
        )
    }

    /// The decision log's settings, when one was asked for.
    pub fn decision_log(&self) -> Option<decision_log::Options> {
        Some(decision_log::Options {
            target: self.decision_log.clone()?,
            format: decision_log::Format {
                context: self.decision_log_include.contains(&Include::Context),
                entities: self.decision_log_include.contains(&Include::Entities),
                masks: self.decision_log_mask.clone(),
            },
            allow_sample: self.decision_log_allow_sample,
        })
    }
}

/// The blocking pool's bound: `--blocking-threads`, else four per worker
/// thread and at least 8. tokio's own default (512) let the soak bench's
/// eight connections grow the pool to over fifty threads, each keeping
/// its allocator pages: the server's RSS crept up for as long as it ran
/// (docs/security.md).
fn blocking_threads(args: &ServeArgs) -> usize {
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    args.blocking_threads
        .map_or_else(|| (4 * workers).max(8), usize::from)
}

/// Runs `doorman serve` until shut down; returns the process exit code.
pub fn run_cli(load: &LoadArgs, args: &ServeArgs) -> ExitCode {
    init_tracing();
    let guard = match args.guard() {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(usize::from(n));
    }
    builder.max_blocking_threads(blocking_threads(args));
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exit = runtime.block_on(run(load.sources(), args.clone(), guard));
    // A load still parsing on the blocking pool (say, a huge entity file)
    // must not hold the exit past the promised bound.
    runtime.shutdown_timeout(args.shutdown_timeout);
    exit
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already set, which is then good enough.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn run(sources: Sources, args: ServeArgs, guard: Guard) -> ExitCode {
    // Before anything can take time, so a signal never meets the default
    // handler (which would kill the process without draining).
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match Listener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %args.listen, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr();
    tracing::info!(%address, "listening; loading policies");
    let grpc = match args.grpc_listen {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let bound = l.local_addr().map_or(addr.to_string(), |a| a.to_string());
                tracing::info!(address = %bound, "listening for ext_authz gRPC");
                Some(l)
            }
            Err(e) => {
                tracing::error!(address = %addr, "cannot listen for gRPC: {e}");
                return ExitCode::FAILURE;
            }
        },
    };

    let (mode, mode_text) = args.watch.clone();
    let mut config = args.config();
    config.listen = Some(address.to_string());
    if config.pdp_url.is_none() {
        config.pdp_url = super::authzen::pdp_url_of(&address.to_string());
    }
    let mut state = State::with_reloader(
        config,
        Reloader::with_poll(sources.clone(), args.database_poll),
        mode_text,
    )
    .with_guard(guard);
    if let Some(options) = args.decision_log() {
        tracing::info!(target = ?options.target, "writing the decision log");
        match DecisionLog::start(options, state.metrics().clone()) {
            Ok(log) => state = state.with_decision_log(log),
            Err(e) => {
                tracing::error!("cannot start the decision log's thread: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let state = Arc::new(state);
    {
        let state = state.clone();
        tokio::spawn(async move { state.guard().follow(auth::POLL).await });
    }
    let for_watcher = state.clone();
    // Kept alive until the server stops; dropping it ends the watch.
    let _watching = match watch(&sources, mode, args.reload_debounce, move || {
        for_watcher.request_reload()
    }) {
        Ok(guard) => guard,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(first_load(
        state.clone(),
        address,
        args.shadow.clone(),
        failed_tx,
    ));
    let load_failed = async {
        // The sender is dropped without a word when the load succeeds.
        if failed_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut exit = ExitCode::SUCCESS;
    // Both listeners stop on the same signal.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = async {
        tokio::select! {
            () = signals.recv(&state) => {}
            () = load_failed => exit = ExitCode::FAILURE,
        }
        let _ = stop.send(true);
    };
    let grpc = async {
        if let Some(l) = grpc {
            let mut stopped = stopped.clone();
            let signal = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let drain = state.config().shutdown_timeout;
            super::gateway::grpc::serve(l, state.clone(), signal, drain).await;
        }
    };
    tokio::join!(super::serve(listener, state.clone(), shutdown), grpc);
    // What was decided before the end is written and flushed (within the
    // shutdown bound: a writer stuck on a FIFO is not waited for).
    let limit = args.shutdown_timeout;
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(log) = state.decision_log() {
            log.close(limit);
        }
    })
    .await;
    exit
}

async fn first_load(
    state: Arc<State>,
    address: ListenAddr,
    shadow: Option<PathBuf>,
    failed: tokio::sync::oneshot::Sender<()>,
) {
    let Some(reloader) = state.reloader() else {
        return;
    };
    match reloader.load_initial().await {
        Ok(snapshot) => {
            // The candidate is validated against the live schema, so it
            // loads second; a broken one at start-up is a broken command.
            let snapshot = Arc::new(snapshot);
            if let Some(dir) = shadow
                && let Err(e) = start_shadow(&state, dir, snapshot.clone()).await
            {
                tracing::error!("{e}");
                let _ = failed.send(());
                return;
            }
            let (revision, policies, templates, entities, validation) = (
                snapshot.revision().to_owned(),
                snapshot.policy_count(),
                snapshot.template_count(),
                snapshot.entity_count(),
                snapshot.validation(),
            );
            // Publish first: once this line is logged, /readyz says 200.
            state.publish_shared(snapshot);
            tracing::info!(
                %address,
                %revision,
                policies,
                templates,
                entities,
                %validation,
                watch = state.watch(),
                "serving"
            );
            drop(failed);
            // Only now: a reload or a database change must never race the
            // first publish.
            let following = async {
                if let Some(reloader) = state.reloader() {
                    reloader.follow(&*state).await;
                }
            };
            tokio::join!(state.reload_requests(), following);
        }
        Err(e) => {
            for d in &e.diagnostics {
                tracing::error!("{}: {}", d.location(), d.message);
            }
            tracing::error!("cannot load the policies: {e}");
            let _ = failed.send(());
        }
    }
}

/// Loads the `--shadow` candidate against the first live snapshot (on the
/// blocking pool) and starts its thread.
async fn start_shadow(state: &State, dir: PathBuf, live: Arc<Snapshot>) -> Result<(), String> {
    let shown = dir.display().to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        crate::load::load_candidate(&dir, &live).map(|c| (dir, c))
    })
    .await
    .map_err(|e| format!("loading the shadow candidate failed: {e}"))?;
    let (dir, candidate) = loaded.map_err(|e| {
        for d in &e.diagnostics {
            tracing::error!("{}: {}", d.location(), d.message);
        }
        format!("cannot load the shadow candidate {shown}: {e}")
    })?;
    tracing::info!(
        policies = %shown,
        revision = candidate.revision(),
        "answering every decision with the shadow candidate too"
    );
    let shadow = Shadow::start(dir, candidate)
        .map_err(|e| format!("cannot start the shadow thread: {e}"))?;
    state.set_shadow(shadow);
    Ok(())
}

/// SIGTERM (what orchestrators send) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for a signal that ends the process; SIGHUP meanwhile asks for
    /// a reload.
    async fn recv(mut self, state: &State) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = self.term.recv() => return tracing::info!("SIGTERM received"),
                _ = self.int.recv() => return tracing::info!("SIGINT received"),
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP received: reloading");
                    state.request_reload();
                }
            }
        }
        #[cfg(not(unix))]
        let _ = state;
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
