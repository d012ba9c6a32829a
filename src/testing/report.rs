//! Outcomes → text for people, JSON for tools, JUnit XML for CI.
//!
//! All three are rendered from the same [`Report`] into a `String`, so a
//! format cannot disagree with another about what passed. The text format
//! prints only what needs attention (failures and skips, one line each, with
//! everything needed to act on it: file:line, case, request, expected and
//! actual decision, the determining policies with file:line, and evaluation
//! errors), then a line per suite, and ends with exactly
//! `N passed, M failed[, K skipped]`, the line CI systems read.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::decide::Answer;
use crate::snapshot::{PolicyInfo, Snapshot};
use crate::testing::run::{Actual, CaseReport, Counts, Report, Status, SuiteReport};
use crate::testing::suite::{Case, Expect, Kind, Reasons};

/// Which policies determined no decision in the run.
pub struct Coverage<'a> {
    /// Static policies: templates never determine a decision themselves, so
    /// they are left out rather than reported as forever uncovered.
    pub total: usize,
    pub uncovered: Vec<&'a PolicyInfo>,
    pub templates: usize,
    /// `--require-coverage`: uncovered policies fail the run.
    pub required: bool,
}

impl<'a> Coverage<'a> {
    pub fn new(base: &'a Snapshot, covered: &BTreeSet<String>, required: bool) -> Self {
        let policies: Vec<&PolicyInfo> = base.policies().iter().filter(|p| !p.template).collect();
        Coverage {
            total: policies.len(),
            uncovered: policies
                .into_iter()
                .filter(|p| !covered.contains(&p.id))
                .collect(),
            templates: base.template_count(),
            required,
        }
    }

    pub fn covered(&self) -> usize {
        self.total - self.uncovered.len()
    }

    /// The covered share in percent (100 when there is nothing to cover).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.covered() as f64 * 100.0 / self.total as f64
        }
    }

    pub fn fails(&self) -> bool {
        self.required && !self.uncovered.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "{} of {} policies determined a decision ({:.1}%)",
            self.covered(),
            self.total,
            self.percent()
        )
    }
}

/// `N passed, M failed` with `, K skipped` when there are any.
fn counts_line(c: Counts) -> String {
    let mut s = format!("{} passed, {} failed", c.passed, c.failed);
    if c.skipped > 0 {
        s.push_str(&format!(", {} skipped", c.skipped));
    }
    s
}

fn title(case: &Case) -> String {
    match &case.rule {
        Some(rule) => format!("{} [{rule}]", case.name),
        None => case.name.clone(),
    }
}

fn place(suite: &SuiteReport<'_>, case: &Case) -> String {
    let file = suite.suite.file.display();
    match case.line {
        0 => file.to_string(),
        line => format!("{file}:{line}"),
    }
}

fn request(case: &Case) -> String {
    let mut s = format!(
        "{} {} {}",
        case.principal.trim(),
        case.action.trim(),
        case.resource.trim()
    );
    if case.context.as_object().is_some_and(|o| !o.is_empty()) {
        let _ = write!(s, " {}", case.context);
    }
    s
}

fn at(base: &Snapshot, id: &str) -> String {
    base.policy(id).map(|p| p.location()).unwrap_or_default()
}

/// What the answer rests on: the determining policies with their location,
/// and the policies that failed to evaluate.
fn evidence(base: &Snapshot, answer: &Answer) -> String {
    let mut s = if answer.reasons.is_empty() {
        " (no policy applied: default deny)".to_owned()
    } else {
        let by: Vec<String> = answer
            .reasons
            .iter()
            .map(|id| format!("{id} {}", at(base, id)))
            .collect();
        format!(" (by {})", by.join(", "))
    };
    for e in &answer.errors {
        let _ = write!(
            s,
            "; evaluation error in {} ({}): {}",
            e.policy,
            at(base, &e.policy),
            e.message
        );
    }
    s
}

/// The one-line explanation of a failure, evidence included.
fn failure_text(base: &Snapshot, why: &str, actual: &Actual) -> String {
    match actual {
        Actual::Answer(a) => format!("{why}{}", evidence(base, a)),
        _ => why.to_owned(),
    }
}

// -------------------------------------------------------------------- text

