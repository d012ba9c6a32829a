//! Over the known world: every request the schema allows among the loaded
//! entities, answered by both policy sets.
//!
//! Only the environments the edit touches ([`super::envs::touched`]) are
//! enumerated; every other request has the same relevant policies on both
//! sides and so the same answer. Within one, each principal's allowed
//! resources are found by [`Snapshot::search`] on each side (which decides
//! only the candidates that forbids certainly denying the rest leave, with
//! the sliced decision path the sidecar serves from), and the requests
//! whose answers differ are decided again for their reasons. Principals
//! are independent, so they are shared out across the cores.
//!
//! Contexts: those the YAML suites use for the action, and `{}` where the
//! schema accepts an empty context. An environment with neither is
//! reported "not covered" rather than silently passed.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;

use cedar_policy::{EntityUid, RequestEnv};
use serde::Serialize;
use serde_json::Value;

use super::envs::{Env, Touched, short_action};
use super::{Flip, Sides, flip};
use crate::Snapshot;
use crate::decide::Query;
use crate::search::Searched;

/// What the exhaustive mode found.
#[derive(Debug, Default, Serialize)]
pub struct Exhaustive {
    /// The touched environments, each with its request count and outcome.
    pub environments: Vec<EnvOutcome>,
    pub flips: Vec<Flip>,
    /// Requests of the touched environments in the known world (principals
    /// x resources x contexts): what the answers cover.
    pub requests: u64,
    /// Decisions actually made, both sides together: the rest were ruled
    /// out by forbids that certainly deny (see src/search).
    pub decided: u64,
    pub elapsed_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct EnvOutcome {
    pub env: Env,
    pub requests: u64,
    pub flips: usize,
    /// Why this environment was not (or not fully) enumerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_covered: Option<String>,
}

/// Contexts per action, from the suites.
pub type Contexts = BTreeMap<EntityUid, Vec<Value>>;

/// Reads the contexts the suites under `paths` use, per action.
pub fn suite_contexts(paths: &[std::path::PathBuf]) -> Contexts {
    let mut out: Contexts = BTreeMap::new();
    let existing: Vec<_> = paths.iter().filter(|p| p.exists()).cloned().collect();
    if existing.is_empty() {
        return out;
    }
    let Ok(suites) = crate::testing::suite::read_all(&existing) else {
        return out;
    };
    for case in suites.iter().flat_map(|s| &s.cases) {
        let Ok(action) = crate::decide::parse_action(&case.action) else {
            continue;
        };
        let list = out.entry(action).or_default();
        if !list.contains(&case.context) {
            list.push(case.context.clone());
        }
    }
    out
}

pub fn run(sides: &Sides<'_>, touched: &[Touched], contexts: &Contexts) -> Exhaustive {
    let started = std::time::Instant::now();
    let mut report = Exhaustive::default();
    for t in touched {
        let outcome = one_env(sides, &t.request_env, contexts, &mut report);
        report.environments.push(EnvOutcome {
            env: t.env.clone(),
            ..outcome
        });
    }
    // Store and hash order are not an order to read a report in.
    report.flips.sort_by(|a, b| {
        (&a.action, &a.principal, &a.resource, a.context.to_string()).cmp(&(
            &b.action,
            &b.principal,
            &b.resource,
            b.context.to_string(),
        ))
    });
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    report
}

fn of_type(snapshot: &Snapshot, ty: &cedar_policy::EntityTypeName) -> Vec<EntityUid> {
    let core: &cedar_policy_core::ast::EntityType = ty.as_ref();
    snapshot
        .store()
        .of_type(core, None)
        .map(|(_, r)| EntityUid::from(r.key.uid()))
        .collect()
}

fn one_env(
    sides: &Sides<'_>,
    env: &RequestEnv,
    contexts: &Contexts,
    report: &mut Exhaustive,
) -> EnvOutcome {
    let head = sides.head;
    let action = env.action();
    let blank = EnvOutcome {
        env: super::envs::env_of(env),
        requests: 0,
        flips: 0,
        not_covered: None,
    };
    let principals = of_type(head, env.principal());
    let resources = of_type(head, env.resource());
    if principals.is_empty() || resources.is_empty() {
        return EnvOutcome {
            not_covered: Some(format!(
                "no loaded {} entities",
                if principals.is_empty() {
                    env.principal()
                } else {
                    env.resource()
                }
            )),
            ..blank
        };
    }
    // The candidate contexts the schema accepts for this action.
    let mut candidates: Vec<Value> = contexts.get(action).cloned().unwrap_or_default();
    if !candidates.contains(&Value::Object(Default::default())) {
        candidates.push(Value::Object(Default::default()));
    }
    let probe = |context: &Value| {
        let q = Query {
            principal: principals[0].clone(),
            action: action.clone(),
            resource: resources[0].clone(),
            context: context.clone(),
        };
        !matches!(head.decide(&q), Err(e) if e.field.starts_with("context"))
    };
    let usable: Vec<Value> = candidates.into_iter().filter(probe).collect();
    if usable.is_empty() {
        return EnvOutcome {
            not_covered: Some(format!(
                "not covered: the context of {} has required attributes and no suite case gives one",
                short_action(action)
            )),
            ..blank
        };
    }
    let total = (principals.len() * resources.len() * usable.len()) as u64;
    // Principals are independent questions: split them across the cores,
    // each thread with its own tally, merged in principal order.
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(principals.len());
    let chunk = principals.len().div_ceil(threads);
    let found: Vec<Found> = std::thread::scope(|scope| {
        let workers: Vec<_> = principals
            .chunks(chunk)
            .map(|part| {
                let (usable, resources) = (&usable, &resources);
                scope.spawn(move || principals_flips(sides, action, part, resources, usable))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut flips = 0;
    let mut failure = None;
    for part in found {
        report.decided += part.decided;
        flips += part.flips.len();
        report.flips.extend(part.flips);
        if failure.is_none() {
            failure = part.failure;
        }
    }
    report.requests += total;
    EnvOutcome {
        requests: total,
        flips,
        not_covered: failure,
        ..blank
    }
}

/// What one thread found for its share of the principals.
#[derive(Default)]
struct Found {
    decided: u64,
    flips: Vec<Flip>,
    failure: Option<String>,
}

/// Per principal and context, the resources each side allows: a search
/// decides only the candidates the forbids that certainly deny leave (a
/// tenant's isolation rule leaves one tenant), and its answer is exactly
/// what deciding every candidate gives (src/search).
fn principals_flips(
    sides: &Sides<'_>,
    action: &EntityUid,
    principals: &[EntityUid],
    resources: &[EntityUid],
    usable: &[Value],
) -> Found {
    let (base, head) = (sides.base, sides.head);
    let all = NonZeroUsize::MAX;
    let mut found = Found::default();
    for p in principals {
        for context in usable {
            let q = Query {
                principal: p.clone(),
                action: action.clone(),
                resource: resources[0].clone(),
                context: context.clone(),
            };
            let pages = (
                base.search(Searched::Resource, &q, &[], None, all, all),
                head.search(Searched::Resource, &q, &[], None, all, all),
            );
            let (b, h) = match pages {
                (Ok(b), Ok(h)) => (b, h),
                (Err(e), _) | (_, Err(e)) => {
                    found
                        .failure
                        .get_or_insert_with(|| format!("a request was refused: {e}"));
                    continue;
                }
            };
            found.decided += (b.decided + h.decided) as u64;
            let before: HashSet<&EntityUid> = b.results.iter().collect();
            let after: HashSet<&EntityUid> = h.results.iter().collect();
            for r in before.symmetric_difference(&after) {
                let q = Query {
                    resource: (*r).clone(),
                    ..q.clone()
                };
                if let (Ok(b), Ok(h)) = (base.decide(&q), head.decide(&q)) {
                    found.decided += 2;
                    found.flips.push(flip(sides, &q, &b, &h));
                }
            }
        }
    }
    found
}
