//! Cases → outcomes, against snapshots loaded once per entity world.
//!
//! Every case names its world (the `--entities` one, a suite's own entity
//! files, or a Cedar test's inline entities). Worlds are keyed by the files
//! they expand to, so a suite naming `entities/world.yaml` and the default
//! `--entities fixtures/entities` share one snapshot; loading is the only
//! expensive step, and it happens before the first case runs.
//!
//! A world made of files that does not load stops the run (exit 2, with the
//! entity file's diagnostics): every case in it would fail for the same
//! reason that is not theirs. Inline entities that do not parse fail only
//! their case, as in `cedar run-tests`.
//!
//! A case passes or fails on its decision, then on its determining policies
//! (`reasons`), then on its evaluation-error count (Cedar files only).
//! Evaluation errors are always shown on a failing case, since a policy that
//! errored is a policy that was skipped.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::decide::{Answer, Decision, Query, QueryError};
use crate::diag::Diagnostic;
use crate::load::list_files;
use crate::snapshot::Snapshot;
use crate::testing::suite::{Case, Expect, Kind, Reasons, Suite, World};

/// Everything a run produced.
pub struct Report<'a> {
    pub suites: Vec<SuiteReport<'a>>,
    /// Every policy ID that determined at least one decision.
    pub covered: BTreeSet<String>,
    pub time: Duration,
}

/// The selected cases of one suite, with their outcomes.
pub struct SuiteReport<'a> {
    pub suite: &'a Suite,
    pub cases: Vec<CaseReport<'a>>,
    pub time: Duration,
}

pub struct CaseReport<'a> {
    pub case: &'a Case,
    pub status: Status,
    pub actual: Actual,
    pub time: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Why it failed, in one line (without the determining policies and
    /// errors, which the reports add from [`Actual`]).
    Fail(String),
    Skip(String),
}

/// What actually happened when the case ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actual {
    /// Skipped: nothing ran.
    NotRun,
    Answer(Answer),
    /// The request was refused as invalid (the `error` expectation).
    Refused(QueryError),
    /// The case itself is broken: a malformed entity reference, or inline
    /// entities that do not parse.
    Broken(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn selected(&self) -> usize {
        self.passed + self.failed + self.skipped
    }

    fn add(&mut self, status: &Status) {
        match status {
            Status::Pass => self.passed += 1,
            Status::Fail(_) => self.failed += 1,
            Status::Skip(_) => self.skipped += 1,
        }
    }
}

impl Report<'_> {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.suites {
            for case in &s.cases {
                c.add(&case.status);
            }
        }
        c
    }
}

impl SuiteReport<'_> {
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in &self.cases {
            c.add(&case.status);
        }
        c
    }
}

