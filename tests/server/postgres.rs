//! doorman reading and following a real PostgreSQL (a throwaway cluster per
//! test, see `pg`): the bundled world from the worked example's tables, the
//! rule book's changes visible over HTTP, a burst of concurrent changes
//! applied in full, the database restarting under load, a bad row, lost
//! notifications, a pruned change log, and a first load that must wait.
//!
//! Two contracts are used: the worked example (`sql/example-bundled.sql`,
//! the application's own tables behind a view) and a bare table holding
//! Cedar entity JSON, for tests that need rows no typed table would hold.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doorman::reload::{Reloader, Target};
use doorman::{Snapshot, Sources, ValidationMode};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::pg::{Cluster, sql};
use crate::support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled policies and schema, entities from `url` only.
fn flags(url: &str) -> Vec<String> {
    [
        "--policies",
        &root().join("policies").display().to_string(),
        "--schema",
        &root().join("schema").display().to_string(),
        "--entities",
        url,
        "--database-poll",
        "300ms",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn sources(url: &str) -> Sources {
    Sources {
        policies: root().join("policies"),
        schema: Some(root().join("schema")),
        entities: vec![],
        databases: vec![doorman::load::DatabaseSource::parse(url).expect("a URL")],
        validation: ValidationMode::Strict,
        routes: None,
    }
}

/// A database with the contract and the worked example's tables and world.
async fn example(cluster: &Cluster) -> String {
    cluster
        .create(
            "app",
            &[&sql("doorman-postgres.sql"), &sql("example-bundled.sql")],
        )
        .await;
    cluster.url("app")
}

/// A database with the contract over a bare table of entity JSON, holding
/// the bundled world.
async fn bare(cluster: &Cluster) -> String {
    cluster
        .create(
            "bare",
            &[
                &sql("doorman-postgres.sql"),
                "CREATE TABLE doorman.entities (
                     uid_type text, uid_id text, attrs jsonb NOT NULL, parents jsonb NOT NULL,
                     PRIMARY KEY (uid_type, uid_id));
                 CREATE FUNCTION doorman.bare_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF TG_OP = 'DELETE' THEN
                         PERFORM doorman.record_change(OLD.uid_type, OLD.uid_id, 'delete');
                     ELSE
                         PERFORM doorman.record_change(NEW.uid_type, NEW.uid_id, 'upsert');
                     END IF;
                     RETURN NULL;
                 END $$;
                 CREATE TRIGGER doorman AFTER INSERT OR UPDATE OR DELETE ON doorman.entities
                     FOR EACH ROW EXECUTE FUNCTION doorman.bare_changed();",
            ],
        )
        .await;
    let client = cluster.connect("bare").await;
    for item in world() {
        insert(&client, &item).await;
    }
    cluster.url("bare")
}

/// The bundled sample world, as entity JSON.
fn world() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("fixtures/entities/world.yaml")).expect("world");
    serde_saphyr::from_str(&text).expect("YAML")
}

async fn insert(client: &tokio_postgres::Client, item: &Value) {
    client
        .execute(
            "INSERT INTO doorman.entities VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb)",
            &[
                &item["uid"]["type"].as_str().expect("type"),
                &item["uid"]["id"].as_str().expect("id"),
                &item["attrs"].to_string(),
                &item["parents"].to_string(),
            ],
        )
        .await
        .expect("insert");
}

/// A cluster holding the bare contract, the sidecar following it, and a
/// connection to the sidecar that finds Ada allowed to view the support
/// inbox (what the tests then change).
async fn following_bare() -> (Cluster, Process, Conn<TcpStream>) {
    let cluster = Cluster::start();
    let url = bare(&cluster).await;
    let server = Process::start_with(&flags(&url));
    let mut conn = server.connect().await;
    assert_eq!(
        ask(
            &mut conn,
            "acme-ada",
            "ViewInbox",
            ("Inbox", "acme-support")
        )
        .await,
        "allow"
    );
    (cluster, server, conn)
}

async fn ask(conn: &mut Conn<TcpStream>, p: &str, action: &str, r: (&str, &str)) -> String {
    let answer = conn
        .post("/v1/is_authorized", &query(("Member", p), action, r))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json());
    answer.json()["decision"]
        .as_str()
        .expect("a decision")
        .to_owned()
}