/// The report for a terminal or a CI log.
pub fn text(base: &Snapshot, report: &Report<'_>, coverage: Option<&Coverage<'_>>) -> String {
    let mut out = String::new();
    let mut noted = false;
    for suite in &report.suites {
        for c in &suite.cases {
            let line = match &c.status {
                Status::Pass => continue,
                Status::Fail(why) => format!(
                    "FAIL {} › {}: {}: {}",
                    place(suite, c.case),
                    title(c.case),
                    request(c.case),
                    failure_text(base, why, &c.actual)
                ),
                Status::Skip(why) => {
                    format!("SKIP {} › {}: {why}", place(suite, c.case), title(c.case))
                }
            };
            out.push_str(&line);
            out.push('\n');
            noted = true;
        }
    }
    if noted {
        out.push('\n');
    }
    for suite in &report.suites {
        let counts = suite.counts();
        let mark = if counts.failed > 0 { "FAIL" } else { "ok  " };
        let _ = writeln!(
            out,
            "{mark} {} ({}): {}",
            suite.suite.name,
            suite.suite.file.display(),
            counts_line(counts)
        );
    }
    if let Some(cov) = coverage {
        let _ = writeln!(out, "\ncoverage: {}", cov.summary());
        for p in &cov.uncovered {
            let _ = writeln!(
                out,
                "  never determined a decision: {} ({}, {})",
                p.id,
                p.effect,
                p.location()
            );
        }
        if cov.templates > 0 {
            let _ = writeln!(
                out,
                "  ({} templates not counted: only their linked policies decide)",
                cov.templates
            );
        }
        if cov.fails() {
            let n = cov.uncovered.len();
            let _ = writeln!(
                out,
                "coverage: FAIL (--require-coverage): {n} {} never determined a decision",
                if n == 1 { "policy" } else { "policies" }
            );
        }
    }
    let _ = writeln!(out, "\n{}", counts_line(report.counts()));
    out
}

// -------------------------------------------------------------------- json

