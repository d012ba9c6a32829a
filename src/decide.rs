//! Request → Cedar → answer: the one decision path the CLI, the test runner
//! and the sidecar share.
//!
//! Requests are parsed the way Cedar's own integration-test harness parses
//! them: the context is parsed against the schema (so `"0.6"` becomes
//! `decimal("0.6")` where the schema says so) whatever the validation mode,
//! and the request is validated against the schema unless validation is
//! `off`. An invalid request is an error, never a deny: a gateway that sends
//! nonsense must find out.

use std::borrow::Cow;

use cedar_policy::{Context, Decision as CedarDecision, EntityUid, Request, RestrictedExpression};
use serde::Serialize;
use serde_json::Value;

use crate::clip::{MESSAGE_CHARS, clip_owned};
use crate::entities::{Overlay, OverlayError, context_uids};
use crate::entity_json::Json;
use crate::slice::{self, Reads, Scope};
use crate::snapshot::{Snapshot, ValidationMode};
use crate::view::View;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyError {
    pub policy: String,
    pub message: String,
}

/// Cedar's answer: the decision, the determining policies (in load order)
/// and the policies that failed to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

pub use crate::uid::{parse_action, parse_uid, uid_from_parts};

impl Snapshot {
    /// Answers `query` against the stored entities.
    pub fn decide(&self, query: &Query) -> Result<Answer, QueryError> {
        self.decide_with(query, &[])
    }

    /// Answers `query` with request-scoped entities layered over the stored
    /// ones (earlier layers win).
    ///
    /// Only the policies whose scope can match are evaluated (see
    /// [`crate::slice`]), against only the entities the request can reach
    /// (see [`crate::view`]); a small store without request entities is
    /// evaluated as Cedar's own `Entities`, built once per snapshot. The
    /// request's ancestors come from the same entities Cedar evaluates
    /// against, so the slice is exact.
    pub fn decide_with(&self, query: &Query, layers: &[&Overlay]) -> Result<Answer, QueryError> {
        let request = self.request(query)?;
        let layers: Vec<&Overlay> = layers.iter().copied().filter(|l| !l.is_empty()).collect();
        if layers.is_empty()
            && let Some(whole) = &self.whole
        {
            let scope = Scope::in_store(whole, &query.principal, &query.action, &query.resource);
            let buckets = self.slices.select(&scope);
            return Ok(self.answer(&slice::authorize(&request, &buckets, whole)));
        }
        let refused = |m: String| QueryError::new("entities", m);
        let view = View::new(&self.store, &layers).map_err(refused)?;
        let ancestors = |uid: &EntityUid| {
            view.ancestors(uid.as_ref())
                .map(|found| found.into_iter().map(EntityUid::from).collect::<Vec<_>>())
                .map_err(refused)
        };
        let (pa, aa, ra) = (
            ancestors(&query.principal)?,
            ancestors(&query.action)?,
            ancestors(&query.resource)?,
        );
        let scope = Scope {
            action: &query.action,
            action_ancestors: aa.iter().collect(),
            principal: &query.principal,
            principal_ancestors: pa.iter().collect(),
            resource: &query.resource,
            resource_ancestors: ra.iter().collect(),
        };
        let buckets = self.slices.select(&scope);
        let mut roots: Vec<cedar_policy_core::ast::EntityUID> =
            [&query.principal, &query.action, &query.resource]
                .into_iter()
                .map(|u| AsRef::<cedar_policy_core::ast::EntityUID>::as_ref(u).clone())
                .collect();
        context_uids(&query.context, &mut roots);
        // Only the literals of policies that will run: with thousands of
        // tenant policies the whole list would be thousands of roots.
        let literals = buckets
            .iter()
            .flat_map(|b| b.literals())
            .map(AsRef::<cedar_policy_core::ast::EntityUID>::as_ref);
        // Entities that attributes name are only looked up by policies
        // that reach past the request's own entities and their literals.
        let follow = buckets.iter().any(|b| b.deep());
        // What the policies may read: usually one bucket's, borrowed.
        let reads = match buckets.as_slice() {
            [one] => Cow::Borrowed(one.reads()),
            many => Cow::Owned(many.iter().fold(Reads::default(), |mut r, b| {
                r.add(b.reads());
                r
            })),
        };
        let entities = view
            .entities(roots.iter().chain(literals), follow, &reads)
            .map_err(refused)?;
        Ok(self.answer(&slice::authorize(&request, &buckets, &entities)))
    }

    /// Parses request-scoped entities (Cedar entity JSON) against this
    /// snapshot's schema, as stored entities are.
    pub fn overlay(&self, json: Value) -> Result<Overlay, OverlayError> {
        let schema = self.schema.as_deref().zip(self.conformance.as_deref());
        Overlay::parse(json, schema)
    }

