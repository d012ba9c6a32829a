//! `POST /access/v1/evaluation` and `POST /access/v1/evaluations`.
//!
//! An evaluation is one question; its answer is `{"decision": bool}` and
//! nothing else unless the request asks for an explanation (interop
//! harnesses compare answers as JSON). A batch shares one snapshot, taken
//! once, and its top-level `subject`, `action`, `resource` and `context`
//! are defaults: an item's own key replaces the default whole.
//!
//! What is refused whole (400) and what only spoils one item follows the
//! spec's two kinds of error: the body's shape (JSON, an `evaluations`
//! that is not a list, a malformed top-level default, an unknown
//! `evaluations_semantic`) pertains to the whole payload; an item's own
//! mistakes, and what a part means against the model (an unknown type, a
//! property the schema does not declare), are that item's
//! `{"decision": false, "context": {"error": ...}}`, because the items are
//! independent requests.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::question::{self, Question, Resolved, Verb};
use super::read::{self, Context, Id};
use crate::decide::{Answer, Decision, PolicyError, Query};
use crate::entity_json::{Fields, Json};
use crate::server::admin::not_ready;
use crate::server::error::{ApiError, Code, join};
use crate::server::metrics::Endpoint;
use crate::server::observe::{self, Site};
use crate::server::request_id::Arrival;
use crate::server::respond::{Body, refuse, respond};
use crate::server::state::State;
use crate::snapshot::Snapshot;

/// `/access/v1/evaluation`.
pub(crate) fn single(
    state: &State,
    body: &Bytes,
    explain: bool,
    arrival: &Arrival,
) -> Response<Body> {
    let answer = read::body(body).and_then(|json| {
        let top = read::object(&json, "")?;
        let snapshot = state.snapshot().ok_or_else(|| not_ready(state))?;
        let (query, answer) = one(&snapshot, top)?;
        let response = respond(
            StatusCode::OK,
            &Decided::new(Ok(&answer), explain, snapshot.revision()),
        );
        let site = site(Endpoint::AuthzenEvaluation, arrival, &snapshot, None);
        observe::decided(state, &site, query, answer);
        Ok(response)
    });
    answer.unwrap_or_else(|e| refuse(&e))
}

fn site<'a>(
    endpoint: Endpoint,
    arrival: &'a Arrival,
    snapshot: &'a Arc<Snapshot>,
    item: Option<usize>,
) -> Site<'a> {
    // AuthZEN's request-scoped entities are built from properties; the
    // log does not carry them (docs/decision-log.md).
    Site {
        endpoint,
        arrival,
        snapshot,
        item,
        entities: None,
    }
}

/// `/access/v1/evaluations`.
pub(crate) fn batch(
    state: &State,
    body: &Bytes,
    explain: bool,
    arrival: &Arrival,
) -> Response<Body> {
    let answer = read::body(body).and_then(|json| {
        let top = read::object(&json, "")?;
        let items = match read::get(top, "evaluations") {
            None => &[][..],
            Some(Json::Arr(items)) => items.as_slice(),
            Some(other) => {
                return Err(ApiError::at(
                    Code::InvalidField,
                    "evaluations",
                    format!("must be a list of evaluations, not {}", read::kind(other)),
                ));
            }
        };
        let semantic = Semantic::read(top)?;
        let max = state.config().max_batch;
        if items.len() > max {
            return Err(ApiError::batch_too_large(
                "evaluations",
                "evaluations",
                items.len(),
                max,
            ));
        }
        let snapshot = state.snapshot().ok_or_else(|| not_ready(state))?;
        let revision = snapshot.revision();
        // No evaluations: the request is one evaluation, answered as one.
        if items.is_empty() {
            let (query, answer) = one(&snapshot, top)?;
            let response = respond(
                StatusCode::OK,
                &Decided::new(Ok(&answer), explain, revision),
            );
            let site = site(Endpoint::AuthzenEvaluations, arrival, &snapshot, None);
            observe::decided(state, &site, query, answer);
            return Ok(response);
        }
        state.metrics().batch(items.len());
        let defaults = Defaults::read(&snapshot, top)?;
        let mut answers: Vec<Result<(Query, Answer), ApiError>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let answer = defaults.answer(&snapshot, item, i);
            let allowed = matches!(&answer, Ok((_, a)) if a.decision == Decision::Allow);
            answers.push(answer);
            if semantic.stops(allowed) {
                break;
            }
        }
        let evaluations: Vec<Decided> = answers
            .iter()
            .map(|a| Decided::new(a.as_ref().map(|(_, a)| a), explain, revision))
            .collect();
        let response = respond(StatusCode::OK, &Evaluations { evaluations });
        for (i, answer) in answers.into_iter().enumerate() {
            if let Ok((query, answer)) = answer {
                let site = site(Endpoint::AuthzenEvaluations, arrival, &snapshot, Some(i));
                observe::decided(state, &site, query, answer);
            }
        }
        Ok(response)
    });
    answer.unwrap_or_else(|e| refuse(&e))
}