/// A machine-readable document of suites, cases, outcomes and the summary.
pub fn json(base: &Snapshot, report: &Report<'_>, coverage: Option<&Coverage<'_>>) -> String {
    let counts = report.counts();
    let policy = |id: &str| -> Value {
        match base.policy(id) {
            Some(p) => json!({"id": id, "file": p.file, "line": p.line}),
            None => json!({"id": id}),
        }
    };
    let suites: Vec<Value> = report
        .suites
        .iter()
        .map(|s| {
            let c = s.counts();
            json!({
                "name": s.suite.name,
                "file": s.suite.file.display().to_string(),
                "format": match s.suite.kind { Kind::Doorman => "doorman", Kind::Cedar => "cedar" },
                "passed": c.passed,
                "failed": c.failed,
                "skipped": c.skipped,
                "time_ms": millis(s.time),
                "cases": s.cases.iter().map(|c| case_json(c, &policy)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let coverage = coverage.map(|cov| {
        json!({
            "policies": cov.total,
            "covered": cov.covered(),
            "percent": (cov.percent() * 10.0).round() / 10.0,
            "required": cov.required,
            "ok": !cov.fails(),
            "uncovered": cov.uncovered.iter().map(|p| json!({
                "id": p.id, "effect": p.effect, "file": p.file, "line": p.line,
            })).collect::<Vec<_>>(),
        })
    });
    let doc = json!({
        "ok": counts.failed == 0 && counts.selected() > 0 && !coverage_fails(&coverage),
        "suites": suites,
        "coverage": coverage,
        "summary": {
            "passed": counts.passed,
            "failed": counts.failed,
            "skipped": counts.skipped,
            "time_ms": millis(report.time),
        },
    });
    format!("{doc:#}\n")
}

fn coverage_fails(coverage: &Option<Value>) -> bool {
    coverage
        .as_ref()
        .and_then(|c| c.get("ok"))
        .and_then(Value::as_bool)
        == Some(false)
}

fn case_json(c: &CaseReport<'_>, policy: &dyn Fn(&str) -> Value) -> Value {
    let case = c.case;
    let (outcome, message) = match &c.status {
        Status::Pass => ("pass", None),
        Status::Fail(why) => ("fail", Some(why.as_str())),
        Status::Skip(why) => ("skip", Some(why.as_str())),
    };
    let actual = match &c.actual {
        Actual::NotRun => Value::Null,
        Actual::Answer(a) => json!({
            "decision": a.decision,
            "reasons": a.reasons.iter().map(|id| policy(id)).collect::<Vec<_>>(),
            "errors": a.errors.iter().map(|e| {
                let mut v = policy(&e.policy);
                v["message"] = json!(e.message);
                v
            }).collect::<Vec<_>>(),
        }),
        Actual::Refused(e) => json!({"error": {"field": e.field, "message": e.message}}),
        Actual::Broken(why) => json!({"invalid_case": why}),
    };
    let reasons = match &case.reasons {
        None => Value::Null,
        Some(Reasons::Exactly(r)) => json!({"exactly": r}),
        Some(Reasons::AtLeast(r)) => json!({"at_least": r}),
    };
    json!({
        "name": case.name,
        "rule": case.rule,
        "line": case.line,
        "principal": case.principal,
        "action": case.action,
        "resource": case.resource,
        "context": case.context,
        "expect": {
            "decision": case.expect.to_string(),
            "reasons": reasons,
            "num_errors": case.num_errors,
        },
        "outcome": outcome,
        "message": message,
        "actual": actual,
        "time_ms": millis(c.time),
    })
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

// ------------------------------------------------------------------- junit

/// JUnit XML: `<testsuites>` with one `<testsuite>` per suite, the shape
/// Jenkins, GitLab and GitHub test reporters read. With coverage on, one
/// more suite holds a single coverage case, failing under
/// `--require-coverage`.
pub fn junit(base: &Snapshot, report: &Report<'_>, coverage: Option<&Coverage<'_>>) -> String {
    let mut body = String::new();
    let mut total = report.counts();
    for suite in &report.suites {
        let c = suite.counts();
        let _ = writeln!(
            body,
            "  <testsuite name=\"{}\" file=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            xml(&suite.suite.name),
            xml(&suite.suite.file.display().to_string()),
            c.selected(),
            c.failed,
            c.skipped,
            seconds(suite.time)
        );
        for c in &suite.cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\" time=\"{}\"",
                xml(&title(c.case)),
                xml(&suite.suite.name),
                xml(&suite.suite.file.display().to_string()),
                c.case.line,
                seconds(c.time)
            );
            match &c.status {
                Status::Pass => {
                    let _ = writeln!(body, "{open}/>");
                }
                Status::Fail(why) => {
                    let detail = format!(
                        "{}\n{}: {}",
                        place(suite, c.case),
                        request(c.case),
                        failure_text(base, why, &c.actual)
                    );
                    let _ = writeln!(
                        body,
                        "{open}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(why),
                        failure_type(c.case.expect, &c.actual),
                        xml(&detail)
                    );
                }
                Status::Skip(why) => {
                    let _ = writeln!(
                        body,
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(why)
                    );
                }
            }
        }
        body.push_str("  </testsuite>\n");
    }
    if let Some(cov) = coverage {
        let failed = usize::from(cov.fails());
        total.passed += 1 - failed;
        total.failed += failed;
        let listing: Vec<String> = cov
            .uncovered
            .iter()
            .map(|p| format!("{} ({}, {})", p.id, p.effect, p.location()))
            .collect();
        let _ = writeln!(
            body,
            "  <testsuite name=\"policy coverage\" tests=\"1\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"0\">"
        );
        let open = "    <testcase name=\"every policy determines some decision\" classname=\"policy coverage\" time=\"0\"";
        let out = format!(
            "{}\nnever determined a decision:\n{}",
            cov.summary(),
            listing.join("\n")
        );
        if cov.fails() {
            let _ = writeln!(
                body,
                "{open}>\n      <failure message=\"{}\" type=\"coverage\">{}</failure>\n    </testcase>",
                xml(&cov.summary()),
                xml(&out)
            );
        } else {
            let _ = writeln!(
                body,
                "{open}>\n      <system-out>{}</system-out>\n    </testcase>",
                xml(&out)
            );
        }
        body.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"doorman test\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">\n{body}</testsuites>\n",
        total.selected(),
        total.failed,
        total.skipped,
        seconds(report.time)
    )
}

fn failure_type(expect: Expect, actual: &Actual) -> &'static str {
    match (expect, actual) {
        (_, Actual::Broken(_)) => "invalid-case",
        (_, Actual::Refused(_)) | (Expect::Error, _) => "decision",
        (_, Actual::Answer(_)) | (_, Actual::NotRun) => "mismatch",
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}

/// Escapes text for an XML attribute or element. Characters XML 1.0 cannot
/// carry at all (most control characters) become U+FFFD, so a stray byte in
/// a case name cannot make the whole report unreadable.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_replaces_forbidden_characters() {
        assert_eq!(
            xml("a<b>&\"c\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;\u{FFFD}&#10;"
        );
    }

    #[test]
    fn counts_line_mentions_skips_only_when_there_are_some() {
        let mut c = Counts {
            passed: 3,
            failed: 1,
            skipped: 0,
        };
        assert_eq!(counts_line(c), "3 passed, 1 failed");
        c.skipped = 2;
        assert_eq!(counts_line(c), "3 passed, 1 failed, 2 skipped");
    }
}
