//! `postgres`: entity data from PostgreSQL at scale, against a throwaway
//! cluster on this machine (Debian's `postgresql`; see tests/server/pg.rs).
//!
//! 1. **Initial load** of the generated world (`benches/common` shape;
//!    1M members = 1.44M entities by default) from files and from
//!    PostgreSQL, in this process, one after the other: time and the
//!    ratio (target: PostgreSQL within 2x of files).
//! 2. **Change to visible**, through the release sidecar over HTTP: a
//!    seat is archived (or un-archived) and the sidecar asked until its
//!    answer flips; single changes, and bursts of 1,000 seats in one
//!    statement (targets for single changes: p50 <= 50 ms, p99 <= 250 ms).
//! 3. **Decisions per second** over 8 keep-alive connections, quiet and
//!    while changes stream at 1,000 per second (target: at most 10% lower).
//!
//! `cargo bench --bench postgres`; `DOORMAN_PG_MEMBERS` sets the world size
//! (default 1000000), `DOORMAN_LOAD_SECS` each throughput run (default 5).
//! The cluster, the sidecar and the load generator share the machine's
//! cores, so the numbers are what one box does with all three on it.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/server/pg.rs"]
mod pg;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use common::{Shape, memory, request_bodies, root, sources, write_world};

fn main() {
    let members: usize = std::env::var("DOORMAN_PG_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let secs: u64 = std::env::var("DOORMAN_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let shape = Shape::members(members);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let files = write_world(dir.path(), shape);
    println!(
        "postgres/{}: {} entities written in {:.1?}",
        shape.label(),
        shape.entity_count(),
        started.elapsed()
    );
    let cluster = pg::Cluster::start();
    let started = Instant::now();
    let url = rt.block_on(fill(&cluster, &files));
    println!(
        "  copied into PostgreSQL in {:.1?} (doorman.entities, a table)",
        started.elapsed()
    );

    // 1. Initial load, files then database, in this process.
    let policies = root().join("policies");
    let started = Instant::now();
    let from_files = doorman::load(&sources(policies.clone(), vec![files.clone()]))
        .expect("the world loads from files");
    let file_load = started.elapsed();
    let count = from_files.entity_count();
    drop(from_files);
    let mut db_sources = sources(policies, vec![]);
    db_sources.databases = vec![doorman::load::DatabaseSource::parse(&url).expect("URL")];
    let started = Instant::now();
    let from_db = doorman::load(&db_sources)
        .and_then(|s| doorman::postgres::read_blocking(s, &db_sources.databases))
        .expect("the world loads from PostgreSQL");
    let db_load = started.elapsed();
    assert_eq!(from_db.entity_count(), count, "the same world");
    drop(from_db);
    println!(
        "  initial load: files {file_load:.2?}, PostgreSQL {db_load:.2?}: {:.2}x (target <= 2x); {}",
        db_load.as_secs_f64() / file_load.as_secs_f64(),
        memory()
    );

    // 2. The sidecar on the database.
    let started = Instant::now();
    let server = Server::start(&url);
    println!(
        "  sidecar serving after {:.1?}; its {}",
        started.elapsed(),
        server.memory()
    );
    let client = rt.block_on(cluster.connect("bench"));
    let singles = rt.block_on(flips(&client, server.addr, shape, 200, 1));
    report("single changes", &singles);
    let bursts = rt.block_on(flips(&client, server.addr, shape, 20, 1000));
    report("bursts of 1,000", &bursts);

    // 3. Throughput, quiet and under a stream of changes.
    let bodies: Vec<Bytes> = request_bodies(shape, 1000, false)
        .into_iter()
        .map(Bytes::from)
        .collect();
    let bodies = Arc::new(bodies);
    let measure = || {
        let cpu = server.cpu();
        let started = Instant::now();
        let rate = rt.block_on(throughput(server.addr, bodies.clone(), secs));
        (rate, (server.cpu() - cpu) / started.elapsed().as_secs_f64())
    };
    // What following costs the sidecar by itself: its CPU while changes
    // stream and nobody asks, against idle.
    let idle = || {
        let cpu = server.cpu();
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        (server.cpu() - cpu) / started.elapsed().as_secs_f64()
    };
    let idle_cpu = idle();
    let (follow_cpu, rate) = with_writes(&rt, &cluster, shape, "doorman.entities", idle);
    println!(
        "  sidecar CPU with no decisions: idle {idle_cpu:.3} cores, following {rate:.0} changes/s {follow_cpu:.3} cores"
    );
    let (quiet, quiet_cpu) = measure();
    // The same write load on a table doorman does not follow: what the
    // database's own work takes from the shared cores.
    let ((unfollowed, unfollowed_cpu), _) =
        with_writes(&rt, &cluster, shape, "bench_noise", measure);
    let ((busy, busy_cpu), rate) = with_writes(&rt, &cluster, shape, "doorman.entities", measure);
    println!(
        "  sidecar CPU (cores busy): quiet {quiet_cpu:.2}, unfollowed writes {unfollowed_cpu:.2}, followed changes {busy_cpu:.2}"
    );
    println!(
        "  decisions/s over 8 connections: quiet {quiet:.0}; with {rate:.0} writes/s to a table doorman \
         does not follow {unfollowed:.0} ({:+.1}%); with as many changes it follows {busy:.0} \
         ({:+.1}% of quiet, {:+.1}% of the unfollowed run; target >= -10%)",
        (unfollowed / quiet - 1.0) * 100.0,
        (busy / quiet - 1.0) * 100.0,
        (busy / unfollowed - 1.0) * 100.0,
    );
    println!("  sidecar after the run: {}", server.memory());
}

/// Creates the contract over a bare table and copies the world's files in.
async fn fill(cluster: &pg::Cluster, files: &std::path::Path) -> String {
    cluster
        .create(
            "bench",
            &[
                &pg::sql("doorman-postgres.sql"),
                "CREATE TABLE doorman.entities (uid_type text, uid_id text, attrs jsonb, parents jsonb)",
            ],
        )
        .await;
    let client = cluster.connect("bench").await;
    let sink = client
        .copy_in("COPY doorman.entities FROM STDIN (FORMAT csv)")
        .await
        .expect("copy");
    let mut sink = std::pin::pin!(sink);
    let mut paths: Vec<_> = std::fs::read_dir(files)
        .expect("entity dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    let csv = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for path in paths {
        let items: Vec<Value> =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
        let mut chunk = String::with_capacity(1 << 20);
        for item in items {
            chunk.push_str(&format!(
                "{},{},{},{}\n",
                csv(item["uid"]["type"].as_str().expect("type")),
                csv(item["uid"]["id"].as_str().expect("id")),
                csv(&item["attrs"].to_string()),
                csv(&item["parents"].to_string()),
            ));
            if chunk.len() > 1 << 20 {
                sink.send(Bytes::from(std::mem::take(&mut chunk)))
                    .await
                    .expect("copy");
            }
        }
        sink.send(Bytes::from(chunk)).await.expect("copy");
    }
    sink.as_mut().finish().await.expect("copy done");
    client
        .batch_execute(
            "ALTER TABLE doorman.entities ADD PRIMARY KEY (uid_type, uid_id);
             CREATE FUNCTION doorman.bench_changed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM doorman.record_change(NEW.uid_type, NEW.uid_id); RETURN NULL; END $$;
             CREATE TRIGGER doorman AFTER INSERT OR UPDATE ON doorman.entities
                 FOR EACH ROW EXECUTE FUNCTION doorman.bench_changed();
             -- The same rows where doorman does not look, for the baseline
             -- write load (with a change log of its own, unread).
             CREATE TABLE bench_noise AS SELECT * FROM doorman.entities WHERE uid_type = 'Member';
             ALTER TABLE bench_noise ADD PRIMARY KEY (uid_type, uid_id);
             CREATE TABLE bench_noise_log (LIKE doorman.entity_changes INCLUDING ALL);
             CREATE FUNCTION bench_noise_changed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO bench_noise_log (uid_type, uid_id, op) VALUES (NEW.uid_type, NEW.uid_id, 'upsert');
                   PERFORM pg_notify('bench_noise', ''); RETURN NULL; END $$;
             CREATE TRIGGER noise AFTER UPDATE ON bench_noise
                 FOR EACH ROW EXECUTE FUNCTION bench_noise_changed();
             ANALYZE doorman.entities;",
        )
        .await
        .expect("index and trigger");
    cluster.url("bench")
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(url: &str) -> Server {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let child = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["serve", "--listen", &addr.to_string(), "--watch", "off"])
            .args(["--entities", url, "--database-poll", "1s"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start doorman serve");
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(300);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        while rt.block_on(get(addr, "/readyz")) != Some(200) {
            assert!(Instant::now() < deadline, "the sidecar never got ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// CPU seconds the sidecar has used (user and system).
    fn cpu(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    fn memory(&self) -> String {
        common::memory_of(&self.child.id().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", "doorman")
        .body(Full::new(Bytes::new()))
        .ok()?;
    Some(sender.send_request(request).await.ok()?.status().as_u16())
}

/// One keep-alive connection that asks decisions.
struct Asker(http1::SendRequest<Full<Bytes>>);

impl Asker {
    async fn connect(addr: SocketAddr) -> Asker {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Asker(sender)
    }

    /// The answer's status and decision.
    async fn ask(&mut self, body: Bytes) -> (u16, bool) {
        let request = Request::post("/v1/is_authorized")
            .header("host", "doorman")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request");
        self.0.ready().await.expect("the connection is ready");
        let response = self.0.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, bytes.windows(7).any(|w| w == b"\"allow\""))
    }
}

/// `rounds` times: archive (or restore) `size` admins at once and ask about
/// the last of them until the answer flips; how long each took from commit.
async fn flips(
    client: &tokio_postgres::Client,
    addr: SocketAddr,
    shape: Shape,
    rounds: usize,
    size: usize,
) -> Vec<Duration> {
    let mut asker = Asker::connect(addr).await;
    let mut took = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // Seat m0 of a company is an admin; its own public inbox in1.
        let first = (round * size * 7) % shape.companies;
        let companies: Vec<usize> = (0..size).map(|k| (first + k) % shape.companies).collect();
        let ids: Vec<String> = companies.iter().map(|c| format!("c{c}-m0")).collect();
        let last = *companies.last().expect("a company");
        let body = Bytes::from(format!(
            r#"{{"principal":{{"type":"Member","id":"c{last}-m0"}},"action":{{"type":"Action","id":"ViewInbox"}},"resource":{{"type":"Inbox","id":"c{last}-in1"}}}}"#
        ));
        let (_, before) = asker.ask(body.clone()).await;
        client
            .execute(
                "UPDATE doorman.entities SET attrs = jsonb_set(attrs, '{archived}', \
                 to_jsonb(NOT (attrs->>'archived')::boolean)) \
                 WHERE uid_type = 'Member' AND uid_id = ANY($1)",
                &[&ids],
            )
            .await
            .expect("update");
        let committed = Instant::now();
        loop {
            let (status, now) = asker.ask(body.clone()).await;
            assert_eq!(status, 200);
            if now != before {
                took.push(committed.elapsed());
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(30),
                "never visible"
            );
        }
    }
    took
}

fn report(what: &str, took: &[Duration]) {
    let mut sorted = took.to_vec();
    sorted.sort();
    let at =
        |p: f64| sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1];
    println!(
        "  change to visible, {what} ({} rounds): p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        sorted.len(),
        at(0.50),
        at(0.99),
        sorted[sorted.len() - 1]
    );
}

/// Decisions per second over 8 connections for `secs` (after a second of
/// warm-up).
async fn throughput(addr: SocketAddr, bodies: Arc<Vec<Bytes>>, secs: u64) -> f64 {
    let warm = Instant::now() + Duration::from_secs(1);
    let until = warm + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut asker = Asker::connect(addr).await;
                let mut n = 0u64;
                let mut i = c * 131;
                while Instant::now() < until {
                    let (status, _) = asker.ask(bodies[i % bodies.len()].clone()).await;
                    assert_eq!(status, 200);
                    i += 1;
                    if Instant::now() >= warm {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("asker");
    }
    total as f64 / secs as f64
}

/// Runs `measure` while seats of `table` are relabelled at about 1,000 a
/// second; what it measured, and the write rate reached.
fn with_writes<T>(
    rt: &tokio::runtime::Runtime,
    cluster: &pg::Cluster,
    shape: Shape,
    table: &'static str,
    measure: impl FnOnce() -> T,
) -> (T, f64) {
    let client = rt.block_on(cluster.connect("bench"));
    let running = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicU64::new(0));
    let stream = rt.spawn(stream_changes(
        client,
        shape,
        table,
        running.clone(),
        written.clone(),
    ));
    let started = Instant::now();
    let out = measure();
    let rate = written.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let _ = rt.block_on(stream);
    (out, rate)
}

/// Relabels seats of `table`, one per transaction, at about 1,000 a second.
async fn stream_changes(
    client: tokio_postgres::Client,
    shape: Shape,
    table: &str,
    running: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) {
    let statement = client
        .prepare(&format!(
            "UPDATE {table} SET attrs = jsonb_set(attrs, '{{labels}}', to_jsonb(ARRAY[$2::text])) \
             WHERE uid_type = 'Member' AND uid_id = $1"
        ))
        .await
        .expect("prepare");
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut k = 0usize;
    while running.load(Ordering::Relaxed) {
        tick.tick().await;
        k += 1;
        let id = format!("c{}-m{}", (k * 7919) % shape.companies, k % shape.members);
        client
            .execute(&statement, &[&id, &format!("l{k}")])
            .await
            .expect("update");
        written.fetch_add(1, Ordering::Relaxed);
    }
}
