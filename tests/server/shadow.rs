//! `serve --shadow DIR` over the wire: the bundled model live, R12 widened
//! as the candidate. What the shadow counts and logs is checked against a
//! second server that serves the candidate for real: every request whose
//! answers differ between the two servers, and only those, must be a
//! disagreement. Then the candidate is edited (reloaded), broken (the last
//! good one stays) and broken at start-up (the command fails).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::common::copy_dir;
use crate::observe::scrape;
use crate::support::*;

const R12: &str = "when {\n  !resource.private &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};";
const R12_WIDENED: &str = "when {\n  (!resource.private ||\n   principal in Role::\"member\") &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A copy of the bundled policies with R12 widened.
fn candidate(root: &Path) -> PathBuf {
    let dir = root.join("candidate");
    copy_dir(&repo("policies"), &dir);
    let file = dir.join("inboxes.cedar");
    let text = fs::read_to_string(&file).unwrap();
    // From R12's own @id on: the same condition appears earlier too.
    let at = text.find("@id(\"inbox.view-public\")").expect("R12");
    let edited = text[..at].to_owned() + &text[at..].replacen(R12, R12_WIDENED, 1);
    assert_ne!(edited, text, "R12's text moved; update this test");
    fs::write(&file, edited).unwrap();
    dir
}

