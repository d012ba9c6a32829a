//! `reload`: how long building a snapshot takes (`load`: read, parse,
//! validate, index), which is what a hot reload costs before the new
//! snapshot can be swapped in.
//!
//! Policy sets of the bundled model plus 1,000 and 10,000 tenant policies
//! (over the sample world), and worlds of 100k and 1M members (about 144k
//! and 1.44M entities) with the bundled policies. Files are generated into a
//! temp dir once; each iteration loads them from disk (the page cache, after
//! the first). Before timing, one load per world prints the process's
//! resident memory (the 1M targets: 10 s and 1.5 GiB).
//!
//! `cargo bench --bench reload` (a 1M-member load takes seconds, so its
//! group runs ten samples, the least criterion allows).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{
    Shape, memory, policy_dir, ratio, sources, tenant_file, tenant_path, tenant_policies,
    write_tenant_world, write_world,
};
use criterion::{BenchmarkId, Criterion};

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();

    let sample = common::root().join("fixtures/entities");
    let mut group = c.benchmark_group("reload");
    // One load per sample: a load is long enough to time on its own.
    group
        .sample_size(10)
        .sampling_mode(criterion::SamplingMode::Flat);
    for (label, tenants) in [("bundled", 0), ("1k", 100), ("10k", 1_000)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra = (tenants > 0).then(|| tenant_policies(tenants));
        let src = sources(
            policy_dir(dir.path(), extra.as_deref()),
            vec![sample.clone()],
        );
        let started = Instant::now();
        let snapshot = doorman::load(&src).expect("loads");
        println!(
            "reload/policies/{label}: {} (first load {:.1?})",
            snapshot.summary(),
            started.elapsed()
        );
        drop(snapshot);
        group.bench_function(BenchmarkId::new("policies", label), |b| {
            b.iter(|| black_box(doorman::load(&src).expect("loads")))
        });
    }

    for members in [100_000, 1_000_000] {
        let shape = Shape::members(members);
        let label = shape.label();
        let id = format!("reload/members/{label}");
        if !common::selected(&id) {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let entities = write_world(dir.path(), shape);
        let src = sources(common::root().join("policies"), vec![entities.clone()]);
        let bytes: u64 = std::fs::read_dir(&entities)
            .expect("entity dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        let before = memory();
        let started = Instant::now();
        let snapshot = doorman::load(&src).expect("loads");
        println!(
            "{id}: {} from {:.0} MiB of JSON (first load {:.1?}; before: {before}; after: {})",
            snapshot.summary(),
            bytes as f64 / (1 << 20) as f64,
            started.elapsed(),
            memory()
        );
        drop(snapshot);
        group.bench_function(BenchmarkId::new("members", &label), |b| {
            b.iter(|| black_box(doorman::load(&src).expect("loads")))
        });
    }
    // One tenant's file rewritten in a tenant-per-file world: what a
    // membership change costs a running sidecar (the reload reads that
    // file only). Each iteration writes the other version of the file,
    // reloads over the serving snapshot, and checks the answer changed.
    for members in [100_000, 1_000_000] {
        let shape = Shape::members(members);
        let label = shape.label();
        let id = format!("reload/one-tenant/{label}");
        if !common::selected(&id) {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let entities = write_tenant_world(dir.path(), shape);
        let src = sources(common::root().join("policies"), vec![entities.clone()]);
        let before = memory();
        let started = Instant::now();
        let mut serving = doorman::load(&src).expect("loads");
        println!(
            "{id}: {} in {} files (first load {:.1?}; before: {before}; after: {})",
            serving.summary(),
            shape.companies + 1,
            started.elapsed(),
            memory()
        );
        let c = shape.companies / 2;
        let file = tenant_path(&entities, c);
        let question = billing(c);
        let versions = [
            tenant_file(c, shape.members, 0),
            tenant_file(c, shape.members, 2),
        ];
        let mut k = 0;
        let mut peak = 0u64;
        group.bench_function(BenchmarkId::new("one-tenant", &label), |b| {
            b.iter(|| {
                k += 1;
                let was = serving.decide(&question).expect("answer").decision;
                std::fs::write(&file, &versions[k % 2]).expect("rewrite");
                let next = doorman::load_over(&src, Some(&serving)).expect("reloads");
                assert_eq!(next.changed_entity_files().len(), 1);
                let now = next.decide(&question).expect("answer").decision;
                assert_ne!(was, now, "the rewrite changes the answer");
                serving = next;
                peak = peak.max(common::rss_kib());
            })
        });
        println!(
            "{id}: after the reloads: {} (highest seen between reloads {} MiB)",
            memory(),
            peak / 1024
        );
    }
    // Ten seats' rows changed in a database source: what one window of a
    // followed change stream costs the sidecar (read the rows against the
    // schema, a new store generation, the snapshot around it), with no
    // network in it. Each iteration applies the other version of the rows.
    for members in [10_000, 1_000_000] {
        let shape = Shape::members(members);
        let label = shape.label();
        let id = format!("reload/database-change/{label}");
        if !common::selected(&id) {
            continue;
        }
        let mut src = sources(common::root().join("policies"), vec![]);
        src.databases = vec![
            doorman::load::DatabaseSource::parse("postgres://bench@localhost/bench").expect("URL"),
        ];
        let started = Instant::now();
        let empty = doorman::load(&src).expect("loads");
        let roles: Vec<doorman::load::Row> = [
            "admin",
            "manager",
            "agent",
            "member",
            "store_member",
        ]
        .iter()
        .map(|r| {
            row(&serde_json::json!({"uid": {"type": "Role", "id": r}, "attrs": {}, "parents": []}))
        })
        .collect();
        let mut all = empty.read_rows(0, doorman::load::Scope::Full, &roles);
        for c in 0..shape.companies {
            all.append(empty.read_rows(
                0,
                doorman::load::Scope::Full,
                &company_rows(c, shape.members, 0),
            ));
        }
        let (mut serving, refused) = empty
            .with_database(0, doorman::load::Scope::Full, all, 1)
            .expect("applies");
        assert!(refused.is_empty(), "{refused:?}");
        drop(empty);
        println!(
            "{id}: {} read from rows in {:.1?} ({})",
            serving.summary(),
            started.elapsed(),
            memory()
        );
        let c = shape.companies / 2;
        let question = billing(c);
        let versions = [
            seat_rows(c, shape.members, 0, 10),
            seat_rows(c, shape.members, 2, 10),
        ];
        let mut k = 0u64;
        group.bench_function(BenchmarkId::new("database-change", &label), |b| {
            b.iter(|| {
                k += 1;
                let was = serving.decide(&question).expect("answer").decision;
                let batch = serving.read_rows(
                    0,
                    doorman::load::Scope::Changes,
                    &versions[(k % 2) as usize],
                );
                let (next, refused) = serving
                    .with_database(0, doorman::load::Scope::Changes, batch, 1 + k)
                    .expect("applies");
                assert!(refused.is_empty());
                let now = next.decide(&question).expect("answer").decision;
                assert_ne!(was, now, "the change changes the answer");
                serving = next;
            })
        });
    }
    group.finish();

    c.final_summary();
    println!("\nreload medians of this run (targets: 1M members <= 10 s):");
    for id in [
        "reload/policies/bundled",
        "reload/policies/1k",
        "reload/policies/10k",
        "reload/members/100k",
        "reload/members/1M",
        "reload/one-tenant/100k",
        "reload/one-tenant/1M",
    ] {
        match common::median_ns(id) {
            Some(ns) => println!("  {id}: {}", common::fmt_ns(ns)),
            None => println!("  {id}: not measured in this run"),
        }
    }
    for id in ["reload/database-change/10k", "reload/database-change/1M"] {
        if let Some(ns) = common::median_ns(id) {
            println!("  {id}: {}", common::fmt_ns(ns));
        }
    }
    println!("  {}", ratio("reload/members/1M", "reload/members/100k"));
    println!(
        "  {} (target: flat, each <= 200 ms)",
        ratio("reload/one-tenant/1M", "reload/one-tenant/100k")
    );
}

/// May company `c`'s seat m0 modify billing? Seat m0 is an admin in the
/// unshifted version and a manager with roles rotated by two: billing is
/// the admins' alone, so the answer tells the versions apart.
fn billing(c: usize) -> doorman::Query {
    doorman::Query::parse(
        &format!("Member::\"c{c}-m0\""),
        "ModifyBilling",
        &format!("Company::\"c{c}\""),
        serde_json::json!({}),
    )
    .expect("query")
}

/// Company `c`'s entities as database rows; `shift` rotates its seats'
/// roles.
fn company_rows(c: usize, members: usize, shift: usize) -> Vec<doorman::load::Row> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&tenant_file(c, members, shift)).expect("JSON");
    items.iter().map(row).collect()
}

/// The first `n` seats of company `c` as database rows.
fn seat_rows(c: usize, members: usize, shift: usize, n: usize) -> Vec<doorman::load::Row> {
    let mut rows = company_rows(c, members, shift);
    rows.retain(|r| r.uid_type == "Member");
    rows.truncate(n);
    rows
}

fn row(item: &serde_json::Value) -> doorman::load::Row {
    doorman::load::Row {
        uid_type: item["uid"]["type"].as_str().expect("type").to_owned(),
        uid_id: item["uid"]["id"].as_str().expect("id").to_owned(),
        json: Some(item.to_string()),
    }
}