/// Asks until the answer is `want` (at most 15 s); how long it took.
async fn until(
    conn: &mut Conn<TcpStream>,
    p: &str,
    action: &str,
    r: (&str, &str),
    want: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        if ask(conn, p, action, r).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{p} {action} {r:?} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn database_status(conn: &mut Conn<TcpStream>) -> Value {
    conn.get("/v1/status").await.json()["databases"][0].clone()
}

/// The stores of two snapshots hold the same entities, as Cedar sees them.
fn same_entities(a: &Snapshot, b: &Snapshot) -> bool {
    let (a, b) = (a.store().to_cedar(), b.store().to_cedar());
    let (a, b): (
        &cedar_policy_core::entities::Entities,
        &cedar_policy_core::entities::Entities,
    ) = (a.as_ref(), b.as_ref());
    a.deep_eq(b)
}

fn read_in_full(url: &str) -> Snapshot {
    let sources = sources(url);
    let snapshot = doorman::load(&sources).expect("the bundled policies load");
    doorman::postgres::read_blocking(snapshot, &sources.databases)
        .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worked_example_holds_the_bundled_world() {
    let cluster = Cluster::start();
    let url = example(&cluster).await;
    let from_files = doorman::load(&Sources {
        entities: vec![root().join("fixtures/entities")],
        databases: vec![],
        ..sources(&url)
    })
    .expect("the bundled model loads");
    let read = url.clone();
    let from_tables = tokio::task::spawn_blocking(move || read_in_full(&read))
        .await
        .expect("read");
    assert_eq!(from_tables.entity_count(), from_files.entity_count());
    assert!(
        same_entities(&from_tables, &from_files),
        "the tables do not hold the bundled world"
    );
    // `check` reads the database too, and says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["check", "--entities", &url])
        .current_dir(root())
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("58 entities: ok"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rule_books_changes_are_visible_over_http() {
    let cluster = Cluster::start();
    let url = example(&cluster).await;
    let server = Process::start_with(&flags(&url));
    let mut conn = server.connect().await;
    let app = cluster.connect("app").await;
    let mut took = Vec::new();

    // R2-R7: Mia (member) may not remove an inbox; made an admin, she may.
    let remove = ("Inbox", "acme-support");
    assert_eq!(
        ask(&mut conn, "acme-mia", "RemoveInbox", remove).await,
        "deny"
    );
    app.batch_execute("UPDATE app.members SET role = 'admin' WHERE id = 'acme-mia'")
        .await
        .unwrap();
    took.push(until(&mut conn, "acme-mia", "RemoveInbox", remove, "allow").await);

    // R29: archived, Ada may do nothing.
    let view = ("Inbox", "acme-support");
    assert_eq!(ask(&mut conn, "acme-ada", "ViewInbox", view).await, "allow");
    app.batch_execute("UPDATE app.members SET archived = true WHERE id = 'acme-ada'")
        .await
        .unwrap();
    took.push(until(&mut conn, "acme-ada", "ViewInbox", view, "deny").await);

    // R13: assigned to the billing inbox, Abe may send from it.
    let billing = ("Inbox", "acme-billing");
    assert_eq!(
        ask(&mut conn, "acme-abe", "SendMessage", billing).await,
        "deny"
    );
    app.batch_execute("INSERT INTO app.member_inboxes VALUES ('acme-abe', 'acme-billing')")
        .await
        .unwrap();
    took.push(until(&mut conn, "acme-abe", "SendMessage", billing, "allow").await);

    // Removed, Max may do nothing any more.
    assert_eq!(
        ask(&mut conn, "acme-max", "SendMessage", billing).await,
        "allow"
    );
    app.batch_execute("DELETE FROM app.members WHERE id = 'acme-max'")
        .await
        .unwrap();
    took.push(until(&mut conn, "acme-max", "SendMessage", billing, "deny").await);

    let status = database_status(&mut conn).await;
    assert_eq!(status["state"], "following", "{status}");
    assert_eq!(status["entities"], 57, "{status}");
    // At least one change-log row per statement (the removal cascades to
    // Max's inbox assignments, which name him again).
    assert!(status["changes_applied"].as_u64().unwrap() >= 4, "{status}");
    eprintln!("change to visible: {took:?}");
}

/// The serving side of a follower run in-process.
struct Serving(Mutex<Option<Arc<Snapshot>>>);

impl Target for Serving {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.0.lock().unwrap().clone()
    }

    fn publish(&self, snapshot: Snapshot) -> Option<Arc<Snapshot>> {
        self.0.lock().unwrap().replace(Arc::new(snapshot))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_concurrent_changes_ends_as_a_fresh_read_does() {
    const WRITERS: usize = 4;
    const CHANGES: usize = 10_000;
    const SEATS: usize = 100;
    let cluster = Cluster::start();
    let url = bare(&cluster).await;
    let client = cluster.connect("bare").await;
    let seat = |k: usize| {
        json!({
            "uid": {"type": "Member", "id": format!("burst-{k}")},
            "attrs": {"company": {"type": "Company", "id": "acme"}, "email": format!("b{k}@acme.test"),
                      "kind": "team", "labels": [], "archived": false, "anonymous": false,
                      "inboxes": [], "agents": [], "stores": [], "grants": []},
            "parents": [{"type": "Company", "id": "acme"}, {"type": "Role", "id": "member"}],
        })
    };
    for k in 0..SEATS {
        insert(&client, &seat(k)).await;
    }

    let reloader = Arc::new(Reloader::with_poll(
        sources(&url),
        Duration::from_millis(100),
    ));
    let serving = Arc::new(Serving(Mutex::new(None)));
    let first = reloader.load_initial().await.expect("the first read");
    serving.publish(first);
    let following = {
        let (reloader, serving) = (reloader.clone(), serving.clone());
        tokio::spawn(async move { reloader.follow(&*serving).await })
    };

    // Writers interleave transactions of 1 to 20 changes, some held open
    // while others commit, so commit order differs from sequence order
    // (the change log's `seq`).
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut client = cluster.connect("bare").await;
        writers.push(tokio::spawn(async move {
            let mut rng = w as u64 * 7919 + 13;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut done = 0;
            while done < CHANGES / WRITERS {
                let size = (1 + next() % 20).min((CHANGES / WRITERS - done) as u64);
                let tx = client.transaction().await.unwrap();
                for _ in 0..size {
                    // Each writer its own seats: no row locks to deadlock on.
                    let k = (next() % (SEATS / WRITERS) as u64) * WRITERS as u64 + w as u64;
                    let what = match next() % 4 {
                        0 => "attrs = jsonb_set(attrs, '{archived}', to_jsonb(NOT (attrs->>'archived')::boolean))",
                        1 => "attrs = jsonb_set(attrs, '{labels}', to_jsonb(ARRAY[md5(random()::text)]))",
                        2 => "parents = jsonb_build_array(parents->0, jsonb_build_object('type', 'Role', 'id', \
                              (ARRAY['admin','manager','agent','member'])[1 + floor(random() * 4)::int]))",
                        _ => "attrs = jsonb_set(attrs, '{inboxes}', \
                              jsonb_build_array(jsonb_build_object('type', 'Inbox', 'id', 'acme-support')))",
                    };
                    tx.execute(
                        &format!("UPDATE doorman.entities SET {what} WHERE uid_type = 'Member' AND uid_id = $1"),
                        &[&format!("burst-{k}")],
                    )
                    .await
                    .unwrap();
                }
                if next() % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(next() % 20)).await;
                }
                tx.commit().await.unwrap();
                done += size as usize;
            }
        }));
    }
    for w in writers {
        w.await.expect("a writer");
    }
    let written = started.elapsed();

    // Caught up: the follower has read past every writer's transaction.
    let horizon: u64 = client
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await
        .unwrap()
        .get::<_, &str>(0)
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloader.databases()[0].position.unwrap_or(0) < horizon {
        assert!(Instant::now() < deadline, "the follower never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = started.elapsed();
    following.abort();

    let status = &reloader.databases()[0];
    assert_eq!(status.changes_applied, CHANGES as u64, "{status:?}");
    assert!(status.refused.is_empty(), "{status:?}");
    let served = serving.current().expect("serving");
    let fresh = tokio::task::spawn_blocking(move || read_in_full(&url))
        .await
        .unwrap();
    assert_eq!(served.entity_count(), fresh.entity_count());
    assert!(
        same_entities(&served, &fresh),
        "the followed store differs from a fresh read"
    );
    eprintln!("{CHANGES} changes written in {written:?}, all applied after {caught_up:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_carries_on_while_the_database_restarts() {
    let cluster = Cluster::start();
    let url = example(&cluster).await;
    let server = Process::start_with(&flags(&url));

    // A client asking all along; every answer must be a decision.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asking = {
        let (stop, address) = (stop.clone(), server.address.clone());
        tokio::spawn(async move {
            let mut conn = Conn::tcp(&address).await;
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = conn
                    .post(
                        "/v1/is_authorized",
                        &query(
                            ("Member", "acme-ada"),
                            "ViewInbox",
                            ("Inbox", "acme-support"),
                        ),
                    )
                    .await;
                assert_eq!(answer.status, 200, "{}", answer.json());
                answered += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        })
    };
    let mut conn = server.connect().await;
    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = database_status(&mut conn).await;
        if status["state"] == "reconnecting" && status["last_error"].is_object() {
            break;
        }
        assert!(Instant::now() < deadline, "no reconnecting state: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ask(
            &mut conn,
            "acme-mia",
            "RemoveInbox",
            ("Inbox", "acme-support")
        )
        .await,
        "deny"
    );
    cluster.start_again();
    let app = cluster.connect("app").await;
    app.batch_execute("UPDATE app.members SET role = 'admin' WHERE id = 'acme-mia'")
        .await
        .unwrap();
    until(
        &mut conn,
        "acme-mia",
        "RemoveInbox",
        ("Inbox", "acme-support"),
        "allow",
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = asking.await.expect("the asking client");
    assert!(answered > 10, "only {answered} answers");
    let status = database_status(&mut conn).await;
    assert_eq!(status["state"], "following", "{status}");
    assert!(status["last_error"].is_null(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_that_breaks_the_schema_is_refused_and_the_rest_applied() {
    let cluster = Cluster::start();
    let url = bare(&cluster).await;
    let server = Process::start_with(&flags(&url));
    let mut conn = server.connect().await;
    let billing = ("Inbox", "acme-billing");
    assert_eq!(
        ask(&mut conn, "acme-max", "SendMessage", billing).await,
        "allow"
    );
    assert_eq!(
        ask(
            &mut conn,
            "acme-mia",
            "RemoveInbox",
            ("Inbox", "acme-support")
        )
        .await,
        "deny"
    );

    // One transaction: Mia made an admin (fine), Max's email a number
    // (the schema says String) and archived (which would deny him).
    let mut db = cluster.connect("bare").await;
    let tx = db.transaction().await.unwrap();
    tx.batch_execute(
        "UPDATE doorman.entities SET parents = '[{\"type\":\"Company\",\"id\":\"acme\"},{\"type\":\"Role\",\"id\":\"admin\"}]'
           WHERE uid_id = 'acme-mia';
         UPDATE doorman.entities SET attrs = attrs || '{\"email\": 42, \"archived\": true}'
           WHERE uid_id = 'acme-max';",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    until(
        &mut conn,
        "acme-mia",
        "RemoveInbox",
        ("Inbox", "acme-support"),
        "allow",
    )
    .await;
    // Max keeps his last good version: not archived, still sending.
    assert_eq!(
        ask(&mut conn, "acme-max", "SendMessage", billing).await,
        "allow"
    );
    let status = database_status(&mut conn).await;
    assert_eq!(status["refused_total"], 1, "{status}");
    let refused = &status["refused"][0];
    assert_eq!(refused["uid"], "Member::\"acme-max\"", "{status}");
    assert!(
        refused["message"].as_str().unwrap().contains("email"),
        "{status}"
    );
    assert_eq!(status["entities"], 58, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poll_catches_up_when_notifications_are_lost() {
    let (cluster, _server, mut conn) = following_bare().await;
    let support = ("Inbox", "acme-support");
    // Triggers off (no NOTIFY), and the change row written by hand.
    cluster
        .connect("bare")
        .await
        .batch_execute(
            "BEGIN;
             SET LOCAL session_replication_role = replica;
             UPDATE doorman.entities SET attrs = attrs || '{\"archived\": true}' WHERE uid_id = 'acme-ada';
             INSERT INTO doorman.entity_changes (uid_type, uid_id, op) VALUES ('Member', 'acme-ada', 'upsert');
             COMMIT;",
        )
        .await
        .unwrap();
    let took = until(&mut conn, "acme-ada", "ViewInbox", support, "deny").await;
    eprintln!("caught up by the poll after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_log_pruned_past_the_position_means_a_full_read() {
    let (cluster, _server, mut conn) = following_bare().await;
    let support = ("Inbox", "acme-support");
    // A change whose log row is pruned before anyone could read it.
    cluster
        .connect("bare")
        .await
        .batch_execute(
            "BEGIN;
             UPDATE doorman.entities SET attrs = attrs || '{\"archived\": true}' WHERE uid_id = 'acme-ada';
             UPDATE doorman.entity_changes SET at = at - interval '2 days';
             SELECT doorman.prune_changes('1 day');
             COMMIT;",
        )
        .await
        .unwrap();
    until(&mut conn, "acme-ada", "ViewInbox", support, "deny").await;
    let status = database_status(&mut conn).await;
    assert_eq!(status["full_reads"], 2, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_read_waits_for_the_database_and_says_why() {
    let cluster = Cluster::start();
    // The database exists, the contract does not yet.
    cluster.create("late", &[]).await;
    let url = cluster.url("late");
    let server = Process::start_until(&flags(&url), " listening");
    let mut conn = server.connect().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = database_status(&mut conn).await;
        if let Some(message) = status["last_error"]["message"].as_str() {
            assert!(message.contains("doorman"), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "no error reported: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(conn.get("/readyz").await.status, 503);
    let late = cluster.connect("late").await;
    late.batch_execute(&sql("doorman-postgres.sql"))
        .await
        .unwrap();
    late.batch_execute(&sql("example-bundled.sql"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn.get("/readyz").await.status != 200 {
        assert!(Instant::now() < deadline, "never ready:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ask(
            &mut conn,
            "acme-ada",
            "ViewInbox",
            ("Inbox", "acme-support")
        )
        .await,
        "allow"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_used_when_the_url_asks_and_the_certificate_is_checked() {
    let cluster = Cluster::start_tls();
    let plain = example(&cluster).await;
    let ca = cluster.ca().display().to_string();
    let url = format!("{plain}?sslmode=verify-full&sslrootcert={ca}");
    let server = Process::start_with(&flags(&url));
    let mut conn = server.connect().await;
    assert_eq!(
        ask(
            &mut conn,
            "acme-ada",
            "ViewInbox",
            ("Inbox", "acme-support")
        )
        .await,
        "allow"
    );
    // The sidecar's connection (it opens one to follow changes once it
    // serves) is encrypted.
    let app = cluster.connect("app").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let encrypted: i64 = app
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'doorman' AND s.ssl",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if encrypted >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no encrypted doorman connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A certificate from another CA is refused, and the message says why.
    let other = Cluster::start_tls();
    let wrong = format!(
        "{plain}?sslmode=require&sslrootcert={}",
        other.ca().display()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["check", "--entities", &wrong])
        .current_dir(root())
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("certificate"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn database_sources_are_in_the_metrics() {
    let cluster = Cluster::start();
    let url = example(&cluster).await;
    let server = Process::start_with(&flags(&url));
    let mut conn = server.connect().await;
    let app = cluster.connect("app").await;
    let remove = ("Inbox", "acme-support");
    assert_eq!(
        ask(&mut conn, "acme-mia", "RemoveInbox", remove).await,
        "deny"
    );
    app.batch_execute("UPDATE app.members SET role = 'admin' WHERE id = 'acme-mia'")
        .await
        .unwrap();
    until(&mut conn, "acme-mia", "RemoveInbox", remove, "allow").await;

    let status = database_status(&mut conn).await;
    let m = crate::observe::scrape(&mut conn).await;
    let source = [("source", status["source"].as_str().expect("a source"))];
    assert_eq!(m.value("doorman_database_connected", &source), 1.0);
    let applied = m.value("doorman_database_changes_applied_total", &source);
    assert!(applied >= 1.0, "{applied}");
    assert_eq!(Some(applied), status["changes_applied"].as_f64());
    assert_eq!(
        Some(m.value("doorman_database_full_reads_total", &source)),
        status["full_reads"].as_f64()
    );
    assert_eq!(
        Some(m.value("doorman_database_refused_rows_total", &source)),
        status["refused_total"].as_f64()
    );
    let lag = m.value("doorman_database_lag_seconds", &source);
    assert_eq!(Some((lag * 1000.0).floor()), status["lag_ms"].as_f64());
    let changed = m.value("doorman_database_last_change_timestamp_seconds", &source);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(changed > now - 600.0 && changed <= now + 1.0, "{changed}");

    // Away, it says so.
    cluster.stop();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = crate::observe::scrape(&mut conn).await;
        if m.value("doorman_database_connected", &source) == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "still connected after a stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
