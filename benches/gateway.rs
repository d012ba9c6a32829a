//! `gateway`: what gateway mode adds to a decision.
//!
//! The same question (may `Member::"acme-ada"` `ViewInbox` on
//! `Inbox::"acme-support"`?) asked five ways on the bundled model with the
//! sample route map (routes/app.yaml, over a JWKS made for the run with the
//! openssl CLI):
//!
//! - `gateway/decide`: the decision alone, from a parsed `Query`;
//! - `gateway/resolve_cached`: the route map's part with the token in the
//!   verified-token cache (route match, cache hit, templates): the steady
//!   state, since a client sends the same token on every request;
//! - `gateway/verify_rs256`: an RS256 signature checked from scratch (what
//!   a cache miss adds);
//! - `gateway/check`: the whole in-process gateway path (resolve + decide);
//! - over loopback HTTP, one keep-alive connection: `http/v1`
//!   (`POST /v1/is_authorized`), `http/envoy` (`GET /ext/envoy/...`,
//!   Envoy's shape) and `http/nginx` (`GET /ext/nginx` with
//!   `X-Original-*`, nginx's shape).
//!
//! The target: route matching and token verification cost no more than the
//! decision (`resolve_cached / decide` at most 1), printed at the end with
//! the HTTP ratios, from this run's medians.
//!
//! `CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench --bench gateway`

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use doorman::gateway::{Headers, Request};
use doorman::server::{Listener, State};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;

struct Auth(String);

impl Headers for Auth {
    fn header(&self, name: &str) -> Option<&str> {
        (name == "authorization").then_some(self.0.as_str())
    }
}

fn setup(dir: &std::path::Path) -> (doorman::Snapshot, String) {
    let bearer = common::gateway_auth(dir, "bench", Duration::from_secs(36_000));
    let mut sources = common::sources(
        common::root().join("policies"),
        vec![common::root().join("fixtures/entities")],
    );
    sources.routes = Some(dir.join("app.yaml"));
    let snapshot = doorman::load(&sources).expect("the bundled model and routes load");
    (snapshot, bearer)
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let dir = tempfile::tempdir().unwrap();
    let (snapshot, bearer) = setup(dir.path());
    let auth = Auth(bearer.clone());
    let map = snapshot.route_map().expect("a route map");
    let request = Request::from_target("GET", "/inboxes/acme-support", &auth);
    let query = map.resolve(&request).expect("resolves").query;
    let answer = snapshot.decide(&query).unwrap();
    assert_eq!(answer.decision, doorman::Decision::Allow);
    let doorman::gateway::Authentication::Jwt(verifier) = &map.authentication else {
        panic!("the sample map uses a JWT");
    };
    let token = bearer.strip_prefix("Bearer ").unwrap().to_owned();

    let mut group = c.benchmark_group("gateway");
    group.bench_function("decide", |b| b.iter(|| black_box(snapshot.decide(&query))));
    group.bench_function("resolve_cached", |b| {
        b.iter(|| black_box(map.resolve(black_box(&request))))
    });
    group.bench_function("verify_rs256", |b| {
        b.iter(|| black_box(verifier.verify_uncached(&token)))
    });
    let state = State::with_snapshot(Default::default(), snapshot);
    group.bench_function("check", |b| {
        b.iter(|| {
            let checked = doorman::server::gateway::check(&state, black_box(&request));
            black_box(checked.outcome)
        })
    });
    group.finish();
    let state = Arc::new(state);
    http(&mut c, state, &bearer);

    c.final_summary();
    println!("\nratios (medians of this run):");
    for (a, b) in [
        ("gateway/resolve_cached", "gateway/decide"),
        ("gateway/verify_rs256", "gateway/decide"),
        ("gateway/check", "gateway/decide"),
        ("gateway_http/envoy", "gateway_http/v1"),
        ("gateway_http/nginx", "gateway_http/v1"),
    ] {
        println!("  {}", common::ratio(a, b));
    }
}

/// The three HTTP shapes over one keep-alive connection to a library
/// server on loopback (server on its own runtime thread).
fn http(c: &mut Criterion, state: Arc<State>, bearer: &str) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    server_rt.spawn(doorman::server::serve(
        Listener::Tcp(listener),
        state,
        std::future::pending(),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sender = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        sender
    });
    let v1_body = Bytes::from(
        json!({"principal": {"type": "Member", "id": "acme-ada"},
               "action": {"type": "Action", "id": "ViewInbox"},
               "resource": {"type": "Inbox", "id": "acme-support"}})
        .to_string(),
    );
    let build = |shape: &str| {
        let b = hyper::Request::builder().header("host", "doorman");
        match shape {
            "v1" => b
                .method("POST")
                .uri("/v1/is_authorized")
                .header("content-type", "application/json")
                .body(Full::new(v1_body.clone())),
            "envoy" => b
                .method("GET")
                .uri("/ext/envoy/inboxes/acme-support")
                .header("authorization", bearer)
                .body(Full::new(Bytes::new())),
            _ => b
                .method("GET")
                .uri("/ext/nginx")
                .header("authorization", bearer)
                .header("x-original-method", "GET")
                .header("x-original-uri", "/inboxes/acme-support")
                .body(Full::new(Bytes::new())),
        }
        .unwrap()
    };
    let mut group = c.benchmark_group("gateway/http");
    for shape in ["v1", "envoy", "nginx"] {
        group.bench_function(shape, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let response = sender.send_request(build(shape)).await.unwrap();
                    assert_eq!(response.status(), 200, "{shape}");
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    assert!(
                        body.starts_with(b"{\"decision\":\"allow\""),
                        "{shape}: {body:?}"
                    );
                })
            })
        });
    }
    group.finish();
}