    /// [`Snapshot::overlay`] on entities already read into the entity
    /// reader's tree.
    pub(crate) fn overlay_read(&self, items: &[Json<'_>]) -> Result<Overlay, OverlayError> {
        let schema = self.schema.as_deref().zip(self.conformance.as_deref());
        Overlay::read(items, schema)
    }

    fn request(&self, query: &Query) -> Result<Request, QueryError> {
        // The usual request: no context, and a shape the schema was seen to
        // accept whatever the ids (see [`crate::shapes::EmptyContext`]). Validating it again
        // would cost half of what the decision's own code costs.
        if query.context.as_object().is_some_and(|m| m.is_empty())
            && self
                .empty_context
                .accepts(&query.principal, &query.action, &query.resource)
        {
            return Request::new(
                query.principal.clone(),
                query.action.clone(),
                query.resource.clone(),
                Context::empty(),
                None,
            )
            .map_err(|e| QueryError::new(request_field(&e, query), e.to_string()));
        }
        // Cedar's schema-directed context parser costs microseconds per
        // value (it tries each value as an extension escape first, building
        // an error each time): more than the policies a request evaluates.
        // A context of plain JSON values is built directly instead; if the
        // schema's request validation then accepts it, the schema-directed
        // parser would have read every value the same way (strings stay
        // strings unless the schema asks for an entity or extension type,
        // and then validation refuses the plain string). Anything else
        // takes the documented path below, errors and all.
        if let Some(schema) = self.schema.as_deref()
            && let Some(context) = plain_context(&query.context)
            && let Ok(request) = Request::new(
                query.principal.clone(),
                query.action.clone(),
                query.resource.clone(),
                context,
                Some(schema),
            )
        {
            return Ok(request);
        }
        let context = self.context(query)?;
        let schema = match self.validation {
            ValidationMode::Off => None,
            _ => self.schema.as_deref(),
        };
        Request::new(
            query.principal.clone(),
            query.action.clone(),
            query.resource.clone(),
            context,
            schema,
        )
        .map_err(|e| QueryError::new(request_field(&e, query), e.to_string()))
    }

    fn context(&self, query: &Query) -> Result<Context, QueryError> {
        if !query.context.is_object() {
            return Err(QueryError::new("context", "must be a JSON object"));
        }
        let directed = self.schema.as_deref().map(|s| (s, &query.action));
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

    /// One answer from the buckets' responses: reasons and errors in load
    /// order, each once (a policy filed under two of a request's action
    /// groups runs twice, with the same result).
    fn answer(&self, responses: &[cedar_policy::Response]) -> Answer {
        // IDs are read as written (`AsRef<str>`): Cedar's `Display` escapes
        // them, which would both cost a formatter per reason and misspell an
        // `@id` holding a quote.
        let order = |id: &str| self.by_id.get(id).copied().unwrap_or(usize::MAX);
        let merged = slice::merge(responses);
        let mut reasons: Vec<String> = merged
            .reasons
            .iter()
            .map(|id| AsRef::<str>::as_ref(*id).to_owned())
            .collect();
        reasons.sort_by_key(|id| order(id));
        reasons.dedup();
        let mut errors: Vec<PolicyError> = merged
            .errors
            .iter()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(err) => PolicyError {
                    policy: AsRef::<str>::as_ref(err.policy_id()).to_owned(),
                    // Cedar quotes the values it could not use, which
                    // may come from the request.
                    message: clip_owned(err.inner().to_string(), MESSAGE_CHARS),
                },
            })
            .collect();
        errors.sort_by_key(|e| order(&e.policy));
        errors.dedup();
        Answer {
            decision: match merged.decision {
                CedarDecision::Allow => Decision::Allow,
                CedarDecision::Deny => Decision::Deny,
            },
            reasons,
            errors,
        }
    }
}

/// `value` as a Cedar context when it holds only plain JSON: booleans,
/// integers, strings, arrays and objects without Cedar's `__entity` /
/// `__extn` escapes. `None` for anything a schema could read otherwise.
fn plain_context(value: &Value) -> Option<Context> {
    let Value::Object(map) = value else {
        return None;
    };
    let pairs = map
        .iter()
        .map(|(k, v)| Some((k.clone(), plain_value(v)?)))
        .collect::<Option<Vec<_>>>()?;
    Context::from_pairs(pairs).ok()
}

fn plain_value(value: &Value) -> Option<RestrictedExpression> {
    Some(match value {
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => RestrictedExpression::new_set(
            items.iter().map(plain_value).collect::<Option<Vec<_>>>()?,
        ),
        Value::Object(map) => {
            if map.keys().any(|k| k.starts_with("__")) {
                return None;
            }
            RestrictedExpression::new_record(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), plain_value(v)?)))
                    .collect::<Option<Vec<_>>>()?,
            )
            .ok()?
        }
        Value::Null => return None,
    })
}

/// Which request field a Cedar request-validation error is about.
fn request_field(e: &cedar_policy::RequestValidationError, query: &Query) -> &'static str {
    use cedar_policy::RequestValidationError as E;
    match e {
        E::UndeclaredAction(_) | E::ExternalAction(_) => "action",
        E::UndeclaredPrincipalType(_) | E::InvalidPrincipalType(_) => "principal",
        E::UndeclaredResourceType(_) | E::InvalidResourceType(_) => "resource",
        E::InvalidContext(_) | E::TypeOfContext(_) => "context",
        // An enumerated entity (such as `Role::"admni"`) with an id the
        // schema does not list: the error names it, so see which one it is.
        E::InvalidEnumEntity(_) if !e.to_string().contains(&query.principal.to_string()) => {
            "resource"
        }
        E::InvalidEnumEntity(_) => "principal",
        _ => "request",
    }
}
