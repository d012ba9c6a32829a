//! Request → Cedar → answer: the one decision path the CLI, the test runner
//! and the sidecar share.
//!
//! Requests are parsed the way Cedar's own integration-test harness parses
//! them: the context is parsed against the schema (so `"0.6"` becomes
//! `decimal("0.6")` where the schema says so) whatever the validation mode,
//! and the request is validated against the schema unless validation is
//! `off`. An invalid request is an error, never a deny: a gateway that sends
//! nonsense must find out.

use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, EntityUid, Request};
use serde::Serialize;
use serde_json::Value;

use crate::entities::{Overlay, context_uids, request_view};
use crate::snapshot::{Snapshot, ValidationMode};

/// One authorization question.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    /// A JSON object; `{}` when the action needs no context.
    pub context: Value,
}

impl Query {
    /// Builds a query from the textual forms users type: `Member::"acme-ada"`,
    /// an action as `ViewInbox` or `Action::"ViewInbox"`.
    pub fn parse(
        principal: &str,
        action: &str,
        resource: &str,
        context: Value,
    ) -> Result<Query, QueryError> {
        Ok(Query {
            principal: parse_uid(principal).map_err(|m| QueryError::new("principal", m))?,
            action: parse_action(action).map_err(|m| QueryError::new("action", m))?,
            resource: parse_uid(resource).map_err(|m| QueryError::new("resource", m))?,
            context,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        })
    }
}

/// A policy that failed to evaluate (it is then ignored, as Cedar does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    pub policy: String,
    pub message: String,
}

/// Cedar's answer: the decision, the determining policies (in load order)
/// and the policies that failed to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub decision: Decision,
    pub reasons: Vec<String>,
    pub errors: Vec<PolicyError>,
}

/// A request doorman refuses to answer. `field` names the part of the
/// request at fault (`principal`, `context`, `entities[2]`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct QueryError {
    pub field: String,
    pub message: String,
}

impl QueryError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses `Type::"id"` (Cedar's entity reference syntax).
pub fn parse_uid(text: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(text.trim())
        .map_err(|e| format!("`{text}` is not an entity reference like Member::\"acme-ada\": {e}"))
}

/// Parses an action: `ViewInbox` is shorthand for `Action::"ViewInbox"`.
pub fn parse_action(text: &str) -> Result<EntityUid, String> {
    let text = text.trim();
    if text.contains("::") {
        parse_uid(text)
    } else {
        uid_from_parts("Action", text)
    }
}

/// Builds a UID from a type name and an id (any string is a valid id).
pub fn uid_from_parts(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = cedar_policy::EntityTypeName::from_str(type_name)
        .map_err(|e| format!("`{type_name}` is not an entity type name: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

impl Snapshot {
    /// Answers `query` against the stored entities.
    pub fn decide(&self, query: &Query) -> Result<Answer, QueryError> {
        self.decide_with(query, &[])
    }

    /// Answers `query` with request-scoped entities layered over the stored
    /// ones (earlier layers win). Without layers the stored entities are used
    /// as they are; with layers only what the request reaches is assembled.
    pub fn decide_with(&self, query: &Query, layers: &[&Overlay]) -> Result<Answer, QueryError> {
        let request = self.request(query)?;
        let layers: Vec<&Overlay> = layers.iter().copied().filter(|l| !l.is_empty()).collect();
        let response = if layers.is_empty() {
            Authorizer::new().is_authorized(&request, &self.policies, &self.entities)
        } else {
            let mut roots = vec![
                query.principal.clone(),
                query.action.clone(),
                query.resource.clone(),
            ];
            context_uids(&query.context, &mut roots);
            let view = request_view(
                &self.entities,
                &layers,
                roots.iter().chain(self.policy_literals.iter()),
            )
            .map_err(|m| QueryError::new("entities", m))?;
            Authorizer::new().is_authorized(&request, &self.policies, &view)
        };
        Ok(self.answer(&response))
    }

    fn request(&self, query: &Query) -> Result<Request, QueryError> {
        let context = self.context(query)?;
        let schema = match self.validation {
            ValidationMode::Off => None,
            _ => self.schema.as_ref(),
        };
        Request::new(
            query.principal.clone(),
            query.action.clone(),
            query.resource.clone(),
            context,
            schema,
        )
        .map_err(|e| QueryError::new(request_field(&e.to_string()), e.to_string()))
    }

    fn context(&self, query: &Query) -> Result<Context, QueryError> {
        if !query.context.is_object() {
            return Err(QueryError::new("context", "must be a JSON object"));
        }
        let directed = self.schema.as_ref().map(|s| (s, &query.action));
        match Context::from_json_value(query.context.clone(), directed) {
            Ok(c) => Ok(c),
            // With validation off, an action the schema does not know still
            // gets an answer; its context is parsed without the schema.
            Err(_)
                if self.validation == ValidationMode::Off && !self.knows_action(&query.action) =>
            {
                Context::from_json_value(query.context.clone(), None)
                    .map_err(|e| QueryError::new("context", e.to_string()))
            }
            Err(_) if !self.knows_action(&query.action) => Err(QueryError::new(
                "action",
                format!("`{}` is not an action in the schema", query.action),
            )),
            Err(e) => Err(QueryError::new("context", e.to_string())),
        }
    }

    fn knows_action(&self, action: &EntityUid) -> bool {
        self.schema
            .as_ref()
            .is_some_and(|s| s.actions().any(|a| a == action))
    }

    fn answer(&self, response: &cedar_policy::Response) -> Answer {
        let order = |id: &str| self.by_id.get(id).copied().unwrap_or(usize::MAX);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort_by_key(|id| order(id));
        let mut errors: Vec<PolicyError> = response
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(err) => PolicyError {
                    policy: err.policy_id().to_string(),
                    message: err.inner().to_string(),
                },
            })
            .collect();
        errors.sort_by_key(|e| order(&e.policy));
        Answer {
            decision: match response.decision() {
                CedarDecision::Allow => Decision::Allow,
                CedarDecision::Deny => Decision::Deny,
            },
            reasons,
            errors,
        }
    }
}

/// Which request field a Cedar request-validation message is about.
fn request_field(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("principal") {
        "principal"
    } else if m.contains("resource") {
        "resource"
    } else if m.contains("context") {
        "context"
    } else {
        "action"
    }
}
