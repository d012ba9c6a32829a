//! `doorman diff`: what a policy edit changes in authorization.
//!
//! Two policy sets (base and head) over one schema and one entity world are
//! compared three ways, each saying what it proves:
//!
//! - [`exhaustive`]: every request of the loaded world in the environments
//!   the edit touches ([`envs`]), answered by both sets;
//! - [`symbolic`]: every possible request of those environments, through
//!   `cedar-policy-symcc` and the cvc5 solver, with one counterexample per
//!   direction of change;
//! - [`replay`]: the questions of a decision log, answered again.
//!
//! [`report`] renders the result (text, JSON, Markdown) and [`expect`]
//! sorts changes into intended and unintended. Exit codes: 0 when nothing
//! changed (or only intended changes), 3 when something did, 1 on errors
//! and when the symbolic mode could not answer for an environment (not
//! analysed, timed out) and nothing else changed.

pub mod envs;
pub mod exhaustive;
pub mod expect;
pub mod replay;
pub mod report;
pub mod symbolic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use crate::cli::LoadArgs;
use crate::decide::{Answer, Decision, Query};
use crate::snapshot::Snapshot;

/// Flags of `doorman diff`. The loading flags describe the head (NEW);
/// the base (OLD) takes its policies from `--base` or `--base-rev` and
/// everything else from the head's flags.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// The old policy directory.
    #[arg(
        long,
        env = "DOORMAN_BASE",
        value_name = "DIR",
        conflicts_with = "base_rev",
        required_unless_present = "base_rev"
    )]
    pub base: Option<PathBuf>,
    /// The old policies as of a git revision (the --head directory's path
    /// at REV, read with `git show`).
    #[arg(long, env = "DOORMAN_BASE_REV", value_name = "REV")]
    pub base_rev: Option<String>,
    /// The new policy directory (default: --policies).
    #[arg(long, env = "DOORMAN_HEAD", value_name = "DIR")]
    pub head: Option<PathBuf>,
    /// A decision log (JSON Lines) whose questions are answered again.
    #[arg(long, env = "DOORMAN_REPLAY", value_name = "LOG")]
    pub replay: Option<PathBuf>,
    /// Suites (*.test.yaml) whose contexts the exhaustive mode uses.
    #[arg(
        long,
        env = "DOORMAN_SUITES",
        value_name = "PATH",
        default_value = "fixtures"
    )]
    pub suites: Vec<PathBuf>,
    /// Skip the symbolic mode (no solver needed).
    #[arg(long, env = "DOORMAN_NO_SYMBOLIC")]
    pub no_symbolic: bool,
    /// Skip the exhaustive mode.
    #[arg(long, env = "DOORMAN_NO_EXHAUSTIVE")]
    pub no_exhaustive: bool,
    /// Time the solver may take per question and environment.
    #[arg(long, env = "DOORMAN_SOLVER_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = crate::reload::parse_duration)]
    pub solver_timeout: Duration,
    /// Extra symbolic checks: `never-errors` (changed policies never error).
    #[arg(long, env = "DOORMAN_CHECK", value_name = "CHECK")]
    pub check: Vec<Check>,
    /// A YAML list of intended changes: only changes none of them matches
    /// fail the run.
    #[arg(long, env = "DOORMAN_EXPECT_CHANGES", value_name = "FILE")]
    pub expect_changes: Option<PathBuf>,
    #[arg(long, env = "DOORMAN_FORMAT", value_enum, default_value_t)]
    pub format: DiffFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Check {
    NeverErrors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DiffFormat {
    #[default]
    Text,
    Json,
    /// For a pull request comment: a summary table, then details.
    Markdown,
}

/// A policy that determined an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    pub id: String,
    /// `file:line`.
    pub at: String,
    /// The rule tag: the `@rule` annotation, else the policy ID.
    pub tag: String,
}

/// One request whose decision differs between base and head.
#[derive(Debug, Clone, Serialize)]
pub struct Flip {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub context: Value,
    pub before: Decision,
    pub after: Decision,
    pub reasons_before: Vec<PolicyRef>,
    pub reasons_after: Vec<PolicyRef>,
    /// Set by `--expect-changes`: an expected change matched it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub intended: bool,
}

impl Flip {
    /// The rule tags of the policies that decided it, before and after.
    pub fn tags(&self) -> String {
        let mut tags: Vec<&str> = self
            .reasons_before
            .iter()
            .chain(&self.reasons_after)
            .map(|r| r.tag.as_str())
            .collect();
        tags.sort();
        tags.dedup();
        if tags.is_empty() {
            "(default deny)".into()
        } else {
            tags.join(", ")
        }
    }
}