/// Runs every case `select` keeps. `default_entities` are the `--entities`
/// paths `base` was loaded from. Fails only when a suite's entity files do
/// not load.
pub fn run<'a>(
    base: &Snapshot,
    default_entities: &[PathBuf],
    suites: &'a [Suite],
    select: impl Fn(&Suite, &Case) -> bool,
) -> Result<Report<'a>, Vec<Diagnostic>> {
    let started = Instant::now();
    let selected: Vec<(&Suite, Vec<&Case>)> = suites
        .iter()
        .map(|s| {
            (
                s,
                s.cases.iter().filter(|c| select(s, c)).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, cases)| !cases.is_empty())
        .collect();

    let mut worlds = Worlds::new(base, default_entities);
    let mut diags = Vec::new();
    for (_, cases) in &selected {
        for case in cases.iter().filter(|c| c.skip.is_none()) {
            if let Err(mut d) = worlds.prepare(&case.world) {
                diags.append(&mut d);
            }
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }

    let aliases = cedar_aliases(base);
    let mut covered = BTreeSet::new();
    let mut reports = Vec::with_capacity(selected.len());
    for (suite, cases) in selected {
        let suite_started = Instant::now();
        let mut out = Vec::with_capacity(cases.len());
        for case in cases {
            let case_started = Instant::now();
            let (status, actual) = match &case.skip {
                Some(why) => (Status::Skip(why.clone()), Actual::NotRun),
                None => {
                    let actual = match worlds.get(&case.world) {
                        Ok(snapshot) => decide(snapshot, case),
                        Err(message) => Actual::Broken(message.to_owned()),
                    };
                    let names = match suite.kind {
                        Kind::Cedar => Some(&aliases),
                        Kind::Doorman => None,
                    };
                    (judge(base, case, &actual, names), actual)
                }
            };
            if let Actual::Answer(a) = &actual {
                covered.extend(a.reasons.iter().cloned());
            }
            out.push(CaseReport {
                case,
                status,
                actual,
                time: case_started.elapsed(),
            });
        }
        reports.push(SuiteReport {
            suite,
            cases: out,
            time: suite_started.elapsed(),
        });
    }
    Ok(Report {
        suites: reports,
        covered,
        time: started.elapsed(),
    })
}

fn decide(snapshot: &Snapshot, case: &Case) -> Actual {
    let query = match Query::parse(
        &case.principal,
        &case.action,
        &case.resource,
        case.context.clone(),
    ) {
        Ok(q) => q,
        Err(e) => return Actual::Broken(e.to_string()),
    };
    match snapshot.decide(&query) {
        Ok(answer) => Actual::Answer(answer),
        Err(e) => Actual::Refused(e),
    }
}

/// Compares what happened with what the case expects. `aliases` is set for
/// Cedar test files, whose unannotated policies are called `policyN`.
fn judge(
    base: &Snapshot,
    case: &Case,
    actual: &Actual,
    aliases: Option<&HashMap<String, String>>,
) -> Status {
    let answer = match (case.expect, actual) {
        (_, Actual::NotRun) => return Status::Skip(String::new()),
        (_, Actual::Broken(why)) => return Status::Fail(format!("invalid case: {why}")),
        (Expect::Error, Actual::Refused(_)) => return Status::Pass,
        (Expect::Error, Actual::Answer(a)) => {
            return Status::Fail(format!(
                "expected error (request refused as invalid), got {}",
                a.decision
            ));
        }
        (expect, Actual::Refused(e)) => {
            return Status::Fail(format!("expected {expect}, got error: {e}"));
        }
        (_, Actual::Answer(a)) => a,
    };
    let expected = match case.expect {
        Expect::Allow => Decision::Allow,
        _ => Decision::Deny,
    };
    if answer.decision != expected {
        return Status::Fail(format!("expected {expected}, got {}", answer.decision));
    }
    let resolve = |name: &String| -> String {
        aliases
            .and_then(|a| a.get(name))
            .cloned()
            .unwrap_or_else(|| name.clone())
    };
    let got: BTreeSet<&str> = answer.reasons.iter().map(String::as_str).collect();
    match &case.reasons {
        Some(Reasons::Exactly(want)) => {
            let want: BTreeSet<String> = want.iter().map(resolve).collect();
            let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
            if want != got {
                let missing: Vec<String> = want
                    .difference(&got)
                    .map(|id| unknown_hint(base, id))
                    .collect();
                let extra: Vec<&str> = got.difference(&want).copied().collect();
                return Status::Fail(format!(
                    "{} as expected, but the determining policies differ: expected [{}]{}{}",
                    answer.decision,
                    want.iter().copied().collect::<Vec<_>>().join(", "),
                    listed("; missing", &missing),
                    listed("; unexpected", &extra),
                ));
            }
        }
        Some(Reasons::AtLeast(want)) => {
            let missing: Vec<String> = want
                .iter()
                .map(resolve)
                .filter(|w| !got.contains(w.as_str()))
                .map(|w| unknown_hint(base, &w))
                .collect();
            if !missing.is_empty() {
                return Status::Fail(format!(
                    "{} as expected, but missing reason(s): {}",
                    answer.decision,
                    missing.join(", ")
                ));
            }
        }
        None => {}
    }
    if let Some(n) = case.num_errors
        && n != answer.errors.len()
    {
        return Status::Fail(format!(
            "{} as expected, but expected {n} evaluation error(s), got {}",
            answer.decision,
            answer.errors.len()
        ));
    }
    Status::Pass
}

/// A policy ID, flagged when no such policy exists: a typo in `reasons`
/// should read as one.
fn unknown_hint(base: &Snapshot, id: &str) -> String {
    if base.policy(id).is_some() {
        id.to_owned()
    } else {
        format!("{id} (no such policy)")
    }
}

fn listed(label: &str, items: &[impl AsRef<str>]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        format!("{label} {}", items.join(", "))
    }
}

