//! `http_load`: the sidecar under load, over real loopback HTTP.
//!
//! Starts the release `doorman serve` on the bundled model on a free port,
//! then drives it with keep-alive HTTP/1.1 connections (hyper's client, one
//! task per connection, each sending its next request as soon as the last
//! answer arrives) and reports requests/s and p50/p99/p99.9 latency for
//! single decisions at 1, 8 and 64 connections and for batches of 100,
//! through doorman's own `/v1/is_authorized` and through AuthZEN's
//! `/access/v1/evaluation` (the same questions, each scenario run right
//! after its `/v1` twin), and the cost of an AuthZEN evaluation relative
//! to `/v1/is_authorized` (target: at most 1.1×).
//!
//! Run it with `cargo bench --bench http_load`. `DOORMAN_LOAD_SECS` sets
//! each scenario's measured duration (default 5); `DOORMAN_LOAD_CLIENT_THREADS`
//! the client's worker threads (default 1, so that on a 2-core machine the
//! server keeps a core). The load generator shares the machine with the
//! server, so the numbers are a floor for what the server alone can do.
//! The first line is the loopback floor: a plain blocking TCP echo between
//! two threads, the least any 1-connection round trip costs here.
//! Every answer is checked (status 200, the expected decision), so a
//! server that answers fast but wrong fails the run instead of looking good.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// A question on the bundled model and the decision it must get.
struct Question {
    principal: (&'static str, &'static str),
    action: &'static str,
    resource: (&'static str, &'static str),
    context: Value,
    allow: bool,
}

/// Requests on the bundled model with the decision each must get.
fn questions() -> Vec<Question> {
    let q = |principal, action, resource, context, allow| Question {
        principal,
        action,
        resource,
        context,
        allow,
    };
    vec![
        q(
            ("Member", "acme-ada"),
            "ViewInbox",
            ("Inbox", "acme-support"),
            json!({}),
            true,
        ),
        q(
            ("Member", "acme-mia"),
            "ViewInbox",
            ("Inbox", "acme-support"),
            json!({}),
            true,
        ),
        q(
            ("Member", "acme-abe"),
            "RemoveTeamMember",
            ("Member", "acme-mia"),
            json!({}),
            true,
        ),
        q(
            ("Member", "acme-max"),
            "ModifyTeamMember",
            ("Member", "acme-mia"),
            json!({}),
            false,
        ),
        q(
            ("Member", "acme-max"),
            "ManageApiKeys",
            ("Company", "acme"),
            json!({}),
            false,
        ),
        q(
            ("Member", "acme-ada"),
            "ModifyBilling",
            ("Company", "globex"),
            json!({}),
            false,
        ),
        q(
            ("Member", "acme-max"),
            "InviteMember",
            ("Company", "acme"),
            json!({"role": "agent"}),
            true,
        ),
        q(
            ("Member", "acme-mia"),
            "ModifyBilling",
            ("Company", "acme"),
            json!({}),
            false,
        ),
    ]
}

/// Which API a scenario speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `/v1/is_authorized` and `/v1/batch_is_authorized`.
    V1,
    /// AuthZEN's `/access/v1/evaluation`.
    AuthZen,
}

