//! `decision`: one JSON request → answer through the library, on the bundled
//! policies, over stores of 1k, 100k and 1M members, without and with ten
//! request-scoped entities.
//!
//! What a request costs is what the sidecar pays per question, so the
//! measured path starts from the request body's bytes: JSON parse, entity
//! references, the overlay (when the body brings entities), then the
//! decision. The store-size targets are ratios (1M within 1.5× of 1k; ten
//! request-scoped entities within 3× of none), printed at the end from this
//! run's medians. A 1M-member world takes a while to generate and load; the
//! load time and resident memory are printed as well.
//!
//! `cargo bench --bench decision` (add a filter such as `1k` to run part).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{
    Shape, check_answers, decide_json, memory, ratio, request_bodies, sources, write_world,
};
use criterion::{BenchmarkId, Criterion};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const MIX: usize = 1_000;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    // The bundled model on its own sample world, as a newcomer runs it.
    let bundled = doorman::load(&sources(
        common::root().join("policies"),
        vec![common::root().join("fixtures/entities")],
    ))
    .expect("the bundled model loads");
    let sample = sample_bodies();
    println!(
        "decision/bundled: bundled model over the sample world ({})",
        bundled.summary()
    );
    println!(
        "  {} request kinds: {}",
        sample.len(),
        check_answers(&bundled, &sample)
    );
    let mut group = c.benchmark_group("decision");
    let mut i = 0;
    group.bench_function("bundled", |b| {
        b.iter(|| {
            i = (i + 1) % sample.len();
            black_box(decide_json(&bundled, &sample[i]))
        })
    });
    // The same questions from a parsed `Query`: the library's decision
    // alone, without the JSON a caller may or may not have.
    let queries: Vec<doorman::Query> = sample.iter().map(|b| common::query_of(b)).collect();
    let mut i = 0;
    group.bench_function("bundled-query", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(bundled.decide(&queries[i]))
        })
    });
    group.finish();
    drop(bundled);

    for members in SIZES {
        let shape = Shape::members(members);
        let label = shape.label();
        if !["no-entities", "10-entities", "views"]
            .iter()
            .any(|k| common::selected(&format!("decision/{k}/{label}")))
        {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let started = Instant::now();
        let entities = write_world(dir.path(), shape);
        let written = started.elapsed();
        let started = Instant::now();
        let snapshot = doorman::load(&sources(common::root().join("policies"), vec![entities]))
            .expect("the generated world loads");
        println!(
            "decision/{label}: {} companies x {} members; {} (written in {:.1?}, loaded in {:.1?}; {})",
            shape.companies,
            shape.members,
            snapshot.summary(),
            written,
            started.elapsed(),
            memory(),
        );
        let plain = request_bodies(shape, MIX, false);
        let brought = request_bodies(shape, MIX, true);
        println!(
            "  {MIX} requests without entities: {}",
            check_answers(&snapshot, &plain)
        );
        println!(
            "  {MIX} requests with 10 entities: {}",
            check_answers(&snapshot, &brought)
        );

        let mut group = c.benchmark_group("decision");
        // A small store is also kept whole as Cedar's `Entities`; the same
        // requests through per-request views, as a large store answers
        // them, show what the view costs apart from the large store's
        // cache misses.
        if snapshot.store().len() <= doorman::load::WHOLE_STORE_LIMIT {
            let views = doorman::load(&sources(
                common::root().join("policies"),
                vec![dir.path().join("entities")],
            ))
            .expect("the generated world loads")
            .with_views_only();
            let mut i = 0;
            group.bench_function(BenchmarkId::new("views", &label), |b| {
                b.iter(|| {
                    i = (i + 1) % plain.len();
                    black_box(decide_json(&views, &plain[i]))
                })
            });
        }
        for (name, bodies) in [("no-entities", &plain), ("10-entities", &brought)] {
            let mut i = 0;
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    i = (i + 1) % bodies.len();
                    black_box(decide_json(&snapshot, &bodies[i]))
                })
            });
        }
        group.finish();
    }

    c.final_summary();
    println!(
        "\ndecision ratios (medians of this run; targets: 1M/1k <= 1.5, 10-entities/no-entities on 1M <= 3):"
    );
    println!(
        "  {}",
        ratio("decision/no-entities/1M", "decision/no-entities/1k")
    );
    println!(
        "  {}",
        ratio("decision/10-entities/1M", "decision/10-entities/1k")
    );
    println!(
        "  {}",
        ratio("decision/10-entities/1M", "decision/no-entities/1M")
    );
    println!(
        "  {}",
        ratio("decision/10-entities/1k", "decision/no-entities/1k")
    );
    println!(
        "  {}",
        ratio("decision/views/1k", "decision/no-entities/1k")
    );
    println!("  {}", ratio("decision/no-entities/1M", "decision/bundled"));
}

/// Requests on the sample world, one per kind of question in the rule book.
fn sample_bodies() -> Vec<Vec<u8>> {
    let q = |p: &str, a: &str, rt: &str, r: &str, ctx: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({
            "principal": {"type": "Member", "id": p},
            "action": {"type": "Action", "id": a},
            "resource": {"type": rt, "id": r},
            "context": ctx,
        }))
        .expect("JSON")
    };
    let none = || serde_json::json!({});
    vec![
        q("acme-ada", "ViewInbox", "Inbox", "acme-support", none()),
        q("acme-mia", "ViewInbox", "Inbox", "acme-support", none()),
        q("acme-abe", "RemoveTeamMember", "Member", "acme-mia", none()),
        q("acme-max", "ManageApiKeys", "ApiKey", "acme-key", none()),
        q(
            "acme-abe",
            "ViewRecording",
            "Call",
            "acme-ivy-call-1",
            none(),
        ),
        q(
            "acme-max",
            "InviteMember",
            "Company",
            "acme",
            serde_json::json!({"role": "admin"}),
        ),
        q("acme-sam", "UpdateContact", "Contact", "acme-vera", none()),
        q(
            "globex-gus",
            "ArchiveMember",
            "Member",
            "globex-gus",
            none(),
        ),
        q("acme-ada", "ViewInbox", "Inbox", "globex-support", none()),
        q("acme-mia", "AccessCrm", "Company", "acme", none()),
    ]
}
