//! The operator's endpoints: `/readyz`, `/v1/status`, `/v1/policies` and
//! `/v1/reload`, with the wire shapes of their answers.
//!
//! They only read the state (a reload asks the state's reloader), so they
//! share no code with the decision endpoints; their answers are borrowed
//! structs serialized straight into the response.

use std::sync::Arc;
use std::time::SystemTime;

use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::error::{ApiError, Code};
use super::respond::{Body, refuse, respond};
use super::state::State;
use crate::snapshot::{PolicyInfo, Snapshot, ValidationMode};

/// `POST /v1/reload`: one attempt, answered once it is over. 200 when the
/// files are good (reloaded, or unchanged), 422 when they are not (the
/// active snapshot keeps serving), so `curl -f` in a deploy script fails.
pub(super) async fn reload(state: Arc<State>) -> Response<Body> {
    // Its own task: a client that hangs up must not cancel an attempt
    // half-way (nothing published, nothing recorded).
    let attempt = tokio::spawn(async move { state.reload().await });
    let Ok(outcome) = attempt.await else {
        return refuse(&ApiError::new(Code::Internal, "the reload task failed"));
    };
    let Some(outcome) = outcome else {
        return refuse(&ApiError::new(
            Code::NotFound,
            "this server was not started from files, so it cannot reload",
        ));
    };
    let status = match outcome {
        crate::reload::Outcome::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    respond(status, &Reloaded::from(&outcome))
}

pub(super) fn readyz(state: &State) -> Response<Body> {
    match state.snapshot() {
        Some(s) if !state.is_draining() => respond(
            StatusCode::OK,
            &json!({"ready": true, "revision": s.revision()}),
        ),
        _ => refuse(&not_ready(state)),
    }
}

/// Why the server cannot answer yet (or any more).
pub fn not_ready(state: &State) -> ApiError {
    let message = if state.is_draining() {
        "the server is shutting down"
    } else {
        "no policy snapshot is loaded yet"
    };
    ApiError::new(Code::NotReady, message)
}

pub(super) fn status(state: &State) -> Response<Body> {
    let snapshot = state.snapshot();
    let config = state.config();
    let limits = Limits {
        max_body: config.max_body,
        max_batch: config.max_batch,
    };
    respond(
        StatusCode::OK,
        &Status::new(
            state.is_ready(),
            snapshot.as_deref(),
            state.started_at(),
            limits,
        )
        .with_reloads(state)
        .with_auth(state)
        .with_shadow(state),
    )
}

impl Status<'_> {
    /// Says which endpoints `state` guards with tokens.
    pub fn with_auth(mut self, state: &State) -> Self {
        self.auth = state.guard().view();
        self
    }

    /// Adds what the shadow candidate (`--shadow`) has found, if any.
    pub fn with_shadow(mut self, state: &State) -> Self {
        self.shadow = state.shadow().map(super::shadow::Shadow::view);
        self
    }
}

pub(super) fn policies(state: &State) -> Response<Body> {
    match state.snapshot() {
        Some(s) => respond(
            StatusCode::OK,
            &Policies {
                revision: s.revision(),
                policies: s.policies(),
            },
        ),
        None => refuse(&not_ready(state)),
    }
}

/// endpoint answers (and says why it is not ready) from the first second.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status<'a> {
    pub ready: bool,
    pub revision: Option<&'a str>,
    pub loaded_at: Option<String>,
    pub validation: Option<ValidationMode>,
    pub policies: Option<usize>,
    pub templates: Option<usize>,
    pub entities: Option<usize>,
    /// The entity files the active snapshot's load read anew: every file
    /// at start-up, the changed ones after a reload (paths: the first 100).
    pub entity_files_changed: Option<ChangedFiles<'a>>,
    pub schema_files: Option<usize>,
    pub started_at: String,
    pub limits: Limits,
    /// Null when the server was not started from files.
    pub reload: Option<ReloadView>,
    /// Each database source `--entities` names (none: empty).
    pub databases: Vec<DatabaseView>,
    /// Which endpoints need a bearer token.
    pub auth: super::auth::AuthView,
    /// The candidate policies answering beside the live ones (`serve
    /// --shadow`); null without one.
    pub shadow: Option<super::shadow::ShadowView>,
}

/// A database source in `/v1/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseView {
    /// The URL without its password.
    pub source: String,
    /// `reading` (a full read, at start-up or after a gap in the change
    /// log), `following` or `reconnecting`.
    #[schema(value_type = String, pattern = "^(reading|following|reconnecting)$")]
    pub state: &'static str,
    /// The transaction horizon before which every change is applied.
    pub position: Option<String>,
    /// How many stored entities came from this source.
    pub entities: Option<usize>,
    pub changes_applied: u64,
    /// When the newest applied change was written to the change log, and
    /// how long it then took to serve.
    pub last_change_at: Option<String>,
    pub lag_ms: Option<u64>,
    pub full_reads: u64,
    pub last_error: Option<DatabaseError>,
    /// The most recent rows refused (at most twenty), and how many in all.
    pub refused: Vec<crate::load::Refusal>,
    pub refused_total: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseError {
    pub at: String,
    pub message: String,
}

