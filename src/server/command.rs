//! `doorman serve`: flags, logging, the first load and the signals that end
//! the process; everything else is the library's [`super::serve`].
//!
//! The listener is bound before the snapshot is loaded, and the load runs on
//! the blocking pool: an orchestrator sees the port open (and `/healthz`
//! answering, `/readyz` saying 503) at once, and a large model does not hold
//! the runtime while it parses. A model that fails to load ends the process
//! with status 1 after logging every diagnostic, as `doorman check` would
//! print them.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tracing_subscriber::EnvFilter;

use super::listen::{ListenAddr, Listener};
use super::state::{Config, State};
use crate::cli::LoadArgs;
use crate::load::{Sources, load};
use crate::reload::parse_duration;

/// Flags of `doorman serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// 127.0.0.1:8700, or unix:/path/doorman.sock
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8700")]
    pub listen: ListenAddr,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Most requests in one /v1/batch_is_authorized call.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_batch: usize,
    /// Time a client has to send a request's headers, then its body
    /// (e.g. 30s, 500ms); also how long an idle connection is kept.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub read_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl ServeArgs {
    pub fn config(&self) -> Config {
        Config {
            max_body: self.max_body,
            max_batch: self.max_batch,
            read_timeout: self.read_timeout,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}

/// Runs `doorman serve` until shut down; returns the process exit code.
pub fn run_cli(load: &LoadArgs, args: &ServeArgs) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(load.sources(), args.listen.clone(), args.config()))
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

async fn run(sources: Sources, listen: ListenAddr, config: Config) -> ExitCode {
    // Before anything can take time, so a signal never meets the default
    // handler (which would kill the process without draining).
    let signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match Listener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %listen, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr();
    tracing::info!(%address, "listening; loading policies");

    let state = Arc::new(State::new(config));
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(first_load(sources, state.clone(), address, failed_tx));
    let load_failed = async {
        // The sender is dropped without a word when the load succeeds.
        if failed_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut exit = ExitCode::SUCCESS;
    let shutdown = async {
        tokio::select! {
            () = signals.recv() => {}
            () = load_failed => exit = ExitCode::FAILURE,
        }
    };
    super::serve(listener, state, shutdown).await;
    exit
}

async fn first_load(
    sources: Sources,
    state: Arc<State>,
    address: ListenAddr,
    failed: tokio::sync::oneshot::Sender<()>,
) {
    match tokio::task::spawn_blocking(move || load(&sources)).await {
        Ok(Ok(snapshot)) => {
            let (revision, policies, templates, entities, validation) = (
                snapshot.revision().to_owned(),
                snapshot.policy_count(),
                snapshot.template_count(),
                snapshot.entity_count(),
                snapshot.validation(),
            );
            // Publish first: once this line is logged, /readyz says 200.
            state.publish(snapshot);
            tracing::info!(
                %address,
                %revision,
                policies,
                templates,
                entities,
                %validation,
                "serving"
            );
            drop(failed);
        }
        Ok(Err(e)) => {
            for d in &e.diagnostics {
                tracing::error!("{}: {}", d.location(), d.message);
            }
            tracing::error!("cannot load the policies: {e}");
            let _ = failed.send(());
        }
        Err(e) => {
            tracing::error!("the loading task failed: {e}");
            let _ = failed.send(());
        }
    }
}

/// SIGTERM (what orchestrators send) and SIGINT (Ctrl-C).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
