//! Hot reload against the real binary: files change under a running
//! `doorman serve` the ways they change in production (editor saves,
//! deletions, new files, schema changes, Kubernetes `..data` symlink swaps,
//! broken edits), and the answers over HTTP follow.
//!
//! Every test works on its own copy of the server tests' model in a temp
//! dir. The key question throughout is `bob ViewInbox support-desk`: denied
//! by the model as shipped, allowed once `EXTRA` is added.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::support::{Conn, Process, allow, deny, load_flags, model_dir, query, verdict};
use crate::common::{ModelCopy, copy_dir};

const EXTRA: &str =
    "@id(\"inbox.view-any\")\npermit (principal, action == Action::\"ViewInbox\", resource);\n";

/// A private, writable copy of the server tests' model.
type Workdir = ModelCopy;

impl Workdir {
    fn server_model() -> Workdir {
        ModelCopy::new(&model_dir())
    }

    fn start(&self, extra: &[&str]) -> Process {
        let mut args = load_flags(&self.sources());
        args.extend(extra.iter().map(|s| s.to_string()));
        Process::start_with(&args)
    }
}

async fn bob_views_support(conn: &mut Conn<TcpStream>) -> Value {
    let r = conn
        .post(
            "/v1/is_authorized",
            &query(("Member", "bob"), "ViewInbox", ("Inbox", "support-desk")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn status(conn: &mut Conn<TcpStream>) -> Value {
    let r = conn.get("/v1/status").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// Polls until `done` holds for bob's answer; returns how long it took.
async fn until_answer(
    conn: &mut Conn<TcpStream>,
    server: &Process,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let answer = bob_views_support(conn).await;
        if done(&answer) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "not visible within {limit:?}; last answer {answer}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn until_status(
    conn: &mut Conn<TcpStream>,
    server: &Process,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let s = status(conn).await;
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < limit,
            "status not reached within {limit:?}: {s}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn allowed(a: &Value) -> bool {
    verdict(a) == allow(&["inbox.view-any"])
}

fn denied(a: &Value) -> bool {
    verdict(a) == deny(&[])
}

#[tokio::test]
async fn editing_a_policy_flips_the_decision_within_a_second() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;
    let first = bob_views_support(&mut conn).await;
    assert!(denied(&first), "{first}");
    let original = fs::read_to_string(work.path("policies/inboxes.cedar")).expect("read");

    // 20 edits, alternating: each must be visible, revision and all, in 1 s.
    let mut took = Vec::new();
    for i in 0..20 {
        let add = i % 2 == 0;
        let text = if add {
            format!("{original}\n{EXTRA}")
        } else {
            original.clone()
        };
        work.write("policies/inboxes.cedar", &text);
        let want: fn(&Value) -> bool = if add { allowed } else { denied };
        took.push(until_answer(&mut conn, &server, Duration::from_secs(1), want).await);
        let answer = bob_views_support(&mut conn).await;
        let s = status(&mut conn).await;
        assert_eq!(s["revision"], answer["revision"], "{s}");
        // Same files, same revision; other files, another.
        assert_eq!(add, answer["revision"] != first["revision"], "{answer}");
    }
    let s = status(&mut conn).await;
    assert!(s["reload"]["successes"].as_u64().unwrap_or(0) >= 20, "{s}");
    took.sort();
    println!(
        "edit-to-visible over 20 edits: median {:?}, worst {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
}

#[tokio::test]
async fn save_by_rename_deletion_and_new_files_are_seen() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;
    let limit = Duration::from_secs(2);

    // An editor's save: write a temp file beside the original, rename it over.
    let original = fs::read_to_string(work.path("policies/inboxes.cedar")).expect("read");
    work.write(
        "policies/inboxes.cedar.tmp~",
        &format!("{original}\n{EXTRA}"),
    );
    fs::rename(
        work.path("policies/inboxes.cedar.tmp~"),
        work.path("policies/inboxes.cedar"),
    )
    .expect("rename");
    until_answer(&mut conn, &server, limit, allowed).await;

    // Back, then the same permit as a new file, then that file deleted.
    work.write("policies/inboxes.cedar", &original);
    until_answer(&mut conn, &server, limit, denied).await;
    work.write("policies/extra.cedar", EXTRA);
    until_answer(&mut conn, &server, limit, allowed).await;
    fs::remove_file(work.path("policies/extra.cedar")).expect("delete");
    until_answer(&mut conn, &server, limit, denied).await;
}

#[tokio::test]
async fn a_schema_change_with_entities_and_a_policy_using_it_is_seen() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;

    let schema = fs::read_to_string(work.path("schema/server.cedarschema")).expect("read");
    work.write(
        "schema/server.cedarschema",
        &schema.replace("suspended: Bool,", "suspended: Bool,\n  vip?: Bool,"),
    );
    let world = fs::read_to_string(work.path("entities/world.json")).expect("read");
    work.write(
        "entities/world.json",
        &world.replace("\"level\": 3,", "\"level\": 3, \"vip\": true,"),
    );
    work.write(
        "policies/vip.cedar",
        "@id(\"inbox.vip\")\npermit (principal, action == Action::\"ViewInbox\", resource)\nwhen { principal has vip && principal.vip };\n",
    );
    until_answer(&mut conn, &server, Duration::from_secs(2), |a| {
        verdict(a) == allow(&["inbox.vip"])
    })
    .await;
}

/// Kubernetes mounts a ConfigMap as `..<timestamp>/` holding the files, a
/// `..data` symlink to it, and one symlink per file through `..data`; an
/// update writes a new timestamped directory and renames a fresh symlink
/// over `..data`.
#[cfg(unix)]
#[tokio::test]
async fn a_kubernetes_style_symlink_swap_is_seen_without_duplicates() {
    use std::os::unix::fs::symlink;

    let work = Workdir::server_model();
    let mount = work.path("mounted");
    let v1 = mount.join("..2026_11_22_v1");
    fs::create_dir_all(&v1).expect("mkdir");
    for name in ["inboxes.cedar", "guards.cedar"] {
        fs::copy(work.path("policies").join(name), v1.join(name)).expect("copy");
        symlink(Path::new("..data").join(name), mount.join(name)).expect("file link");
    }
    symlink("..2026_11_22_v1", mount.join("..data")).expect("data link");

    let mut args = load_flags(&work.sources());
    args[1] = mount.display().to_string(); // --policies
    let server = Process::start_with(&args);
    let mut conn = server.connect().await;
    assert!(denied(&bob_views_support(&mut conn).await));
    let policies = status(&mut conn).await["policies"].clone();

    let v2 = mount.join("..2026_11_22_v2");
    fs::create_dir_all(&v2).expect("mkdir");
    let inboxes = fs::read_to_string(v1.join("inboxes.cedar")).expect("read");
    fs::write(v2.join("inboxes.cedar"), format!("{inboxes}\n{EXTRA}")).expect("write");
    fs::copy(v1.join("guards.cedar"), v2.join("guards.cedar")).expect("copy");
    symlink("..2026_11_22_v2", mount.join("..data_tmp")).expect("tmp link");
    fs::rename(mount.join("..data_tmp"), mount.join("..data")).expect("swap");
    fs::remove_dir_all(&v1).expect("old version removed, as kubelet does");

    until_answer(&mut conn, &server, Duration::from_secs(2), allowed).await;
    let s = status(&mut conn).await;
    // One more policy, not every policy twice (the hidden `..` entries are
    // not read beside the links that point into them).
    assert_eq!(
        s["policies"].as_u64(),
        policies.as_u64().map(|n| n + 1),
        "{s}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_policy_directory_swapped_through_a_symlink_is_seen() {
    use std::os::unix::fs::symlink;

    let work = Workdir::server_model();
    let v2 = work.path("policies-v2");
    copy_dir(&work.path("policies"), &v2);
    fs::write(v2.join("extra.cedar"), EXTRA).expect("write");
    symlink(work.path("policies"), work.path("current")).expect("link");

    let mut args = load_flags(&work.sources());
    args[1] = work.path("current").display().to_string();
    let server = Process::start_with(&args);
    let mut conn = server.connect().await;
    assert!(denied(&bob_views_support(&mut conn).await));

    symlink(&v2, work.path("current.tmp")).expect("tmp link");
    fs::rename(work.path("current.tmp"), work.path("current")).expect("swap");
    until_answer(&mut conn, &server, Duration::from_secs(2), allowed).await;

    // The watch now follows the new target: an edit inside it is seen too.
    fs::remove_file(v2.join("extra.cedar")).expect("delete");
    until_answer(&mut conn, &server, Duration::from_secs(2), denied).await;
}

#[tokio::test]
async fn a_broken_edit_keeps_the_last_good_snapshot_until_it_is_fixed() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;
    let limit = Duration::from_secs(2);
    work.write("policies/extra.cedar", EXTRA);
    until_answer(&mut conn, &server, limit, allowed).await;
    let good = status(&mut conn).await;

    for (file, text, line) in [
        (
            "policies/extra.cedar",
            "@id(\"oops\")\npermit (principal, action, resource)\nwhen { principal.level > };\n",
            3,
        ),
        (
            "policies/extra.cedar",
            "@id(\"oops\")\npermit (principal, action, resource is Inbox)\nwhen { resource.nope };\n",
            3,
        ),
        (
            "entities/world.json",
            "[{\"uid\": {\"type\": \"Team\", \"id\": \"x\"}, \"attrs\": {\"no\": 1}, \"parents\": []}]",
            1,
        ),
    ] {
        let before = fs::read_to_string(work.path(file)).expect("read");
        let failures = status(&mut conn).await["reload"]["failures"].as_u64();
        work.write(file, text);
        let s = until_status(&mut conn, &server, limit, |s| {
            s["reload"]["failures"].as_u64() > failures
        })
        .await;
        // Still serving the last good snapshot, and saying what is wrong where.
        assert_eq!(s["revision"], good["revision"], "{s}");
        assert!(allowed(&bob_views_support(&mut conn).await));
        let d = &s["reload"]["last_error"]["diagnostics"][0];
        assert!(
            d["file"].as_str().unwrap_or_default().ends_with(file),
            "{s}"
        );
        assert_eq!(d["line"], line, "{s}");
        assert!(s["reload"]["last_error"]["at"].is_string(), "{s}");
        assert_eq!(s["ready"], true);

        work.write(file, &before);
        let s = until_status(&mut conn, &server, limit, |s| {
            s["reload"]["last_error"].is_null()
        })
        .await;
        assert_eq!(s["revision"], good["revision"], "the same files again: {s}");
        assert!(allowed(&bob_views_support(&mut conn).await));
    }
    let s = status(&mut conn).await;
    assert!(s["reload"]["failures"].as_u64() >= Some(3), "{s}");
}

#[tokio::test]
async fn post_reload_and_sighup_force_a_reload_when_not_watching() {
    let work = Workdir::server_model();
    let server = work.start(&["--watch", "off"]);
    let mut conn = server.connect().await;
    work.write("policies/extra.cedar", EXTRA);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(denied(&bob_views_support(&mut conn).await), "not watching");
    let before = status(&mut conn).await;
    assert_eq!(before["reload"]["watch"], "off");

    let r = conn.post("/v1/reload", &json!({})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let outcome = r.json();
    assert_eq!(outcome["result"], "reloaded", "{outcome}");
    assert_eq!(outcome["previous_revision"], before["revision"]);
    assert!(allowed(&bob_views_support(&mut conn).await));
    assert_eq!(status(&mut conn).await["revision"], outcome["revision"]);

    // Nothing changed: unchanged. Broken: 422 with the diagnostics.
    let r = conn.post("/v1/reload", &json!({})).await;
    assert_eq!(
        (r.status, r.json()["result"].clone()),
        (200, json!("unchanged"))
    );
    work.write("policies/extra.cedar", "permit (");
    let r = conn.post("/v1/reload", &json!({})).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"], "failed");
    assert_eq!(r.json()["revision"], outcome["revision"]);
    assert!(
        r.json()["diagnostics"][0]["file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("extra.cedar")
    );
    let r = conn.get("/v1/reload").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    fs::remove_file(work.path("policies/extra.cedar")).expect("delete");
    server.signal("HUP");
    until_answer(&mut conn, &server, Duration::from_secs(2), denied).await;
}

#[tokio::test]
async fn polling_sees_changes_on_file_systems_without_events() {
    let work = Workdir::server_model();
    let server = work.start(&["--watch", "poll:100ms"]);
    let mut conn = server.connect().await;
    assert_eq!(status(&mut conn).await["reload"]["watch"], "poll:100ms");
    work.write("policies/extra.cedar", EXTRA);
    until_answer(&mut conn, &server, Duration::from_secs(3), allowed).await;
}

#[tokio::test]
async fn editor_droppings_do_not_cause_reloads() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;
    for name in [
        ".inboxes.cedar.swp",
        "inboxes.cedar~",
        ".#inboxes.cedar",
        "4913",
    ] {
        work.write(&format!("policies/{name}"), "junk that is not Cedar");
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = &status(&mut conn).await["reload"];
    let attempts: u64 = ["successes", "failures", "unchanged"]
        .iter()
        .map(|k| r[k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(attempts, 0, "{r}");
    // A real edit right after is still seen.
    work.write("policies/extra.cedar", EXTRA);
    until_answer(&mut conn, &server, Duration::from_secs(2), allowed).await;
}

/// While clients send singles and batches back to back over keep-alive
/// connections, the policy file is rewritten 50 times (good and broken
/// edits mixed). No request may fail, each revision must always give the
/// same answer, and every batch must be answered by one snapshot.
#[tokio::test]
async fn fifty_rewrites_under_load_fail_no_request_and_never_mix_snapshots() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let address = server.address.clone();
    let original = fs::read_to_string(work.path("policies/inboxes.cedar")).expect("read");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));

    let bob = query(("Member", "bob"), "ViewInbox", ("Inbox", "support-desk"));
    let ann = query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"));
    let mut clients = Vec::new();
    for batch in [false, true, false, true] {
        let (address, stop, bob, ann) = (address.clone(), stop.clone(), bob.clone(), ann.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::tcp(&address).await;
            // revision -> whether that snapshot has the extra policy
            let mut seen: std::collections::HashMap<String, bool> = Default::default();
            let mut answered = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (answers, revision) = if batch {
                    let body = json!({"requests": [bob, ann, bob, ann, bob, bob]});
                    let r = conn.post("/v1/batch_is_authorized", &body).await;
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    let v = r.json();
                    let items = v["responses"].as_array().expect("responses").clone();
                    (items, v["revision"].as_str().unwrap_or_default().to_owned())
                } else {
                    let r = conn.post("/v1/is_authorized", &bob).await;
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    let v = r.json();
                    let revision = v["revision"].as_str().unwrap_or_default().to_owned();
                    (vec![v], revision)
                };
                // Which snapshot answered each item: one with or without
                // the extra permit. Every item must tell the same story.
                let extra: Vec<bool> = answers
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let is_ann = batch && matches!(i, 1 | 3);
                        let (with, without) = if is_ann {
                            (
                                allow(&["inbox.view-team", "inbox.view-any"]),
                                allow(&["inbox.view-team"]),
                            )
                        } else {
                            (allow(&["inbox.view-any"]), deny(&[]))
                        };
                        let v = verdict(a);
                        assert!(v == with || v == without, "{a}");
                        v == with
                    })
                    .collect();
                assert!(
                    extra.iter().all(|e| *e == extra[0]),
                    "a batch mixed snapshots: {answers:?}"
                );
                let first = *seen.entry(revision.clone()).or_insert(extra[0]);
                assert_eq!(first, extra[0], "revision {revision} answered two ways");
                answered += 1;
            }
            (answered, seen)
        }));
    }

    for i in 0..50 {
        let text = match i % 5 {
            0 | 2 => format!("{original}\n{EXTRA}"),
            1 | 3 => original.clone(),
            _ => format!("{original}\npermit (principal, action, resource) when {{ ;\n"),
        };
        // Replaced atomically, as deploy tools and editors do (and as the
        // README asks): a reader sees the old file or the new, never half.
        work.write("policies/.inboxes.cedar.next", &text);
        fs::rename(
            work.path("policies/.inboxes.cedar.next"),
            work.path("policies/inboxes.cedar"),
        )
        .expect("rename");
        // Some edits land inside one debounce window, some far apart.
        let pause = if i % 3 == 0 { 20 } else { 150 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    work.write("policies/inboxes.cedar", &format!("{original}\n{EXTRA}"));
    let mut conn = server.connect().await;
    until_answer(&mut conn, &server, Duration::from_secs(2), allowed).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut revisions = std::collections::HashMap::new();
    let mut total = 0;
    for client in clients {
        let (answered, seen) = client.await.expect("a client failed");
        assert!(answered > 0);
        total += answered;
        for (revision, v) in seen {
            let first = revisions.entry(revision.clone()).or_insert(v);
            assert_eq!(
                *first, v,
                "revision {revision} answered two ways across clients"
            );
        }
    }
    // Both good states were served (and nothing else).
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    let s = status(&mut conn).await;
    assert!(s["reload"]["failures"].as_u64() >= Some(1), "{s}");
    // Edits close together fold into one attempt, so fewer attempts than
    // edits; but both good states were published and broken ones refused.
    assert!(s["reload"]["successes"].as_u64() >= Some(2), "{s}");
    println!("{total} requests answered during 50 rewrites, none failed");
}

#[tokio::test]
async fn a_reload_whose_client_hangs_up_still_completes() {
    let work = Workdir::server_model();
    // Enough entities that a load takes a while, so the client can give up
    // in the middle of it.
    let members: Vec<Value> = (0..3_000)
        .map(|i| {
            json!({"uid": {"type": "Member", "id": format!("m{i}")},
                   "attrs": {"team": {"type": "Team", "id": "support"}, "level": 1, "suspended": false},
                   "parents": [{"type": "Team", "id": "support"}]})
        })
        .collect();
    work.write("entities/many.json", &Value::Array(members).to_string());
    let server = work.start(&["--watch", "off"]);
    let mut conn = server.connect().await;
    work.write("policies/extra.cedar", EXTRA);
    {
        // Ask, and hang up while the attempt is under way, as a deploy
        // script with a short timeout would.
        let mut quitter = server.connect().await;
        quitter
            .write(b"POST /v1/reload HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    until_answer(&mut conn, &server, Duration::from_secs(20), allowed).await;
    let s = status(&mut conn).await;
    assert_eq!(s["reload"]["successes"], 1, "{s}\n{}", server.log());
}

#[tokio::test]
async fn emptying_the_policy_directory_is_refused_on_reload() {
    let work = Workdir::server_model();
    let server = work.start(&[]);
    let mut conn = server.connect().await;
    let before = status(&mut conn).await;
    for entry in fs::read_dir(work.path("policies")).expect("read dir") {
        fs::remove_file(entry.expect("entry").path()).expect("delete");
    }
    let s = until_status(&mut conn, &server, Duration::from_secs(2), |s| {
        s["reload"]["failures"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(s["revision"], before["revision"], "{s}");
    let message = s["reload"]["last_error"]["diagnostics"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("no policies found"), "{s}");
    // Still answering from the last good policies.
    let a = conn
        .post(
            "/v1/is_authorized",
            &query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk")),
        )
        .await;
    assert_eq!(verdict(&a.json()), allow(&["inbox.view-team"]));
}
