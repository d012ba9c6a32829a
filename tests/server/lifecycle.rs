//! The server as a process: readiness, snapshot swaps, graceful shutdown,
//! timeouts for slow clients, the Unix socket listener, HTTP/2 cleartext and
//! start-up failures.

use std::time::{Duration, Instant};

use doorman::server::State;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

fn ann_views_support() -> Value {
    query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"))
}

/// Head and the first `sent` bytes of a POST whose body is `body`.
fn partial_post(body: &str, sent: usize) -> Vec<u8> {
    let mut bytes = format!(
        "POST /v1/is_authorized HTTP/1.1\r\nHost: d\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body.as_bytes()[..sent]);
    bytes
}

fn wait_for_log(server: &Process, needle: &str) {
    let until = Instant::now() + PATIENCE;
    while !server.log().contains(needle) {
        assert!(
            Instant::now() < until,
            "no `{needle}` in:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn readiness_follows_the_published_snapshot() {
    let server = LibraryServer::start(State::new(Default::default())).await;
    let mut c = server.connect().await;

    assert_eq!(c.get("/healthz").await.status, 200);
    let r = c.get("/readyz").await;
    assert_eq!((r.status, r.error().0.as_str()), (503, "not_ready"));
    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!((r.status, r.error().0.as_str()), (503, "not_ready"));
    let r = c
        .post("/v1/batch_is_authorized", &json!({"requests": []}))
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(c.get("/v1/policies").await.status, 503);
    let status = c.get("/v1/status").await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["ready"], false);
    assert_eq!(status.json()["revision"], Value::Null);
    // Bad input is still bad input before the first load.
    assert_eq!(c.post_raw("/v1/is_authorized", b"{").await.status, 400);

    let snapshot = model_snapshot();
    let revision = snapshot.revision().to_owned();
    assert!(server.state.publish(snapshot).is_none());

    let r = c.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["revision"], revision.as_str());
    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));
    assert_eq!(c.get("/v1/status").await.json()["ready"], true);
}

#[tokio::test]
async fn the_next_request_answers_from_a_newly_published_snapshot() {
    let first = model_snapshot();
    let server = LibraryServer::start(State::with_snapshot(Default::default(), first)).await;
    let mut c = server.connect().await;
    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));
    let old_revision = r.json()["revision"].clone();

    // The same model with Ann suspended.
    let path = model_dir().join("entities/world.json");
    let mut world: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for entity in world.as_array_mut().unwrap() {
        if entity["uid"]["id"] == "ann" {
            entity["attrs"]["suspended"] = json!(true);
        }
    }
    let second = model_snapshot().with_entity_json(&path, world).unwrap();
    let new_revision = second.revision().to_owned();
    let previous = server.state.publish(second).expect("replaces the first");
    assert_eq!(previous.revision(), old_revision.as_str().unwrap());

    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!(verdict(&r.json()), deny(&["guard.suspended"]));
    assert_eq!(r.json()["revision"], new_revision.as_str());
    assert_ne!(r.json()["revision"], old_revision);
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    let mut server = Process::start(&[]);
    let body = ann_views_support().to_string();
    let mut slow = server.connect().await;
    slow.write(&partial_post(&body, 10)).await;
    // An idle keep-alive connection must not hold up the exit.
    let mut idle = server.connect().await;
    assert_eq!(idle.get("/healthz").await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("TERM");
    wait_for_log(&server, "shutting down");
    assert!(
        TcpStream::connect(&server.address).await.is_err(),
        "no new connections after SIGTERM"
    );
    assert!(idle.closed_within(Duration::from_secs(5)).await);

    // The request that was half sent when the signal came still gets its answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.write(&body.as_bytes()[10..]).await;
    let r = slow
        .read_response()
        .await
        .expect("the in-flight request is answered");
    assert_eq!(r.status, 200);
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    let status = server.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(server.log().contains("SIGTERM"));
}

