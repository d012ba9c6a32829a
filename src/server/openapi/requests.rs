//! The request bodies as the OpenAPI document describes them.
//!
//! The readers of doorman's own API ([`crate::server::v1`]) and of AuthZEN
//! walk a JSON tree by hand, so every refusal can name its field; there is
//! no typed struct to derive a schema from. These types describe what the
//! walks accept instead. They are never used to read a body: a test
//! (`tests/server/openapi.rs`) sends every example the document carries to
//! the running server and asserts it is answered, not refused, so a reader
//! that changes without these types fails the build.

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// An entity reference: `{"type": "Member", "id": "acme-ada"}`, or Cedar's
/// string form `Member::"acme-ada"` (for an action, also the bare name:
/// `ViewInbox`).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EntityRef {
    Text(String),
    Parts(EntityParts),
}

/// `{"type": …, "id": …}`; nothing else.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityParts {
    #[serde(rename = "type")]
    pub ty: String,
    pub id: String,
}

/// One entity in Cedar's entity JSON format
/// (`{"uid": …, "attrs": {…}, "parents": […]}`), for this request only.
#[derive(Deserialize, ToSchema)]
pub struct CedarEntity {
    pub uid: Value,
    #[serde(default)]
    pub attrs: Option<Map<String, Value>>,
    #[serde(default)]
    pub parents: Option<Vec<Value>>,
    #[serde(default)]
    pub tags: Option<Map<String, Value>>,
}

/// `POST /v1/is_authorized`, or one item of a batch. Unknown fields are
/// refused (`invalid_field`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "principal": {"type": "Member", "id": "acme-ada"},
    "action": {"type": "Action", "id": "ViewInbox"},
    "resource": {"type": "Inbox", "id": "acme-support"},
    "context": {},
    "entities": []
}))]
pub struct IsAuthorizedRequest {
    pub principal: EntityRef,
    pub action: EntityRef,
    pub resource: EntityRef,
    /// The request context (default `{}`), parsed against the schema.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Entities for this request only; they override stored ones.
    #[serde(default)]
    pub entities: Option<Vec<CedarEntity>>,
}

/// `POST /v1/batch_is_authorized`. Unknown fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "requests": [
        {"principal": "Member::\"acme-ada\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\""},
        {"principal": "Member::\"globex-gil\"", "action": "ViewInbox", "resource": "Inbox::\"acme-support\""}
    ]
}))]
pub struct BatchRequest {
    /// At most `--max-batch` (default 100) requests.
    pub requests: Vec<IsAuthorizedRequest>,
    /// Entities shared by every request of the batch.
    #[serde(default)]
    pub entities: Option<Vec<CedarEntity>>,
}

/// An AuthZEN subject or resource. Unknown fields are ignored, as the
/// spec asks.
#[derive(Deserialize, ToSchema)]
#[schema(as = AuthZenEntity)]
pub struct AuthZenEntity {
    #[serde(rename = "type")]
    pub ty: String,
    pub id: String,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

/// The searched subject or resource: its type, no id.
#[derive(Deserialize, ToSchema)]
pub struct AuthZenSearched {
    #[serde(rename = "type")]
    pub ty: String,
    /// Ignored, whatever it holds (the spec's searched entity has none).
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

/// An AuthZEN action.
#[derive(Deserialize, ToSchema)]
pub struct AuthZenAction {
    pub name: String,
    #[serde(default)]
    pub properties: Option<Map<String, Value>>,
}

/// `POST /access/v1/evaluation`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "Member", "id": "acme-ada"},
    "action": {"name": "ViewInbox"},
    "resource": {"type": "Inbox", "id": "acme-support"}
}))]
pub struct AuthZenEvaluationRequest {
    pub subject: AuthZenEntity,
    pub action: AuthZenAction,
    pub resource: AuthZenEntity,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// One item of `evaluations`: what it leaves out comes from the top level.
#[derive(Deserialize, ToSchema)]
pub struct AuthZenEvaluationItem {
    #[serde(default)]
    pub subject: Option<AuthZenEntity>,
    #[serde(default)]
    pub action: Option<AuthZenAction>,
    #[serde(default)]
    pub resource: Option<AuthZenEntity>,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

/// When a batch of evaluations stops early.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationsSemantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(Deserialize, ToSchema)]
pub struct AuthZenOptions {
    #[serde(default)]
    pub evaluations_semantic: Option<EvaluationsSemantic>,
}

/// `POST /access/v1/evaluations`: defaults at the top level, and the
/// items (none: the top level is the one question).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "Member", "id": "acme-mia"},
    "action": {"name": "ViewInbox"},
    "options": {"evaluations_semantic": "execute_all"},
    "evaluations": [
        {"resource": {"type": "Inbox", "id": "acme-support"}},
        {"resource": {"type": "Inbox", "id": "acme-north-private"}}
    ]
}))]
pub struct AuthZenEvaluationsRequest {
    #[serde(default)]
    pub subject: Option<AuthZenEntity>,
    #[serde(default)]
    pub action: Option<AuthZenAction>,
    #[serde(default)]
    pub resource: Option<AuthZenEntity>,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub evaluations: Option<Vec<AuthZenEvaluationItem>>,
    #[serde(default)]
    pub options: Option<AuthZenOptions>,
}

/// A page request: its size, or the token of the page before.
#[derive(Deserialize, ToSchema)]
pub struct AuthZenPage {
    /// Results per page (default 1,000); a larger limit is taken as 1,000.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /access/v1/search/subject`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "Member"},
    "action": {"name": "ViewInbox"},
    "resource": {"type": "Inbox", "id": "acme-support"},
    "page": {"limit": 2}
}))]
pub struct AuthZenSubjectSearch {
    pub subject: AuthZenSearched,
    pub action: AuthZenAction,
    pub resource: AuthZenEntity,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub page: Option<AuthZenPage>,
}

/// `POST /access/v1/search/resource`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "Member", "id": "acme-ada"},
    "action": {"name": "ViewInbox"},
    "resource": {"type": "Inbox"}
}))]
pub struct AuthZenResourceSearch {
    pub subject: AuthZenEntity,
    pub action: AuthZenAction,
    pub resource: AuthZenSearched,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub page: Option<AuthZenPage>,
}

/// `POST /access/v1/search/action`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "Member", "id": "acme-ada"},
    "resource": {"type": "Inbox", "id": "acme-support"}
}))]
pub struct AuthZenActionSearch {
    pub subject: AuthZenEntity,
    pub resource: AuthZenEntity,
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    #[serde(default)]
    pub page: Option<AuthZenPage>,
}
