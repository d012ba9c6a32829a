//! The HTTP sidecar behind `doorman serve` (being written; see issue 5).

use std::process::ExitCode;

use clap::Args;

use crate::cli::LoadArgs;

/// Flags of `doorman serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// 127.0.0.1:8700, or unix:/path/doorman.sock
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: String,
}

/// Runs `doorman serve` until shut down; returns the process exit code.
pub fn run_cli(_load: &LoadArgs, _args: &ServeArgs) -> ExitCode {
    eprintln!("doorman serve: not implemented yet");
    ExitCode::from(1)
}