/// The request itself as one evaluation: every part at the top level.
fn one(snapshot: &Snapshot, top: &Fields<'_>) -> Result<(Query, Answer), ApiError> {
    let required = |name: &str| read::get(top, name).ok_or_else(|| read::required("", name));
    let subject = read::entity(required("subject")?, "subject".into(), Id::Required)?;
    let action = read::action(required("action")?, "action".into())?;
    let resource = read::entity(required("resource")?, "resource".into(), Id::Required)?;
    let context = read::get(top, "context")
        .map(|c| read::context(c, "context".into()))
        .transpose()?;
    let subject = question::entity(snapshot, &subject)?;
    let verb = question::action(snapshot, &action)?;
    let resource = question::entity(snapshot, &resource)?;
    decide(snapshot, &subject, &verb, &resource, context.as_ref())
}

fn decide(
    snapshot: &Snapshot,
    subject: &Resolved,
    verb: &Verb<'_>,
    resource: &Resolved,
    context: Option<&Context<'_>>,
) -> Result<(Query, Answer), ApiError> {
    let question = Question::new(subject, verb, resource, context)?;
    let answer = snapshot
        .decide_with(&question.query, &question.layers())
        .map_err(|e| question.refused(e))?;
    Ok((question.query, answer))
}

/// `options.evaluations_semantic`: when a batch stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

impl Semantic {
    fn read(top: &Fields<'_>) -> Result<Semantic, ApiError> {
        let Some(options) = read::get(top, "options") else {
            return Ok(Semantic::ExecuteAll);
        };
        let options = read::object(options, "options")?;
        Ok(
            match read::string(options, "evaluations_semantic", "options")? {
                None | Some("execute_all") => Semantic::ExecuteAll,
                Some("deny_on_first_deny") => Semantic::DenyOnFirstDeny,
                Some("permit_on_first_permit") => Semantic::PermitOnFirstPermit,
                Some(other) => {
                    return Err(ApiError::at(
                        Code::InvalidField,
                        "options.evaluations_semantic",
                        format!(
                            "`{other}` is not one of execute_all, deny_on_first_deny, \
                             permit_on_first_permit"
                        ),
                    ));
                }
            },
        )
    }

    /// Whether the batch ends after an item (a refused item is a deny).
    fn stops(self, allowed: bool) -> bool {
        match self {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        }
    }
}

/// A batch's top-level parts. Their shape was checked whole; what they
/// mean was resolved once, and an item that uses a part that does not
/// resolve carries its error.
struct Defaults<'j> {
    subject: Option<Result<Resolved, ApiError>>,
    action: Option<Result<Verb<'j>, ApiError>>,
    resource: Option<Result<Resolved, ApiError>>,
    context: Option<Context<'j>>,
}