impl Question {
    /// The question as `api`'s request body.
    fn body(&self, api: Api) -> Value {
        match api {
            Api::V1 => json!({
                "principal": format!("{}::\"{}\"", self.principal.0, self.principal.1),
                "action": {"type": "Action", "id": self.action},
                "resource": format!("{}::\"{}\"", self.resource.0, self.resource.1),
                "context": self.context,
            }),
            Api::AuthZen => json!({
                "subject": {"type": self.principal.0, "id": self.principal.1},
                "action": {"name": self.action},
                "resource": {"type": self.resource.0, "id": self.resource.1},
                "context": self.context,
            }),
        }
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    // Ask the OS for a free port, release it and hand it to the server.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let child = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["serve", "--listen", &addr.to_string(), "--watch", "off"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start doorman serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "doorman serve did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, addr }
}

struct Scenario {
    name: String,
    api: Api,
    path: &'static str,
    connections: usize,
    /// Decisions per HTTP request (1, or the batch size).
    per_request: usize,
}

struct Outcome {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

async fn connection(
    addr: SocketAddr,
    path: &'static str,
    bodies: Arc<Vec<(Bytes, Vec<bool>)>>,
    offset: usize,
    until: Instant,
    warmup_until: Instant,
) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut i = offset;
    loop {
        let now = Instant::now();
        if now >= until {
            return latencies;
        }
        let (body, expected) = &bodies[i % bodies.len()];
        i += 1;
        let request = Request::post(path)
            .header("host", "doorman")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let took = now.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        check(&bytes, expected);
        if now >= warmup_until {
            latencies.push(took);
        }
    }
}

/// What the check reads of an answer: its decision, or each batch entry's.
/// Typed and borrowed, so checking costs the client (which shares the two
/// cores with the server) little; every other field is skipped unread.
#[derive(serde::Deserialize)]
struct Checked<'a> {
    #[serde(borrow)]
    decision: Option<Said<'a>>,
    #[serde(borrow)]
    responses: Option<Vec<Checked<'a>>>,
}

/// `"allow"`/`"deny"` (doorman's API) or `true`/`false` (AuthZEN).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Said<'a> {
    Bool(bool),
    Word(&'a str),
}

impl Checked<'_> {
    fn allowed(&self) -> Option<bool> {
        match self.decision.as_ref()? {
            Said::Bool(b) => Some(*b),
            Said::Word("allow") => Some(true),
            Said::Word("deny") => Some(false),
            Said::Word(_) => None,
        }
    }
}

/// Every answer must carry the expected decision(s), in order.
fn check(body: &[u8], expected: &[bool]) {
    let answer: Checked<'_> = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not a JSON answer ({e}): {}", String::from_utf8_lossy(body)));
    let got: Vec<Option<bool>> = match &answer.responses {
        Some(items) => items.iter().map(Checked::allowed).collect(),
        None => vec![answer.allowed()],
    };
    let expected: Vec<Option<bool>> = expected.iter().copied().map(Some).collect();
    assert_eq!(
        got,
        expected,
        "wrong decisions in {}",
        String::from_utf8_lossy(body)
    );
}