fn bundled_flags(policies: &Path) -> Vec<String> {
    [
        "--policies",
        policies.to_str().unwrap(),
        "--schema",
        repo("schema").to_str().unwrap(),
        "--entities",
        repo("fixtures/entities").to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The bundled world's entities, as Cedar entity JSON.
fn world() -> Vec<Value> {
    let text = fs::read_to_string(repo("fixtures/entities/world.yaml")).unwrap();
    serde_saphyr::from_str(&text).expect("the bundled world is YAML")
}

fn ids(world: &[Value], kind: &str) -> Vec<String> {
    world
        .iter()
        .filter(|e| e["uid"]["type"] == kind)
        .map(|e| e["uid"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// One call and where its decisions are in the answer.
struct Call {
    path: &'static str,
    body: Value,
}

/// Singles, batches (with request entities: a member who exists only in
/// the request) and AuthZEN evaluations over members × inbox actions.
fn traffic() -> Vec<Call> {
    let world = world();
    let members = ids(&world, "Member");
    let inboxes = ids(&world, "Inbox");
    let mut newcomer = world
        .iter()
        .find(|e| e["uid"]["id"] == "acme-mia")
        .expect("acme-mia is in the bundled world")
        .clone();
    newcomer["uid"]["id"] = json!("shadow-newcomer");
    let mut calls = Vec::new();
    for (i, m) in members.iter().enumerate() {
        for inbox in &inboxes {
            for action in ["ViewInbox", "SendMessage"] {
                calls.push(Call {
                    path: "/v1/is_authorized",
                    body: query(("Member", m), action, ("Inbox", inbox)),
                });
            }
        }
        calls.push(Call {
            path: "/access/v1/evaluation",
            body: json!({
                "subject": {"type": "Member", "id": m},
                "action": {"name": "ViewInbox"},
                "resource": {"type": "Inbox", "id": inboxes[i % inboxes.len()]},
            }),
        });
    }
    let requests: Vec<Value> = inboxes
        .iter()
        .map(|inbox| query(("Member", "shadow-newcomer"), "ViewInbox", ("Inbox", inbox)))
        .collect();
    calls.push(Call {
        path: "/v1/batch_is_authorized",
        body: json!({"requests": requests, "entities": [newcomer.clone()]}),
    });
    // The request entity on the item itself, for a single.
    let mut single = query(
        ("Member", "shadow-newcomer"),
        "ViewInbox",
        ("Inbox", "acme-billing"),
    );
    single["entities"] = json!([newcomer]);
    calls.push(Call {
        path: "/v1/is_authorized",
        body: single,
    });
    calls
}

/// Each decision a call got, in order, as "allow"/"deny".
async fn decisions(c: &mut Conn<TcpStream>, call: &Call) -> Vec<String> {
    let r = c.post(call.path, &call.body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let json = r.json();
    match call.path {
        "/v1/batch_is_authorized" => json["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| verdict(a).0)
            .collect(),
        "/access/v1/evaluation" => {
            vec![
                if json["decision"] == true {
                    "allow"
                } else {
                    "deny"
                }
                .to_owned(),
            ]
        }
        _ => vec![verdict(&json).0],
    }
}

#[derive(Debug, Default, PartialEq)]
struct Tally {
    agree: u64,
    allow_to_deny: u64,
    deny_to_allow: u64,
}

/// Sends `traffic` to both servers; what the shadow should have found.
async fn send(
    live: &mut Conn<TcpStream>,
    real: &mut Conn<TcpStream>,
    calls: &[Call],
) -> (Tally, Vec<(String, String)>) {
    let mut tally = Tally::default();
    let mut flipped = Vec::new();
    for call in calls {
        let a = decisions(live, call).await;
        let b = decisions(real, call).await;
        assert_eq!(a.len(), b.len());
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            match (a.as_str(), b.as_str()) {
                (x, y) if x == y => tally.agree += 1,
                ("allow", _) => tally.allow_to_deny += 1,
                _ => tally.deny_to_allow += 1,
            }
            if a != b {
                let item = match call.path {
                    "/v1/batch_is_authorized" => &call.body["requests"][i],
                    _ => &call.body,
                };
                let principal = item["principal"]["id"]
                    .as_str()
                    .or(item["subject"]["id"].as_str())
                    .unwrap();
                let resource = item["resource"]["id"].as_str().unwrap();
                flipped.push((principal.to_owned(), resource.to_owned()));
            }
        }
    }
    (tally, flipped)
}

async fn shadow_tally(c: &mut Conn<TcpStream>) -> Tally {
    let m = scrape(c).await;
    let get = |outcome: &str| {
        m.get("doorman_shadow_decisions_total", &[("outcome", outcome)])
            .unwrap_or(0.0) as u64
    };
    assert_eq!(get("error"), 0, "the candidate refused a question");
    assert_eq!(
        m.get("doorman_shadow_skipped_total", &[]),
        Some(0.0),
        "nothing is skipped at this rate"
    );
    Tally {
        agree: get("agree"),
        allow_to_deny: get("allow_to_deny"),
        deny_to_allow: get("deny_to_allow"),
    }
}

/// Waits until the shadow has answered `expected`'s total.
async fn settled(c: &mut Conn<TcpStream>, expected: &Tally) -> Tally {
    let total = |t: &Tally| t.agree + t.allow_to_deny + t.deny_to_allow;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let now = shadow_tally(c).await;
        if total(&now) >= total(expected) || Instant::now() > until {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn status(c: &mut Conn<TcpStream>) -> Value {
    let r = c.get("/v1/status").await;
    assert_eq!(r.status, 200);
    r.json()
}

/// Polls `/v1/status` until `test` holds for its `shadow`.
async fn status_until(c: &mut Conn<TcpStream>, what: &str, test: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(c).await;
        if test(&s["shadow"]) {
            return s["shadow"].clone();
        }
        assert!(Instant::now() < until, "{what}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_shadow_counts_and_logs_exactly_what_the_candidate_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let cand = candidate(dir.path());
    let mut args = bundled_flags(&repo("policies"));
    args.extend(["--shadow".to_owned(), cand.display().to_string()]);
    let server = Process::start_with(&args);
    let reference = Process::start_with(&bundled_flags(&cand));
    let mut live = server.connect().await;
    let mut real = reference.connect().await;

    // A server without --shadow says so.
    assert_eq!(status(&mut real).await["shadow"], Value::Null);
    let before = status(&mut live).await["shadow"].clone();
    assert_eq!(before["policies"], cand.display().to_string());
    let first_revision = before["revision"].as_str().unwrap().to_owned();

    let calls = traffic();
    let (expected, flipped) = send(&mut live, &mut real, &calls).await;
    assert!(
        expected.deny_to_allow > 0 && expected.agree > 0,
        "the widened R12 must change some answers and not others: {expected:?}"
    );
    assert_eq!(expected.allow_to_deny, 0, "R12 only widens");
    assert!(
        flipped.iter().any(|(p, _)| p == "shadow-newcomer"),
        "a request entity's answer changes too: {flipped:?}"
    );
    assert_eq!(settled(&mut live, &expected).await, expected);

    // Each disagreement is logged once, naming who and what.
    let log = server.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("shadow disagrees"))
        .collect();
    assert_eq!(lines.len(), flipped.len(), "{log}");
    for (principal, resource) in &flipped {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("Member::\"{principal}\""))
                    && l.contains(&format!("Inbox::\"{resource}\""))
                    && l.contains("live=deny")
                    && l.contains("candidate=allow")),
            "no line for {principal} on {resource}:\n{log}"
        );
    }
    let view = status(&mut live).await["shadow"].clone();
    assert_eq!(view["agreed"], expected.agree);
    assert_eq!(view["deny_to_allow"], expected.deny_to_allow);

    // The candidate edited back to the live policies: reloaded, and from
    // then on everything agrees.
    copy_dir(&repo("policies"), &cand);
    let reloaded = status_until(&mut live, "the edited candidate is loaded", |s| {
        s["revision"].as_str() != Some(&first_revision)
    })
    .await;
    assert_eq!(reloaded["last_error"], Value::Null);
    let mut answered = 0;
    for call in &calls {
        answered += decisions(&mut live, call).await.len() as u64;
    }
    let total = Tally {
        agree: expected.agree + answered,
        ..expected
    };
    assert_eq!(settled(&mut live, &total).await, total);
    assert_eq!(
        scrape(&mut live)
            .await
            .get("doorman_shadow_reloads_total", &[("result", "ok")]),
        Some(1.0)
    );

    // A broken edit: reported with file:line, the last good candidate stays.
    let broken = cand.join("inboxes.cedar");
    let text = fs::read_to_string(&broken).unwrap();
    fs::write(
        &broken,
        format!("{text}\npermit (principal, action, resource) when {{ nope }};\n"),
    )
    .unwrap();
    let failed = status_until(&mut live, "the broken candidate is reported", |s| {
        !s["last_error"].is_null()
    })
    .await;
    let diagnostics = failed["last_error"]["diagnostics"].to_string();
    assert!(diagnostics.contains("inboxes.cedar"), "{failed}");
    assert_eq!(
        failed["revision"], reloaded["revision"],
        "the last good one stays"
    );
    decisions(&mut live, &calls[0]).await;
    let one_more = Tally {
        agree: total.agree + 1,
        ..total
    };
    assert_eq!(settled(&mut live, &one_more).await, one_more);
}

/// `doorman serve --shadow` on the bundled model with a copy of its
/// policies plus `file` holding `text` as the candidate: the exit status
/// and the log.
fn serve_with_candidate_file(file: &str, text: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let cand = candidate(dir.path());
    fs::write(cand.join(file), text).unwrap();
    let mut args = bundled_flags(&repo("policies"));
    args.extend([
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--shadow".to_owned(),
        cand.display().to_string(),
    ]);
    Process::run_to_exit(&args)
}

#[test]
fn a_candidate_that_does_not_load_fails_the_command_with_file_and_line() {
    let (status, log) = serve_with_candidate_file(
        "broken.cedar",
        "permit (principal, action, resource)\n  when { ? };\n",
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("broken.cedar:2:"), "{log}");
    assert!(log.contains("cannot load the shadow candidate"), "{log}");
}

#[test]
fn a_candidate_invalid_against_the_live_schema_fails_the_command() {
    let (status, log) = serve_with_candidate_file(
        "typo.cedar",
        "permit (principal is Member, action == Action::\"ViewInbox\", resource is Inbox)\n  when { resource.nonesuch };\n",
    );
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("typo.cedar:"), "{log}");
}
