//! Over real traffic: the questions of a decision log answered again by
//! both sets.
//!
//! The log is the sidecar's decision log (JSON Lines, one decision per
//! line; docs/decision-log.md). Only the question is read: principal,
//! action, resource, and the context and request entities when the log
//! holds them. Unknown fields are ignored, lines of an unknown `v` are
//! skipped (counted), and a line that cannot be read is reported with its
//! line number and skipped. A question whose context or entities were
//! masked (`"***"`) is answered as logged, which may be refused: it is then
//! reported as a bad line, never as a change.

use std::io::BufRead;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{Flip, Sides, flip};
use crate::decide::Query;
use crate::entities::Overlay;
use crate::snapshot::Snapshot;

#[derive(Debug, Serialize)]
pub struct Replay {
    pub log: String,
    /// Questions answered by both sets.
    pub questions: u64,
    pub changes: Vec<Change>,
    /// Lines of a format version this doorman does not know.
    pub skipped_versions: u64,
    pub bad_lines: Vec<BadLine>,
    /// Questions where the logged decision differs from OLD's answer (the
    /// log was made by other policies, or other entity data).
    pub logged_differs: u64,
    pub elapsed_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub flip: Flip,
}

#[derive(Debug, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

pub fn run(log: &Path, sides: &Sides<'_>) -> Result<Replay, String> {
    let started = std::time::Instant::now();
    let file = std::fs::File::open(log)
        .map_err(|e| format!("error: {}: cannot read: {e}", log.display()))?;
    let mut report = Replay {
        log: log.display().to_string(),
        questions: 0,
        changes: Vec::new(),
        skipped_versions: 0,
        bad_lines: Vec::new(),
        logged_differs: 0,
        elapsed_ms: 0.0,
    };
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let number = n + 1;
        let line = line.map_err(|e| format!("error: {}:{number}: {e}", log.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match one_line(&line, sides) {
            Ok(Outcome::Answered {
                changed,
                logged_differs,
            }) => {
                report.questions += 1;
                report.logged_differs += u64::from(logged_differs);
                if let Some(changed) = changed {
                    let (request_id, flip) = *changed;
                    report.changes.push(Change {
                        line: number,
                        request_id,
                        flip,
                    });
                }
            }
            Ok(Outcome::UnknownVersion) => report.skipped_versions += 1,
            Err(message) => report.bad_lines.push(BadLine {
                line: number,
                message,
            }),
        }
    }
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

enum Outcome {
    Answered {
        changed: Option<Box<(Option<String>, Flip)>>,
        logged_differs: bool,
    },
    UnknownVersion,
}

fn one_line(line: &str, sides: &Sides<'_>) -> Result<Outcome, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("not a JSON object".into());
    };
    match o.get("v").and_then(Value::as_u64) {
        Some(1) => {}
        Some(_) => return Ok(Outcome::UnknownVersion),
        None => return Err("no format version `v`".into()),
    }
    let text = |field: &str| -> Result<&str, String> {
        o.get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{field}: missing or not a string"))
    };
    let context = o
        .get("context")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let query = Query::parse(
        text("principal")?,
        text("action")?,
        text("resource")?,
        context,
    )
    .map_err(|e| e.to_string())?;
    let entities = o.get("entities").cloned().unwrap_or(Value::Null);
    let answer = |s: &Snapshot| {
        let overlay = Overlay::parse(
            entities.clone(),
            s.schema.as_deref().zip(s.conformance.as_deref()),
        )
        .map_err(|e| e.to_string())?;
        s.decide_with(&query, &[&overlay])
            .map_err(|e| e.to_string())
    };
    let b = answer(sides.base)?;
    let h = answer(sides.head)?;
    let logged_differs = o
        .get("decision")
        .and_then(Value::as_str)
        .is_some_and(|d| d != b.decision.to_string());
    let changed = (b.decision != h.decision).then(|| {
        let id = o
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Box::new((id, flip(sides, &query, &b, &h)))
    });
    Ok(Outcome::Answered {
        changed,
        logged_differs,
    })
}
