//! Observing the sidecar over the wire: `GET /metrics` after known traffic
//! (asserted by value), `X-Request-ID` on every answer, and the decision
//! log (its lines against the HTTP answers, optional fields, masks,
//! sampling, a FIFO nobody reads, log rotation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::support::*;

// ------------------------------------------------------------- metrics

/// One sample of an OpenMetrics exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format's sample lines (comments aside); label values
/// here hold no escaped quotes or commas.
fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("k=v");
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in `{line}`")),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

pub struct Scraped(Vec<Sample>);

impl Scraped {
    /// The value of the one sample named `name` with (at least) `labels`;
    /// `None` when there is none.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().map(|s| s.value)
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {:#?}", self.0))
    }

    /// A histogram's cumulative bucket count at bound `le`.
    fn bucket(&self, name: &str, labels: &[(&str, &str)], le: f64) -> f64 {
        let bucket = format!("{name}_bucket");
        self.0
            .iter()
            .filter(|s| s.name == bucket)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .find(|s| {
                let bound = &s.labels["le"];
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().unwrap()
                };
                bound == le || (le.is_finite() && (bound - le).abs() <= le * 1e-9)
            })
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("no bucket le={le} for {name} {labels:?}"))
    }
}

/// `GET /metrics`, checked for its media type and `# EOF`, parsed.
pub async fn scrape(c: &mut Conn<TcpStream>) -> Scraped {
    let r = c.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(r.body).expect("UTF-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    Scraped(parse_exposition(&text))
}

const ALLOW: ((&str, &str), &str, (&str, &str)) =
    (("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"));
const DENY: ((&str, &str), &str, (&str, &str)) =
    (("Member", "ann"), "ViewInbox", ("Inbox", "sales-desk"));

fn ask(q: ((&str, &str), &str, (&str, &str))) -> Value {
    query(q.0, q.1, q.2)
}

#[tokio::test]
async fn metrics_count_requests_decisions_batches_and_reloads_by_value() {
    let server = Process::start(&["--watch", "off"]);
    let mut c = server.connect().await;
    for _ in 0..3 {
        assert_eq!(c.post("/v1/is_authorized", &ask(ALLOW)).await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(c.post("/v1/is_authorized", &ask(DENY)).await.status, 200);
    }
    // A deny with one policy that failed to evaluate.
    let audit = query(("Member", "bob"), "Audit", ("Inbox", "lobby"));
    let r = c.post("/v1/is_authorized", &audit).await;
    assert_eq!(r.json()["errors"].as_array().map(Vec::len), Some(1));
    assert_eq!(c.get("/v1/is_authorized").await.status, 405);
    assert_eq!(c.post_raw("/v1/is_authorized", b"{").await.status, 400);
    assert_eq!(c.get("/no/such/path").await.status, 404);
    let batch = json!({"requests": [ask(ALLOW), ask(ALLOW), ask(DENY)]});
    assert_eq!(c.post("/v1/batch_is_authorized", &batch).await.status, 200);
    let subject = json!({"type": "Member", "id": "ann"});
    let evaluation = json!({
        "subject": subject,
        "action": {"name": "ViewInbox"},
        "resource": {"type": "Inbox", "id": "support-desk"},
    });
    let r = c.post("/access/v1/evaluation", &evaluation).await;
    assert_eq!(r.json()["decision"], true);
    let evaluations = json!({
        "subject": subject,
        "action": {"name": "ViewInbox"},
        "evaluations": [
            {"resource": {"type": "Inbox", "id": "support-desk"}},
            {"resource": {"type": "Inbox", "id": "sales-desk"}},
        ],
    });
    let r = c.post("/access/v1/evaluations", &evaluations).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = c.post_raw("/v1/reload", b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let status = c.get("/v1/status").await.json();

    let m = scrape(&mut c).await;
    let requests = "doorman_http_requests_total";
    let v1 = ("endpoint", "v1.is_authorized");
    assert_eq!(m.value(requests, &[v1, ("status", "200")]), 6.0);
    assert_eq!(m.value(requests, &[v1, ("status", "405")]), 1.0);
    assert_eq!(m.value(requests, &[v1, ("status", "400")]), 1.0);
    assert_eq!(m.get(requests, &[v1, ("status", "404")]), None);
    let not_found = [("endpoint", "not_found"), ("status", "404")];
    assert_eq!(m.value(requests, &not_found), 1.0);
    let batch_ok = [("endpoint", "v1.batch_is_authorized"), ("status", "200")];
    assert_eq!(m.value(requests, &batch_ok), 1.0);
    let reload_ok = [("endpoint", "admin.reload"), ("status", "200")];
    assert_eq!(m.value(requests, &reload_ok), 1.0);
    let status_ok = [("endpoint", "admin.status"), ("status", "200")];
    assert_eq!(m.value(requests, &status_ok), 1.0);
    // The scrape is counted once it is answered: not in itself.
    assert_eq!(m.get(requests, &[("endpoint", "metrics")]), None);

    let duration = "doorman_http_request_duration_seconds";
    assert_eq!(m.value(&format!("{duration}_count"), &[v1]), 8.0);
    assert_eq!(m.bucket(duration, &[v1], f64::INFINITY), 8.0);
    assert!(m.value(&format!("{duration}_sum"), &[v1]) > 0.0);
    let smallest = m.bucket(duration, &[v1], 1e-5);
    let mut last = smallest;
    for le in [2.5e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0] {
        let n = m.bucket(duration, &[v1], le);
        assert!(n >= last, "buckets are cumulative");
        last = n;
    }

    let decisions = "doorman_decisions_total";
    let d =
        |endpoint, decision| m.value(decisions, &[("endpoint", endpoint), ("decision", decision)]);
    assert_eq!(d("v1.is_authorized", "allow"), 3.0);
    assert_eq!(d("v1.is_authorized", "deny"), 3.0);
    assert_eq!(d("v1.batch_is_authorized", "allow"), 2.0);
    assert_eq!(d("v1.batch_is_authorized", "deny"), 1.0);
    assert_eq!(d("authzen.evaluation", "allow"), 1.0);
    assert_eq!(d("authzen.evaluations", "allow"), 1.0);
    assert_eq!(d("authzen.evaluations", "deny"), 1.0);
    assert_eq!(m.value("doorman_decision_errors_total", &[]), 1.0);

    // Two batches: three items (/v1) and two (AuthZEN).
    assert_eq!(m.value("doorman_batch_size_count", &[]), 2.0);
    assert_eq!(m.value("doorman_batch_size_sum", &[]), 5.0);
    assert_eq!(m.bucket("doorman_batch_size", &[], 1.0), 0.0);
    assert_eq!(m.bucket("doorman_batch_size", &[], 2.0), 1.0);
    assert_eq!(m.bucket("doorman_batch_size", &[], 5.0), 2.0);

    assert_eq!(m.value("doorman_reloads_total", &[("result", "ok")]), 1.0);
    assert_eq!(
        m.value("doorman_reloads_total", &[("result", "failed")]),
        0.0
    );
    assert_eq!(m.value("doorman_reload_duration_seconds_count", &[]), 1.0);

    let revision = status["revision"].as_str().expect("a revision");
    assert_eq!(
        m.value("doorman_snapshot_info", &[("revision", revision)]),
        1.0
    );
    assert_eq!(
        m.0.iter()
            .filter(|s| s.name == "doorman_snapshot_info")
            .count(),
        1,
        "only the serving revision"
    );
    assert_eq!(
        Some(m.value("doorman_policies", &[])),
        status["policies"].as_f64()
    );
    assert_eq!(
        Some(m.value("doorman_entities", &[])),
        status["entities"].as_f64()
    );
    let loaded = m.value("doorman_snapshot_loaded_timestamp_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(loaded > now - 600.0 && loaded <= now + 1.0, "{loaded}");
    assert_eq!(m.value("doorman_decision_log_dropped_total", &[]), 0.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(m.value("doorman_build_info", &[("version", version)]), 1.0);

    // The first scrape is counted by the second.
    let m = scrape(&mut c).await;
    let metrics_ok = [("endpoint", "metrics"), ("status", "200")];
    assert_eq!(m.value(requests, &metrics_ok), 1.0);
}

// ---------------------------------------------------------- request ids

#[tokio::test]
async fn every_answer_carries_a_request_id_echoed_made_up_or_replaced() {
    let server = Process::start(&["--watch", "off"]);
    let mut c = server.connect().await;
    let body = ask(ALLOW).to_string();
    let eval = json!({
        "subject": {"type": "Member", "id": "ann"},
        "action": {"name": "ViewInbox"},
        "resource": {"type": "Inbox", "id": "support-desk"},
    })
    .to_string();
    // (method, path, body, status)
    let calls: [(&str, &str, Option<&[u8]>, u16); 9] = [
        ("POST", "/v1/is_authorized", Some(body.as_bytes()), 200),
        ("POST", "/v1/is_authorized", Some(b"{"), 400),
        ("GET", "/v1/is_authorized", None, 405),
        ("GET", "/nowhere", None, 404),
        ("GET", "/healthz", None, 200),
        ("GET", "/v1/status", None, 200),
        ("GET", "/metrics", None, 200),
        ("POST", "/access/v1/evaluation", Some(eval.as_bytes()), 200),
        ("GET", "/access/v1/evaluation", None, 405),
    ];
    let mut made_up = Vec::new();
    for (i, (method, path, body, status)) in calls.into_iter().enumerate() {
        let sent = format!("client-{i}");
        let r = c.send(method, path, &[("X-Request-ID", &sent)], body).await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(
            r.header("x-request-id"),
            Some(sent.as_str()),
            "{method} {path}"
        );

        let r = c.send(method, path, &[], body).await;
        assert_eq!(r.status, status, "{method} {path}");
        let id = r.header("x-request-id").expect("an id").to_owned();
        assert_eq!(id.len(), 36, "{id}");
        made_up.push(id);
    }
    let distinct: std::collections::BTreeSet<_> = made_up.iter().collect();
    assert_eq!(distinct.len(), made_up.len(), "{made_up:?}");

    // The longest acceptable is kept; longer, spaces, non-ASCII: replaced.
    let longest = "x".repeat(128);
    let r = c
        .send("GET", "/healthz", &[("X-Request-ID", &longest)], None)
        .await;
    assert_eq!(r.header("x-request-id"), Some(longest.as_str()));
    for bad in [
        "y".repeat(129),
        "two words".to_owned(),
        "caf\u{e9}".to_owned(),
    ] {
        let r = c
            .send("GET", "/healthz", &[("X-Request-ID", &bad)], None)
            .await;
        assert_eq!(r.status, 200);
        let id = r.header("x-request-id").expect("an id");
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "{id}");
    }
}

#[tokio::test]
async fn the_debug_request_line_names_the_request_id() {
    let mut args = load_flags(&model_sources());
    args.extend(["--watch".to_owned(), "off".to_owned()]);
    let server = Process::start_logging(&args, " serving ", "info,doorman=debug");
    let mut c = server.connect().await;
    let r = c
        .send("GET", "/nowhere", &[("X-Request-ID", "trace-me-7")], None)
        .await;
    assert_eq!(r.status, 404);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        let line = log.lines().find(|l| {
            l.contains("request_id=trace-me-7") || l.contains("request_id=\"trace-me-7\"")
        });
        if let Some(line) = line {
            assert!(
                line.contains("status=404") && line.contains("/nowhere"),
                "{line}"
            );
            break;
        }
        assert!(Instant::now() < until, "no request line:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --------------------------------------------------------- decision log

/// The decision log's lines once there are at least `want` (waiting for
/// the writer's flush, at most a few seconds).
fn lines_in(path: &Path, want: usize) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= want || Instant::now() > until {
            assert_eq!(lines.len(), want, "{text}");
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_path(dir: &tempfile::TempDir, name: &str) -> (PathBuf, String) {
    let path = dir.path().join(name);
    let text = path.display().to_string();
    (path, text)
}

async fn post_with_id(c: &mut Conn<TcpStream>, path: &str, id: &str, body: &Value) -> Value {
    let r = c
        .send(
            "POST",
            path,
            &[("X-Request-ID", id)],
            Some(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[tokio::test]
async fn decision_log_lines_match_the_answers_with_context_entities_and_masks() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file) = log_path(&dir, "decisions.log");
    let server = Process::start(&[
        "--watch",
        "off",
        "--decision-log",
        &file,
        "--decision-log-include",
        "context,entities",
        "--decision-log-mask",
        "/context/urgent",
        "--decision-log-mask",
        "/entities/*/attrs/level",
    ]);
    let mut c = server.connect().await;
    let single = post_with_id(&mut c, "/v1/is_authorized", "one", &ask(ALLOW)).await;
    let mut send = query(("Member", "bob"), "SendMessage", ("Inbox", "sales-desk"));
    send["context"] = json!({"urgent": true});
    let sent = post_with_id(&mut c, "/v1/is_authorized", "two", &send).await;
    let newbie = json!({
        "uid": {"type": "Member", "id": "newbie"},
        "attrs": {"team": {"type": "Team", "id": "sales"}, "level": 1, "suspended": false},
        "parents": [{"type": "Team", "id": "sales"}],
    });
    let mut own = query(("Member", "newbie"), "ViewInbox", ("Inbox", "sales-desk"));
    own["entities"] = json!([newbie]);
    let batch = json!({"requests": [ask(DENY), own, {"principal": 5}]});
    let batched = post_with_id(&mut c, "/v1/batch_is_authorized", "three", &batch).await;
    let eval = json!({
        "subject": {"type": "Member", "id": "ann"},
        "action": {"name": "ViewInbox"},
        "resource": {"type": "Inbox", "id": "sales-desk"},
    });
    post_with_id(&mut c, "/access/v1/evaluation", "four", &eval).await;
    // Refused requests are not logged.
    let r = c
        .send(
            "POST",
            "/v1/is_authorized",
            &[("X-Request-ID", "bad")],
            Some(b"{"),
        )
        .await;
    assert_eq!(r.status, 400);

    let lines = lines_in(&path, 5);
    let revision = single["revision"].as_str().unwrap();
    for line in &lines {
        assert_eq!(line["v"], 1);
        assert_eq!(line["revision"], revision);
        assert!(line["latency_us"].is_u64(), "{line}");
        let time = line["time"].as_str().unwrap();
        assert_eq!(
            (time.len(), &time[10..11], &time[26..]),
            (27, "T", "Z"),
            "{time}"
        );
    }
    let [a, b, c0, c1, d] = &lines[..] else {
        unreachable!()
    };
    // Fields in the documented order.
    let raw = std::fs::read_to_string(&path).unwrap();
    let first = raw.lines().next().unwrap();
    let order = [
        "\"v\"",
        "\"time\"",
        "\"request_id\"",
        "\"endpoint\"",
        "\"principal\"",
        "\"action\"",
        "\"resource\"",
        "\"context\"",
        "\"entities\"",
        "\"decision\"",
        "\"reasons\"",
        "\"errors\"",
        "\"revision\"",
        "\"latency_us\"",
    ];
    let at: Vec<usize> = order.iter().map(|k| first.find(k).expect(k)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{first}");

    assert_eq!(a["request_id"], "one");
    assert_eq!(a["endpoint"], "v1.is_authorized");
    assert!(a.get("item").is_none());
    assert_eq!(a["principal"], "Member::\"ann\"");
    assert_eq!(a["action"], "Action::\"ViewInbox\"");
    assert_eq!(a["resource"], "Inbox::\"support-desk\"");
    assert_eq!(a["decision"], single["decision"]);
    assert_eq!(a["reasons"], single["reasons"]);
    assert_eq!(a["errors"], json!([]));
    assert_eq!(a["context"], json!({}));
    assert_eq!(a["entities"], json!([]));

    assert_eq!(b["request_id"], "two");
    assert_eq!(b["decision"], sent["decision"]);
    assert_eq!(b["reasons"], sent["reasons"]);
    assert_eq!(b["context"], json!({"urgent": "***"}));

    let responses = batched["responses"].as_array().unwrap();
    assert_eq!(
        (c0["request_id"].as_str(), c0["item"].as_u64()),
        (Some("three"), Some(0))
    );
    assert_eq!(c0["endpoint"], "v1.batch_is_authorized");
    assert_eq!(c0["decision"], responses[0]["decision"]);
    assert_eq!(
        (c1["item"].as_u64(), &c1["decision"]),
        (Some(1), &responses[1]["decision"])
    );
    assert_eq!(c1["reasons"], responses[1]["reasons"]);
    assert_eq!(c1["principal"], "Member::\"newbie\"");
    assert_eq!(
        c1["entities"][0]["uid"],
        json!({"type": "Member", "id": "newbie"})
    );
    assert_eq!(c1["entities"][0]["attrs"]["level"], "***");
    assert_eq!(c1["entities"][0]["attrs"]["suspended"], false);
    assert!(
        responses[2].get("error").is_some(),
        "the bad item is refused"
    );

    assert_eq!(d["request_id"], "four");
    assert_eq!(d["endpoint"], "authzen.evaluation");
    assert_eq!(d["decision"], "deny");
}

#[tokio::test]
async fn sampling_keeps_every_deny_and_the_asked_share_of_allows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file) = log_path(&dir, "sampled.log");
    let server = Process::start(&[
        "--watch",
        "off",
        "--decision-log",
        &file,
        "--decision-log-allow-sample",
        "0",
    ]);
    let mut c = server.connect().await;
    for i in 0..4 {
        post_with_id(
            &mut c,
            "/v1/is_authorized",
            &format!("allow-{i}"),
            &ask(ALLOW),
        )
        .await;
    }
    for i in 0..3 {
        post_with_id(
            &mut c,
            "/v1/is_authorized",
            &format!("deny-{i}"),
            &ask(DENY),
        )
        .await;
    }
    let lines = lines_in(&path, 3);
    // One more second: no late allows arrive.
    std::thread::sleep(Duration::from_millis(1200));
    let lines_later = lines_in(&path, 3);
    assert_eq!(lines, lines_later);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["deny-0", "deny-1", "deny-2"]);
    assert!(lines.iter().all(|l| l["decision"] == "deny"));
    assert!(
        lines
            .iter()
            .all(|l| l.get("context").is_none() && l.get("entities").is_none())
    );
}

#[tokio::test]
async fn a_fifo_nobody_reads_drops_lines_but_never_holds_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fifo) = log_path(&dir, "decisions.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let server = Process::start(&["--watch", "off", "--decision-log", &fifo]);
    let mut c = server.connect().await;
    // More decisions than the queue holds (4,096), in batches of 100.
    let batch = json!({"requests": vec![ask(DENY); 100]});
    let started = Instant::now();
    for _ in 0..50 {
        let r = c.post("/v1/batch_is_authorized", &batch).await;
        assert_eq!(r.status, 200);
    }
    for _ in 0..20 {
        let r = c.post("/v1/is_authorized", &ask(ALLOW)).await;
        assert_eq!(verdict(&r.json()).0, "allow");
    }
    // Generous: 5,020 decisions take well under a second here; a request
    // blocked on the log would take forever (the FIFO is never read).
    assert!(started.elapsed() < Duration::from_secs(60));
    let m = scrape(&mut c).await;
    let dropped = m.value("doorman_decision_log_dropped_total", &[]);
    // The queue holds 4,096 and the writer one more (the line it took
    // before it tried to open the FIFO); the rest are dropped.
    assert!(dropped >= 5_020.0 - 4_097.0, "dropped {dropped}");
    assert!(
        server.log().contains("decision log: dropping lines"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn rotation_by_rename_and_by_copytruncate_loses_no_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file) = log_path(&dir, "decisions.log");
    let server = Process::start(&["--watch", "off", "--decision-log", &file]);
    let mut c = server.connect().await;
    let ids = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    for i in 0..5 {
        post_with_id(&mut c, "/v1/is_authorized", &format!("a-{i}"), &ask(ALLOW)).await;
    }
    lines_in(&path, 5);

    // logrotate's default: rename, then the writer opens a new file.
    let rotated = dir.path().join("decisions.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < until, "no new file after the rename");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..5 {
        post_with_id(&mut c, "/v1/is_authorized", &format!("b-{i}"), &ask(DENY)).await;
    }
    let fresh = lines_in(&path, 5);
    assert_eq!(ids(&fresh), ["b-0", "b-1", "b-2", "b-3", "b-4"]);
    let old = lines_in(&rotated, 5);
    assert_eq!(ids(&old), ["a-0", "a-1", "a-2", "a-3", "a-4"]);

    // copytruncate: copy, then truncate in place; writes go on at the new
    // end, with no hole of zeros where the old lines were.
    std::fs::copy(&path, dir.path().join("decisions.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    for i in 0..3 {
        post_with_id(&mut c, "/v1/is_authorized", &format!("c-{i}"), &ask(ALLOW)).await;
    }
    let after = lines_in(&path, 3);
    assert_eq!(ids(&after), ["c-0", "c-1", "c-2"]);
    assert!(!std::fs::read(&path).unwrap().contains(&0));
}

#[tokio::test]
async fn shutdown_flushes_the_decision_log_and_bad_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, file) = log_path(&dir, "decisions.log");
    let mut server = Process::start(&["--watch", "off", "--decision-log", &file]);
    let mut c = server.connect().await;
    post_with_id(&mut c, "/v1/is_authorized", "last", &ask(DENY)).await;
    server.signal("TERM");
    assert!(server.wait(Duration::from_secs(20)).success());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"request_id\":\"last\""), "{text}");

    let mut args = load_flags(&model_sources());
    args.extend(["--decision-log-mask".to_owned(), "/context/x".to_owned()]);
    let (status, stderr) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--decision-log"), "{stderr}");
    for (flag, value, says) in [
        ("--decision-log-mask", "context/x", "starts with `/`"),
        ("--decision-log-mask", "/decision", "/context"),
        ("--decision-log-allow-sample", "1.5", "fraction"),
        ("--decision-log-include", "headers", "context"),
    ] {
        let mut args = load_flags(&model_sources());
        args.extend(
            ["--decision-log", file.as_str(), flag, value]
                .iter()
                .map(|s| s.to_string()),
        );
        let (status, stderr) = Process::run_to_exit(&args);
        assert!(!status.success(), "{flag} {value}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}