pub(crate) fn policy_refs(
    snapshot: &Snapshot,
    ids: &[String],
    relabel: &Relabel,
) -> Vec<PolicyRef> {
    ids.iter()
        .map(|id| match snapshot.policy(id) {
            Some(p) => PolicyRef {
                id: id.clone(),
                at: relabel.apply(&p.location()),
                tag: p
                    .annotations
                    .get("rule")
                    .cloned()
                    .unwrap_or_else(|| id.clone()),
            },
            None => PolicyRef {
                id: id.clone(),
                at: String::new(),
                tag: id.clone(),
            },
        })
        .collect()
}

/// How base file paths are shown: a checkout of `--base-rev` lives in a
/// temporary directory, shown as `REV:path`.
#[derive(Debug, Clone, Default)]
pub struct Relabel {
    from: Option<(String, String)>,
}

impl Relabel {
    pub fn apply(&self, s: &str) -> String {
        match &self.from {
            Some((from, to)) => s.replacen(from, to, 1),
            None => s.to_owned(),
        }
    }
}

/// The two sides being compared, and how base locations are shown.
pub struct Sides<'a> {
    pub base: &'a Snapshot,
    pub head: &'a Snapshot,
    pub relabel: &'a Relabel,
}

pub(crate) fn flip(sides: &Sides<'_>, q: &Query, b: &Answer, h: &Answer) -> Flip {
    let Sides {
        base,
        head,
        relabel,
    } = sides;
    Flip {
        principal: q.principal.to_string(),
        action: envs::short_action(&q.action),
        resource: q.resource.to_string(),
        context: q.context.clone(),
        before: b.decision,
        after: h.decision,
        reasons_before: policy_refs(base, &b.reasons, relabel),
        reasons_after: policy_refs(head, &h.reasons, &Relabel::default()),
        intended: false,
    }
}

/// Everything one run found.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub base: String,
    pub head: String,
    /// Environments whose relevant policies differ.
    pub touched: Vec<TouchedReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exhaustive: Option<exhaustive::Exhaustive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbolic: Option<symbolic::Symbolic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<replay::Replay>,
    /// Whether `--expect-changes` was given (then only unintended changes count).
    pub expectations: bool,
    /// Expected changes nothing matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched_expectations: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TouchedReport {
    pub env: envs::Env,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl DiffReport {
    /// Changes that count against the run (all, or the unintended ones).
    pub fn unintended(&self) -> usize {
        let (ex, sym, rep) = self.counts();
        ex + sym + rep
    }

    /// Those changes per mode: exhaustive flips, symbolic findings (one per
    /// environment and direction), replayed questions.
    pub fn counts(&self) -> (usize, usize, usize) {
        let ex = self
            .exhaustive
            .as_ref()
            .map_or(0, |e| e.flips.iter().filter(|f| !f.intended).count());
        let sym = self.symbolic.as_ref().map_or(0, |s| {
            s.environments
                .iter()
                .flat_map(|e| &e.findings)
                .filter(|f| !f.intended)
                .count()
        });
        let rep = self
            .replay
            .as_ref()
            .map_or(0, |r| r.changes.iter().filter(|f| !f.flip.intended).count());
        (ex, sym, rep)
    }

    pub fn changed(&self) -> bool {
        self.unintended() > 0
    }

    /// Whether the symbolic mode left a touched environment unanswered
    /// (not analysed, or timed out).
    pub fn incomplete(&self) -> bool {
        self.symbolic.as_ref().is_some_and(|s| {
            s.environments.iter().any(|e| {
                !matches!(
                    e.status,
                    symbolic::Status::Equivalent | symbolic::Status::Changed
                )
            })
        })
    }
}