impl<'j> Defaults<'j> {
    fn read(snapshot: &Snapshot, top: &'j Fields<'j>) -> Result<Defaults<'j>, ApiError> {
        let entity = |name: &'static str| {
            read::get(top, name)
                .map(|v| read::entity(v, name.into(), Id::Required))
                .transpose()
        };
        let (subject, resource) = (entity("subject")?, entity("resource")?);
        let action = read::get(top, "action")
            .map(|v| read::action(v, "action".into()))
            .transpose()?;
        let context = read::get(top, "context")
            .map(|v| read::context(v, "context".into()))
            .transpose()?;
        Ok(Defaults {
            subject: subject.map(|s| question::entity(snapshot, &s)),
            action: action.map(|a| question::action(snapshot, &a)),
            resource: resource.map(|r| question::entity(snapshot, &r)),
            context,
        })
    }

    /// Item `i`: its own parts, else the defaults.
    fn answer(
        &self,
        snapshot: &Snapshot,
        item: &'j Json<'j>,
        i: usize,
    ) -> Result<(Query, Answer), ApiError> {
        let at = format!("evaluations[{i}]");
        let item = read::object(item, &at)?;
        let own = |name: &str| read::get(item, name).map(|v| (v, Cow::Owned(join(&at, name))));
        let missing = |name: &str| {
            ApiError::at(
                Code::InvalidField,
                join(&at, name),
                "is required (the request has no top-level default for it)",
            )
        };
        let entity = |name: &str, default| match own(name) {
            Some((v, path)) => {
                let e = read::entity(v, path, Id::Required)?;
                question::entity(snapshot, &e).map(Cow::Owned)
            }
            None => inherit(default, || missing(name)),
        };
        let subject = entity("subject", &self.subject)?;
        let resource = entity("resource", &self.resource)?;
        let verb = match own("action") {
            Some((v, path)) => Cow::Owned(question::action(snapshot, &read::action(v, path)?)?),
            None => inherit(&self.action, || missing("action"))?,
        };
        // An item's context, even `{}`, replaces the default.
        let context = match own("context") {
            Some((v, path)) => Some(read::context(v, path)?),
            None => self.context.clone(),
        };
        decide(snapshot, &subject, &verb, &resource, context.as_ref())
    }
}

/// A top-level default for an item without the part: the part, its
/// error, or `missing` when there is no default.
fn inherit<T: Clone>(
    default: &Option<Result<T, ApiError>>,
    missing: impl FnOnce() -> ApiError,
) -> Result<Cow<'_, T>, ApiError> {
    match default {
        Some(Ok(part)) => Ok(Cow::Borrowed(part)),
        Some(Err(e)) => Err(e.clone()),
        None => Err(missing()),
    }
}

// ------------------------------------------------------------------ out

/// One decision on the wire: `{"decision": bool}`, with a `context` only
/// for an explanation that was asked for, or for an item's error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenDecision)]
pub(in crate::server) struct Decided<'a> {
    decision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Why<'a>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = AuthZenContext)]
enum Why<'a> {
    Reasons { reason_admin: Reasons<'a> },
    Error { error: Failure<'a> },
}

/// The explanation: the policies that determined the decision (empty for
/// the default deny) and those that failed to evaluate and were skipped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenReasons)]
struct Reasons<'a> {
    policies: &'a [String],
    errors: &'a [PolicyError],
    revision: &'a str,
}

/// Why an item has no real decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenItemError)]
struct Failure<'a> {
    status: u16,
    code: Code,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl<'a> Decided<'a> {
    fn new(answer: Result<&'a Answer, &'a ApiError>, explain: bool, revision: &'a str) -> Self {
        match answer {
            Ok(a) => Decided {
                decision: a.decision == Decision::Allow,
                context: explain.then(|| Why::Reasons {
                    reason_admin: Reasons {
                        policies: &a.reasons,
                        errors: &a.errors,
                        revision,
                    },
                }),
            },
            Err(e) => Decided {
                decision: false,
                context: Some(Why::Error {
                    error: Failure {
                        status: e.status().as_u16(),
                        code: e.code,
                        message: &e.message,
                        field: e.field.as_deref(),
                    },
                }),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AuthZenEvaluations)]
pub(in crate::server) struct Evaluations<'a> {
    evaluations: Vec<Decided<'a>>,
}
