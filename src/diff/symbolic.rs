//! Over every possible request: the two policy sets compared by
//! `cedar-policy-symcc` with the cvc5 solver, one environment at a time.
//!
//! For each touched environment two questions go to the solver: does NEW
//! allow something OLD denied (NEW does not imply OLD), and did OLD allow
//! something NEW denies. A "yes" comes with a counterexample (a request and
//! its entities), which is evaluated again here with Cedar's authorizer on
//! both sets: `verified` says it really flips. An environment is
//! "equivalent" only when the solver proved both implications; one whose
//! policies symcc cannot encode is "not analysed" with the reason, and one
//! the solver did not finish within `--solver-timeout` is "timed out".
//!
//! The solver runs as a child process; after any solver error (or a
//! timeout) it is discarded and the next question starts a fresh one, so a
//! confused process never answers another question.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Decision as CedarDecision, Entities, PolicyId, Request, Schema};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env as Cex};
use serde::Serialize;
use serde_json::{Value, json};

use super::envs::{Env, Touched};
use super::{PolicyRef, Sides, policy_refs};
use crate::decide::Decision;

pub struct Options {
    /// Per question and environment.
    pub timeout: Duration,
    /// Also ask whether each changed policy can error.
    pub never_errors: bool,
}

#[derive(Debug, Serialize)]
pub struct Symbolic {
    /// The solver's `--version` line, or why there is none.
    pub solver: String,
    pub environments: Vec<SymEnv>,
    /// Per-policy findings about the head's changed policies.
    pub warnings: Vec<PolicyWarning>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Equivalent,
    Changed,
    NotAnalysed,
    TimedOut,
}

#[derive(Debug, Serialize)]
pub struct SymEnv {
    pub env: Env,
    pub status: Status,
    /// Why not analysed, or what timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    #[serde(rename = "NEW allows what OLD denied")]
    Widened,
    #[serde(rename = "OLD allowed what NEW denies")]
    Narrowed,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Widened => "NEW allows what OLD denied",
            Direction::Narrowed => "OLD allowed what NEW denies",
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub direction: Direction,
    /// `{principal, action, resource, context}` in Cedar's JSON forms.
    pub request: Value,
    /// Cedar entity JSON.
    pub entities: Value,
    /// Cedar's authorizer, run on the counterexample with both sets, agrees
    /// that the decision flips this way.
    pub verified: bool,
    pub reasons_before: Vec<PolicyRef>,
    pub reasons_after: Vec<PolicyRef>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub intended: bool,
}

#[derive(Debug, Serialize)]
pub struct PolicyWarning {
    pub policy: String,
    pub at: String,
    /// `never applies` (a dead policy: it matches no request of any
    /// environment it is scoped to) or `may error`.
    pub kind: String,
    pub detail: String,
}

/// A solver session: started on first use, dropped after any error.
struct Session {
    timeout: Duration,
    compiler: Option<CedarSymCompiler<LocalSolver>>,
}

enum Asked<T> {
    Answer(T),
    TimedOut,
    Failed(String),
}

impl Session {
    fn compiler(&mut self) -> Result<&mut CedarSymCompiler<LocalSolver>, String> {
        if self.compiler.is_none() {
            let limit = format!("--tlimit-per={}", self.timeout.as_millis().max(1));
            let solver = LocalSolver::cvc5_with_args([limit]).map_err(|e| {
                format!("cannot start cvc5 (install Debian's cvc5, or set $CVC5): {e}")
            })?;
            self.compiler = Some(CedarSymCompiler::new(solver).map_err(|e| e.to_string())?);
        }
        Ok(self.compiler.as_mut().expect("set above"))
    }

    /// Runs one solver question with the timeout; discards the solver
    /// after an error or a timeout.
    async fn ask<T, F>(&mut self, question: F) -> Asked<T>
    where
        F: AsyncFnOnce(&mut CedarSymCompiler<LocalSolver>) -> cedar_policy_symcc::err::Result<T>,
    {
        let timeout = self.timeout;
        let compiler = match self.compiler() {
            Ok(c) => c,
            Err(e) => return Asked::Failed(e),
        };
        // cvc5 gives up by itself after --tlimit-per; the outer bound
        // catches a solver that stops answering altogether.
        let outcome =
            tokio::time::timeout(timeout * 2 + Duration::from_secs(1), question(compiler)).await;
        match outcome {
            Ok(Ok(t)) => Asked::Answer(t),
            Ok(Err(cedar_policy_symcc::err::Error::SolverUnknown)) => {
                self.discard().await;
                Asked::TimedOut
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                self.discard().await;
                Asked::Failed(message)
            }
            Err(_) => {
                self.discard().await;
                Asked::TimedOut
            }
        }
    }

    async fn discard(&mut self) {
        if let Some(mut c) = self.compiler.take() {
            let _ = c.solver_mut().clean_up().await;
        }
    }
}

