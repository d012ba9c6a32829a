//! `doorman diff`'s exhaustive mode at scale: the bundled policies with
//! R12 edited (members may view private inboxes) against the bundled
//! policies, over generated worlds of 1k and 100k members (benches/common,
//! the shape of the sample world). Prints, per world: the environments the
//! edit touches, the requests they hold in the world, the decisions made
//! (both sides), the flips found, and the time (median of the runs).
//!
//! A plain timing loop rather than criterion: one 100k run takes seconds,
//! and what is worth knowing is that time and the work behind it.
//! `DOORMAN_DIFF_MEMBERS=1000,100000` (the default) picks the worlds.

mod common;

use std::time::Instant;

use common::{Shape, memory, policy_dir, sources, write_world};
use doorman::diff::{Relabel, Sides, envs, exhaustive};

const R12: &str = "when {\n  !resource.private &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};";
const R12_EDITED: &str = "when {\n  (!resource.private ||\n   principal in Role::\"member\") &&\n  (principal in Role::\"admin\" ||\n   principal in Role::\"manager\" ||\n   principal in Role::\"agent\" ||\n   principal in Role::\"member\")\n};";

fn main() {
    let sizes: Vec<usize> = std::env::var("DOORMAN_DIFF_MEMBERS")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    for members in sizes {
        let shape = Shape::members(members);
        let label = shape.label();
        let dir = tempfile::tempdir().expect("temp dir");
        let entities = write_world(dir.path(), shape);
        let base_dir = policy_dir(&dir.path().join("base"), None);
        let head_dir = policy_dir(&dir.path().join("head"), None);
        let file = head_dir.join("inboxes.cedar");
        let text = std::fs::read_to_string(&file).expect("inboxes.cedar");
        let at = text.find("@id(\"inbox.view-public\")").expect("R12");
        let edited = text[..at].to_owned() + &text[at..].replacen(R12, R12_EDITED, 1);
        assert_ne!(edited, text, "R12's text moved; update this bench");
        std::fs::write(&file, edited).expect("write");

        let started = Instant::now();
        let head = doorman::load(&sources(head_dir, vec![entities.clone()])).expect("head loads");
        let base = doorman::load_over(&sources(base_dir, vec![entities]), Some(&head))
            .expect("base loads");
        println!(
            "diff/{label}: {} (both sides loaded in {:.1?}; {})",
            head.summary(),
            started.elapsed(),
            memory()
        );
        let schema = head.schema().expect("schema");
        let relabel = Relabel::default();
        let sides = Sides {
            base: &base,
            head: &head,
            relabel: &relabel,
        };
        let contexts = exhaustive::suite_contexts(&[common::root().join("fixtures")]);
        let runs = if members >= 100_000 { 3 } else { 10 };
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let touched = envs::touched(schema, base.policy_set(), head.policy_set());
            let report = exhaustive::run(&sides, &touched, &contexts);
            times.push(started.elapsed());
            last = Some((touched.len(), report));
        }
        times.sort();
        let (touched, report) = last.expect("ran");
        println!(
            "diff/exhaustive/{label}: {touched} environment(s) touched, {} requests in them, \
             {} decisions made, {} flips; median {:.1?} over {runs} runs (min {:.1?}, max {:.1?})",
            report.requests,
            report.decided,
            report.flips.len(),
            times[runs / 2],
            times[0],
            times[runs - 1]
        );
    }
}
