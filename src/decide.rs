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

use cedar_policy::{
    Context, Decision as CedarDecision, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};
use serde::Serialize;
use serde_json::Value;

use crate::entities::{Overlay, ancestors_through, context_uids, request_view};
use crate::slice::{self, Scope};
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
    let ty = entity_type(type_name)
        .map_err(|e| format!("`{type_name}` is not an entity type name: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(
        ty,
        cedar_policy::EntityId::new(id),
    ))
}

/// Parses an entity type name, remembering it per thread: every request
/// names three or more, they are few, and each parse runs Cedar's full
/// grammar (about a tenth of a decision). Only names that parse are kept,
/// and at most `KEPT` of them, so a client inventing names cannot grow it.
pub(crate) fn entity_type(text: &str) -> Result<cedar_policy::EntityTypeName, String> {
    use std::cell::RefCell;
    const KEPT: usize = 256;
    thread_local! {
        static NAMES: RefCell<foldhash::HashMap<String, cedar_policy::EntityTypeName>> =
            RefCell::default();
    }
    if let Some(known) = NAMES.with(|n| n.borrow().get(text).cloned()) {
        return Ok(known);
    }
    let parsed = cedar_policy::EntityTypeName::from_str(text).map_err(|e| e.to_string())?;
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if n.len() < KEPT {
            n.insert(text.to_owned(), parsed.clone());
        }
    });
    Ok(parsed)
}

impl Snapshot {
    /// Answers `query` against the stored entities.
    pub fn decide(&self, query: &Query) -> Result<Answer, QueryError> {
        self.decide_with(query, &[])
    }

    /// Answers `query` with request-scoped entities layered over the stored
    /// ones (earlier layers win). Without layers the stored entities are used
    /// as they are; with layers only what the request reaches is assembled.
    ///
    /// Either way only the policies whose scope can match are evaluated
    /// (see [`crate::slice`]); the request's ancestors come from the same
    /// entities Cedar evaluates against, so the slice is exact.
    pub fn decide_with(&self, query: &Query, layers: &[&Overlay]) -> Result<Answer, QueryError> {
        let request = self.request(query)?;
        let layers: Vec<&Overlay> = layers.iter().copied().filter(|l| !l.is_empty()).collect();
        let responses = if layers.is_empty() {
            let scope = Scope::in_store(
                &self.entities,
                &query.principal,
                &query.action,
                &query.resource,
            );
            let buckets = self.slices.select(&scope);
            slice::authorize(&request, &buckets, &self.entities)
        } else {
            let ancestors = |uid| ancestors_through(&self.entities, &layers, uid);
            let (pa, aa, ra) = (
                ancestors(&query.principal),
                ancestors(&query.action),
                ancestors(&query.resource),
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
            let mut roots = vec![
                query.principal.clone(),
                query.action.clone(),
                query.resource.clone(),
            ];
            context_uids(&query.context, &mut roots);
            // Only the literals of policies that will run: with thousands of
            // tenant policies the whole list would be thousands of roots.
            let literals = buckets.iter().flat_map(|b| b.literals());
            let view = request_view(&self.entities, &layers, roots.iter().chain(literals))
                .map_err(|m| QueryError::new("entities", m))?;
            slice::authorize(&request, &buckets, &view)
        };
        Ok(self.answer(&responses))
    }

    fn request(&self, query: &Query) -> Result<Request, QueryError> {
        // The usual request: no context, and a shape the schema was seen to
        // accept whatever the ids (see [`EmptyContext`]). Validating it again
        // would cost half of what the decision's own code costs.
        if query.context.as_object().is_some_and(|m| m.is_empty())
            && self.empty_context.accepts(query)
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
        if let Some(schema) = &self.schema
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
            _ => self.schema.as_ref(),
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
                    message: err.inner().to_string(),
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

/// The request shapes (action, principal type, resource type) for which
/// Cedar's request validation accepts an empty context whatever the
/// principal's and resource's ids. Found at load time by asking the
/// validator itself, twice per shape with different made-up ids, so an
/// enumerated entity type (whose ids the validator checks) never qualifies.
/// Validation looks at nothing else of such a request, so a request of one
/// of these shapes is valid without asking again.
#[derive(Default)]
pub(crate) struct EmptyContext {
    shapes: foldhash::HashMap<EntityUid, Vec<(EntityTypeName, EntityTypeName)>>,
}

/// Past this many shapes (a schema of very many actions and types) the
/// rest are validated per request, as before; loading stays quick.
const MAX_SHAPES: usize = 10_000;

impl EmptyContext {
    pub(crate) fn build(schema: Option<&Schema>) -> EmptyContext {
        let mut out = EmptyContext::default();
        let Some(schema) = schema else {
            return out;
        };
        let probe = |p: &EntityTypeName, a: &EntityUid, r: &EntityTypeName, id: &str| {
            let uid = |t: &EntityTypeName, side: &str| {
                EntityUid::from_type_name_and_id(
                    t.clone(),
                    cedar_policy::EntityId::new(format!("\u{0}doorman-probe-{side}-{id}")),
                )
            };
            Request::new(
                uid(p, "principal"),
                a.clone(),
                uid(r, "resource"),
                Context::empty(),
                Some(schema),
            )
            .is_ok()
        };
        for env in schema.request_envs().take(MAX_SHAPES) {
            let (p, a, r) = (env.principal(), env.action(), env.resource());
            if probe(p, a, r, "a") && probe(p, a, r, "b") {
                out.shapes
                    .entry(a.clone())
                    .or_default()
                    .push((p.clone(), r.clone()));
            }
        }
        out
    }

    fn accepts(&self, query: &Query) -> bool {
        self.shapes.get(&query.action).is_some_and(|shapes| {
            let (p, r) = (query.principal.type_name(), query.resource.type_name());
            shapes.iter().any(|(sp, sr)| sp == p && sr == r)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        entity User, Doc;
        entity Role enum ["admin", "member"];
        action see appliesTo { principal: [User, Role], resource: Doc };
        action post appliesTo { principal: User, resource: Doc, context: { n: Long } };
        action peek appliesTo { principal: User, resource: Doc, context: { n?: Long } };
    "#;

    fn query(p: &str, a: &str, r: &str) -> Query {
        Query::parse(p, a, r, serde_json::json!({})).unwrap()
    }

    #[test]
    fn only_shapes_valid_whatever_the_ids_skip_validation() {
        let schema = Schema::from_cedarschema_str(SCHEMA).unwrap().0;
        let shapes = EmptyContext::build(Some(&schema));
        assert!(shapes.accepts(&query(r#"User::"u""#, "see", r#"Doc::"d""#)));
        assert!(shapes.accepts(&query(r#"User::"u""#, "peek", r#"Doc::"d""#)));
        // An enumerated type: its ids are checked, so it is always validated.
        let typo = query(r#"Role::"admni""#, "see", r#"Doc::"d""#);
        assert!(!shapes.accepts(&typo));
        assert!(
            Request::new(
                typo.principal,
                typo.action,
                typo.resource,
                Context::empty(),
                Some(&schema)
            )
            .is_err()
        );
        // A required context attribute, a type the action does not take, an
        // action the schema does not know.
        assert!(!shapes.accepts(&query(r#"User::"u""#, "post", r#"Doc::"d""#)));
        assert!(!shapes.accepts(&query(r#"Doc::"d""#, "see", r#"Doc::"d""#)));
        assert!(!shapes.accepts(&query(r#"User::"u""#, "fly", r#"Doc::"d""#)));
        assert!(!EmptyContext::build(None).accepts(&query(r#"User::"u""#, "see", r#"Doc::"d""#)));
    }
}
