//! The `doorman` command: a thin clap layer over the library.
//!
//! Exit codes follow the `cedar` CLI: `authorize` exits 0 for allow, 2 for
//! deny, 1 for an error; `check` exits 0 when clean and 1 otherwise.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use doorman::cli::{Format, LoadArgs};
use doorman::{LoadError, Query, Snapshot};

// See Cargo.toml: the benches in `benches/` use the same allocator, so what
// they measure is what this binary runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_e`; the
/// Rust binding names only a few options). A test below checks that this
/// index still holds the purge delay's own default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long, in milliseconds, mimalloc keeps freed pages before it hands
/// them back to the OS, unless `MIMALLOC_PURGE_DELAY` says otherwise.
/// With mimalloc 3's default (1,000) the soak bench's server
/// (`benches/soak.rs`) still held 109 MiB 20 s after its traffic stopped;
/// at 10 ms (mimalloc 2's default) it gave back down to 50 MiB
/// (docs/security.md). What kept the RSS from creeping up while serving
/// was bounding the blocking pool (`serve --blocking-threads`).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets the allocator's purge delay before any real work: a value of
/// `MIMALLOC_PURGE_DELAY` in the environment (read by mimalloc itself at
/// start-up) is left as the operator set it.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of one of mimalloc's global options, safe
        // to call at any time from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[derive(Parser)]
#[command(
    name = "doorman",
    version,
    about = "Cedar authorization: check, query, test and serve policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate policies, schema and entities; print every problem.
    Check {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long, env = "DOORMAN_FORMAT", value_enum, default_value_t)]
        format: Format,
        /// Treat the validator's warnings as errors (exit 1).
        #[arg(long, env = "DOORMAN_DENY_WARNINGS")]
        deny_warnings: bool,
    },
    /// Format *.cedar files in place (cedar-policy-formatter's layout).
    Fmt {
        /// Only list the files that are not formatted; exit 1 if any.
        #[arg(long, env = "DOORMAN_CHECK")]
        check: bool,
        /// Files or directories (default: policies).
        #[arg(value_name = "PATHS", default_value = "policies")]
        paths: Vec<std::path::PathBuf>,
    },
    /// What a policy edit changes: every flipped decision, three ways.
    Diff(Box<doorman::diff::DiffArgs>),
    /// Ask one question: may PRINCIPAL do ACTION on RESOURCE?
    Authorize {
        #[command(flatten)]
        load: LoadArgs,
        /// e.g. 'Member::"acme-ada"'
        #[arg(long, env = "DOORMAN_PRINCIPAL")]
        principal: String,
        /// e.g. ViewInbox (shorthand for 'Action::"ViewInbox"')
        #[arg(long, env = "DOORMAN_ACTION")]
        action: String,
        /// e.g. 'Inbox::"acme-support"'
        #[arg(long, env = "DOORMAN_RESOURCE")]
        resource: String,
        /// The request context as a JSON object.
        #[arg(long, env = "DOORMAN_CONTEXT", default_value = "{}")]
        context: String,
        #[arg(long, env = "DOORMAN_FORMAT", value_enum, default_value_t)]
        format: Format,
    },
    /// Run the YAML policy regression suites (*.test.yaml).
    Test {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        args: doorman::testing::TestArgs,
    },
    /// Serve is-authorized queries over HTTP.
    Serve {
        #[command(flatten)]
        load: LoadArgs,
        // Boxed: its many flags would make every command this size.
        #[command(flatten)]
        args: Box<doorman::server::ServeArgs>,
    },
}

fn main() -> ExitCode {
    tune_allocator();
    // clap exits 2 on a usage error, which `authorize` uses for "deny":
    // a typo in a flag must never read as a decision.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check {
            load,
            format,
            deny_warnings,
        } => check(&load, format, deny_warnings),
        Command::Fmt { check, paths } => fmt(&paths, check),
        Command::Diff(args) => doorman::diff::run_cli(&args),
        Command::Authorize {
            load,
            principal,
            action,
            resource,
            context,
            format,
        } => authorize(&load, &principal, &action, &resource, &context, format),
        Command::Test { load, args } => doorman::testing::run_cli(&load, &args),
        Command::Serve { load, args } => doorman::server::run_cli(&load, &args),
    }
}

