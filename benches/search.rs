//! `search`: what an AuthZEN search costs on large stores, through the
//! library (`Snapshot::search`, what `/access/v1/search/*` runs between
//! reading the body and writing the answer), on the bundled policies over
//! generated worlds of 100k and 1M members (144k and 1.44M entities).
//!
//! - `subject/N`: which Members may view an inbox: 100k or 1M Members are
//!   candidates; the tenant-isolation forbid leaves one company's 100 to
//!   decide (`src/search/guard.rs`).
//! - `resource/N`: which Inboxes a member may view (10k or 100k Inboxes).
//! - `action/N`: what a member may do to an inbox (the schema's actions
//!   for Member and Inbox).
//! - `subject-page/N`: the first 10 of the subject search.
//! - `subject-deciding-all/100k`: the subject search deciding every
//!   candidate, without the narrowing: what it saves (100k only: seconds
//!   per search).
//!
//! Each iteration asks about another company, so no search repeats the
//! one before it. Before the timings it prints each search's results and
//! how many candidates it decided, so a search that finds nothing (and so
//! measures nothing) shows.
//!
//! `cargo bench --bench search` (add a filter such as `100k` to run part;
//! worlds nobody asked for are not generated).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use common::{Shape, memory, sources, write_world};
use criterion::{BenchmarkId, Criterion};
use doorman::{Query, Searched, Snapshot};
use serde_json::json;

const SIZES: [usize; 2] = [100_000, 1_000_000];

/// The three searches over company `c` (a member, an inbox of its own).
fn queries(c: usize) -> [(Searched, Query); 3] {
    let q = |p: String, a: &str, r: String| Query::parse(&p, a, &r, json!({})).expect("a query");
    [
        (
            Searched::Principal,
            q(
                r#"Member::"""#.into(),
                "ViewInbox",
                format!(r#"Inbox::"c{c}-in1""#),
            ),
        ),
        (
            Searched::Resource,
            q(
                format!(r#"Member::"c{c}-m3""#),
                "ViewInbox",
                r#"Inbox::"""#.into(),
            ),
        ),
        (
            Searched::Action,
            q(
                format!(r#"Member::"c{c}-m3""#),
                "",
                format!(r#"Inbox::"c{c}-in1""#),
            ),
        ),
    ]
}

fn describe(snapshot: &Snapshot, label: &str) {
    for (searched, query) in queries(7) {
        let started = Instant::now();
        let page = snapshot
            .search(
                searched,
                &query,
                &[],
                None,
                NonZeroUsize::MAX,
                NonZeroUsize::MAX,
            )
            .expect("the search is accepted");
        println!(
            "  {searched:?}: {} results, {} candidates decided, {:.1?} ({label})",
            page.results.len(),
            page.decided,
            started.elapsed()
        );
        assert!(
            !page.results.is_empty(),
            "a search that finds nothing measures nothing"
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let names = [
        "subject",
        "resource",
        "action",
        "subject-page",
        "subject-deciding-all",
    ];
    for members in SIZES {
        let shape = Shape::members(members);
        let label = shape.label();
        if !names
            .iter()
            .any(|n| common::selected(&format!("search/{n}/{label}")))
        {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let entities = write_world(dir.path(), shape);
        let started = Instant::now();
        let snapshot = doorman::load(&sources(common::root().join("policies"), vec![entities]))
            .expect("the generated world loads");
        println!(
            "search/{label}: {} (loaded in {:.1?}; {})",
            snapshot.summary(),
            started.elapsed(),
            memory()
        );
        describe(&snapshot, &label);

        let mut group = c.benchmark_group("search");
        for (i, name) in ["subject", "resource", "action"].into_iter().enumerate() {
            let mut company = 0;
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    company = (company + 7919) % shape.companies;
                    let (searched, query) = &queries(company)[i];
                    black_box(snapshot.search(
                        *searched,
                        query,
                        &[],
                        None,
                        NonZeroUsize::MAX,
                        NonZeroUsize::MAX,
                    ))
                })
            });
        }
        let mut company = 0;
        group.bench_function(BenchmarkId::new("subject-page", &label), |b| {
            b.iter(|| {
                company = (company + 7919) % shape.companies;
                let (searched, query) = &queries(company)[0];
                black_box(snapshot.search(
                    *searched,
                    query,
                    &[],
                    None,
                    NonZeroUsize::new(10).unwrap(),
                    NonZeroUsize::MAX,
                ))
            })
        });
        group.finish();

        if members == 100_000 && common::selected(&format!("search/subject-deciding-all/{label}")) {
            let mut group = c.benchmark_group("search");
            group.sample_size(10);
            let mut company = 0;
            group.bench_function(BenchmarkId::new("subject-deciding-all", &label), |b| {
                b.iter(|| {
                    company = (company + 7919) % shape.companies;
                    let (searched, query) = &queries(company)[0];
                    black_box(snapshot.search_deciding_all(
                        *searched,
                        query,
                        None,
                        NonZeroUsize::MAX,
                    ))
                })
            });
            group.finish();
        }
    }
    c.final_summary();
    println!("\nsearch medians (this run):");
    for name in names {
        for members in SIZES {
            let id = format!("search/{name}/{}", Shape::members(members).label());
            if let Some(ns) = common::median_ns(&id) {
                println!("  {id}: {}", common::fmt_ns(ns));
            }
        }
    }
}
