//! `doorman diff`'s output: text for people, JSON for tools, Markdown for a
//! pull request comment (a summary table, then the details).
//!
//! Every section says what it proves: the exhaustive mode covers the loaded
//! world only, the symbolic mode every request of an environment, replay
//! the logged questions only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::symbolic::Status;
use super::{DiffFormat, DiffReport, Flip, PolicyRef};

pub fn render(report: &DiffReport, format: DiffFormat) -> String {
    match format {
        DiffFormat::Json => format!("{:#}\n", serde_json::to_value(report).unwrap_or_default()),
        DiffFormat::Text => text(report),
        DiffFormat::Markdown => markdown(report),
    }
}

fn refs(r: &[PolicyRef]) -> String {
    if r.is_empty() {
        "none (default deny)".into()
    } else {
        r.iter()
            .map(|p| format!("{} ({})", p.id, p.at))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn mark(intended: bool) -> &'static str {
    if intended { " [intended]" } else { "" }
}

fn context(f: &Flip) -> String {
    match f.context.as_object() {
        Some(o) if o.is_empty() => String::new(),
        _ => format!(" context {}", f.context),
    }
}

/// Flips grouped by action, then by the rule tags involved.
fn grouped(flips: &[Flip]) -> BTreeMap<(&str, String), Vec<&Flip>> {
    let mut g: BTreeMap<(&str, String), Vec<&Flip>> = BTreeMap::new();
    for f in flips {
        g.entry((f.action.as_str(), f.tags())).or_default().push(f);
    }
    g
}

fn verdict(report: &DiffReport) -> String {
    let n = report.unintended();
    match (n, report.expectations) {
        (0, _) if report.incomplete() => {
            "no change found, but the symbolic mode did not answer for every environment (see above)".into()
        }
        (0, false) => "no change in authorization".into(),
        (0, true) => "only intended changes".into(),
        (_, expectations) => {
            let (ex, sym, rep) = report.counts();
            let mut parts = Vec::new();
            if report.exhaustive.is_some() {
                parts.push(format!("{ex} flip(s) in the known world"));
            }
            if report.symbolic.is_some() {
                parts.push(format!("{sym} change(s) over every request"));
            }
            if report.replay.is_some() {
                parts.push(format!("{rep} replayed question(s) changed"));
            }
            format!(
                "{}authorization changed: {}",
                if expectations { "unintended changes: " } else { "" },
                parts.join(", ")
            )
        }
    }
}

fn text(r: &DiffReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "doorman diff: OLD {}  NEW {}", r.base, r.head);
    if r.touched.is_empty() {
        let _ = writeln!(
            o,
            "no request environment's policies differ (same policy text, whatever the IDs, layout, comments or order)"
        );
    } else {
        let _ = writeln!(
            o,
            "{} request environment(s) whose policies differ:",
            r.touched.len()
        );
        for t in &r.touched {
            let _ = writeln!(
                o,
                "  ({})  removed: [{}]  added: [{}]",
                t.env,
                t.removed.join(", "),
                t.added.join(", ")
            );
        }
    }
    if let Some(ex) = &r.exhaustive {
        let _ = writeln!(
            o,
            "\n== Over the known world (exhaustive: every request among the loaded entities; proves nothing beyond them)"
        );
        let _ = writeln!(
            o,
            "{} requests in {} environment(s), {} decisions made, {:.1} ms: {} flip(s)",
            ex.requests,
            ex.environments.len(),
            ex.decided,
            ex.elapsed_ms,
            ex.flips.len()
        );
        for e in &ex.environments {
            if let Some(why) = &e.not_covered {
                let _ = writeln!(o, "  ({}): {why}", e.env);
            }
        }
        for ((action, tags), flips) in grouped(&ex.flips) {
            let _ = writeln!(o, "{action} [{tags}]: {} flip(s)", flips.len());
            for f in flips {
                let _ = writeln!(
                    o,
                    "  {} -> {}  {} {}{}{}",
                    f.before,
                    f.after,
                    f.principal,
                    f.resource,
                    context(f),
                    mark(f.intended)
                );
                let _ = writeln!(o, "      before: {}", refs(&f.reasons_before));
                let _ = writeln!(o, "      after:  {}", refs(&f.reasons_after));
            }
        }
    }
    if let Some(sym) = &r.symbolic {
        let _ = writeln!(
            o,
            "\n== Over every possible request (symbolic, cedar-policy-symcc with {}; proves equivalence per environment)",
            sym.solver
        );
        for e in &sym.environments {
            let status = match e.status {
                Status::Equivalent => "equivalent".to_owned(),
                Status::Changed => "CHANGED".to_owned(),
                Status::NotAnalysed => {
                    format!("not analysed: {}", e.reason.as_deref().unwrap_or(""))
                }
                Status::TimedOut => format!("timed out: {}", e.reason.as_deref().unwrap_or("")),
            };
            let _ = writeln!(o, "  ({}): {status} ({:.0} ms)", e.env, e.elapsed_ms);
            for f in &e.findings {
                let _ = writeln!(
                    o,
                    "    {}{}{}",
                    f.direction,
                    if f.verified {
                        " (re-checked with Cedar's authorizer)"
                    } else {
                        " (NOT confirmed by Cedar's authorizer)"
                    },
                    mark(f.intended)
                );
                let _ = writeln!(o, "      request:  {}", f.request);
                let _ = writeln!(o, "      entities: {}", f.entities);
                let _ = writeln!(o, "      before: {}", refs(&f.reasons_before));
                let _ = writeln!(o, "      after:  {}", refs(&f.reasons_after));
            }
        }
        for w in &sym.warnings {
            let _ = writeln!(
                o,
                "warning: {} ({}): {}: {}",
                w.at, w.policy, w.kind, w.detail
            );
        }
    }
    if let Some(rep) = &r.replay {
        let _ = writeln!(
            o,
            "\n== Over real traffic (replay of {}: only the logged questions)",
            rep.log
        );
        let _ = writeln!(
            o,
            "{} questions, {} changed, {} skipped (unknown version), {} bad line(s), {} logged decision(s) differ from OLD's answer, {:.1} ms",
            rep.questions,
            rep.changes.len(),
            rep.skipped_versions,
            rep.bad_lines.len(),
            rep.logged_differs,
            rep.elapsed_ms
        );
        for b in &rep.bad_lines {
            let _ = writeln!(o, "  {}:{}: {}", rep.log, b.line, b.message);
        }
        for c in &rep.changes {
            let f = &c.flip;
            let _ = writeln!(
                o,
                "  line {}: {} -> {}  {} {} {}{}{}",
                c.line,
                f.before,
                f.after,
                f.principal,
                f.action,
                f.resource,
                context(f),
                mark(f.intended)
            );
            let _ = writeln!(o, "      before: {}", refs(&f.reasons_before));
            let _ = writeln!(o, "      after:  {}", refs(&f.reasons_after));
        }
    }
    for e in &r.unmatched_expectations {
        let _ = writeln!(o, "note: expected change not seen: {e}");
    }
    let _ = writeln!(o, "\n{}", verdict(r));
    o
}