fn check(args: &LoadArgs, format: Format, deny_warnings: bool) -> ExitCode {
    let result = args.load();
    let warnings = result.as_ref().map_or(&[][..], |s| s.warnings());
    let ok = result.is_ok() && (!deny_warnings || warnings.is_empty());
    match format {
        Format::Json => {
            let report = match &result {
                Ok(s) => serde_json::json!({
                    "ok": ok, "summary": s.summary(), "revision": s.revision(), "diagnostics": [],
                    "warnings": warnings,
                }),
                Err(e) => serde_json::json!({
                    "ok": false, "summary": e.summary, "diagnostics": e.diagnostics, "warnings": [],
                }),
            };
            println!("{report:#}");
        }
        Format::Text => {
            for w in warnings {
                println!("{}\n", w.as_warning());
            }
            let n = warnings.len();
            let counted = match n {
                0 => String::new(),
                1 => ", 1 warning".to_owned(),
                n => format!(", {n} warnings"),
            };
            match &result {
                Ok(s) if ok => println!("{}: ok{counted} (revision {})", s.summary(), s.revision()),
                Ok(s) => println!(
                    "{}: {n} warning(s), refused by --deny-warnings",
                    s.summary()
                ),
                Err(e) => print_load_error(e),
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fmt(paths: &[std::path::PathBuf], check: bool) -> ExitCode {
    let report = doorman::fmt::run(paths, check);
    for d in &report.errors {
        eprintln!("{d}\n");
    }
    for file in &report.changed {
        if check {
            println!("not formatted: {}", file.display());
        } else {
            println!("formatted: {}", file.display());
        }
    }
    let failed = !report.errors.is_empty() || (check && !report.changed.is_empty());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_load_error(e: &LoadError) {
    for d in &e.diagnostics {
        println!("{d}\n");
    }
    println!("{e}");
}

fn authorize(
    args: &LoadArgs,
    principal: &str,
    action: &str,
    resource: &str,
    context: &str,
    format: Format,
) -> ExitCode {
    let snapshot = match args.load() {
        Ok(s) => s,
        Err(e) => {
            match format {
                Format::Json => println!(
                    "{:#}",
                    serde_json::json!({"error": {"summary": e.summary, "diagnostics": e.diagnostics}})
                ),
                Format::Text => print_load_error(&e),
            }
            return ExitCode::FAILURE;
        }
    };
    let answer = serde_json::from_str(context)
        .map_err(|e| doorman::QueryError::new("context", format!("not JSON: {e}")))
        .and_then(|context| Query::parse(principal, action, resource, context))
        .and_then(|query| snapshot.decide(&query));
    match answer {
        Ok(answer) => {
            match format {
                Format::Json => println!("{:#}", serde_json::to_value(&answer).unwrap_or_default()),
                Format::Text => print_answer(&snapshot, &answer),
            }
            match answer.decision {
                doorman::Decision::Allow => ExitCode::SUCCESS,
                doorman::Decision::Deny => ExitCode::from(2),
            }
        }
        Err(e) => {
            match format {
                Format::Json => println!(
                    "{:#}",
                    serde_json::json!({"error": {"field": e.field, "message": e.message}})
                ),
                Format::Text => println!("error: invalid request: {e}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn print_answer(snapshot: &Snapshot, answer: &doorman::Answer) {
    println!("decision: {}", answer.decision);
    if answer.reasons.is_empty() {
        println!("reasons: none (no policy applied: default deny)");
    } else {
        println!("reasons:");
        for id in &answer.reasons {
            let at = snapshot
                .policy(id)
                .map(|p| p.location())
                .unwrap_or_default();
            println!("  {id}  {at}");
        }
    }
    for e in &answer.errors {
        let at = snapshot
            .policy(&e.policy)
            .map(|p| p.location())
            .unwrap_or_default();
        println!("error: policy {} ({at}): {}", e.policy, e.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_set_unless_the_environment_sets_it() {
        let get = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        match std::env::var("MIMALLOC_PURGE_DELAY") {
            // mimalloc 3's own default for the purge delay: the index is
            // still the purge delay's.
            Err(_) => assert_eq!(get(), 1000),
            Ok(v) => assert_eq!(get().to_string(), v),
        }
        tune_allocator();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), PURGE_DELAY_MS);
        }
    }
}
