//! `soak`: the sidecar under mixed traffic and constant reloads for a long
//! time, watched for what only time shows: memory that creeps, file
//! descriptors that leak, a good request that fails once in a while.
//!
//! Starts the release `doorman serve` on a copy of the bundled model with
//! everything on: the gateway route map (a JWKS made for the run), the
//! decision log (to a file), a `--shadow` candidate, file watching. Then,
//! for `DOORMAN_SOAK_SECS` (default 1800):
//!
//! - `DOORMAN_SOAK_CONNECTIONS` (default 8) keep-alive connections send a
//!   fixed rotation of requests: singles, singles and batches with request
//!   entities, AuthZEN evaluations, evaluations and a resource search,
//!   Envoy and nginx gateway checks with a bearer token, `/metrics`, and
//!   bad input (broken JSON, a duplicate key, an unknown entity type, a
//!   bad token, an unknown route). Every good request must get 200 (or the
//!   gateway's 403 for a denied route) and the *same* answer as at the
//!   start; every bad one its 4xx. Anything else is a failure;
//! - every 3 s a reload: alternately an entity file rewritten (members
//!   added and removed that the traffic does not ask about) and a policy
//!   file edited (a `forbid … when { false }` added and removed); every
//!   10th time the policy edit is broken instead (the last good snapshot
//!   must keep answering) and mended the next time;
//! - every `DOORMAN_SOAK_SAMPLE_SECS` (default 60) the server's RSS (from
//!   /proc/PID/status) and open file descriptors (/proc/PID/fd) are
//!   sampled and printed, and the decision log is rotated (renamed, as
//!   logrotate does).
//!
//! At the end it prints the RSS and fd slopes after warm-up (the first
//! third of the samples, at least one: the allocator's and the runtime's
//! pools fill for about ten minutes), least-squares, per minute and as a
//! share of the RSS, and what the server counted (reloads, decisions, the
//! shadow's agreement, decision-log drops), and exits non-zero on any
//! failed request, on fds that grew past the first sample after warm-up,
//! on RSS that still grows in the second half of the measured window (a
//! high more than 5% above the first half's: a bounded queue or pool
//! filling once is a step to a plateau, a leak keeps making new highs),
//! on reloads
//! that did not take, on any shadow disagreement (its candidate holds the
//! same policies, and the live edits never change a decision), or on an
//! empty decision log after rotation. Run it with
//! `cargo bench --bench soak` (not part of `cargo test`: it takes half an
//! hour). `DOORMAN_SOAK_SECS=60` makes a quick check of the driver itself.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One request of the rotation and what it must get.
#[derive(Clone)]
struct Call {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    /// The status it must get.
    status: u16,
    /// Whether its answer must stay the same as the first one (decisions).
    stable: bool,
}

fn call(name: &'static str, path: &str, body: Value) -> Call {
    Call {
        name,
        method: "POST",
        path: path.to_owned(),
        headers: vec![("content-type", "application/json".into())],
        body: Bytes::from(body.to_string()),
        status: 200,
        stable: true,
    }
}

fn raw(name: &'static str, path: &str, body: &str, status: u16) -> Call {
    Call {
        name,
        method: "POST",
        path: path.to_owned(),
        headers: vec![("content-type", "application/json".into())],
        body: Bytes::from(body.to_owned()),
        status,
        stable: false,
    }
}

fn uid(t: &str, id: &str) -> Value {
    json!({"type": t, "id": id})
}

fn ask(p: &str, action: &str, r: (&str, &str)) -> Value {
    json!({"principal": uid("Member", p), "action": uid("Action", action), "resource": uid(r.0, r.1)})
}