fn markdown(r: &DiffReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### doorman diff: {}\n", verdict(r));
    let _ = writeln!(o, "| mode | what it proves | result |\n|---|---|---|");
    if let Some(ex) = &r.exhaustive {
        let uncovered = ex
            .environments
            .iter()
            .filter(|e| e.not_covered.is_some())
            .count();
        let _ = writeln!(
            o,
            "| exhaustive | every request among the loaded entities | {} flip(s) over {} requests{} |",
            ex.flips.len(),
            ex.requests,
            if uncovered > 0 {
                format!(", {uncovered} environment(s) not covered")
            } else {
                String::new()
            }
        );
    }
    if let Some(sym) = &r.symbolic {
        let count = |s: Status| sym.environments.iter().filter(|e| e.status == s).count();
        let _ = writeln!(
            o,
            "| symbolic | every possible request | {} changed, {} equivalent, {} not analysed, {} timed out |",
            count(Status::Changed),
            count(Status::Equivalent),
            count(Status::NotAnalysed),
            count(Status::TimedOut)
        );
    }
    if let Some(rep) = &r.replay {
        let _ = writeln!(
            o,
            "| replay | the logged questions | {} of {} changed, {} bad line(s) |",
            rep.changes.len(),
            rep.questions,
            rep.bad_lines.len()
        );
    }
    let _ = writeln!(
        o,
        "\n<details><summary>Details</summary>\n\n```text\n{}```\n</details>",
        text(r)
    );
    o
}
