//! `doorman diff`, `doorman fmt` and `doorman check`'s warnings, run as real
//! processes over small models the tests write into temp dirs, and over the
//! bundled model.
//!
//! Every symbolic counterexample is evaluated again here with Cedar's own
//! authorizer on both policy sets (it must really flip), and an environment
//! the solver calls equivalent is held against the exhaustive mode over a
//! generated world. The symbolic tests need cvc5 (Debian's `cvc5`; CI
//! installs it); without it they fail, as a missing solver must not read as
//! "equivalent".

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, Schema,
};
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const SCHEMA: &str = r#"
entity Role;
entity User in [Role] { level: Long, score: decimal };
entity Doc { public: Bool, owner: User, created: datetime };
action write;
action view appliesTo { principal: User, resource: Doc };
action edit in [write] appliesTo { principal: User, resource: Doc };
action access appliesTo { principal: User, resource: Doc, context: { ip: ipaddr } };
action audit appliesTo { principal: User, resource: Doc, context: { reason: String } };
"#;

const BASE: &str = r#"// Views: public documents.
@id("view-public")
permit (principal, action == Action::"view", resource)
when { resource.public };

@id("owner-write")
permit (principal, action in Action::"write", resource)
when { resource.owner == principal };

@id("no-banned")
forbid (principal in Role::"banned", action, resource);

@id("office-network")
permit (principal, action == Action::"access", resource)
when { context.ip.isInRange(ip("10.0.0.0/8")) && principal.score.greaterThan(decimal("0.5")) };

@id("audit")
permit (principal, action == Action::"audit", resource)
when { context.reason == "incident" && resource.created < datetime("2026-01-01") };
"#;