/// Cedar names an unannotated policy `policyN` after its position in its
/// file; doorman names it `file.cedar#N` (the same N). With a single policy
/// file the two map one to one, so Cedar test files that expect `policy0`
/// keep working. With several files `policyN` is ambiguous and is left as
/// it is (and will not match).
fn cedar_aliases(base: &Snapshot) -> HashMap<String, String> {
    let policies = base.policies();
    let one_file = policies
        .first()
        .is_some_and(|first| policies.iter().all(|p| p.file == first.file));
    if !one_file {
        return HashMap::new();
    }
    policies
        .iter()
        .filter_map(|p| {
            let (_, n) = p.id.rsplit_once('#')?;
            let n: usize = n.parse().ok()?;
            Some((format!("policy{n}"), p.id.clone()))
        })
        .filter(|(alias, _)| base.policy(alias).is_none())
        .collect()
}

// ------------------------------------------------------------------ worlds

/// The snapshots cases are decided against, one per distinct entity set.
struct Worlds<'b> {
    base: &'b Snapshot,
    /// The files `--entities` expanded to: a suite naming exactly these uses
    /// `base` itself.
    base_files: Option<Vec<PathBuf>>,
    /// Each loaded snapshot, with the entity files it was loaded from (None
    /// for inline entities, which are never shared by file).
    loaded: Vec<(Option<Vec<PathBuf>>, Snapshot)>,
    /// World → index into `loaded` (None: `base`), or why it did not load.
    index: HashMap<World, Result<Option<usize>, String>>,
}

impl<'b> Worlds<'b> {
    fn new(base: &'b Snapshot, default_entities: &[PathBuf]) -> Self {
        Worlds {
            base,
            base_files: expand(default_entities),
            loaded: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Loads `world` unless it already is. Entity files that do not load are
    /// an error of the suite; inline entities that do not parse are recorded
    /// and fail their cases.
    fn prepare(&mut self, world: &World) -> Result<(), Vec<Diagnostic>> {
        if self.index.contains_key(world) {
            return Ok(());
        }
        let entry = match world {
            World::Default => Ok(None),
            World::Files(paths) => {
                let files = expand(paths);
                if files.is_some() && files == self.base_files {
                    Ok(None)
                } else if let Some(same) = self.same_files(files.as_ref()) {
                    Ok(Some(same))
                } else {
                    let snapshot = self
                        .base
                        .with_entity_files(paths)
                        .map_err(|e| e.diagnostics)?;
                    self.loaded.push((files, snapshot));
                    Ok(Some(self.loaded.len() - 1))
                }
            }
            World::Inline(text) => match serde_json::from_str(text) {
                Ok(json) => match self.base.with_entity_json(Path::new("entities"), json) {
                    Ok(snapshot) => {
                        self.loaded.push((None, snapshot));
                        Ok(Some(self.loaded.len() - 1))
                    }
                    Err(e) => Err(format!(
                        "entities: {}",
                        e.diagnostics
                            .iter()
                            .map(|d| d.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                },
                Err(e) => Err(format!("entities: {e}")),
            },
        };
        self.index.insert(world.clone(), entry);
        Ok(())
    }

    fn same_files(&self, files: Option<&Vec<PathBuf>>) -> Option<usize> {
        let files = files?;
        self.loaded
            .iter()
            .position(|(f, _)| f.as_ref() == Some(files))
    }

    fn get(&self, world: &World) -> Result<&Snapshot, &str> {
        match self.index.get(world) {
            Some(Ok(None)) => Ok(self.base),
            Some(Ok(Some(i))) => self
                .loaded
                .get(*i)
                .map(|(_, s)| s)
                .ok_or("entities were not loaded"),
            Some(Err(why)) => Err(why),
            None => Err("entities were not loaded"),
        }
    }
}

/// The entity files `paths` name, canonical and sorted: two worlds with the
/// same files are the same world. None when a path cannot be read (loading
/// will report it).
fn expand(paths: &[PathBuf]) -> Option<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let found = list_files(path, crate::load::is_entity_file).ok()?;
        for f in found {
            files.push(f.canonicalize().ok()?);
        }
    }
    files.sort();
    Some(files)
}
