//! `observe`: what metrics, request ids and the decision log cost the
//! request path, each measured alone next to one decision for scale.
//!
//! `benches/http_load.rs` measures the whole sidecar, but on a shared
//! machine its run-to-run noise is larger than these costs; this bench
//! measures them directly. Run it with `cargo bench --bench observe`.
//!
//! - metrics: what `routes::handle` and a decision endpoint record per
//!   request (a request counter, a latency histogram, a decision counter);
//! - request id: one made up (clients that send none) and a client's kept;
//! - decision log: `DecisionLog::record` with the writer thread writing to
//!   `/dev/null` beside it (the record is built in the untimed setup, as
//!   the request path builds it from values it already owns). When the
//!   writer falls behind the queue is full and the timed call is the
//!   drop path, which is what a request then pays.
//! - shadow: `Shadow::offer` (`serve --shadow`) with its thread answering
//!   again beside it; when it is behind, the timed call is the skip path.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use doorman::Query;
use doorman::server::decision_log::{DecisionLog, Format, Options, Record, Target};
use doorman::server::metrics::{Endpoint, Metrics};
use doorman::server::request_id;
use doorman::server::shadow::Shadow;
use hyper::header::HeaderValue;
use hyper::{HeaderMap, StatusCode};
use serde_json::json;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let snapshot = Arc::new(
        doorman::load(&common::sources(
            common::root().join("policies"),
            vec![common::root().join("fixtures/entities")],
        ))
        .expect("the bundled model loads"),
    );
    let query = Query::parse(
        "Member::\"acme-ada\"",
        "ViewInbox",
        "Inbox::\"acme-support\"",
        json!({}),
    )
    .expect("a query");
    let answer = snapshot.decide(&query).expect("an answer");
    let metrics = Arc::new(Metrics::default());

    let mut group = c.benchmark_group("observe");
    group.bench_function("reference: one decision", |b| {
        b.iter(|| black_box(snapshot.decide(black_box(&query))))
    });
    group.bench_function("metrics: a request and its decision", |b| {
        b.iter(|| {
            metrics.request(
                Endpoint::V1IsAuthorized,
                StatusCode::OK,
                black_box(Duration::from_micros(31)),
            );
            metrics.decision(Endpoint::V1IsAuthorized, black_box(&answer));
        })
    });
    group.bench_function("request id: made up", |b| {
        b.iter(|| black_box(request_id::generate()))
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        request_id::HEADER,
        HeaderValue::from_static("8f1c2a4e-5b6d-4e8f-9a0b-1c2d3e4f5a6b"),
    );
    group.bench_function("request id: the client's, checked", |b| {
        b.iter(|| black_box(request_id::of(black_box(&headers))))
    });
    let log = DecisionLog::start(
        Options {
            target: Target::File("/dev/null".into()),
            format: Format::default(),
            allow_sample: 1.0,
        },
        metrics.clone(),
    )
    .expect("the writer starts");
    let id = request_id::generate();
    group.bench_function("decision log: record", |b| {
        b.iter_batched(
            || Record {
                request_id: id.clone(),
                endpoint: Endpoint::V1IsAuthorized,
                item: None,
                query: query.clone(),
                answer: answer.clone(),
                snapshot: snapshot.clone(),
                arrived: Instant::now(),
                entities: None,
            },
            |record| log.record(record),
            BatchSize::SmallInput,
        )
    });

    // The candidate is the live policies themselves: what is measured is
    // the hand-over, and the worker's pace decides how often it is the
    // skip path instead.
    let candidate = doorman::load::load_candidate(&common::root().join("policies"), &snapshot)
        .expect("the candidate loads");
    let shadow = Shadow::start(common::root().join("policies"), candidate)
        .expect("the shadow thread starts");
    group.bench_function("shadow: offer", |b| {
        b.iter_batched(
            || (query.clone(), answer.clone()),
            |(query, answer)| {
                if shadow.has_room() {
                    shadow.offer(
                        &snapshot,
                        Endpoint::V1IsAuthorized,
                        &id,
                        None,
                        query,
                        answer,
                        None,
                    );
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let view = shadow.view();
    println!(
        "shadow: {} answered again, {} skipped (queue full) while measuring",
        view.agreed + view.allow_to_deny + view.deny_to_allow + view.errors,
        view.skipped
    );
    log.close(Duration::from_secs(5));
    println!(
        "decision log: {} lines dropped while measuring (queue full)",
        metrics.decision_log_dropped_total()
    );
}