#[tokio::test]
async fn one_worker_thread_still_answers_singles_and_batches() {
    let server = Process::start(&["--workers", "1"]);
    let mut c = server.connect().await;
    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));
    // A batch runs on the blocking pool, not on the one worker.
    let r = c
        .post(
            "/v1/batch_is_authorized",
            &json!({"requests": [ann_views_support(), ann_views_support()]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["responses"][1]["decision"], "allow");
}

/// The most threads named like tokio's (its workers and its blocking
/// pool) seen while `connections` clients each send 20 batches at
/// once: every batch runs on the blocking pool.
async fn tokio_threads_under_batches(server: &Process, connections: usize) -> usize {
    let batch = json!({"requests": vec![ann_views_support(); 50]});
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut c = server.connect().await;
        let batch = batch.clone();
        clients.push(tokio::spawn(async move {
            for _ in 0..20 {
                let r = c.post("/v1/batch_is_authorized", &batch).await;
                assert_eq!(r.status, 200);
            }
        }));
    }
    let mut most = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        most = most.max(server.threads("tokio-rt-worker"));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for c in clients {
        c.await.expect("a client");
    }
    most.max(server.threads("tokio-rt-worker"))
}

#[tokio::test]
async fn the_blocking_pool_stays_within_its_bound() {
    // One worker and two blocking threads: 24 connections of batches at
    // once would otherwise grow tokio's pool towards 24 threads.
    let bounded = Process::start(&["--workers", "1", "--blocking-threads", "2"]);
    let most = tokio_threads_under_batches(&bounded, 24).await;
    assert!((1..=3).contains(&most), "{most} tokio threads");
    // The default: four blocking threads per worker, at least 8.
    let default = Process::start(&["--workers", "1"]);
    let most = tokio_threads_under_batches(&default, 24).await;
    assert!(most <= 9, "{most} tokio threads");
}

#[tokio::test]
async fn sigint_stops_the_server_with_status_0() {
    let mut server = Process::start(&[]);
    let mut c = server.connect().await;
    assert_eq!(c.get("/readyz").await.status, 200);
    server.signal("INT");
    let status = server.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(server.log().contains("SIGINT"));
}

#[tokio::test]
async fn shutdown_waits_for_stuck_requests_only_so_long() {
    let state = State::with_snapshot(
        config(Duration::from_secs(30), Duration::from_millis(300)),
        model_snapshot(),
    );
    let mut server = LibraryServer::start(state).await;
    let body = ann_views_support().to_string();
    let mut stuck = server.connect().await;
    stuck.write(&partial_post(&body, 5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns after the shutdown timeout")
        .expect("serve did not panic");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250), "waited {took:?}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    assert!(server.state.is_draining());
    assert!(stuck.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn slow_and_silent_clients_time_out_without_holding_up_others() {
    let timeout = Duration::from_millis(500);
    let state = State::with_snapshot(config(timeout, Duration::from_secs(5)), model_snapshot());
    let server = LibraryServer::start(state).await;

    let mut silent = server.connect().await;
    let mut half_preface = server.connect().await;
    half_preface.write(b"PRI * HTTP/2.0\r\n").await;
    let mut half_head = server.connect().await;
    half_head
        .write(b"POST /v1/is_authorized HTTP/1.1\r\nHost: d\r\n")
        .await;
    let body = ann_views_support().to_string();
    let mut half_body = server.connect().await;
    half_body.write(&partial_post(&body, 7)).await;
    let mut idle = server.connect().await;
    assert_eq!(idle.get("/healthz").await.status, 200);

    // Meanwhile everyone else is answered at once.
    let started = Instant::now();
    let mut other = server.connect().await;
    for _ in 0..5 {
        let r = other.post("/v1/is_authorized", &ann_views_support()).await;
        assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));
    }
    assert!(
        started.elapsed() < timeout,
        "answers took {:?}",
        started.elapsed()
    );

    let r = half_body
        .read_response()
        .await
        .expect("a 408, not a dropped connection");
    assert_eq!(r.status, 408);
    assert_eq!(r.error().0, "request_timeout");
    let limit = timeout * 4;
    assert!(
        silent.closed_within(limit).await,
        "a silent connection is closed"
    );
    assert!(
        half_preface.closed_within(limit).await,
        "half a preface is closed"
    );
    assert!(
        half_head.closed_within(limit).await,
        "half a head is closed"
    );
    assert!(
        idle.closed_within(limit).await,
        "an idle keep-alive connection is closed"
    );

    let mut fresh = server.connect().await;
    assert_eq!(fresh.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn http2_cleartext_is_served_on_the_same_listener() {
    let server = Process::start(&[]);
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&frame(0x4, 0, 0, &[])); // SETTINGS
    // HEADERS, END_STREAM | END_HEADERS: GET http://doorman/readyz in HPACK
    // (indexed :method GET and :scheme http, literal :authority and :path).
    let mut block = vec![0x82, 0x86, 0x41, 7];
    block.extend_from_slice(b"doorman");
    block.extend_from_slice(&[0x44, 7]);
    block.extend_from_slice(b"/readyz");
    out.extend_from_slice(&frame(0x1, 0x5, 1, &block));
    stream.write_all(&out).await.unwrap();

    let (mut status, mut data) = (None, Vec::new());
    let mut conn = Conn::new(stream);
    while let Some((kind, flags, stream_id, payload)) = read_frame(&mut conn).await {
        match (kind, stream_id) {
            // :status 200 is entry 8 of HPACK's static table.
            (0x1, 1) => status = payload.first().copied(),
            (0x0, 1) => data.extend_from_slice(&payload),
            _ => {}
        }
        if stream_id == 1 && flags & 0x1 != 0 {
            break;
        }
    }
    assert_eq!(status, Some(0x88), "an HTTP/2 200");
    let body: Value = serde_json::from_slice(&data).expect("a JSON body");
    assert_eq!(body["ready"], true);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

async fn read_frame(conn: &mut Conn<TcpStream>) -> Option<(u8, u8, u32, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 9];
    tokio::time::timeout(PATIENCE, conn.stream.read_exact(&mut head))
        .await
        .ok()?
        .ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    tokio::time::timeout(PATIENCE, conn.stream.read_exact(&mut payload))
        .await
        .ok()?
        .ok()?;
    Some((head[3], head[4], stream, payload))
}

#[cfg(unix)]
#[tokio::test]
async fn a_unix_socket_listener_serves_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("doorman.sock");
    // A socket file left behind by a crashed server does not block a start.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let listen = format!("unix:{}", socket.display());
    let mut server = Process::start(&["--listen", &listen]);
    assert_eq!(server.address, listen);
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let mut c = Conn::new(stream);
    assert_eq!(c.get("/readyz").await.status, 200);
    let r = c.post("/v1/is_authorized", &ann_views_support()).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // A live server's socket is not taken over.
    let mut args = load_flags(&model_sources());
    args.extend(["--listen".to_owned(), listen.clone()]);
    let (status, log) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("another server is listening"), "{log}");

    server.signal("TERM");
    assert_eq!(server.wait(Duration::from_secs(15)).code(), Some(0));
    assert!(!socket.exists(), "the socket file is removed on exit");

    // A regular file in the way is neither used nor deleted.
    std::fs::write(&socket, "not a socket").unwrap();
    let (status, log) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{log}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
}

