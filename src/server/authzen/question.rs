//! The mapping from AuthZEN to Cedar: the contract with gateway teams
//! (README, "Cedar mapping"), in one place for every endpoint.
//!
//! - `subject` and `resource`: the Cedar entity `type::"id"`, the type
//!   verbatim (`Member`, or a namespaced `App::User`);
//! - `action.name`: `Action::"name"`, or the one action of that name in a
//!   namespace when the schema declares it there;
//! - `properties` of a subject or resource: a request-scoped entity, its
//!   stored attributes (if stored) with the properties layered over them,
//!   parents kept ([`crate::Snapshot::overlay_properties`]);
//! - `action.properties` and `context`: one Cedar context (a key in both
//!   is refused);
//! - a refusal of the decision path names the AuthZEN field at fault.
//!
//! The result is a [`Query`] and its layers for the one decision path
//! every protocol uses.

use std::borrow::Cow;

use cedar_policy::EntityUid;
use serde_json::Value;

use super::read::{self, Action, Context, Entity, Path};
use crate::decide::{Query, QueryError, uid_from_parts};
use crate::entities::Overlay;
use crate::server::error::{ApiError, Code, field_step, join};
use crate::snapshot::Snapshot;

/// A subject or resource as Cedar sees it.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub(super) uid: EntityUid,
    /// Its properties as a request-scoped entity.
    pub(super) overlay: Option<Overlay>,
    pub(super) path: Path,
}

/// An action as Cedar sees it.
#[derive(Debug, Clone)]
pub(super) struct Verb<'j> {
    pub(super) uid: EntityUid,
    pub(super) sent: Action<'j>,
}

/// The Cedar entity of a subject or resource (with its properties, if
/// any). The searched entity of a search has no id: it resolves to the
/// type with an empty id, which the search ignores.
pub(super) fn entity(snapshot: &Snapshot, e: &Entity<'_>) -> Result<Resolved, ApiError> {
    let uid = uid_from_parts(e.ty, e.id.unwrap_or_default())
        .map_err(|m| ApiError::at(Code::InvalidField, join(&e.path, "type"), m))?;
    let overlay = match e.properties {
        None => None,
        Some(props) => Some(
            snapshot
                .overlay_properties(&uid, &read::to_map(props))
                .map_err(|err| {
                    ApiError::at(
                        Code::InvalidEntities,
                        join(&e.path, "properties"),
                        err.message,
                    )
                })?,
        ),
    };
    Ok(Resolved {
        uid,
        overlay,
        path: e.path.clone(),
    })
}

/// The Cedar action an AuthZEN action name means.
pub(super) fn action<'j>(snapshot: &Snapshot, a: &Action<'j>) -> Result<Verb<'j>, ApiError> {
    let verb = |uid| Verb {
        uid,
        sent: a.clone(),
    };
    let plain = uid_from_parts("Action", a.name)
        .map_err(|m| ApiError::at(Code::InvalidField, join(&a.path, "name"), m))?;
    if snapshot.store().action(plain.as_ref()).is_some() {
        return Ok(verb(plain));
    }
    // Not an action outside a namespace: the schema's action of that name
    // in a namespace, if there is exactly one.
    if let Some(schema) = snapshot.schema() {
        let mut named = schema.actions().filter(|u| u.id().unescaped() == a.name);
        if let Some(first) = named.next() {
            if let Some(second) = named.next() {
                return Err(ApiError::at(
                    Code::InvalidRequest,
                    join(&a.path, "name"),
                    format!(
                        "`{}` names more than one action ({first}, {second}, ...)",
                        a.name
                    ),
                ));
            }
            return Ok(verb(first.clone()));
        }
    }
    // Unknown: the decision refuses it (or, without a schema, answers).
    Ok(verb(plain))
}

/// The Cedar context: `context` with the action's properties added.
pub(super) fn context(
    context: Option<&Context<'_>>,
    action: &Action<'_>,
) -> Result<Value, ApiError> {
    let mut map = context.map(|c| read::to_map(c.fields)).unwrap_or_default();
    if let Some(props) = action.properties {
        let at = join(&action.path, "properties");
        for (key, value) in props.iter().into_iter().flatten() {
            if map.contains_key(key) {
                return Err(ApiError::at(
                    Code::InvalidField,
                    join(&at, &field_step(key)),
                    "is also a key of context: give it in one place",
                ));
            }
            map.insert(key.to_owned(), value.to_value());
        }
    }
    Ok(Value::Object(map))
}

/// One question: its query, the request-scoped entities it brings, and
/// where each part came from (for naming fields in refusals).
pub(super) struct Question<'q> {
    pub(super) query: Query,
    subject: &'q Resolved,
    resource: &'q Resolved,
    action: Path,
    /// Where the context came from: `context`, else the action's
    /// properties (else `context`, which was not sent).
    context: Path,
}

impl<'q> Question<'q> {
    pub(super) fn new(
        subject: &'q Resolved,
        verb: &Verb<'_>,
        resource: &'q Resolved,
        context: Option<&Context<'_>>,
    ) -> Result<Question<'q>, ApiError> {
        if subject.overlay.is_some() && resource.overlay.is_some() && subject.uid == resource.uid {
            return Err(ApiError::at(
                Code::InvalidEntities,
                join(&resource.path, "properties"),
                "the subject is the same entity: give its properties once",
            ));
        }
        Ok(Question {
            query: Query {
                principal: subject.uid.clone(),
                action: verb.uid.clone(),
                resource: resource.uid.clone(),
                context: self::context(context, &verb.sent)?,
            },
            subject,
            resource,
            action: verb.sent.path.clone(),
            context: match (context, verb.sent.properties) {
                (Some(c), _) => c.path.clone(),
                (None, Some(_)) => join(&verb.sent.path, "properties").into(),
                (None, None) => "context".into(),
            },
        })
    }

    /// The request-scoped entities, the subject's first.
    pub(super) fn layers(&self) -> Vec<&'q Overlay> {
        self.subject
            .overlay
            .iter()
            .chain(self.resource.overlay.iter())
            .collect()
    }

    /// A refusal from the decision path, naming the AuthZEN field at fault.
    pub(super) fn refused(&self, e: QueryError) -> ApiError {
        let field: Cow<'_, str> = match e.field.as_str() {
            "principal" => self.subject.path.clone(),
            "resource" => self.resource.path.clone(),
            "action" => self.action.clone(),
            "context" => self.context.clone(),
            "entities" if self.subject.overlay.is_some() => {
                join(&self.subject.path, "properties").into()
            }
            "entities" => join(&self.resource.path, "properties").into(),
            other => other.to_owned().into(),
        };
        ApiError::at(Code::InvalidRequest, field.into_owned(), e.message)
    }
}