/// The rotation every connection sends, each from its own offset.
fn rotation(model: &Path, bearer: &str) -> Vec<Call> {
    let world: Vec<Value> = serde_saphyr::from_str(
        &std::fs::read_to_string(model.join("entities/world.yaml")).expect("world.yaml"),
    )
    .expect("the bundled world is YAML");
    let mut newcomer = world
        .iter()
        .find(|e| e["uid"]["id"] == "acme-mia")
        .expect("acme-mia")
        .clone();
    newcomer["uid"]["id"] = json!("soak-newcomer");
    let mut with_entities = ask("soak-newcomer", "ViewInbox", ("Inbox", "acme-support"));
    with_entities["entities"] = json!([newcomer.clone()]);
    let batch: Vec<Value> = [
        "acme-support",
        "acme-billing",
        "acme-north-private",
        "globex-legal",
    ]
    .iter()
    .flat_map(|inbox| {
        [
            ask("acme-ada", "ViewInbox", ("Inbox", inbox)),
            ask("acme-mia", "ViewInbox", ("Inbox", inbox)),
            ask("soak-newcomer", "SendMessage", ("Inbox", inbox)),
        ]
    })
    .collect();
    let gateway = |name, method: &'static str, path: &str, status| Call {
        name,
        method,
        path: path.to_owned(),
        headers: vec![("authorization", bearer.to_owned())],
        body: Bytes::new(),
        status,
        stable: false,
    };
    let mut nginx = gateway("nginx", "GET", "/ext/nginx", 200);
    nginx.headers.extend([
        ("x-original-method", "GET".to_owned()),
        ("x-original-uri", "/inboxes/acme-support".to_owned()),
    ]);
    let mut bad_token = gateway(
        "gateway bad token",
        "GET",
        "/ext/envoy/inboxes/acme-support",
        401,
    );
    bad_token.headers = vec![("authorization", "Bearer not.a.token".to_owned())];
    vec![
        call(
            "single",
            "/v1/is_authorized",
            ask("acme-ada", "ViewInbox", ("Inbox", "acme-support")),
        ),
        call(
            "single",
            "/v1/is_authorized",
            ask("acme-mia", "ViewInbox", ("Inbox", "acme-billing")),
        ),
        call("single + entities", "/v1/is_authorized", with_entities),
        call(
            "batch + entities",
            "/v1/batch_is_authorized",
            json!({"requests": batch, "entities": [newcomer]}),
        ),
        call(
            "authzen evaluation",
            "/access/v1/evaluation",
            json!({"subject": uid("Member", "acme-max"), "action": {"name": "ViewInbox"},
                   "resource": uid("Inbox", "acme-billing")}),
        ),
        call(
            "authzen evaluations",
            "/access/v1/evaluations",
            json!({"subject": uid("Member", "acme-ada"), "action": {"name": "ViewInbox"},
                   "evaluations": [{"resource": uid("Inbox", "acme-support")},
                                   {"resource": uid("Inbox", "globex-legal")}]}),
        ),
        call(
            "authzen search",
            "/access/v1/search/resource",
            json!({"subject": uid("Member", "acme-ada"), "action": {"name": "ViewInbox"},
                   "resource": {"type": "Inbox"}}),
        ),
        gateway("envoy allow", "GET", "/ext/envoy/inboxes/acme-support", 200),
        gateway(
            "envoy deny",
            "DELETE",
            "/ext/envoy/inboxes/globex-legal",
            403,
        ),
        nginx,
        bad_token,
        Call {
            name: "metrics",
            method: "GET",
            path: "/metrics".into(),
            headers: vec![],
            body: Bytes::new(),
            status: 200,
            stable: false,
        },
        raw("broken json", "/v1/is_authorized", "{\"principal\": ", 400),
        raw(
            "duplicate key",
            "/v1/is_authorized",
            r#"{"principal": "Member::\"globex-gil\"", "principal": "Member::\"acme-ada\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\""}"#,
            400,
        ),
        raw(
            "unknown type",
            "/v1/is_authorized",
            r#"{"principal": "Nobody::\"x\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\""}"#,
            400,
        ),
        raw("unknown route", "/v1/nope", "{}", 404),
    ]
}

/// The part of an answer that must not change: the body, minus what may
/// (the revision, and the gateways' and metrics' bodies are not compared).
fn stable_part(body: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    strip(&mut v);
    v
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("revision");
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
}

