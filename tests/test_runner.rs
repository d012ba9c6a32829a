//! `doorman test`, driven as users and CI drive it: the real binary, in a
//! temporary directory, judged by exit code and output.
//!
//! Most tests run against the small model in `tests/data/runner/model`, not
//! the bundled one, so that they keep testing the runner while the bundled
//! policies change; one test runs the bundled fixtures themselves, so that
//! `cargo test` fails whenever a fixture does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data(rel: &str) -> PathBuf {
    root().join("tests/data/runner").join(rel)
}

/// A temporary directory holding `suites` (file name → text), run against
/// the runner's own model with `args` appended.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new(suites: &[(&str, &str)]) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in suites {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("suite dir");
            }
            std::fs::write(path, text).expect("write suite");
        }
        Run { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `doorman test` with the model's loading flags, in the temp dir.
    fn test(&self, args: &[&str]) -> Result {
        let model = data("model");
        let mut all: Vec<String> = vec![
            "test".into(),
            "--policies".into(),
            model.join("policies").display().to_string(),
            "--schema".into(),
            model.join("schema").display().to_string(),
            "--entities".into(),
            model.join("entities").display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        doorman(self.path(), &all)
    }
}

struct Result {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Result {
    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }

    fn lines_starting(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
}

impl std::fmt::Debug for Result {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn doorman(dir: &Path, args: &[String]) -> Result {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run doorman");
    Result {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A one-case suite in flow style.
fn one_case(case: &str) -> String {
    format!("name: One\ncases:\n  - {{{case}}}\n")
}

// ------------------------------------------------------------ the bundled model

#[test]
fn bundled_fixtures_pass_with_every_policy_covered() {
    let all: Vec<String> = ["test", "--require-coverage", "fixtures/"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = doorman(&root(), &all);
    assert_eq!(r.code, Some(0), "{r:?}");
    let last = r.last_line();
    let (passed, rest) = last.split_once(" passed, ").expect("summary line");
    assert_eq!(rest, "0 failed", "{r:?}");
    assert!(passed.parse::<usize>().expect("count") > 0, "{r:?}");
    assert!(r.stdout.contains("(100.0%)"), "{r:?}");
}

// ------------------------------------------------------------ outcomes

#[test]
fn the_model_suites_pass() {
    let run = Run::new(&[]);
    let suites = data("model/suites").display().to_string();
    let r = run.test(&[&suites]);
    assert_eq!(r.code, Some(0), "{r:?}");
    // 4 cases + 2 matrix rows × 3 principals.
    assert_eq!(r.last_line(), "10 passed, 0 failed", "{r:?}");
    assert!(r.lines_starting("FAIL").is_empty(), "{r:?}");
}

#[test]
fn a_wrong_expectation_fails_naming_the_case_and_the_determining_policy() {
    let run = Run::new(&[(
        "inboxes.test.yaml",
        &one_case(
            r#"name: an admin may not view a private inbox, rule: R11, principal: Member::"ada", action: ViewInbox, resource: Inbox::"billing", expect: deny"#,
        ),
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let fails = r.lines_starting("FAIL inboxes.test.yaml");
    assert_eq!(fails.len(), 1, "{r:?}");
    let line = fails[0];
    assert!(
        line.starts_with("FAIL inboxes.test.yaml:3 › an admin may not view a private inbox [R11]:"),
        "{line}"
    );
    assert!(
        line.contains(r#"Member::"ada" ViewInbox Inbox::"billing""#),
        "{line}"
    );
    assert!(line.contains("expected deny, got allow"), "{line}");
    assert!(line.contains("by inbox.view-private "), "{line}");
    assert!(line.contains("inboxes.cedar:7"), "{line}");
    assert_eq!(r.last_line(), "0 passed, 1 failed", "{r:?}");
}

#[test]
fn a_default_deny_says_no_policy_applied() {
    let run = Run::new(&[(
        "s.test.yaml",
        &one_case(
            r#"name: a member views a private inbox, principal: Member::"mia", action: ViewInbox, resource: Inbox::"billing", expect: allow"#,
        ),
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout
            .contains("expected allow, got deny (no policy applied: default deny)"),
        "{r:?}"
    );
}

#[test]
fn a_reasons_mismatch_fails_even_when_the_decision_is_right() {
    let run = Run::new(&[(
        "s.test.yaml",
        &one_case(
            r#"name: an archived admin is denied, principal: Member::"old", action: ViewInbox, resource: Inbox::"support", expect: deny, reasons: [inbox.view-public]"#,
        ),
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let fails = r.lines_starting("FAIL s.test.yaml");
    assert_eq!(fails.len(), 1, "{r:?}");
    assert!(fails[0].contains("deny as expected"), "{r:?}");
    assert!(fails[0].contains("missing inbox.view-public"), "{r:?}");
    assert!(fails[0].contains("unexpected guard.archived"), "{r:?}");

    // The same case with the right reasons passes: the check is not blind.
    let run = Run::new(&[(
        "s.test.yaml",
        &one_case(
            r#"name: an archived admin is denied, principal: Member::"old", action: ViewInbox, resource: Inbox::"support", expect: deny, reasons: [guard.archived]"#,
        ),
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 0 failed");
}

#[test]
fn a_misspelt_policy_id_in_reasons_is_flagged() {
    let run = Run::new(&[(
        "s.test.yaml",
        &one_case(
            r#"name: c, principal: Member::"mia", action: ViewInbox, resource: Inbox::"support", expect: allow, reasons: [inbox.view-publik]"#,
        ),
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("inbox.view-publik (no such policy)"),
        "{r:?}"
    );
}

#[test]
fn a_matrix_checks_the_implicit_denies() {
    // mia may view the public inbox, but the row says only admin: the
    // implicit deny for mia must fail, and only it.
    let suite = "name: Matrix\nmatrix:\n  - name: viewing\n    principals: {admin: Member::\"ada\", member: Member::\"mia\"}\n    rows:\n      - {rule: R12, action: ViewInbox, resource: Inbox::\"support\", allow: [admin]}\n";
    let run = Run::new(&[("m.test.yaml", suite)]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let fails = r.lines_starting("FAIL m.test.yaml");
    assert_eq!(fails.len(), 1, "{r:?}");
    assert!(
        fails[0].starts_with("FAIL m.test.yaml:6 › viewing: member "),
        "{r:?}"
    );
    assert!(fails[0].contains("[R12]"), "{r:?}");
    assert!(fails[0].contains(r#"Member::"mia""#), "{r:?}");
    assert!(fails[0].contains("expected deny, got allow"), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 1 failed", "{r:?}");
}

#[test]
fn an_invalid_request_is_the_error_expectation() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: S\ncases:\n  - {name: refused, principal: Inbox::\"support\", action: ViewInbox, resource: Inbox::\"billing\", expect: error}\n  - {name: expected a decision, principal: Inbox::\"support\", action: ViewInbox, resource: Inbox::\"billing\", expect: deny}\n  - {name: expected a refusal, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: error}\n",
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 2 failed", "{r:?}");
    assert!(
        r.stdout.contains("expected deny, got error: principal"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("expected error (request refused as invalid), got allow"),
        "{r:?}"
    );
}

#[test]
fn a_malformed_entity_reference_fails_its_case_only() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: S\ncases:\n  - {name: typo, principal: Member:mia, action: ViewInbox, resource: Inbox::\"support\", expect: error}\n  - {name: fine, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow}\n",
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(1), "{r:?}");
    // Even `expect: error` does not excuse a broken case.
    let fails = r.lines_starting("FAIL s.test.yaml:3 › typo");
    assert_eq!(fails.len(), 1, "{r:?}");
    assert!(fails[0].contains("invalid case: principal"), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 1 failed", "{r:?}");
}

#[test]
fn context_is_passed_and_checked_against_the_schema() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: S\ncases:\n  - {name: with context, principal: Member::\"ada\", action: DeleteInbox, resource: Inbox::\"billing\", context: {reason: spam}, expect: allow}\n  - {name: context missing, principal: Member::\"ada\", action: DeleteInbox, resource: Inbox::\"billing\", expect: error}\n",
    )]);
    let r = run.test(&[".", "--coverage"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.last_line(), "2 passed, 0 failed", "{r:?}");
}

#[test]
fn skipped_cases_are_counted_apart() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: S\ncases:\n  - {name: later, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"billing\", expect: allow, skip: waiting for R40}\n  - {name: now, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow}\n",
    )]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains("SKIP s.test.yaml:3 › later: waiting for R40"),
        "{r:?}"
    );
    assert_eq!(r.last_line(), "1 passed, 0 failed, 1 skipped", "{r:?}");
}

#[test]
fn a_suite_uses_its_own_entities_relative_to_itself() {
    // Only this world has `zed`; with the default world the case would be
    // denied (an unknown principal has no role).
    let world = "- {uid: {type: Role, id: admin}, attrs: {}, parents: []}\n- {uid: {type: Member, id: zed}, attrs: {archived: false}, parents: [{type: Role, id: admin}]}\n- {uid: {type: Inbox, id: vault}, attrs: {private: true}, parents: []}\n";
    let suite = "name: Own world\nentities: [../worlds/zed.yaml]\ncases:\n  - {name: zed views the vault, principal: Member::\"zed\", action: ViewInbox, resource: Inbox::\"vault\", expect: allow, reasons: [inbox.view-private]}\n";
    let run = Run::new(&[("worlds/zed.yaml", world), ("suites/own.test.yaml", suite)]);
    let r = run.test(&["suites"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 0 failed", "{r:?}");
}

#[test]
fn filter_selects_by_suite_case_or_rule() {
    let run = Run::new(&[]);
    let suites = data("model/suites").display().to_string();
    let r = run.test(&[&suites, "--filter", "R11"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    // The R11 case and the R11 matrix row's three principals.
    assert_eq!(r.last_line(), "4 passed, 0 failed", "{r:?}");
    let r = run.test(&[&suites, "--filter", "^a member"]);
    assert_eq!(r.last_line(), "2 passed, 0 failed", "{r:?}");
    let r = run.test(&[&suites, "--filter", "no such case"]);
    assert_eq!(r.code, Some(1), "nothing selected must not pass: {r:?}");
    assert!(r.stderr.contains("no test case selected"), "{r:?}");
}

// ------------------------------------------------------------ unreadable suites

#[test]
fn a_misspelt_field_exits_2_with_file_and_line() {
    let suite = "name: Typo\ncases:\n  - name: c\n    principal: Member::\"mia\"\n    action: ViewInbox\n    resource: Inbox::\"support\"\n    expcet: allow\n";
    let run = Run::new(&[("typo.test.yaml", suite)]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("typo.test.yaml:7"), "{r:?}");
    assert!(r.stderr.contains("expcet"), "{r:?}");
}

#[test]
fn broken_yaml_exits_2_with_file_and_line_and_every_broken_file_is_reported() {
    let run = Run::new(&[
        (
            "a.test.yaml",
            "name: A\ncases:\n  - {name: \"unclosed, expect: allow\n",
        ),
        (
            "b.test.yaml",
            "name: B\ncases:\n  - {name: c, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: perhaps}\n",
        ),
        (
            "c.test.yaml",
            "name: C\nmatrix:\n  - name: m\n    principals: {admin: Member::\"ada\"}\n    rows:\n      - {action: ViewInbox, resource: Inbox::\"support\", allow: [admin, boss]}\n",
        ),
    ]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("a.test.yaml:3"), "{r:?}");
    assert!(r.stderr.contains("b.test.yaml:3"), "{r:?}");
    assert!(r.stderr.contains("perhaps"), "{r:?}");
    assert!(r.stderr.contains("c.test.yaml:6"), "{r:?}");
    assert!(r.stderr.contains("boss"), "{r:?}");
    assert!(r.stdout.is_empty(), "nothing runs: {r:?}");
}

#[test]
fn missing_suite_entities_or_paths_exit_2() {
    let suite = "name: S\nentities: [nowhere.yaml]\ncases:\n  - {name: c, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow}\n";
    let run = Run::new(&[("s.test.yaml", suite)]);
    let r = run.test(&["."]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("nowhere.yaml"), "{r:?}");

    let r = run.test(&["no-such-dir"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("no-such-dir"), "{r:?}");

    let empty = Run::new(&[("notes.txt", "not a suite")]);
    let r = empty.test(&["."]);
    assert_eq!(
        r.code,
        Some(2),
        "an empty directory is not a green run: {r:?}"
    );
}

// ------------------------------------------------------------ formats

#[test]
fn junit_output_is_well_formed_xml_with_failures_and_skips() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: Escapes <&\"'>\ncases:\n  - {name: \"fails <&>\", rule: R11, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"billing\", expect: allow}\n  - {name: passes, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow}\n  - {name: skipped, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow, skip: \"later & <then>\"}\n",
    )]);
    let r = run.test(&[".", "--format", "junit", "--coverage"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let doc = roxmltree::Document::parse(&r.stdout).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    // The suite, and the coverage suite.
    assert_eq!(suites.len(), 2, "{}", r.stdout);
    let suite = suites[0];
    assert_eq!(suite.attribute("name"), Some("Escapes <&\"'>"));
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0].attribute("name"), Some("fails <&> [R11]"));
    let failure = cases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure element");
    assert_eq!(
        failure.attribute("message"),
        Some("expected allow, got deny")
    );
    assert!(
        failure
            .text()
            .unwrap_or_default()
            .contains(r#"Member::"mia""#)
    );
    assert!(cases[1].children().all(|n| !n.is_element()));
    let skipped = cases[2]
        .children()
        .find(|n| n.has_tag_name("skipped"))
        .expect("skipped element");
    assert_eq!(skipped.attribute("message"), Some("later & <then>"));
    // Coverage is reported but, without --require-coverage, does not fail.
    assert_eq!(suites[1].attribute("failures"), Some("0"));
}

#[test]
fn json_output_is_one_document_with_outcomes_and_summary() {
    let run = Run::new(&[(
        "s.test.yaml",
        "name: S\ncases:\n  - {name: wrong, principal: Member::\"ada\", action: ViewInbox, resource: Inbox::\"billing\", expect: deny}\n  - {name: right, principal: Member::\"mia\", action: ViewInbox, resource: Inbox::\"support\", expect: allow}\n",
    )]);
    let r = run.test(&[".", "--format", "json", "--coverage"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["summary"]["passed"], 1);
    assert_eq!(doc["summary"]["failed"], 1);
    let cases = &doc["suites"][0]["cases"];
    assert_eq!(cases[0]["name"], "wrong");
    assert_eq!(cases[0]["outcome"], "fail");
    assert_eq!(cases[0]["line"], 3);
    assert_eq!(cases[0]["actual"]["decision"], "allow");
    assert_eq!(cases[0]["actual"]["reasons"][0]["id"], "inbox.view-private");
    assert_eq!(cases[1]["outcome"], "pass");
    assert_eq!(doc["coverage"]["policies"], 4);
    let uncovered: Vec<&str> = doc["coverage"]["uncovered"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    // In load order; both view policies determined a decision above.
    assert_eq!(uncovered, vec!["inbox.delete", "guard.archived"]);
}

#[test]
fn json_reports_unreadable_suites_as_json_too() {
    let run = Run::new(&[("s.test.yaml", "name: [unclosed\n")]);
    let r = run.test(&[".", "--format", "json"]);
    assert_eq!(r.code, Some(2), "{r:?}");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["ok"], false);
    let d = &doc["diagnostics"][0];
    assert!(
        d["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("s.test.yaml")),
        "{doc:#}"
    );
    assert!(d["line"].as_u64().is_some_and(|l| l > 0), "{doc:#}");
}

// ------------------------------------------------------------ coverage

#[test]
fn coverage_lists_the_policy_no_case_reaches() {
    let run = Run::new(&[]);
    let suites = data("model/suites").display().to_string();
    let r = run.test(&[&suites, "--coverage"]);
    assert_eq!(
        r.code,
        Some(0),
        "coverage alone reports, it does not fail: {r:?}"
    );
    assert!(
        r.stdout
            .contains("coverage: 3 of 4 policies determined a decision (75.0%)"),
        "{r:?}"
    );
    let never: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains("never determined a decision:"))
        .collect();
    assert_eq!(never.len(), 1, "{r:?}");
    assert!(never[0].contains("inbox.delete (permit, "), "{r:?}");
    assert!(never[0].contains("inboxes.cedar:12"), "{r:?}");
    assert_eq!(r.last_line(), "10 passed, 0 failed", "{r:?}");

    let r = run.test(&[&suites, "--require-coverage"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("coverage: FAIL"), "{r:?}");
    assert_eq!(r.last_line(), "10 passed, 0 failed", "{r:?}");
}

// ------------------------------------------------------------ Cedar test files

fn cedar(args: &[&str]) -> Result {
    let dir = data("cedar");
    let mut all: Vec<String> = vec![
        "test".into(),
        "--policies".into(),
        "policy.cedar".into(),
        "--schema".into(),
        "schema.cedarschema".into(),
        "--entities".into(),
        "entities.json".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    doorman(&dir, &all)
}

#[test]
fn cedar_run_tests_files_run_unchanged() {
    let r = cedar(&["photos.cedartest.json"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.last_line(), "3 passed, 0 failed", "{r:?}");

    // A directory finds *.cedartest.json by itself.
    let r = cedar(&["."]);
    assert_eq!(r.last_line(), "3 passed, 0 failed", "{r:?}");
}

#[test]
fn cedar_test_files_fail_on_decision_reason_and_error_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let case = |decision: &str, reason: &str, errors: usize| {
        format!(
            r#"{{"request": {{"principal": "User::\"alice\"", "action": "Action::\"view\"", "resource": "Photo::\"p\"", "context": {{}}}},
  "entities": [{{"uid": {{"type": "Photo", "id": "p"}}, "attrs": {{}}, "parents": [{{"type": "Album", "id": "jane_vacation"}}]}}],
  "decision": "{decision}", "reason": [{reason}], "num_errors": {errors}}}"#
        )
    };
    let text = format!(
        "[\n{},\n{},\n{},\n{}\n]\n",
        case("allow", "\"policy0\"", 0),
        case("deny", "", 0),
        case("allow", "\"policy7\"", 0),
        case("allow", "", 2),
    );
    let file = dir.path().join("t.json");
    std::fs::write(&file, text).expect("write");
    let r = cedar(&[&file.display().to_string()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(r.last_line(), "1 passed, 3 failed", "{r:?}");
    assert!(r.stdout.contains("t.json:5 › test 2"), "{r:?}");
    assert!(r.stdout.contains("expected deny, got allow"), "{r:?}");
    assert!(r.stdout.contains("missing reason(s): policy7"), "{r:?}");
    assert!(
        r.stdout.contains("expected 2 evaluation error(s), got 0"),
        "{r:?}"
    );
}
