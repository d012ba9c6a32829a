//! The answers of doorman's own decision endpoints, as borrowed structs
//! serialized straight into the response body: nothing from the snapshot
//! is cloned to answer.

use serde::Serialize;

use crate::decide::{Answer, Decision, PolicyError};
use crate::server::error::ApiError;

/// The answer to one question: Cedar's answer plus the revision it came from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Decided<'a> {
    pub decision: Decision,
    pub reasons: &'a [String],
    pub errors: &'a [PolicyError],
    pub revision: &'a str,
}

impl<'a> Decided<'a> {
    pub fn new(answer: &'a Answer, revision: &'a str) -> Self {
        Decided {
            decision: answer.decision,
            reasons: &answer.reasons,
            errors: &answer.errors,
            revision,
        }
    }
}

/// One entry of a batch answer: the answer, or why there is none.
#[derive(Debug)]
pub enum Outcome {
    Answer(Answer),
    Error(ApiError),
}

impl From<Result<Answer, ApiError>> for Outcome {
    fn from(r: Result<Answer, ApiError>) -> Self {
        match r {
            Ok(a) => Outcome::Answer(a),
            Err(e) => Outcome::Error(e),
        }
    }
}

/// The schema of one batch entry, which [`Outcome`] serializes as: Cedar's
/// answer, or the error that kept the request from one.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum BatchItem {
    Answer(Answer),
    Error(crate::server::error::ErrorBody<'static>),
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Outcome::Answer(a) => a.serialize(s),
            Outcome::Error(e) => e.body().serialize(s),
        }
    }
}

/// The answer to a batch: one entry per request, in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchDecided<'a> {
    #[schema(value_type = Vec<BatchItem>)]
    pub responses: &'a [Outcome],
    pub revision: &'a str,
}