pub fn run(schema: &Schema, sides: &Sides<'_>, touched: &[Touched], options: &Options) -> Symbolic {
    let started = Instant::now();
    let solver = solver_version();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Symbolic {
                solver: format!("no async runtime: {e}"),
                environments: Vec::new(),
                warnings: Vec::new(),
                elapsed_ms: 0.0,
            };
        }
    };
    let (environments, warnings) = runtime.block_on(async {
        let mut session = Session {
            timeout: options.timeout,
            compiler: None,
        };
        let mut envs = Vec::new();
        for t in touched {
            envs.push(one_env(&mut session, schema, sides, t).await);
        }
        let warnings = policy_warnings(&mut session, schema, sides, touched, options).await;
        session.discard().await;
        (envs, warnings)
    });
    Symbolic {
        solver,
        environments,
        warnings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

fn solver_version() -> String {
    let path = std::env::var("CVC5").unwrap_or_else(|_| "cvc5".into());
    match std::process::Command::new(&path).arg("--version").output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().next().unwrap_or("cvc5");
            first.trim_start_matches("This is ").replace(" version", "")
        }
        Err(e) => format!("{path} not found: {e}"),
    }
}

async fn one_env(session: &mut Session, schema: &Schema, sides: &Sides<'_>, t: &Touched) -> SymEnv {
    let started = Instant::now();
    let done = |status, reason: Option<String>, findings| SymEnv {
        env: t.env.clone(),
        status,
        reason,
        findings,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    let compile = |side: &str, set| {
        CompiledPolicySet::compile(set, &t.request_env, schema).map_err(|e| {
            format!(
                "symcc cannot encode the {side} policies here: {}",
                chain(&e)
            )
        })
    };
    let (base, head) = match (
        compile("OLD", sides.base.policy_set()),
        compile("NEW", sides.head.policy_set()),
    ) {
        (Ok(b), Ok(h)) => (b, h),
        (Err(e), _) | (_, Err(e)) => return done(Status::NotAnalysed, Some(e), Vec::new()),
    };
    let mut findings = Vec::new();
    for direction in [Direction::Widened, Direction::Narrowed] {
        let (more, less) = match direction {
            Direction::Widened => (&head, &base),
            Direction::Narrowed => (&base, &head),
        };
        let asked = session
            .ask(async |c: &mut CedarSymCompiler<LocalSolver>| {
                c.check_implies_with_counterexample_opt(more, less).await
            })
            .await;
        match asked {
            Asked::Answer(None) => {}
            Asked::Answer(Some(cex)) => findings.push(finding(sides, direction, &cex)),
            Asked::TimedOut => {
                return done(
                    Status::TimedOut,
                    Some(format!(
                        "the solver did not answer \"{direction}?\" within --solver-timeout {:?}",
                        session.timeout
                    )),
                    findings,
                );
            }
            Asked::Failed(e) => {
                return done(
                    Status::NotAnalysed,
                    Some(format!("solver error: {e}")),
                    findings,
                );
            }
        }
    }
    let status = if findings.is_empty() {
        Status::Equivalent
    } else {
        Status::Changed
    };
    done(status, None, findings)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

fn finding(sides: &Sides<'_>, direction: Direction, cex: &Cex) -> Finding {
    let answer = |set| Authorizer::new().is_authorized(&cex.request, set, &cex.entities);
    let (b, h) = (
        answer(sides.base.policy_set()),
        answer(sides.head.policy_set()),
    );
    let verified = match direction {
        Direction::Widened => {
            b.decision() == CedarDecision::Deny && h.decision() == CedarDecision::Allow
        }
        Direction::Narrowed => {
            b.decision() == CedarDecision::Allow && h.decision() == CedarDecision::Deny
        }
    };
    let ids = |r: &cedar_policy::Response| -> Vec<String> {
        let mut v: Vec<String> = r
            .diagnostics()
            .reason()
            .map(|id| AsRef::<str>::as_ref(id).to_owned())
            .collect();
        v.sort();
        v
    };
    Finding {
        direction,
        request: request_json(&cex.request),
        entities: entities_json(&cex.entities),
        verified,
        reasons_before: policy_refs(sides.base, &ids(&b), sides.relabel),
        reasons_after: policy_refs(sides.head, &ids(&h), &Default::default()),
        intended: false,
    }
}

/// The request as `{principal, action, resource, context}`, entity
/// references in Cedar's JSON form, ready for a test case.
pub fn request_json(r: &Request) -> Value {
    // `{"type", "id"}`, the form test cases and the v1 API take.
    let uid = |u: Option<&cedar_policy::EntityUid>| match u {
        Some(u) => json!({"type": u.type_name().to_string(), "id": AsRef::<str>::as_ref(u.id())}),
        None => Value::Null,
    };
    json!({
        "principal": uid(r.principal()),
        "action": uid(r.action()),
        "resource": uid(r.resource()),
        "context": r.context().and_then(|c| c.to_json_value().ok()).unwrap_or(json!({})),
    })
}

/// The counterexample's entities without the schema's action entities,
/// which every request has anyway.
fn entities_json(e: &Entities) -> Value {
    let is_action = |v: &Value| {
        v.pointer("/uid/type")
            .and_then(Value::as_str)
            .is_some_and(|t| t == "Action" || t.ends_with("::Action"))
    };
    match e.to_json_value() {
        Ok(Value::Array(items)) => {
            let mut items: Vec<Value> = items.into_iter().filter(|v| !is_action(v)).collect();
            let key = |v: &Value| {
                let part = |k: &str| v["uid"][k].as_str().unwrap_or_default().to_owned();
                (part("type"), part("id"))
            };
            items.sort_by_key(key);
            Value::Array(items)
        }
        Ok(other) => other,
        Err(_) => Value::Null,
    }
}

impl Finding {
    /// The request's parts as users type them (for matching expectations).
    pub fn parts(&self) -> (String, String, String) {
        let text = |v: &Value| -> String {
            match (
                v.get("type").and_then(Value::as_str),
                v.get("id").and_then(Value::as_str),
            ) {
                (Some(t), Some(id)) => format!("{t}::{}", Value::String(id.to_owned())),
                _ => String::new(),
            }
        };
        let action = self.request.get("action").map(text).unwrap_or_default();
        let action = action
            .strip_prefix("Action::\"")
            .and_then(|a| a.strip_suffix('"'))
            .map(str::to_owned)
            .unwrap_or(action);
        (
            self.request.get("principal").map(text).unwrap_or_default(),
            action,
            self.request.get("resource").map(text).unwrap_or_default(),
        )
    }

    pub fn decisions(&self) -> (Decision, Decision) {
        match self.direction {
            Direction::Widened => (Decision::Deny, Decision::Allow),
            Direction::Narrowed => (Decision::Allow, Decision::Deny),
        }
    }
}

/// Dead-policy and (with `--check never-errors`) may-error findings for the
/// head's changed policies, over the environments they are scoped to.
async fn policy_warnings(
    session: &mut Session,
    schema: &Schema,
    sides: &Sides<'_>,
    touched: &[Touched],
    options: &Options,
) -> Vec<PolicyWarning> {
    let mut envs_of: BTreeMap<&str, Vec<&Touched>> = BTreeMap::new();
    for t in touched {
        for id in &t.added {
            envs_of.entry(id.as_str()).or_default().push(t);
        }
    }
    let mut out = Vec::new();
    for (id, envs) in envs_of {
        let Some(policy) = sides.head.policy_set().policy(&PolicyId::new(id)) else {
            continue;
        };
        let at = sides
            .head
            .policy(id)
            .map(|p| p.location())
            .unwrap_or_default();
        let mut dead = true;
        let mut unsure = false;
        for t in &envs {
            let compiled = match CompiledPolicy::compile(policy, &t.request_env, schema) {
                Ok(c) => c,
                Err(_) => {
                    unsure = true;
                    continue;
                }
            };
            let never = session
                .ask(async |c: &mut CedarSymCompiler<LocalSolver>| {
                    c.check_never_matches_opt(&compiled).await
                })
                .await;
            match never {
                Asked::Answer(true) => {}
                Asked::Answer(false) => dead = false,
                _ => unsure = true,
            }
            if options.never_errors {
                let errs = session
                    .ask(async |c: &mut CedarSymCompiler<LocalSolver>| {
                        c.check_never_errors_with_counterexample_opt(&compiled)
                            .await
                    })
                    .await;
                match errs {
                    Asked::Answer(Some(cex)) => out.push(PolicyWarning {
                        policy: id.to_owned(),
                        at: at.clone(),
                        kind: "may error".into(),
                        detail: format!("in ({}), e.g. {}", t.env, request_json(&cex.request)),
                    }),
                    Asked::Answer(None) => {}
                    Asked::TimedOut => out.push(PolicyWarning {
                        policy: id.to_owned(),
                        at: at.clone(),
                        kind: "never-errors not decided".into(),
                        detail: format!("in ({}): solver timed out", t.env),
                    }),
                    Asked::Failed(e) => out.push(PolicyWarning {
                        policy: id.to_owned(),
                        at: at.clone(),
                        kind: "never-errors not decided".into(),
                        detail: format!("in ({}): {e}", t.env),
                    }),
                }
            }
        }
        if dead && !unsure {
            out.push(PolicyWarning {
                policy: id.to_owned(),
                at,
                kind: "never applies".into(),
                detail: format!(
                    "dead policy: it matches no request in any of its {} environment(s)",
                    envs.len()
                ),
            });
        }
    }
    out
}
