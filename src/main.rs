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
    },
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
        #[command(flatten)]
        args: doorman::server::ServeArgs,
    },
}

fn main() -> ExitCode {
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
        Command::Check { load, format } => check(&load, format),
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

fn check(args: &LoadArgs, format: Format) -> ExitCode {
    let result = args.load();
    match format {
        Format::Json => {
            let report = match &result {
                Ok(s) => serde_json::json!({
                    "ok": true, "summary": s.summary(), "revision": s.revision(), "diagnostics": [],
                }),
                Err(e) => serde_json::json!({
                    "ok": false, "summary": e.summary, "diagnostics": e.diagnostics,
                }),
            };
            println!("{report:#}");
        }
        Format::Text => match &result {
            Ok(s) => println!("{}: ok (revision {})", s.summary(), s.revision()),
            Err(e) => print_load_error(e),
        },
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