/// A model written into a temp dir: `base/` and `head/` policy dirs, one
/// schema, a world with `users` users and `docs` documents, a suite with
/// the contexts the exhaustive mode uses.
struct Model {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Model {
    fn new(head: &str, users: usize, docs: usize) -> Model {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        for sub in ["base", "head", "schema", "entities", "suites"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        fs::write(root.join("schema/model.cedarschema"), SCHEMA).unwrap();
        fs::write(root.join("base/policies.cedar"), BASE).unwrap();
        fs::write(root.join("head/policies.cedar"), head).unwrap();
        let mut world = vec![
            json!({"uid": {"type": "Role", "id": "banned"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Role", "id": "staff"}, "attrs": {}, "parents": []}),
        ];
        for u in 0..users {
            let roles = match u % 3 {
                0 => vec![json!({"type": "Role", "id": "banned"})],
                1 => vec![json!({"type": "Role", "id": "staff"})],
                _ => vec![],
            };
            world.push(json!({"uid": {"type": "User", "id": format!("u{u}")},
                "attrs": {"level": u % 5, "score": format!("0.{}", u % 10)}, "parents": roles}));
        }
        for d in 0..docs {
            world.push(json!({"uid": {"type": "Doc", "id": format!("d{d}")},
                "attrs": {"public": d % 2 == 0, "owner": {"type": "User", "id": format!("u{}", d % users.max(1))},
                          "created": if d % 2 == 0 { "2025-06-01" } else { "2026-06-01" }},
                "parents": []}));
        }
        fs::write(
            root.join("entities/world.json"),
            serde_json::to_string_pretty(&world).unwrap(),
        )
        .unwrap();
        fs::write(
            root.join("suites/net.test.yaml"),
            "name: contexts\nentities: [../entities/world.json]\ncases:\n\
             - {name: in, principal: User::\"u1\", action: access, resource: Doc::\"d0\", context: {ip: \"10.1.2.3\"}, expect: deny}\n\
             - {name: far, principal: User::\"u1\", action: access, resource: Doc::\"d0\", context: {ip: \"192.168.0.1\"}, expect: deny}\n",
        )
        .unwrap();
        Model { _dir: dir, root }
    }

    /// `doorman diff` over base/ and head/ with `args`: exit code, output.
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args([
                "diff", "--base", "base", "--head", "head", "--schema", "schema",
            ])
            .args(["--entities", "entities", "--suites", "suites"])
            .args(args)
            .current_dir(&self.root)
            .output()
            .expect("run doorman");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The text and the JSON report of one diff (which must agree on the exit code).
    fn diff(&self, extra: &[&str]) -> (i32, String, Value) {
        let run = |format: &str| self.run(&[&["--format", format][..], extra].concat());
        let (code, text) = run("text");
        let (jcode, json) = run("json");
        assert_eq!(code, jcode, "{text}\n{json}");
        let json: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        (code, text, json)
    }

    fn sets(&self) -> (Schema, PolicySet, PolicySet) {
        let schema = Schema::from_cedarschema_str(SCHEMA).unwrap().0;
        let read = |d: &str| {
            PolicySet::from_str(
                &fs::read_to_string(self.root.join(d).join("policies.cedar")).unwrap(),
            )
            .unwrap()
        };
        (schema, read("base"), read("head"))
    }
}

/// Evaluates every symbolic counterexample with Cedar's authorizer on both
/// sets and asserts it flips the way the report says.
fn recheck_counterexamples(model: &Model, report: &Value) -> usize {
    let (schema, base, head) = model.sets();
    recheck(&schema, &base, &head, report)
}

fn recheck(schema: &Schema, base: &PolicySet, head: &PolicySet, report: &Value) -> usize {
    let mut n = 0;
    for env in report["symbolic"]["environments"].as_array().unwrap() {
        for f in env["findings"].as_array().unwrap() {
            let req = &f["request"];
            let uid = |v: &Value| EntityUid::from_json(v.clone()).unwrap();
            let action = uid(&req["action"]);
            let context =
                Context::from_json_value(req["context"].clone(), Some((schema, &action))).unwrap();
            let request = Request::new(
                uid(&req["principal"]),
                action,
                uid(&req["resource"]),
                context,
                Some(schema),
            )
            .unwrap();
            let entities = Entities::from_json_value(f["entities"].clone(), Some(schema)).unwrap();
            let decide = |set| {
                Authorizer::new()
                    .is_authorized(&request, set, &entities)
                    .decision()
            };
            let expected = match f["direction"].as_str().unwrap() {
                "NEW allows what OLD denied" => (Decision::Deny, Decision::Allow),
                "OLD allowed what NEW denies" => (Decision::Allow, Decision::Deny),
                other => panic!("direction {other}"),
            };
            assert_eq!((decide(base), decide(head)), expected, "{f:#}");
            assert_eq!(f["verified"], true);
            n += 1;
        }
    }
    n
}

fn sym_status(report: &Value, action: &str) -> Vec<String> {
    report["symbolic"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["env"]["action"] == action)
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect()
}

fn flips(report: &Value, action: &str) -> Vec<Value> {
    report["exhaustive"]["flips"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == action)
        .cloned()
        .collect()
}

#[test]
fn a_widened_permit_is_found_three_ways() {
    let head = BASE.replace(
        "when { resource.public };",
        "when { resource.public || principal in Role::\"staff\" };",
    );
    let m = Model::new(&head, 6, 4);
    // A log with one question the edit flips and one it does not, a line
    // of a future version, an unknown field, and a broken line.
    let log = [
        r#"{"v":1,"time":"t","request_id":"r1","endpoint":"v1.is_authorized","principal":"User::\"u1\"","action":"Action::\"view\"","resource":"Doc::\"d1\"","decision":"deny","reasons":[],"errors":[],"revision":"x","latency_us":3,"future":1}"#,
        r#"{"v":1,"time":"t","request_id":"r2","endpoint":"v1.is_authorized","principal":"User::\"u2\"","action":"Action::\"view\"","resource":"Doc::\"d1\"","decision":"deny","reasons":[],"errors":[],"revision":"x","latency_us":3}"#,
        r#"{"v":2,"whatever":true}"#,
        r#"{"v":1,"principal":"nonsense"#,
    ]
    .join("\n");
    fs::write(m.root.join("decisions.log"), log).unwrap();
    let (code, text, report) = m.diff(&["--replay", "decisions.log"]);
    assert_eq!(code, 3, "{text}");
    // Exhaustive: staff users (u1, u4) on private docs (d1, d3) now allowed.
    let f = flips(&report, "view");
    assert_eq!(f.len(), 4, "{text}");
    assert!(
        f.iter()
            .all(|f| f["before"] == "deny" && f["after"] == "allow")
    );
    assert!(
        f.iter().all(|f| f["reasons_after"][0]["at"]
            .as_str()
            .unwrap()
            .ends_with("policies.cedar:2")),
        "{text}"
    );
    assert!(text.contains("view [view-public]: 4 flip(s)"), "{text}");
    // Symbolic: view widened, nothing else touched.
    assert_eq!(sym_status(&report, "view"), ["changed"], "{text}");
    assert_eq!(
        report["symbolic"]["environments"].as_array().unwrap().len(),
        1
    );
    assert_eq!(recheck_counterexamples(&m, &report), 1);
    assert!(text.contains("NEW allows what OLD denied"), "{text}");
    // Replay: line 1 flips, line 2 does not, 3 skipped, 4 reported.
    let rep = &report["replay"];
    assert_eq!(rep["questions"], 2);
    assert_eq!(rep["changes"].as_array().unwrap().len(), 1);
    assert_eq!(rep["changes"][0]["line"], 1);
    assert_eq!(rep["skipped_versions"], 1);
    assert_eq!(rep["bad_lines"][0]["line"], 4, "{text}");
    // Markdown: the summary table, then the details.
    let (code, md) = m.run(&["--replay", "decisions.log", "--format", "markdown"]);
    assert_eq!(code, 3, "{md}");
    assert!(
        md.contains("| exhaustive | every request among the loaded entities | 4 flip(s)"),
        "{md}"
    );
    assert!(
        md.contains("| replay | the logged questions | 1 of 2 changed, 1 bad line(s) |"),
        "{md}"
    );
    assert!(md.contains("<details>"), "{md}");
}

#[test]
fn a_narrowed_forbid_and_an_action_group_edit_are_found() {
    // The forbid narrowed to views: banned users may edit their own docs
    // again. owner-write reaches `edit` only through the `write` group.
    let head = BASE.replace(
        "forbid (principal in Role::\"banned\", action, resource);",
        "forbid (principal in Role::\"banned\", action == Action::\"view\", resource);",
    );
    let m = Model::new(&head, 6, 6);
    let (code, text, report) = m.diff(&[]);
    assert_eq!(code, 3, "{text}");
    let edit = flips(&report, "edit");
    // Banned users are u0 and u3; they own d0 and d3.
    assert_eq!(edit.len(), 2, "{text}");
    assert!(edit.iter().all(|f| f["after"] == "allow"));
    assert_eq!(sym_status(&report, "edit"), ["changed"], "{text}");
    assert_eq!(sym_status(&report, "view"), ["equivalent"], "{text}");
    assert!(recheck_counterexamples(&m, &report) >= 1);

    let group = BASE.replace(
        "when { resource.owner == principal };",
        "when { resource.owner == principal || principal in Role::\"staff\" };",
    );
    let m = Model::new(&group, 6, 6);
    let (code, text, report) = m.diff(&[]);
    assert_eq!(code, 3, "{text}");
    assert!(!flips(&report, "edit").is_empty(), "{text}");
    assert_eq!(sym_status(&report, "edit"), ["changed"], "{text}");
    assert_eq!(recheck_counterexamples(&m, &report), 1);
}

#[test]
fn moved_ids_and_reordered_files_are_no_change() {
    // Same policies, other IDs, other order, other layout and comments.
    let mut parts: Vec<&str> = BASE.split("\n\n").collect();
    parts.reverse();
    let head = parts
        .join("\n\n")
        .replace("@id(\"audit\")", "@id(\"audit-renamed\")")
        .replace("// Views", "// Reads");
    let m = Model::new(&head, 6, 4);
    let (code, text, report) = m.diff(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(report["touched"].as_array().unwrap().is_empty(), "{text}");
    assert!(text.contains("no change in authorization"), "{text}");
    // Split into two files: still no change.
    fs::write(m.root.join("head/policies.cedar"), parts[..2].join("\n\n")).unwrap();
    fs::write(m.root.join("head/more.cedar"), parts[2..].join("\n\n")).unwrap();
    let (code, text, _) = m.diff(&[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn extension_typed_conditions_are_compared() {
    let head = BASE.replace("ip(\"10.0.0.0/8\")", "ip(\"10.0.0.0/16\")");
    let m = Model::new(&head, 6, 4);
    let (code, text, report) = m.diff(&[]);
    assert_eq!(code, 3, "{text}");
    // The suite's context 10.1.2.3 left the range, but no user of u0..u5
    // has a score above 0.5: the world shows nothing, the solver does.
    assert!(flips(&report, "access").is_empty(), "{text}");
    assert_eq!(sym_status(&report, "access"), ["changed"], "{text}");
    assert_eq!(recheck_counterexamples(&m, &report), 1);
    assert!(text.contains("OLD allowed what NEW denies"), "{text}");
    assert!(
        report["symbolic"]["environments"][0]["findings"][0]["request"]["context"]["ip"]
            .is_object(),
        "{text}"
    );

    let m = Model::new(&head, 10, 4);
    let (_, text, report) = m.diff(&[]);
    // u6..u9 have scores 0.6..0.9, and u6 and u9 are banned: two users x
    // four docs flip.
    assert_eq!(flips(&report, "access").len(), 8, "{text}");
    assert!(
        flips(&report, "access")
            .iter()
            .all(|f| f["context"]["ip"] == "10.1.2.3")
    );

    // A datetime and a required context no suite gives: "not covered".
    let head = BASE.replace("datetime(\"2026-01-01\")", "datetime(\"2025-01-01\")");
    let m = Model::new(&head, 4, 4);
    let (code, text, report) = m.diff(&[]);
    assert_eq!(code, 3, "{text}");
    let env = &report["exhaustive"]["environments"][0];
    assert!(
        env["not_covered"].as_str().unwrap().contains("not covered"),
        "{text}"
    );
    assert_eq!(sym_status(&report, "audit"), ["changed"], "{text}");
    assert_eq!(recheck_counterexamples(&m, &report), 1);
}

#[test]
fn equivalent_rewrites_are_equivalent_and_the_world_agrees() {
    let head = BASE
        .replace("when { resource.public };", "unless { !resource.public };")
        .replace(
            "when { resource.owner == principal };",
            "when { principal == resource.owner && true };",
        );
    // A generated world with every combination of the attributes involved.
    let m = Model::new(&head, 30, 30);
    let (code, text, report) = m.diff(&["--check", "never-errors"]);
    assert_eq!(code, 0, "{text}");
    let statuses: Vec<String> = report["symbolic"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| s == "equivalent"),
        "{text}"
    );
    assert_eq!(report["exhaustive"]["flips"].as_array().unwrap().len(), 0);
    assert!(
        report["exhaustive"]["requests"].as_u64().unwrap() >= 30 * 30,
        "{text}"
    );
}

#[test]
fn expected_changes_pass_and_unexpected_ones_fail() {
    let head = BASE.replace(
        "when { resource.public };",
        "when { resource.public || principal in Role::\"staff\" };",
    );
    let m = Model::new(&head, 6, 4);
    fs::write(
        m.root.join("ok.yaml"),
        "- {action: view, principal: \"User::*\", resource: \"Doc::*\", change: allow}\n",
    )
    .unwrap();
    let (code, text, _) = m.diff(&["--expect-changes", "ok.yaml"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("only intended changes"), "{text}");
    fs::write(
        m.root.join("narrow.yaml"),
        "- {action: view, principal: \"User::\\\"u4\\\"\", change: allow}\n",
    )
    .unwrap();
    let (code, text, _) = m.diff(&["--expect-changes", "narrow.yaml"]);
    assert_eq!(code, 3, "{text}");
    fs::write(m.root.join("bad.yaml"), "- {action: view, change: maybe}\n").unwrap();
    let (code, text) = m.run(&["--expect-changes", "bad.yaml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("bad.yaml:1:26"), "{text}");
}

#[test]
fn without_a_solver_environments_are_not_analysed_never_equivalent() {
    let head = BASE.replace("when { resource.public };", "unless { !resource.public };");
    let m = Model::new(&head, 6, 4);
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args([
            "diff", "--base", "base", "--head", "head", "--schema", "schema",
        ])
        .args([
            "--entities",
            "entities",
            "--suites",
            "suites",
            "--format",
            "json",
        ])
        .env("CVC5", m.root.join("no-such-cvc5"))
        .current_dir(&m.root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sym_status(&report, "view"), ["not_analysed"], "{text}");
    let reason = report["symbolic"]["environments"][0]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("cvc5"), "{reason}");
    // The exhaustive mode still ran and found nothing.
    assert_eq!(report["exhaustive"]["flips"].as_array().unwrap().len(), 0);
}

#[test]
fn a_dead_policy_is_warned() {
    let head = format!(
        "{BASE}\n@id(\"dead\")\npermit (principal, action == Action::\"view\", resource) when {{ principal.level > 10 && principal.level < 5 }};\n"
    );
    let m = Model::new(&head, 6, 4);
    let (code, text, report) = m.diff(&[]);
    // The dead policy changes nothing.
    assert_eq!(code, 0, "{text}");
    assert_eq!(sym_status(&report, "view"), ["equivalent"], "{text}");
    let w = &report["symbolic"]["warnings"];
    assert_eq!(w[0]["policy"], "dead", "{text}");
    assert_eq!(w[0]["kind"], "never applies", "{text}");
}

#[test]
fn never_errors_finds_a_policy_that_can_overflow() {
    let head = format!(
        "{BASE}\n@id(\"overflow\")\nforbid (principal, action == Action::\"view\", resource) when {{ principal.level + 9223372036854775807 < 0 }};\n"
    );
    let m = Model::new(&head, 6, 4);
    let (_, text, report) = m.diff(&["--check", "never-errors"]);
    let w = report["symbolic"]["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|w| w["policy"] == "overflow" && w["kind"] == "may error"),
        "{text}"
    );
    assert!(
        text.contains("overflow") && text.contains("may error"),
        "{text}"
    );
}

// ------------------------------------------------------------ bundled model

fn bundled_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    fs::create_dir_all(&policies).unwrap();
    for e in fs::read_dir(Path::new(ROOT).join("policies")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), policies.join(e.file_name())).unwrap();
    }
    (dir, policies)
}

fn bundled_diff(head: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["diff", "--base", "policies", "--head"])
        .arg(head)
        .args(extra)
        .current_dir(ROOT)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_bundled_r12_edit_is_caught_three_ways_and_a_comment_edit_is_not() {
    let (dir, policies) = bundled_copy();
    let file = policies.join("inboxes.cedar");
    let text = fs::read_to_string(&file).unwrap();
    // R12 widened: members may view private inboxes too.
    let at = text.find("@id(\"inbox.view-public\")").expect("R12");
    let edited = text[..at].to_owned() + &text[at..].replacen(
        "when {\n  !resource.private &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};",
        "when {\n  (!resource.private ||\n   principal in Role::\"member\") &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};",
        1,
    );
    assert_ne!(edited, text, "R12's text moved; update this test");
    fs::write(&file, &edited).unwrap();
    let log = dir.path().join("decisions.log");
    fs::write(
        &log,
        r#"{"v":1,"time":"2026-12-03T10:00:00.000000Z","request_id":"a","endpoint":"v1.is_authorized","principal":"Member::\"acme-mia\"","action":"Action::\"ViewInbox\"","resource":"Inbox::\"acme-billing\"","decision":"deny","reasons":[],"errors":[],"revision":"r","latency_us":9}
{"v":1,"time":"2026-12-03T10:00:00.000001Z","request_id":"b","endpoint":"v1.is_authorized","principal":"Member::\"acme-mia\"","action":"Action::\"ViewInbox\"","resource":"Inbox::\"acme-support\"","decision":"allow","reasons":["inbox.view-public"],"errors":[],"revision":"r","latency_us":9}
"#,
    )
    .unwrap();
    let (code, out) = bundled_diff(
        &policies,
        &["--replay", log.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(code, 3, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let ex = report["exhaustive"]["flips"].as_array().unwrap();
    assert!(
        ex.iter().any(|f| f["principal"] == "Member::\"acme-mia\""
            && f["resource"] == "Inbox::\"acme-billing\""),
        "{out}"
    );
    assert!(
        ex.iter()
            .all(|f| f["action"] == "ViewInbox" && f["after"] == "allow"),
        "{out}"
    );
    let sym = report["symbolic"]["environments"].as_array().unwrap();
    assert!(
        sym.iter()
            .any(|e| e["status"] == "changed" && e["env"]["action"] == "ViewInbox"),
        "{out}"
    );
    assert!(sym.iter().all(|e| e["status"] != "not_analysed"), "{out}");
    let schema = Schema::from_cedarschema_str(
        &fs::read_to_string(Path::new(ROOT).join("schema/doorman.cedarschema")).unwrap(),
    )
    .unwrap()
    .0;
    let set_of = |dir: &Path| {
        let mut text = String::new();
        for e in fs::read_dir(dir).unwrap() {
            text.push_str(&fs::read_to_string(e.unwrap().path()).unwrap());
            text.push('\n');
        }
        PolicySet::from_str(&text).unwrap()
    };
    let checked = recheck(
        &schema,
        &set_of(&Path::new(ROOT).join("policies")),
        &set_of(&policies),
        &report,
    );
    assert_eq!(checked, 1, "{out}");
    assert_eq!(
        report["replay"]["changes"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    assert_eq!(report["replay"]["changes"][0]["request_id"], "a");

    // A solver that may not take a millisecond: "timed out", never
    // "equivalent", and the run does not pass.
    let (code, out) = bundled_diff(&policies, &["--no-exhaustive", "--solver-timeout", "1ms"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("(Member, ViewInbox, Inbox): timed out"),
        "{out}"
    );

    // A comment-only edit: nothing changes.
    fs::write(
        &file,
        text.replacen(
            "// R12: View Public Inbox",
            "// R12 (see the rule book): View Public Inbox",
            1,
        ),
    )
    .unwrap();
    let (code, out) = bundled_diff(&policies, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no change in authorization"), "{out}");
}

#[test]
fn diff_from_a_git_revision_reads_the_policies_at_that_revision() {
    // HEAD's policies against themselves: nothing changed.
    let (code, out) = bundled_diff(Path::new("policies"), &["--no-symbolic"]);
    assert_eq!(code, 0, "{out}");
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["diff", "--base-rev", "HEAD", "--no-symbolic"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The worktree may carry uncommitted edits; the base must have loaded.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OLD HEAD:policies"), "{text}");
}

// --------------------------------------------------------------------- fmt

fn doorman(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn fmt_checks_rewrites_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    let messy = "// keep me\n@id(\"x\")  permit(principal,action,resource)when{principal==resource}; // and me\n";
    fs::write(dir.path().join("policies/a.cedar"), messy).unwrap();
    let (code, out) = doorman(dir.path(), &["fmt", "--check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policies/a.cedar"), "{out}");
    let (code, out) = doorman(dir.path(), &["fmt"]);
    assert_eq!(code, 0, "{out}");
    let once = fs::read_to_string(dir.path().join("policies/a.cedar")).unwrap();
    assert_ne!(once, messy);
    assert!(
        once.contains("// keep me") && once.contains("// and me") && once.contains("@id(\"x\")"),
        "{once}"
    );
    let (code, out) = doorman(dir.path(), &["fmt", "--check", "policies"]);
    assert_eq!(code, 0, "{out}");
    doorman(dir.path(), &["fmt"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("policies/a.cedar")).unwrap(),
        once
    );
    // A file that does not parse is named and left alone.
    fs::write(dir.path().join("policies/b.cedar"), "permit(").unwrap();
    let (code, out) = doorman(dir.path(), &["fmt"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policies/b.cedar"), "{out}");
    assert_eq!(
        fs::read_to_string(dir.path().join("policies/b.cedar")).unwrap(),
        "permit("
    );
}

/// The bundled policies are left in their hand layout (the formatter
/// would join each file's header comment to its first policy); formatting
/// them must still keep every comment and annotation and change no
/// decision.
#[test]
fn formatting_the_bundled_policies_keeps_comments_and_changes_nothing() {
    let (dir, policies) = bundled_copy();
    let (code, out) = doorman(dir.path(), &["fmt", "policies"]);
    assert_eq!(code, 0, "{out}");
    for e in fs::read_dir(Path::new(ROOT).join("policies")).unwrap() {
        let e = e.unwrap();
        let before = fs::read_to_string(e.path()).unwrap();
        let after = fs::read_to_string(policies.join(e.file_name())).unwrap();
        for line in before
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("//") || l.starts_with('@'))
        {
            assert!(after.contains(line), "{:?} lost {line:?}", e.file_name());
        }
    }
    let (code, out) = bundled_diff(&policies, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no request environment's policies differ"),
        "{out}"
    );
}

// ------------------------------------------------------------ check warnings

#[test]
fn check_prints_validator_warnings_and_deny_warnings_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["policies", "schema", "entities"] {
        fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    fs::write(dir.path().join("schema/s.cedarschema"), SCHEMA).unwrap();
    fs::write(dir.path().join("entities/e.json"), "[]").unwrap();
    fs::write(
        dir.path().join("policies/p.cedar"),
        "@id(\"fine\")\npermit (principal, action == Action::\"view\", resource);\n\n@id(\"never\")\npermit (principal, action == Action::\"view\", resource)\nwhen { false };\n",
    )
    .unwrap();
    let args = [
        "--policies",
        "policies",
        "--schema",
        "schema",
        "--entities",
        "entities",
    ];
    let (code, out) = doorman(dir.path(), &[&["check"][..], &args].concat());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: policies/p.cedar:4"), "{out}");
    assert!(out.contains("policy is impossible"), "{out}");
    assert!(out.contains("(policy never)"), "{out}");
    assert!(out.contains("1 warning"), "{out}");
    let (code, out) = doorman(
        dir.path(),
        &[&["check", "--deny-warnings"][..], &args].concat(),
    );
    assert_eq!(code, 1, "{out}");
    let (code, out) = doorman(
        dir.path(),
        &[&["check", "--format", "json"][..], &args].concat(),
    );
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["warnings"][0]["policy"], "never");
    assert_eq!(v["warnings"][0]["line"], 4);
}