fn run(rt: &tokio::runtime::Runtime, addr: SocketAddr, s: &Scenario, secs: u64) -> Outcome {
    let singles = questions();
    let bodies: Vec<(Bytes, Vec<bool>)> = if s.per_request == 1 {
        singles
            .iter()
            .map(|q| (Bytes::from(q.body(s.api).to_string()), vec![q.allow]))
            .collect()
    } else {
        (0..singles.len())
            .map(|start| {
                let items: Vec<&Question> = (0..s.per_request)
                    .map(|k| &singles[(start + k) % singles.len()])
                    .collect();
                let body =
                    json!({"requests": items.iter().map(|q| q.body(s.api)).collect::<Vec<_>>()});
                (
                    Bytes::from(body.to_string()),
                    items.iter().map(|q| q.allow).collect(),
                )
            })
            .collect()
    };
    let bodies = Arc::new(bodies);
    let start = Instant::now();
    let warmup_until = start + Duration::from_secs(1);
    let until = warmup_until + Duration::from_secs(secs);
    let latencies = rt.block_on(async {
        let tasks: Vec<_> = (0..s.connections)
            .map(|c| {
                tokio::spawn(connection(
                    addr,
                    s.path,
                    bodies.clone(),
                    c,
                    until,
                    warmup_until,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("connection task"));
        }
        all
    });
    Outcome {
        latencies,
        elapsed: until.saturating_duration_since(warmup_until),
    }
}

/// The machine's floor for one request in flight: a blocking TCP echo of a
/// request-sized message over loopback between two threads, with no HTTP
/// and no work. Each side sleeps in `read` until the other writes, as the
/// server and the client do with one connection, so a 1-connection latency
/// can be no lower than this; on a VM most of it is waking an idle vCPU.
fn loopback_floor(rounds: usize) -> Vec<Duration> {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let message = [b'x'; 300];
    let mut buf = [0u8; 1024];
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        c.write_all(&message).expect("write");
        let mut got = 0;
        while got < message.len() {
            match c.read(&mut buf[got..]).expect("read") {
                0 => panic!("the echo thread hung up"),
                n => got += n,
            }
        }
        latencies.push(started.elapsed());
    }
    drop(c);
    echo.join().expect("echo thread");
    latencies.sort_unstable();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: this target always runs its full measurement.
    let secs: u64 = std::env::var("DOORMAN_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let threads: usize = std::env::var("DOORMAN_LOAD_CLIENT_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let server = start_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("client runtime");
    let scenarios = [1, 8, 64]
        .into_iter()
        .flat_map(|c| {
            [
                Scenario {
                    name: format!("single, {c} conn"),
                    api: Api::V1,
                    path: "/v1/is_authorized",
                    connections: c,
                    per_request: 1,
                },
                Scenario {
                    name: format!("authzen, {c} conn"),
                    api: Api::AuthZen,
                    path: "/access/v1/evaluation",
                    connections: c,
                    per_request: 1,
                },
            ]
        })
        .chain([8].into_iter().map(|c| Scenario {
            name: format!("batch of 100, {c} conn"),
            api: Api::V1,
            path: "/v1/batch_is_authorized",
            connections: c,
            per_request: 100,
        }))
        .collect::<Vec<_>>();

    println!(
        "http_load: doorman serve at {} (bundled model), {secs}s per scenario after 1s warm-up, {threads} client thread(s), {} cores",
        server.addr,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<24} {:>10} {:>13} {:>10} {:>10} {:>10}",
        "scenario", "requests/s", "decisions/s", "p50", "p99", "p99.9"
    );
    let floor = loopback_floor(20_000);
    println!(
        "{:<24} {:>10} {:>13} {:>10.1?} {:>10.1?} {:>10.1?}",
        "loopback floor (no HTTP)",
        "",
        "",
        percentile(&floor, 50.0),
        percentile(&floor, 99.0),
        percentile(&floor, 99.9),
    );
    // Requests/s and p50 of each `/v1` single scenario, for its AuthZEN twin.
    let mut twin: Option<(f64, Duration)> = None;
    let mut ratios = Vec::new();
    for s in &scenarios {
        let mut out = run(&rt, server.addr, s, secs);
        out.latencies.sort_unstable();
        let rps = out.latencies.len() as f64 / out.elapsed.as_secs_f64();
        let p50 = percentile(&out.latencies, 50.0);
        match (s.api, s.per_request, twin.take()) {
            (Api::V1, 1, _) => twin = Some((rps, p50)),
            (Api::AuthZen, _, Some((v1_rps, v1_p50))) => ratios.push(format!(
                "{:<24} {:>9.2}× {:>12.2}×",
                s.name,
                v1_rps / rps,
                p50.as_secs_f64() / v1_p50.as_secs_f64()
            )),
            _ => {}
        }
        println!(
            "{:<24} {:>10.0} {:>13.0} {:>10.1?} {:>10.1?} {:>10.1?}",
            s.name,
            rps,
            rps * s.per_request as f64,
            percentile(&out.latencies, 50.0),
            percentile(&out.latencies, 99.0),
            percentile(&out.latencies, 99.9),
        );
    }
    println!(
        "\nAuthZEN evaluation / /v1/is_authorized (target ≤ 1.1×): cost per request, from requests/s and from p50"
    );
    println!("{:<24} {:>10} {:>13}", "scenario", "by req/s", "by p50");
    for line in ratios {
        println!("{line}");
    }
}
