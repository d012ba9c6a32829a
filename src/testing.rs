//! The fixture runner behind `doorman test` (being written; see issue 3).

use std::process::ExitCode;

use clap::Args;

use crate::cli::LoadArgs;

/// Flags of `doorman test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Suite files or directories searched for *.test.yaml.
    #[arg(default_value = "fixtures")]
    pub paths: Vec<std::path::PathBuf>,
}

/// Runs `doorman test`; returns the process exit code.
pub fn run_cli(_load: &LoadArgs, _args: &TestArgs) -> ExitCode {
    eprintln!("doorman test: not implemented yet");
    ExitCode::from(2)
}
