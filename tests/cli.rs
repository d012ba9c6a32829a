//! The foundation as a user meets it: `doorman check` and `doorman
//! authorize` run as real processes over a small model (tests/data/mini),
//! plus the snapshot revision through the library.
//!
//! Each broken-input test copies the model into a temp dir, breaks one file
//! and asserts the exit code and that the output names the file and line.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::ModelCopy;
use doorman::{Query, ValidationMode, load};

mod common;

const MINI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mini");

/// A private copy of the mini model that a test may break.
type Model = ModelCopy;

impl Model {
    fn mini() -> Model {
        ModelCopy::new(Path::new(MINI))
    }

    fn append(&self, rel: &str, text: &str) {
        let old = fs::read_to_string(self.path(rel)).expect("read");
        self.write(rel, &format!("{old}{text}"));
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(args)
            .args([
                "--policies",
                "policies",
                "--schema",
                "schema",
                "--entities",
                "entities",
            ])
            .current_dir(&self.root)
            .output()
            .expect("run doorman");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

#[test]
fn check_is_clean_on_the_mini_model() {
    let (code, out) = Model::mini().run(&["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 policies, 1 schema, 9 entities: ok"),
        "{out}"
    );
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let m = Model::mini();
    m.write(
        "policies/broken.cedar",
        "@id(\"x\")\npermit (principal, action, resource)\nwhen { principal.email == };\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policies/broken.cedar:3:27"), "{out}");
    // The offending line is shown, miette style.
    assert!(out.contains("when { principal.email == };"), "{out}");
}

#[test]
fn validation_error_names_file_line_and_policy() {
    let m = Model::mini();
    m.append(
        "policies/inboxes.cedar",
        "\n@id(\"inbox.typo\")\npermit (principal, action, resource is Inbox)\nwhen { resource.privat };\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("policies/inboxes.cedar:20:8 (policy inbox.typo)"),
        "{out}"
    );
    assert!(out.contains("privat"), "{out}");
}

#[test]
fn a_policy_id_with_a_quote_is_still_located() {
    // Cedar's Display for a policy ID escapes it (`it\'s`); the diagnostic
    // must still find the policy as written.
    let m = Model::mini();
    m.write(
        "policies/quoted.cedar",
        "@id(\"it's\")\npermit (principal, action, resource is Inbox)\nwhen { resource.privat };\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("policies/quoted.cedar:3:8 (policy it's)"),
        "{out}"
    );
}

#[test]
fn several_errors_are_all_reported() {
    let m = Model::mini();
    m.write(
        "policies/a.cedar",
        "permit (principal, action, resource) when { ;\n",
    );
    m.write(
        "policies/b.cedar",
        "@id(\"b\")\npermit (principal, action, resource is Inbox) when { resource.nope };\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policies/a.cedar:1:"), "{out}");
    assert!(out.contains("policies/b.cedar:2:"), "{out}");
    assert!(out.contains(": 2 errors"), "{out}");
}

#[test]
fn duplicate_id_names_both_files_and_lines() {
    let m = Model::mini();
    m.write(
        "policies/zz.cedar",
        "// a copy\n@id(\"inbox.admin\")\nforbid (principal, action, resource);\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("duplicate policy ID `inbox.admin`"), "{out}");
    assert!(out.contains("policies/inboxes.cedar:7"), "{out}");
    assert!(out.contains("policies/zz.cedar:2"), "{out}");
}

#[test]
fn entity_violating_the_schema_names_file_and_line() {
    let m = Model::mini();
    let world = fs::read_to_string(m.path("entities/world.yaml")).expect("read");
    m.write(
        "entities/world.yaml",
        &world.replace(
            "{email: mia@acme.test, archived: false",
            "{email: mia@acme.test, archived: \"no\"",
        ),
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entities/world.yaml:14"), "{out}");
    assert!(out.contains("Member::\"acme-mia\""), "{out}");
    assert!(out.contains("archived"), "{out}");
}

#[test]
fn entity_in_json_violating_the_schema_names_its_line() {
    let m = Model::mini();
    let text = fs::read_to_string(m.path("entities/inboxes.json")).expect("read");
    m.write(
        "entities/inboxes.json",
        &text.replace("\"private\": true", "\"private\": 1"),
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entities/inboxes.json:5"), "{out}");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let m = Model::mini();
    m.write(
        "entities/extra.yaml",
        "- uid: {type: Company, id: initech}\n  attrs: {\n  parents: []\n",
    );
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entities/extra.yaml:2:10"), "{out}");
}

#[test]
fn check_json_format_lists_diagnostics() {
    let m = Model::mini();
    m.write(
        "policies/broken.cedar",
        "permit (principal, action, resource) when { ;\n",
    );
    let (code, out) = m.run(&["check", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["diagnostics"][0]["line"], 1);
    assert!(
        v["diagnostics"][0]["file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("policies/broken.cedar")
    );
}

#[test]
fn authorize_allow_exits_0_with_reason_and_location() {
    let (code, out) = Model::mini().run(&[
        "authorize",
        "--principal",
        "Member::\"acme-ada\"",
        "--action",
        "ViewInbox",
        "--resource",
        "Inbox::\"acme-billing\"",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    assert!(
        out.contains("inbox.admin  policies/inboxes.cedar:7"),
        "{out}"
    );
}

#[test]
fn authorize_deny_exits_2_and_names_the_forbid() {
    let (code, out) = Model::mini().run(&[
        "authorize",
        "--principal",
        "Member::\"acme-old\"",
        "--action",
        "Action::\"ViewInbox\"",
        "--resource",
        "Inbox::\"acme-support\"",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("decision: deny"), "{out}");
    assert!(
        out.contains("guard.archived  policies/more/guard.cedar:1"),
        "{out}"
    );
}

#[test]
fn authorize_invalid_request_exits_1() {
    let m = Model::mini();
    for (principal, action, context, needle) in [
        ("Inbox::\"acme-support\"", "ViewInbox", "{}", "principal"),
        ("Member::\"acme-ada\"", "DeleteEverything", "{}", "action"),
        (
            "Member::\"acme-ada\"",
            "ViewInbox",
            "{\"threshold\": \"lots\"}",
            "context",
        ),
        (
            "Member::\"acme-ada\"",
            "ViewInbox",
            "{\"unknown\": 1}",
            "context",
        ),
        ("acme-ada", "ViewInbox", "{}", "principal"),
    ] {
        let (code, out) = m.run(&[
            "authorize",
            "--principal",
            principal,
            "--action",
            action,
            "--resource",
            "Inbox::\"acme-support\"",
            "--context",
            context,
        ]);
        assert_eq!(code, 1, "{principal} {action} {context}: {out}");
        assert!(out.contains(&format!("invalid request: {needle}")), "{out}");
    }
}

#[test]
fn unannotated_policy_is_named_by_path_and_position() {
    let snapshot = load(&Model::mini().sources()).expect("loads");
    let ids: Vec<&str> = snapshot.policies().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "inbox.view-public",
            "inbox.admin",
            "inboxes.cedar#2",
            "guard.archived",
            "guard.tenant"
        ]
    );
    let q = Query::parse(
        "Member::\"acme-mia\"",
        "ViewInbox",
        "Inbox::\"acme-billing\"",
        serde_json::json!({"threshold": "0.75"}),
    )
    .expect("query");
    assert_eq!(
        snapshot.decide(&q).expect("answer").reasons,
        ["inboxes.cedar#2"]
    );
}

#[test]
fn validation_off_answers_requests_the_schema_would_reject() {
    let m = Model::mini();
    let mut sources = m.sources();
    let q = Query::parse(
        "Inbox::\"acme-support\"",
        "ViewInbox",
        "Inbox::\"acme-support\"",
        serde_json::json!({}),
    )
    .expect("query");
    assert!(load(&sources).expect("strict").decide(&q).is_err());
    sources.validation = ValidationMode::Off;
    let answer = load(&sources).expect("off").decide(&q).expect("answered");
    // An Inbox has no `archived`: the guard errors and is skipped, as Cedar does.
    assert!(
        answer.errors.iter().any(|e| e.policy == "guard.archived"),
        "{answer:?}"
    );
}

#[test]
fn revision_is_stable_and_changes_with_any_input_byte() {
    let m = Model::mini();
    let base = load(&m.sources()).expect("loads").revision().to_owned();
    assert_eq!(load(&m.sources()).expect("loads").revision(), base);
    for file in [
        "policies/more/guard.cedar",
        "schema/mini.cedarschema",
        "entities/world.yaml",
    ] {
        let original = fs::read_to_string(m.path(file)).expect("read");
        m.write(file, &format!("{original}\n"));
        let changed = load(&m.sources())
            .expect("still loads")
            .revision()
            .to_owned();
        assert_ne!(changed, base, "{file}");
        m.write(file, &original);
        assert_eq!(
            load(&m.sources()).expect("loads").revision(),
            base,
            "{file}"
        );
    }
}

#[cfg(unix)]
#[test]
fn symlink_loops_are_walked_once_and_dangling_policy_links_are_errors() {
    use std::os::unix::fs::symlink;
    let m = Model::mini();
    symlink(".", m.path("policies/loop")).expect("link");
    symlink("..", m.path("policies/more/up")).expect("link");
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 policies"), "each policy once: {out}");

    symlink("/nonexistent/guard.cedar", m.path("policies/zguard.cedar")).expect("link");
    let (code, out) = m.run(&["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("policies/zguard.cedar: cannot read"), "{out}");
}

#[test]
fn usage_errors_exit_1_not_the_deny_code() {
    let (code, out) = Model::mini().run(&["authorize", "--principal", "Member::\"acme-ada\""]);
    assert_eq!(code, 1, "{out}");
    let (code, out) = Model::mini().run(&["check", "--validation", "bogus"]);
    assert_eq!(code, 1, "{out}");
}

// ------------------------------------------------ configuration from the environment

/// `doorman ARGS` in `dir` with `env` set (and no other DOORMAN_* variable
/// inherited from whoever runs the tests).
fn doorman_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
    for (key, _) in std::env::vars() {
        if key.starts_with("DOORMAN_") {
            command.env_remove(key);
        }
    }
    let out = command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run doorman");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A directory holding one policy and nothing else (no ./schema, no
/// ./fixtures).
fn one_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::create_dir(dir.path().join("rules")).unwrap();
    fs::write(
        dir.path().join("rules/allow.cedar"),
        "@id(\"open\") permit(principal, action, resource);\n",
    )
    .unwrap();
    dir
}

#[test]
fn policies_from_the_environment_run_without_the_bundled_schema_and_entities() {
    let dir = one_policy();
    let (code, out) = doorman_in(dir.path(), &["check"], &[("DOORMAN_POLICIES", "rules")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 policy, 0 schemas, 0 entities: ok"), "{out}");
    // The same with the flag; and no schema means validation off, so a
    // request no schema describes is answered.
    let (code, out) = doorman_in(
        dir.path(),
        &[
            "authorize",
            "--policies",
            "rules",
            "--principal",
            "User::\"a\"",
            "--action",
            "Do",
            "--resource",
            "Thing::\"b\"",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    // The flag wins over the variable.
    let (code, out) = doorman_in(
        dir.path(),
        &["check", "--policies", "rules"],
        &[("DOORMAN_POLICIES", "/nonexistent")],
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn strict_validation_without_a_schema_is_a_clear_error() {
    let dir = one_policy();
    for (args, env) in [
        (
            &["check", "--policies", "rules", "--validation", "strict"][..],
            &[][..],
        ),
        (
            &["check"][..],
            &[
                ("DOORMAN_POLICIES", "rules"),
                ("DOORMAN_VALIDATION", "strict"),
            ][..],
        ),
        (
            &[
                "check",
                "--policies",
                "rules",
                "--schema",
                "none",
                "--validation",
                "permissive",
            ][..],
            &[][..],
        ),
    ] {
        let (code, out) = doorman_in(dir.path(), args, env);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains("needs a schema"), "{args:?}: {out}");
    }
}

#[test]
fn without_policies_the_bundled_model_is_the_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out) = doorman_in(root, &["check"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 schema") && !out.contains(" 0 entities"),
        "{out}"
    );
    // Naming the policies drops the bundled schema and entities.
    let (code, out) = doorman_in(root, &["check", "--policies", "policies"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 schemas, 0 entities: ok"), "{out}");
}

#[test]
fn several_entity_sources_come_from_one_variable() {
    let (code, out) = doorman_in(
        Path::new(MINI),
        &["check"],
        &[
            ("DOORMAN_POLICIES", "policies"),
            ("DOORMAN_SCHEMA", "schema"),
            (
                "DOORMAN_ENTITIES",
                "entities/world.yaml;entities/inboxes.json",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 policies, 1 schema, 9 entities: ok"),
        "{out}"
    );
    let (code, out) = doorman_in(
        Path::new(MINI),
        &["check", "--policies", "policies", "--schema", "schema"],
        &[("DOORMAN_ENTITIES", "entities/world.yaml")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("1 schema, 6 entities: ok"),
        "one file only: {out}"
    );
}

#[test]
fn serve_listens_where_the_environment_says() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = one_policy();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .arg("serve")
        .envs([
            ("DOORMAN_LISTEN", "127.0.0.1:0"),
            ("DOORMAN_POLICIES", "rules"),
            ("DOORMAN_WATCH", "off"),
            ("RUST_LOG", "info"),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start doorman serve");
    let stderr = child.stderr.take().unwrap();
    let serving = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains(" serving "));
    let line = serving.expect("a serving line");
    let address = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .expect("address= in the serving line")
        .to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{line}");
    assert!(line.contains("validation=off"), "{line}");
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    stream
        .write_all(b"GET /v1/status HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"watch\":\"off\""), "{answer}");
    assert!(answer.contains("\"policies\":1"), "{answer}");
}

#[test]
fn help_names_the_variable_of_every_flag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for command in ["check", "authorize", "test", "serve", "diff", "fmt"] {
        let (code, help) = doorman_in(root, &[command, "--help"], &[]);
        assert_eq!(code, 0, "{help}");
        // A flag's block runs from its `--flag` line to the next flag's
        // (clap puts `[env: …]` on a line of its own in long help).
        let mut blocks: Vec<String> = Vec::new();
        for line in help.lines().map(str::trim_start) {
            if line.starts_with("--") || line.starts_with("-h,") {
                blocks.push(String::new());
            }
            if let Some(block) = blocks.last_mut() {
                block.push_str(line);
                block.push('\n');
            }
        }
        let mut flags = 0;
        for block in &blocks {
            let Some(rest) = block.strip_prefix("--") else {
                continue;
            };
            let flag = rest.split([' ', '=', '<', '\n']).next().unwrap_or_default();
            if flag == "help" || flag == "version" {
                continue;
            }
            flags += 1;
            let variable = format!("DOORMAN_{}", flag.to_uppercase().replace('-', "_"));
            assert!(
                block.contains(&format!("[env: {variable}=")),
                "doorman {command} --{flag} does not say {variable}: {block}"
            );
        }
        assert!(flags >= 1, "doorman {command}: no flags found in\n{help}");
    }
}
