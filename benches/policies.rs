//! `policies`: decision time as the policy set grows, sliced (the library)
//! against unsliced (Cedar's authorizer on the whole set).
//!
//! The bundled model alone, then with 1,000 and 10,000 generated tenant
//! policies (ten per company, each `resource in Company::"…"`), all over one
//! world of 1,000 companies (10 seats each), so the store is the same and
//! only the policy set changes. With 1,000 policies one request in ten is
//! about a company that has tenant policies; with 10,000, every request is.
//!
//! Both sides start from a parsed `Query` and include building the Cedar
//! request, so the difference is what slicing saves. The target (10,000
//! extra policies within 3× of bundled-only, sliced) is printed at the end
//! from this run's medians.
//!
//! `cargo bench --bench policies`

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cedar_policy::{Authorizer, Context, Entities, Request};
use common::{
    Shape, check_answers, policy_dir, ratio, request_bodies, sources, tenant_policies, write_world,
};
use criterion::{BenchmarkId, Criterion};
use doorman::{Query, Snapshot};

const MIX: usize = 1_000;

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    let shape = Shape {
        companies: 1_000,
        members: 10,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let entities = write_world(dir.path(), shape);
    let bodies = request_bodies(shape, MIX, false);

    for (label, tenants) in [("bundled", 0), ("1k-tenant", 100), ("10k-tenant", 1_000)] {
        let pdir = tempfile::tempdir().expect("temp dir");
        let extra = (tenants > 0).then(|| tenant_policies(tenants));
        let policies = policy_dir(pdir.path(), extra.as_deref());
        let started = Instant::now();
        let snapshot = doorman::load(&sources(policies, vec![entities.clone()]))
            .expect("the generated model loads");
        println!(
            "policies/{label}: {} (loaded in {:.1?}); {MIX} requests: {}",
            snapshot.summary(),
            started.elapsed(),
            check_answers(&snapshot, &bodies)
        );
        let queries: Vec<Query> = bodies.iter().map(|b| common::query_of(b)).collect();
        // Unsliced answers with 10,000 policies take tens of ms each; a
        // tenth of the mix is enough to show both sides agree.
        // Cedar's own `Entities` of the whole store, built once.
        let stored = snapshot.store().to_cedar();
        check_same(&snapshot, &stored, &queries[..MIX / 10]);

        let mut group = c.benchmark_group("policies");
        let mut i = 0;
        group.bench_function(BenchmarkId::new("sliced", label), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(snapshot.decide(&queries[i]))
            })
        });
        let mut i = 0;
        group.bench_function(BenchmarkId::new("unsliced", label), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(unsliced(&snapshot, &stored, &queries[i]))
            })
        });
        group.finish();
    }

    c.final_summary();
    println!(
        "\npolicies ratios (medians of this run; target: sliced 10k-tenant / sliced bundled <= 3):"
    );
    for label in ["1k-tenant", "10k-tenant"] {
        println!(
            "  {}",
            ratio(
                &format!("policies/sliced/{label}"),
                "policies/sliced/bundled"
            )
        );
    }
    for label in ["bundled", "1k-tenant", "10k-tenant"] {
        println!(
            "  {}",
            ratio(
                &format!("policies/unsliced/{label}"),
                &format!("policies/sliced/{label}")
            )
        );
    }
}

/// Cedar on the whole policy set: what `decide` did before slicing.
fn unsliced(snapshot: &Snapshot, stored: &Entities, q: &Query) -> cedar_policy::Response {
    let schema = snapshot.schema();
    let context = Context::from_json_value(q.context.clone(), schema.map(|s| (s, &q.action)))
        .expect("context");
    let request = Request::new(
        q.principal.clone(),
        q.action.clone(),
        q.resource.clone(),
        context,
        schema,
    )
    .expect("request");
    Authorizer::new().is_authorized(&request, snapshot.policy_set(), stored)
}

/// The two sides must agree before their speed is compared.
fn check_same(snapshot: &Snapshot, stored: &Entities, queries: &[Query]) {
    for q in queries {
        let sliced = snapshot.decide(q).expect("answer");
        let whole = unsliced(snapshot, stored, q);
        let mut reasons: Vec<String> = whole
            .diagnostics()
            .reason()
            .map(|r| r.to_string())
            .collect();
        reasons.sort();
        let mut got = sliced.reasons.clone();
        got.sort();
        assert_eq!(got, reasons, "{q:?}");
        assert_eq!(
            sliced.decision == doorman::Decision::Allow,
            whole.decision() == cedar_policy::Decision::Allow,
            "{q:?}"
        );
    }
}
