//! `doorman test`: policy regression suites, run against the same snapshot
//! `check` loads.
//!
//! A security engineer pins what the rule book says ("a member may not view
//! a private inbox") as cases, and every policy change is checked against
//! them. The runner is split in three steps, one submodule each, so every
//! step can be tested alone and the output formats cannot change what runs:
//!
//! - [`suite`]: files on disk → [`suite::Suite`]s of flat, self-contained
//!   cases. A matrix row becomes one case per principal, so everything after
//!   this step sees only cases. Problems with the files themselves (YAML
//!   errors, unknown fields, a matrix naming a role it does not define) are
//!   diagnostics with file:line, and the command exits 2 before running
//!   anything: a suite that is half read would pass for the wrong reason.
//! - [`run`]: cases → outcomes. Snapshots are loaded once per distinct set of
//!   entity files (the `--entities` world, or a suite's own `entities:`), so
//!   a thousand cases cost a thousand Cedar calls and one or two loads.
//! - [`report`]: outcomes → text, JSON or JUnit XML.
//!
//! Which files are read: in a directory, every `*.test.yaml` / `*.test.yml`
//! (doorman suites) and every `*.cedartest.json` (the `cedar run-tests`
//! format), recursively; a file named on the command line is read whatever
//! its name, as a doorman suite when it ends in `.yaml`/`.yml` and as a Cedar
//! test file when it ends in `.json`. So `doorman test tests.json` runs an
//! existing Cedar test file unchanged.
//!
//! Exit codes: 0 when every selected case passed (and, with
//! `--require-coverage`, every policy determined some decision); 1 when a
//! case failed, coverage fell short, or no case was selected at all (a
//! `--filter` typo must not turn CI green); 2 when the suites, the policies
//! or a suite's entity files cannot be read.

pub mod report;
pub mod run;
pub mod suite;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use regex::Regex;

use crate::cli::LoadArgs;
use crate::diag::Diagnostic;

/// Flags of `doorman test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Suite files or directories searched for *.test.yaml and *.cedartest.json.
    #[arg(default_value = "fixtures")]
    pub paths: Vec<PathBuf>,
    /// Run only cases whose suite name, case name or rule tag matches this regex.
    #[arg(long, env = "DOORMAN_FILTER", value_name = "REGEX", value_parser = parse_regex)]
    pub filter: Option<Regex>,
    /// Output format.
    #[arg(long, env = "DOORMAN_FORMAT", value_enum, default_value_t)]
    pub format: TestFormat,
    /// After the run, list the policies that never determined a decision.
    #[arg(long, env = "DOORMAN_COVERAGE")]
    pub coverage: bool,
    /// Like --coverage, and fail when any policy never determined a decision.
    #[arg(long, env = "DOORMAN_REQUIRE_COVERAGE")]
    pub require_coverage: bool,
}

/// How `doorman test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum TestFormat {
    #[default]
    Text,
    Json,
    /// JUnit XML, which CI systems render as a test report.
    Junit,
}

fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| e.to_string())
}

/// Runs `doorman test`; returns the process exit code.
pub fn run_cli(load_args: &LoadArgs, args: &TestArgs) -> ExitCode {
    let suites = match suite::read_all(&args.paths) {
        Ok(s) => s,
        Err(diags) => return unreadable(args.format, "cannot read the test suites", &diags),
    };
    let base = match load_args.load() {
        Ok(s) => s,
        Err(e) => return unreadable(args.format, &e.to_string(), &e.diagnostics),
    };
    let filter = args.filter.as_ref();
    let outcome = run::run(
        &base,
        &load_args.sources().entities,
        &suites,
        |suite, case| {
            filter.is_none_or(|re| {
                re.is_match(&suite.name)
                    || re.is_match(&case.name)
                    || case.rule.as_deref().is_some_and(|r| re.is_match(r))
            })
        },
    );
    let report = match outcome {
        Ok(r) => r,
        Err(diags) => {
            return unreadable(args.format, "cannot load a suite's entities", &diags);
        }
    };
    let coverage = (args.coverage || args.require_coverage)
        .then(|| report::Coverage::new(&base, &report.covered, args.require_coverage));
    let rendered = match args.format {
        TestFormat::Text => report::text(&base, &report, coverage.as_ref()),
        TestFormat::Json => report::json(&base, &report, coverage.as_ref()),
        TestFormat::Junit => report::junit(&base, &report, coverage.as_ref()),
    };
    emit(&rendered);
    let counts = report.counts();
    if counts.selected() == 0 {
        eprintln!("doorman test: no test case selected (check the paths and --filter)");
        return ExitCode::FAILURE;
    }
    if counts.failed > 0 || coverage.as_ref().is_some_and(|c| c.fails()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reports why nothing could be run, and exits 2. JSON callers get a JSON
/// document on stdout; everyone else gets the diagnostics on stderr, so a
/// JUnit file redirected from stdout is never half XML.
fn unreadable(format: TestFormat, summary: &str, diags: &[Diagnostic]) -> ExitCode {
    match format {
        TestFormat::Json => {
            let doc = serde_json::json!({
                "ok": false,
                "error": summary,
                "diagnostics": diags,
            });
            emit(&format!("{doc:#}\n"));
        }
        TestFormat::Text | TestFormat::Junit => {
            let mut out = String::new();
            for d in diags {
                out.push_str(&format!("{d}\n\n"));
            }
            out.push_str(&format!("doorman test: {summary}\n"));
            let _ = std::io::stderr().lock().write_all(out.as_bytes());
        }
    }
    ExitCode::from(2)
}

/// Writes the whole report at once; a closed pipe (`| head`) is not an error
/// worth a panic.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