async fn connection(
    addr: SocketAddr,
    calls: Arc<Vec<Call>>,
    expected: Arc<Vec<Option<Value>>>,
    offset: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut sender = None;
    let mut i = offset;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (s, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender = Some(s);
        }
        let k = i % calls.len();
        i += 1;
        let c = &calls[k];
        let mut request = Request::builder()
            .method(c.method)
            .uri(&c.path)
            .header("host", "doorman");
        for (name, value) in &c.headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(c.body.clone())).expect("request");
        tally.sent.fetch_add(1, Ordering::Relaxed);
        let Some(s) = sender.as_mut() else { continue };
        let outcome = match s.send_request(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(body) => Ok((status, body.to_bytes())),
                    Err(e) => Err(format!("body: {e}")),
                }
            }
            Err(e) => Err(format!("request: {e}")),
        };
        let failure = match outcome {
            Err(e) => {
                sender = None;
                Some(e)
            }
            Ok((status, _)) if status != c.status => Some(format!("status {status}")),
            Ok((_, body)) => match &expected[k] {
                Some(first) if *first != stable_part(&body) => Some(format!(
                    "answer changed: {}",
                    String::from_utf8_lossy(&body)
                )),
                _ => None,
            },
        };
        if let Some(why) = failure {
            let n = tally.failed.fetch_add(1, Ordering::Relaxed);
            if n < 20 {
                eprintln!("FAILED {} {} {}: {why}", c.name, c.method, c.path);
            }
        }
    }
}

/// The first answers to the stable calls, which every later one must equal.
async fn first_answers(addr: SocketAddr, calls: &[Call]) -> Vec<Option<Value>> {
    let mut out = Vec::new();
    for c in calls {
        let (status, body) = once(addr, c).await;
        assert_eq!(
            status,
            c.status,
            "{} {}: {}",
            c.name,
            c.path,
            String::from_utf8_lossy(&body)
        );
        out.push(c.stable.then(|| stable_part(&body)));
    }
    out
}

/// One call on a connection of its own.
async fn once(addr: SocketAddr, c: &Call) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut s, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    s.ready().await.expect("connection ready");
    let mut request = Request::builder()
        .method(c.method)
        .uri(&c.path)
        .header("host", "doorman");
    for (name, value) in &c.headers {
        request = request.header(*name, value);
    }
    let response = s
        .send_request(request.body(Full::new(c.body.clone())).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", c.name, c.path));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

/// The bundled model copied, a JWKS made for the run, the route map; the
/// bearer token of acme-ada.
fn model(dir: &Path) -> String {
    let root = common::root();
    for (from, to) in [
        ("policies", "policies"),
        ("policies", "candidate"),
        ("schema", "schema"),
        ("fixtures/entities", "entities"),
    ] {
        std::fs::create_dir_all(dir.join(to)).unwrap();
        for e in std::fs::read_dir(root.join(from)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.join(to).join(e.file_name())).unwrap();
        }
    }
    common::gateway_auth(dir, "soak", Duration::from_secs(7 * 24 * 3600))
}

/// The reload that happens at tick `n`: see the module comment.
fn reload(dir: &Path, n: u64) {
    let extra = dir.join("entities/soak.json");
    let policy = dir.join("policies/soak.cedar");
    match n % 2 {
        0 => {
            // Members the traffic never asks about, a different set each time.
            let members: Vec<Value> = (0..50)
                .map(|i| {
                    let id = format!("soak-{}-{i}", n % 7);
                    json!({"uid": uid("Member", &id),
                           "attrs": {"company": {"__entity": uid("Company", "acme")},
                                     "email": format!("{id}@example.test"), "kind": "team",
                                     "archived": false, "anonymous": false, "labels": [],
                                     "inboxes": [], "agents": [], "stores": [], "grants": []},
                           "parents": [uid("Company", "acme"), uid("Role", "member")]})
                })
                .collect();
            std::fs::write(&extra, serde_json::to_vec(&members).unwrap()).unwrap();
        }
        _ if n % 20 == 9 => {
            std::fs::write(
                &policy,
                "permit (principal, action, resource) when { nope };\n",
            )
            .unwrap();
        }
        _ if (n / 2).is_multiple_of(2) => {
            std::fs::write(
                &policy,
                "@id(\"soak.never\")\nforbid (principal, action, resource) when { false };\n",
            )
            .unwrap();
        }
        _ => std::fs::write(&policy, "// nothing here now\n").unwrap(),
    }
}

/// The `/metrics` text.
async fn scrape(addr: SocketAddr) -> String {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut s, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    s.ready().await.expect("connection ready");
    let request = Request::get("/metrics")
        .header("host", "doorman")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = s.send_request(request).await.expect("response");
    let body = response.into_body().collect().await.expect("body");
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}

/// (RSS KiB, open fds) of `pid`.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