/// Runs `doorman diff` and prints the report.
pub fn run_cli(args: &DiffArgs) -> ExitCode {
    match run(args) {
        Ok(report) => {
            print!("{}", report::render(&report, args.format));
            if report.changed() {
                ExitCode::from(3)
            } else if report.incomplete() {
                // Not analysed is never "equivalent": a run that could not
                // look everywhere it was asked to does not pass.
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Loads both sides and runs the modes asked for.
pub fn run(args: &DiffArgs) -> Result<DiffReport, String> {
    // `--head` replaces only the policies: the schema and entities are
    // the loading flags' (the bundled ones when none are given).
    let mut head_sources = args.load.sources();
    if let Some(head) = &args.head {
        head_sources.policies = head.clone();
    }
    let head_dir = head_sources.policies.clone();
    let checkout;
    let (base_dir, base_label, relabel) = match (&args.base, &args.base_rev) {
        (Some(dir), _) => (dir.clone(), dir.display().to_string(), Relabel::default()),
        (None, Some(rev)) => {
            checkout = Checkout::new(rev, &head_dir)?;
            let shown = format!("{rev}:{}", head_dir.display());
            let relabel = Relabel {
                from: Some((checkout.policies.display().to_string(), shown.clone())),
            };
            (checkout.policies.clone(), shown, relabel)
        }
        (None, None) => return Err("error: give --base DIR or --base-rev REV".into()),
    };

    let head = crate::load::load(&head_sources)
        .and_then(|s| crate::postgres::read_blocking(s, &head_sources.databases))
        .map_err(|e| load_failed("head", &e))?;
    let mut base_sources = head_sources.clone();
    base_sources.policies = base_dir;
    // Entity files are taken from the head's load (same bytes, same schema).
    let base =
        crate::load::load_over(&base_sources, Some(&head)).map_err(|e| load_failed("base", &e))?;
    let base = crate::postgres::read_blocking(base, &base_sources.databases)
        .map_err(|e| load_failed("base", &e))?;

    let schema = head
        .schema()
        .ok_or("error: doorman diff needs a schema (its environments come from it)")?;
    let touched = envs::touched(schema, base.policy_set(), head.policy_set());

    let sides = Sides {
        base: &base,
        head: &head,
        relabel: &relabel,
    };
    let exhaustive = (!args.no_exhaustive).then(|| {
        let contexts = exhaustive::suite_contexts(&args.suites);
        exhaustive::run(&sides, &touched, &contexts)
    });
    let symbolic = (!args.no_symbolic).then(|| {
        symbolic::run(
            schema,
            &sides,
            &touched,
            &symbolic::Options {
                timeout: args.solver_timeout,
                never_errors: args.check.contains(&Check::NeverErrors),
            },
        )
    });
    let replay = match &args.replay {
        Some(log) => Some(replay::run(log, &sides)?),
        None => None,
    };
    let mut report = DiffReport {
        base: base_label,
        head: head_dir.display().to_string(),
        touched: touched
            .iter()
            .map(|t| TouchedReport {
                env: t.env.clone(),
                removed: t.removed.clone(),
                added: t.added.clone(),
            })
            .collect(),
        exhaustive,
        symbolic,
        replay,
        expectations: args.expect_changes.is_some(),
        unmatched_expectations: Vec::new(),
    };
    if let Some(file) = &args.expect_changes {
        let expected = expect::read(file)?;
        report.unmatched_expectations = expect::apply(&expected, &mut report);
    }
    Ok(report)
}

fn load_failed(side: &str, e: &crate::LoadError) -> String {
    let mut out = String::new();
    for d in &e.diagnostics {
        out.push_str(&format!("{d}\n\n"));
    }
    out.push_str(&format!("error: the {side} policies do not load: {e}"));
    out
}

/// The policy directory as of a git revision, written to a temporary
/// directory (removed on drop).
struct Checkout {
    root: PathBuf,
    policies: PathBuf,
}

impl Checkout {
    fn new(rev: &str, dir: &Path) -> Result<Checkout, String> {
        let git = |args: &[&str]| -> Result<Vec<u8>, String> {
            let out = std::process::Command::new("git")
                .args(args)
                .output()
                .map_err(|e| format!("error: cannot run git: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "error: git {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(out.stdout)
        };
        let spec = dir.display().to_string();
        let listing = git(&[
            "ls-tree",
            "-r",
            "--name-only",
            "--full-name",
            rev,
            "--",
            &spec,
        ])?;
        let prefix = String::from_utf8_lossy(&git(&["rev-parse", "--show-prefix"])?)
            .trim()
            .to_owned();
        let root = std::env::temp_dir().join(format!(
            "doorman-diff-{}-{}",
            std::process::id(),
            rev.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ));
        let policies = root.join("policies");
        std::fs::create_dir_all(&policies).map_err(|e| format!("error: {e}"))?;
        let checkout = Checkout { root, policies };
        // Paths relative to the directory, whatever the repository root.
        let full_dir = format!(
            "{prefix}{}",
            spec.trim_start_matches("./").trim_end_matches('/')
        );
        let mut n = 0;
        for name in String::from_utf8_lossy(&listing).lines() {
            if !name.ends_with(".cedar") {
                continue;
            }
            let rel = name
                .strip_prefix(&full_dir)
                .unwrap_or(name)
                .trim_start_matches('/');
            let bytes = git(&["show", &format!("{rev}:{name}")])?;
            let target = checkout.policies.join(rel);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("error: {e}"))?;
            }
            std::fs::write(&target, bytes).map_err(|e| format!("error: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("error: no *.cedar files under {spec} at {rev}"));
        }
        Ok(checkout)
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