/// The reload history in `/v1/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadView {
    /// `on`, `off` or `poll:INTERVAL`.
    pub watch: String,
    pub successes: u64,
    pub failures: u64,
    pub unchanged: u64,
    pub last_attempt_at: Option<String>,
    /// `reloaded`, `unchanged` or `failed`.
    #[schema(value_type = Option<ReloadResult>)]
    pub last_result: Option<&'static str>,
    /// The last failure, until an attempt finds the files good again.
    pub last_error: Option<ReloadError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadError {
    pub at: String,
    pub summary: String,
    pub diagnostics: Vec<crate::diag::Diagnostic>,
}

/// What a reload attempt came to (the schema of `Outcome::as_str`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReloadResult {
    Reloaded,
    Unchanged,
    Failed,
}

/// The answer to `POST /v1/reload`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reloaded {
    /// `reloaded`, `unchanged` or `failed`.
    #[schema(value_type = ReloadResult)]
    pub result: &'static str,
    /// The revision serving after the attempt.
    pub revision: Option<String>,
    pub previous_revision: Option<String>,
    pub summary: Option<String>,
    pub diagnostics: Vec<crate::diag::Diagnostic>,
}

impl From<&crate::reload::Outcome> for Reloaded {
    fn from(outcome: &crate::reload::Outcome) -> Self {
        use crate::reload::Outcome;
        let base = Reloaded {
            result: outcome.as_str(),
            revision: None,
            previous_revision: None,
            summary: None,
            diagnostics: Vec::new(),
        };
        match outcome {
            Outcome::Reloaded { previous, revision } => Reloaded {
                revision: Some(revision.clone()),
                previous_revision: previous.clone(),
                ..base
            },
            Outcome::Unchanged { revision } => Reloaded {
                revision: Some(revision.clone()),
                ..base
            },
            Outcome::Failed { active, error } => Reloaded {
                revision: active.clone(),
                summary: Some(error.to_string()),
                diagnostics: error.diagnostics.clone(),
                ..base
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangedFiles<'a> {
    pub count: usize,
    pub paths: &'a [String],
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Limits {
    pub max_body: usize,
    pub max_batch: usize,
}

impl<'a> Status<'a> {
    pub fn new(
        ready: bool,
        snapshot: Option<&'a Snapshot>,
        started_at: SystemTime,
        limits: Limits,
    ) -> Self {
        Status {
            ready,
            revision: snapshot.map(|s| s.revision()),
            loaded_at: snapshot.map(|s| rfc3339(s.loaded_at())),
            validation: snapshot.map(|s| s.validation()),
            policies: snapshot.map(|s| s.policy_count()),
            templates: snapshot.map(|s| s.template_count()),
            entities: snapshot.map(|s| s.entity_count()),
            entity_files_changed: snapshot.map(|s| {
                let all = s.changed_entity_files();
                ChangedFiles {
                    count: all.len(),
                    paths: &all[..all.len().min(100)],
                }
            }),
            schema_files: snapshot.map(|s| s.schema_files()),
            started_at: rfc3339(started_at),
            limits,
            reload: None,
            databases: Vec::new(),
            auth: super::auth::Guard::open().view(),
            shadow: None,
        }
    }

    /// Adds the reload history of a server started from files.
    pub fn with_reloads(mut self, state: &super::state::State) -> Self {
        self.reload = state.reloader().map(|r| {
            let status = r.status();
            ReloadView {
                watch: state.watch().to_owned(),
                successes: status.successes,
                failures: status.failures,
                unchanged: status.unchanged,
                last_attempt_at: status.last_attempt.map(|(at, _)| rfc3339(at)),
                last_result: status.last_attempt.map(|(_, result)| result),
                last_error: status.last_error.map(|(at, e)| ReloadError {
                    at: rfc3339(at),
                    summary: e.to_string(),
                    diagnostics: e.diagnostics,
                }),
            }
        });
        let serving = state.snapshot();
        let serving = serving.as_deref().map(Snapshot::databases).unwrap_or(&[]);
        self.databases = state
            .reloader()
            .map(|r| r.databases())
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, d)| DatabaseView {
                entities: serving.get(i).map(|s| s.entities),
                source: d.source,
                state: d.state,
                position: d.position.map(|p| p.to_string()),
                changes_applied: d.changes_applied,
                last_change_at: d.last_change.map(|(at, _)| rfc3339(at)),
                lag_ms: d.last_change.map(|(_, lag)| lag.as_millis() as u64),
                full_reads: d.full_reads,
                last_error: d.last_error.map(|(at, message)| DatabaseError {
                    at: rfc3339(at),
                    message,
                }),
                refused: d.refused,
                refused_total: d.refused_total,
            })
            .collect();
        self
    }
}

/// `/v1/policies`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Policies<'a> {
    pub revision: &'a str,
    pub policies: &'a [PolicyInfo],
}

/// `2026-11-25T09:00:00.000Z`: RFC 3339 UTC to the millisecond (chrono,
/// as the decision log writes its times).
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_700_000_000, 0)), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(at(1_795_597_200, 999)), "2026-11-25T09:00:00.999Z");
    }
}