/// Least-squares slope of `ys` over `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let secs = env_u64("DOORMAN_SOAK_SECS", 1800);
    let every = env_u64("DOORMAN_SOAK_SAMPLE_SECS", 60).max(1);
    let connections = env_u64("DOORMAN_SOAK_CONNECTIONS", 8) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let bearer = model(dir.path());
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let d = |rel: &str| -> PathBuf { dir.path().join(rel) };
    let child = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .args(["--policies", d("policies").to_str().unwrap()])
        .args(["--schema", d("schema").to_str().unwrap()])
        .args(["--entities", d("entities").to_str().unwrap()])
        .args(["--routes", d("app.yaml").to_str().unwrap()])
        .args(["--shadow", d("candidate").to_str().unwrap()])
        .args(["--decision-log", d("decisions.jsonl").to_str().unwrap()])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start doorman serve");
    let pid = child.id();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "doorman serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let calls = Arc::new(rotation(&d(""), &bearer));
    // Ready: the first load is done when a decision answers.
    let ready = Instant::now() + Duration::from_secs(60);
    while rt
        .block_on(async {
            let s = TcpStream::connect(addr).await.ok()?;
            let (mut s, conn) = http1::handshake(TokioIo::new(s)).await.ok()?;
            tokio::spawn(conn);
            let r = s
                .send_request(
                    Request::get("/readyz")
                        .header("host", "doorman")
                        .body(Full::new(Bytes::new()))
                        .ok()?,
                )
                .await
                .ok()?;
            (r.status() == 200).then_some(())
        })
        .is_none()
    {
        assert!(Instant::now() < ready, "doorman serve did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let expected = Arc::new(rt.block_on(first_answers(addr, &calls)));
    println!(
        "soak: {secs} s, {connections} connections, {} request kinds, a reload every 3 s, samples every {every} s",
        calls.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            rt.spawn(connection(
                addr,
                calls.clone(),
                expected.clone(),
                c * 7,
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let mut samples: Vec<(f64, u64, usize)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut tick = 0;
    println!(
        "{:>8} {:>10} {:>6} {:>12} {:>8}",
        "minute", "RSS MiB", "fds", "requests", "failed"
    );
    while started.elapsed() < Duration::from_secs(secs) {
        if started.elapsed() >= next_sample {
            let (rss, fds) = sample(pid);
            let minute = started.elapsed().as_secs_f64() / 60.0;
            println!(
                "{minute:>8.1} {:>10.1} {fds:>6} {:>12} {:>8}",
                rss as f64 / 1024.0,
                tally.sent.load(Ordering::Relaxed),
                tally.failed.load(Ordering::Relaxed)
            );
            samples.push((minute, rss, fds));
            next_sample += Duration::from_secs(every);
            // logrotate's way: rename, and the writer must follow.
            let _ = std::fs::rename(d("decisions.jsonl"), d("decisions.jsonl.1"));
        }
        std::thread::sleep(Duration::from_secs(3));
        reload(dir.path(), tick);
        tick += 1;
    }
    let (rss, fds) = sample(pid);
    samples.push((started.elapsed().as_secs_f64() / 60.0, rss, fds));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    // Memory a leak holds stays held when the traffic stops; what the
    // allocator keeps for reuse is given back after a while.
    std::thread::sleep(Duration::from_secs(20));
    let (idle_rss, idle_fds) = sample(pid);
    println!(
        "soak: 20 s after the traffic stopped: RSS {:.1} MiB, {idle_fds} fds",
        idle_rss as f64 / 1024.0
    );
    let sent = tally.sent.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);

    let warm = (samples.len() / 3).max(1);
    let measured = &samples[warm.min(samples.len() - 1)..];
    let xs: Vec<f64> = measured.iter().map(|s| s.0).collect();
    let rss: Vec<f64> = measured.iter().map(|s| s.1 as f64).collect();
    let fd: Vec<f64> = measured.iter().map(|s| s.2 as f64).collect();
    let rss_slope = slope(&xs, &rss);
    let first_rss = rss[0].max(1.0);
    let last_rss = *rss.last().unwrap();
    let growth = (last_rss - first_rss) / first_rss;
    let mean_rss = rss.iter().sum::<f64>() / rss.len() as f64;
    let window = xs.last().unwrap() - xs[0];
    let projected = rss_slope * window / mean_rss.max(1.0);
    // A pool or queue filling up once (the blocking pool, the decision
    // log's or the shadow's queue holding old snapshots) is a step to a
    // plateau, which a slope over the whole window reads as growth; a
    // leak keeps making new highs. So the window is judged by its second
    // half's highest sample against the first half's (the slopes are
    // printed, not judged: over a few minutes of a flat RSS, a slope is
    // mostly the allocator's noise of a MiB or two).
    let half = rss.len() / 2;
    let (early, late) = rss.split_at(half.max(1).min(rss.len() - 1));
    let high = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    let new_high = high(late) / high(early).max(1.0) - 1.0;
    let late_slope = slope(&xs[xs.len() - late.len()..], late);
    let late_projected = late_slope * window / mean_rss.max(1.0);
    // Before warm-up the connections may not all be open yet: the
    // baseline is the first sample after it.
    let warm_fds = measured[0].2;
    let max_fds = measured.iter().map(|s| s.2).max().unwrap_or(0);
    let metrics = rt.block_on(scrape(addr));
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let reloads_ok = metric("doorman_reloads_total{result=\"ok\"}");
    let reloads_failed = metric("doorman_reloads_total{result=\"failed\"}");
    let disagreed = metric("doorman_shadow_decisions_total{outcome=\"allow_to_deny\"}")
        + metric("doorman_shadow_decisions_total{outcome=\"deny_to_allow\"}");
    let shadow_errors = metric("doorman_shadow_decisions_total{outcome=\"error\"}");
    let logged = std::fs::read_to_string(d("decisions.jsonl")).map_or(0, |t| t.lines().count());
    println!(
        "soak: server: {reloads_ok} reloads ok, {reloads_failed} failed (the broken edits), {} decisions, {} decision-log lines dropped, {logged} lines in the log since the last rotation; shadow: {} agreed, {disagreed} disagreed, {shadow_errors} errors, {} skipped",
        metric("doorman_decisions_total"),
        metric("doorman_decision_log_dropped_total"),
        metric("doorman_shadow_decisions_total{outcome=\"agree\"}"),
        metric("doorman_shadow_skipped_total"),
    );
    println!(
        "soak: {sent} requests in {:.1} min ({:.0}/s), {failed} failed, {tick} reloads",
        started.elapsed().as_secs_f64() / 60.0,
        sent as f64 / started.elapsed().as_secs_f64()
    );
    println!(
        "soak: after warm-up ({} samples from minute {:.1}): RSS {:.1} → {:.1} MiB, slope {:+.1} KiB/min ({:+.3}% of RSS per minute), first to last {:+.2}%, the slope over the window {:+.2}%; second half: highest {:+.2}% against the first half's, slope {:+.1} KiB/min ({:+.2}% over the window); fds {} → {} (slope {:+.3}/min, warm-up max {warm_fds})",
        measured.len(),
        xs[0],
        first_rss / 1024.0,
        last_rss / 1024.0,
        rss_slope,
        100.0 * rss_slope / first_rss,
        100.0 * growth,
        100.0 * projected,
        100.0 * new_high,
        late_slope,
        100.0 * late_projected,
        measured[0].2,
        measured.last().unwrap().2,
        slope(&xs, &fd),
    );
    let mut verdict = Vec::new();
    if failed > 0 {
        verdict.push(format!("{failed} failed requests"));
    }
    if max_fds > warm_fds + 2 {
        verdict.push(format!("fds grew from {warm_fds} to {max_fds}"));
    }
    if reloads_ok < (tick / 2) as f64 {
        verdict.push(format!("only {reloads_ok} of {tick} reloads took effect"));
    }
    if disagreed + shadow_errors > 0.0 {
        verdict.push(format!(
            "the shadow (the same policies) disagreed {disagreed} times, refused {shadow_errors}"
        ));
    }
    if logged == 0 {
        verdict.push("the decision log is empty after rotation".into());
    }
    if new_high > 0.05 {
        verdict.push(format!(
            "RSS reached a new high in the second half of the window, {:+.1}% above the first half's",
            100.0 * new_high
        ));
    }
    if verdict.is_empty() {
        println!("soak: PASS");
    } else {
        println!("soak: FAIL: {}", verdict.join("; "));
        // exit() runs no destructors: stop the server first.
        drop(server);
        std::process::exit(1);
    }
}