#[test]
fn start_up_failures_exit_1_with_a_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut args = load_flags(&model_sources());
    args.extend([
        "--listen".to_owned(),
        taken.local_addr().unwrap().to_string(),
    ]);
    let (status, log) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("cannot listen"), "{log}");

    // A model that does not load: every diagnostic is logged.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.cedar"),
        "permit (principal, action, resource\n",
    )
    .unwrap();
    let mut sources = model_sources();
    sources.policies = dir.path().to_path_buf();
    let mut args = load_flags(&sources);
    args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let (status, log) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("broken.cedar:"), "{log}");
    assert!(log.contains("cannot load"), "{log}");

    // A usage error is 1 (2 would read as "deny" to a script).
    let (status, log) = Process::run_to_exit(&["--listen".to_owned(), "nowhere".to_owned()]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("HOST:PORT"), "{log}");
    let (status, log) = Process::run_to_exit(&["--workers".to_owned(), "0".to_owned()]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("--workers"), "{log}");
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_until_one_closes() {
    let server = Process::start(&["--max-connections", "2"]);
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    assert_eq!(a.get("/healthz").await.status, 200);
    assert_eq!(b.get("/healthz").await.status, 200);
    // The third is taken by the kernel's backlog, not served yet.
    let mut c = server.connect().await;
    c.write(b"GET /healthz HTTP/1.1\r\nHost: d\r\n\r\n").await;
    let early = tokio::time::timeout(Duration::from_millis(700), c.read_response()).await;
    assert!(early.is_err(), "served past the limit: {early:?}");
    wait_for_log(&server, "connection limit reached");
    // One closes: the waiting one is served, and the server still answers.
    drop(a);
    let r = c.read_response().await.expect("served once a slot frees");
    assert_eq!(r.status, 200);
    assert_eq!(b.get("/healthz").await.status, 200);
}
