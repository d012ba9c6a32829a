//! The wire: request bodies in, JSON answers out.
//!
//! Requests are read into a `serde_json::Value` and then walked by hand
//! rather than derived with serde, because every refusal must name the exact
//! field at fault (`requests[3].principal.id`), an entity reference comes in
//! two shapes (`{"type", "id"}` or Cedar's `Member::"acme-ada"`), and unknown
//! fields are refused: a gateway that misspells `context` must hear about it
//! instead of getting a decision made without its context.
//!
//! That walk is the slow path. Nearly every body is well formed, and for
//! those a typed serde reader ([`parse_single`], [`parse_batch_body`])
//! borrows the strings straight out of the body instead of building a
//! `Value` tree (a fifth of a whole decision, measured). It accepts exactly
//! the bodies the walk accepts and reads them the same way; on anything
//! else (an unknown field, `__entity`, a wrong type, a duplicate key) it
//! gives up and the walk reads the body again, so every refusal is still
//! worded by the walk.
//!
//! Answers are small borrowed structs serialized straight into the response
//! body, so nothing from the snapshot is cloned to answer.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cedar_policy::EntityUid;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ApiError, Code};
use crate::decide::{
    Answer, Decision, PolicyError, Query, parse_action, parse_uid, uid_from_parts,
};
use crate::entity_json::Json;
use crate::snapshot::{PolicyInfo, Snapshot, ValidationMode};

/// Every response body is one buffer: answers are small and built whole.
pub type Body = Full<Bytes>;

// ------------------------------------------------------------------ in

/// One authorization question as sent: the whole body of
/// `/v1/is_authorized`, or one item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    pub query: Query,
    /// Cedar entity JSON for this request only (not yet parsed: that needs
    /// the snapshot's schema).
    pub entities: Option<Brought<'a>>,
}

/// A body's list of request entities, read but not yet checked. Two are
/// equal when they hold the same JSON, whichever reader read them.
#[derive(Debug, Clone)]
pub enum Brought<'a> {
    /// Read by the typed reader into the entity reader's own tree, strings
    /// borrowed from the body: building serde_json's `Value` (an `IndexMap`
    /// hashing every key) cost more than checking the entities.
    Read(Vec<Json<'a>>),
    /// Read by the walk.
    Walked(Vec<Value>),
}

impl PartialEq for Brought<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.items() == other.items()
    }
}

impl Brought<'_> {
    /// The entities as the tree the entity reader takes.
    pub fn items(&self) -> std::borrow::Cow<'_, [Json<'_>]> {
        match self {
            Brought::Read(items) => std::borrow::Cow::Borrowed(items),
            Brought::Walked(values) => values.iter().map(Json::of).collect(),
        }
    }
}

/// The body of `/v1/batch_is_authorized`, items not yet parsed so that a bad
/// item only spoils its own answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub requests: Vec<Value>,
    pub entities: Option<Brought<'static>>,
}

const ITEM_FIELDS: &[&str] = &["principal", "action", "resource", "context", "entities"];
const BATCH_FIELDS: &[&str] = &["requests", "entities"];

/// Reads the body of `/v1/is_authorized`.
pub fn parse_single(body: &[u8]) -> Result<Item<'_>, ApiError> {
    if let Some(item) = fast::item(body) {
        return Ok(item);
    }
    parse_body(body).and_then(|v| parse_item(v, ""))
}

/// Reads the body of `/v1/batch_is_authorized`: the items, each read or
/// refused on its own (errors name `requests[i]`), and the shared entities.
/// Refused whole when it is not a batch or has more than `max_batch` items.
pub fn parse_batch_body(body: &[u8], max_batch: usize) -> Result<ReadBatch<'_>, ApiError> {
    if let Some(batch) = fast::batch(body, max_batch) {
        return Ok(batch);
    }
    let Batch { requests, entities } = parse_body(body).and_then(|v| parse_batch(v, max_batch))?;
    let requests = requests
        .into_iter()
        .enumerate()
        .map(|(i, value)| parse_item(value, &format!("requests[{i}]")))
        .collect();
    Ok(ReadBatch { requests, entities })
}

/// A batch body as read: every item parsed or refused.
#[derive(Debug)]
pub struct ReadBatch<'a> {
    pub requests: Vec<Result<Item<'a>, ApiError>>,
    pub entities: Option<Brought<'a>>,
}

/// Parses a request body as JSON.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("the body is not JSON: {e}")))
}

/// Reads one question. `path` is where `value` sits in the body: empty for
/// the body itself, `requests[3]` for a batch item.
pub fn parse_item(value: Value, path: &str) -> Result<Item<'static>, ApiError> {
    let mut map = object(value, path, ITEM_FIELDS)?;
    let principal = entity_ref(map.remove("principal"), &join(path, "principal"), false)?;
    let action = entity_ref(map.remove("action"), &join(path, "action"), true)?;
    let resource = entity_ref(map.remove("resource"), &join(path, "resource"), false)?;
    let context = match map.remove("context") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return Err(ApiError::at(
                Code::InvalidField,
                join(path, "context"),
                format!("must be a JSON object, not {}", kind(&other)),
            ));
        }
    };
    let entities = entity_list(map.remove("entities"), &join(path, "entities"))?;
    Ok(Item {
        query: Query {
            principal,
            action,
            resource,
            context,
        },
        entities,
    })
}

/// Reads a batch's envelope; refuses it whole when it has more than
/// `max_batch` items.
pub fn parse_batch(value: Value, max_batch: usize) -> Result<Batch, ApiError> {
    let mut map = object(value, "", BATCH_FIELDS)?;
    let requests = match map.remove("requests") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(ApiError::at(
                Code::InvalidField,
                "requests",
                "is required: a list of requests",
            ));
        }
        Some(other) => {
            return Err(ApiError::at(
                Code::InvalidField,
                "requests",
                format!("must be a list of requests, not {}", kind(&other)),
            ));
        }
    };
    if requests.len() > max_batch {
        return Err(ApiError::at(
            Code::BatchTooLarge,
            "requests",
            format!(
                "{} requests in one batch; the limit is {max_batch}",
                requests.len()
            ),
        ));
    }
    let entities = entity_list(map.remove("entities"), "entities")?;
    Ok(Batch { requests, entities })
}

fn object(value: Value, path: &str, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let map = match value {
        Value::Object(map) => map,
        other if path.is_empty() => {
            return Err(ApiError::new(
                Code::InvalidField,
                format!("the body must be a JSON object, not {}", kind(&other)),
            ));
        }
        other => {
            return Err(ApiError::at(
                Code::InvalidField,
                path,
                format!("must be a JSON object, not {}", kind(&other)),
            ));
        }
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::at(
            Code::InvalidField,
            join(path, unknown),
            format!("unknown field (expected {})", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// An entity reference: `{"type": "Member", "id": "acme-ada"}` (optionally
/// wrapped in `__entity`, as in Cedar's JSON) or `"Member::\"acme-ada\""`.
/// Actions may also be written bare: `"ViewInbox"`.
fn entity_ref(value: Option<Value>, field: &str, action: bool) -> Result<EntityUid, ApiError> {
    let example = if action {
        r#"{"type": "Action", "id": "ViewInbox"} or "ViewInbox""#
    } else {
        r#"{"type": "Member", "id": "acme-ada"} or "Member::\"acme-ada\"""#
    };
    match value {
        None | Some(Value::Null) => Err(ApiError::at(
            Code::InvalidField,
            field,
            format!("is required: an entity reference like {example}"),
        )),
        Some(Value::String(text)) => {
            let parsed = if action {
                parse_action(&text)
            } else {
                parse_uid(&text)
            };
            parsed.map_err(|m| ApiError::at(Code::InvalidField, field, m))
        }
        Some(Value::Object(mut map)) => {
            let (mut map, field) = match map.remove("__entity") {
                Some(Value::Object(inner)) if map.is_empty() => (inner, join(field, "__entity")),
                Some(_) => {
                    return Err(ApiError::at(
                        Code::InvalidField,
                        join(field, "__entity"),
                        "must be the only key, holding an object with type and id",
                    ));
                }
                None => (map, field.to_owned()),
            };
            let ty = string_field(map.remove("type"), &join(&field, "type"))?;
            let id = string_field(map.remove("id"), &join(&field, "id"))?;
            if let Some(unknown) = map.keys().next() {
                return Err(ApiError::at(
                    Code::InvalidField,
                    join(&field, unknown),
                    "unknown field (an entity reference has type and id)",
                ));
            }
            uid_from_parts(&ty, &id)
                .map_err(|m| ApiError::at(Code::InvalidField, join(&field, "type"), m))
        }
        Some(other) => Err(ApiError::at(
            Code::InvalidField,
            field,
            format!(
                "must be an entity reference like {example}, not {}",
                kind(&other)
            ),
        )),
    }
}

fn string_field(value: Option<Value>, field: &str) -> Result<String, ApiError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ApiError::at(Code::InvalidField, field, "is required")),
        Some(other) => Err(ApiError::at(
            Code::InvalidField,
            field,
            format!("must be a string, not {}", kind(&other)),
        )),
    }
}

fn entity_list(value: Option<Value>, field: &str) -> Result<Option<Brought<'static>>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(Brought::Walked(items))),
        Some(other) => Err(ApiError::at(
            Code::InvalidField,
            field,
            format!(
                "must be a list of Cedar entities ({{uid, attrs, parents}}), not {}",
                kind(&other)
            ),
        )),
    }
}

/// `field` inside `path` (`requests[2]` + `principal`): how every error
/// names the part of a request at fault.
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The typed reader for well-formed bodies. Every function returns `None`
/// where the walk above might say something else than "here is the item",
/// and the caller then runs the walk.
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde_json::Value;

    use super::{Brought, Item, ReadBatch};
    use crate::decide::{Query, parse_action, parse_uid, uid_from_parts};
    use crate::entity_json::Json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WireItem<'a> {
        #[serde(borrow)]
        principal: WireRef<'a>,
        #[serde(borrow)]
        action: WireRef<'a>,
        #[serde(borrow)]
        resource: WireRef<'a>,
        // `null` and absent both read as `None`, as in the walk.
        #[serde(default)]
        context: Option<Value>,
        #[serde(default, borrow)]
        entities: Option<Json<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WireBatch<'a> {
        #[serde(borrow)]
        requests: Vec<Object<WireItem<'a>>>,
        #[serde(default, borrow)]
        entities: Option<Json<'a>>,
    }

    /// `T` read from a JSON object only. A derived struct also reads a JSON
    /// array, field by field in order, which the walk refuses.
    struct Object<T>(T);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = Object<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                    T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
                }
            }
            d.deserialize_map(V(std::marker::PhantomData))
        }
    }

    /// `"Member::\"ada\""` or `{"type": "Member", "id": "ada"}`; nothing else.
    enum WireRef<'a> {
        Text(Cow<'a, str>),
        Parts { ty: Cow<'a, str>, id: Cow<'a, str> },
    }

    /// A string, borrowed from the body unless it holds escapes.
    struct Str<'a>(Cow<'a, str>);

    impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                type Value = Str<'a>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'a>, E> {
                    Ok(Str(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'a>, E> {
                    Ok(Str(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'a>, E> {
                    Ok(Str(Cow::Owned(v)))
                }
            }
            d.deserialize_str(V(std::marker::PhantomData))
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for WireRef<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(std::marker::PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                type Value = WireRef<'a>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an entity reference")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                    Ok(WireRef::Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Ok(WireRef::Text(Cow::Owned(v.to_owned())))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let (mut ty, mut id) = (None, None);
                    while let Some(key) = map.next_key::<Str<'a>>()? {
                        let slot = match key.0.as_ref() {
                            "type" => &mut ty,
                            "id" => &mut id,
                            _ => return Err(de::Error::custom("not a plain reference")),
                        };
                        if slot.replace(map.next_value::<Str<'a>>()?.0).is_some() {
                            return Err(de::Error::custom("duplicate key"));
                        }
                    }
                    match (ty, id) {
                        (Some(ty), Some(id)) => Ok(WireRef::Parts { ty, id }),
                        _ => Err(de::Error::custom("incomplete reference")),
                    }
                }
            }
            d.deserialize_any(V(std::marker::PhantomData))
        }
    }

    fn uid(r: &WireRef<'_>, action: bool) -> Option<cedar_policy::EntityUid> {
        match r {
            WireRef::Text(t) if action => parse_action(t).ok(),
            WireRef::Text(t) => parse_uid(t).ok(),
            WireRef::Parts { ty, id } => uid_from_parts(ty, id).ok(),
        }
    }

    /// A list of entities, or `None` for `null` or absent; anything else is
    /// the walk's to refuse.
    fn entity_list(list: Option<Json<'_>>) -> Result<Option<Brought<'_>>, ()> {
        match list {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Arr(items)) => Ok(Some(Brought::Read(items))),
            Some(_) => Err(()),
        }
    }

    fn convert(w: WireItem<'_>) -> Option<Item<'_>> {
        let context = match w.context {
            None => Value::Object(serde_json::Map::new()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return None,
        };
        let entities = entity_list(w.entities).ok()?;
        Some(Item {
            query: Query {
                principal: uid(&w.principal, false)?,
                action: uid(&w.action, true)?,
                resource: uid(&w.resource, false)?,
                context,
            },
            entities,
        })
    }

    pub(super) fn item(body: &[u8]) -> Option<Item<'_>> {
        convert(serde_json::from_slice::<Object<WireItem<'_>>>(body).ok()?.0)
    }

    pub(super) fn batch(body: &[u8], max_batch: usize) -> Option<ReadBatch<'_>> {
        let Object(wire) = serde_json::from_slice::<Object<WireBatch<'_>>>(body).ok()?;
        if wire.requests.len() > max_batch {
            return None;
        }
        let entities = entity_list(wire.entities).ok()?;
        let requests = wire
            .requests
            .into_iter()
            .map(|Object(w)| convert(w).map(Ok))
            .collect::<Option<Vec<_>>>()?;
        Some(ReadBatch { requests, entities })
    }
}

// ----------------------------------------------------------------- out

/// The answer to one question: Cedar's answer plus the revision it came from.
#[derive(Debug, Serialize)]
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

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Outcome::Answer(a) => a.serialize(s),
            Outcome::Error(e) => e.body().serialize(s),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BatchDecided<'a> {
    pub responses: &'a [Outcome],
    pub revision: &'a str,
}

/// `/v1/status`. Snapshot fields are null until a snapshot is active, so the
/// endpoint answers (and says why it is not ready) from the first second.
#[derive(Debug, Serialize)]
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
}

/// A database source in `/v1/status`.
#[derive(Debug, Serialize)]
pub struct DatabaseView {
    /// The URL without its password.
    pub source: String,
    /// `reading` (a full read, at start-up or after a gap in the change
    /// log), `following` or `reconnecting`.
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

#[derive(Debug, Serialize)]
pub struct DatabaseError {
    pub at: String,
    pub message: String,
}

/// The reload history in `/v1/status`.
#[derive(Debug, Serialize)]
pub struct ReloadView {
    /// `on`, `off` or `poll:INTERVAL`.
    pub watch: String,
    pub successes: u64,
    pub failures: u64,
    pub unchanged: u64,
    pub last_attempt_at: Option<String>,
    /// `reloaded`, `unchanged` or `failed`.
    pub last_result: Option<&'static str>,
    /// The last failure, until an attempt finds the files good again.
    pub last_error: Option<ReloadError>,
}

#[derive(Debug, Serialize)]
pub struct ReloadError {
    pub at: String,
    pub summary: String,
    pub diagnostics: Vec<crate::diag::Diagnostic>,
}

/// The answer to `POST /v1/reload`.
#[derive(Debug, Serialize)]
pub struct Reloaded {
    /// `reloaded`, `unchanged` or `failed`.
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

#[derive(Debug, Serialize)]
pub struct ChangedFiles<'a> {
    pub count: usize,
    pub paths: &'a [String],
}

#[derive(Debug, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct Policies<'a> {
    pub revision: &'a str,
    pub policies: &'a [PolicyInfo],
}

/// A JSON response. Serializing these types cannot fail (no maps with
/// non-string keys), but if it ever did the client gets a 500, not a panic.
pub fn respond(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, bytes),
        Err(e) => {
            tracing::error!("cannot serialize a response: {e}");
            let e = ApiError::new(Code::Internal, "cannot serialize the response");
            with_body(
                e.status(),
                serde_json::to_vec(&e.body()).unwrap_or_default(),
            )
        }
    }
}

/// The response for a refused request.
pub fn refuse(error: &ApiError) -> Response<Body> {
    respond(error.status(), &error.body())
}

fn with_body(status: StatusCode, mut bytes: Vec<u8>) -> Response<Body> {
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `2026-11-25T09:00:00.000Z`. The standard library has no calendar; this
/// is the days-to-civil conversion from Howard Hinnant's date algorithms.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn field_of(r: Result<Item, ApiError>) -> (Code, String) {
        let e = r.expect_err("should be refused");
        (e.code, e.field.unwrap_or_default())
    }

    #[test]
    fn both_reference_forms_give_the_same_query() {
        let objects = json!({
            "principal": {"type": "Member", "id": "ann"},
            "action": {"type": "Action", "id": "ViewInbox"},
            "resource": {"__entity": {"type": "Inbox", "id": "lobby"}},
        });
        let strings = json!({
            "principal": "Member::\"ann\"",
            "action": "ViewInbox",
            "resource": "Inbox::\"lobby\"",
            "context": null,
        });
        let a = parse_item(objects, "").unwrap();
        let b = parse_item(strings, "").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.query.action.to_string(), r#"Action::"ViewInbox""#);
        assert_eq!(a.query.context, json!({}));
    }

    #[test]
    fn refusals_name_the_field_path() {
        let ok = json!({"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\""});
        let with = |k: &str, v: Value| {
            let mut o = ok.clone();
            o[k] = v;
            o
        };
        assert_eq!(
            field_of(parse_item(with("principal", json!(5)), "requests[3]")),
            (Code::InvalidField, "requests[3].principal".into())
        );
        assert_eq!(
            field_of(parse_item(with("resource", json!("Inbox::b")), "")),
            (Code::InvalidField, "resource".into())
        );
        assert_eq!(
            field_of(parse_item(with("principal", json!({"type": "Member"})), "")),
            (Code::InvalidField, "principal.id".into())
        );
        assert_eq!(
            field_of(parse_item(with("context", json!([])), "")),
            (Code::InvalidField, "context".into())
        );
        assert_eq!(
            field_of(parse_item(with("entities", json!({})), "")),
            (Code::InvalidField, "entities".into())
        );
        assert_eq!(
            field_of(parse_item(with("contxt", json!({})), "")),
            (Code::InvalidField, "contxt".into())
        );
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("action");
        assert_eq!(
            field_of(parse_item(missing, "")),
            (Code::InvalidField, "action".into())
        );
    }

    #[test]
    fn batches_over_the_limit_are_refused_whole() {
        let body = json!({"requests": [{}, {}, {}]});
        assert_eq!(parse_batch(body.clone(), 3).unwrap().requests.len(), 3);
        assert_eq!(parse_batch(body, 2).unwrap_err().code, Code::BatchTooLarge);
        assert_eq!(
            parse_batch(json!({"entities": []}), 2)
                .unwrap_err()
                .field
                .as_deref(),
            Some("requests")
        );
    }

    /// The typed reader must read a body exactly as the walk does, or not at
    /// all: compared on bodies that take it and bodies it must hand over.
    #[test]
    fn the_typed_reader_agrees_with_the_walk() {
        let slow = |b: &str| parse_body(b.as_bytes()).and_then(|v| parse_item(v, ""));
        let taken = [
            r#"{"principal": {"type": "Member", "id": "ann"}, "action": {"type": "Action", "id": "ViewInbox"}, "resource": {"id": "lobby", "type": "Inbox"}, "context": {}}"#,
            r#"{"principal": "Member::\"ann\"", "action": "ViewInbox", "resource": " Inbox::\"lobby\" ", "context": null}"#,
            r#"{"principal": {"type": "Member", "id": "a\"n\u00e9"}, "action": "Action::\"ViewInbox\"", "resource": "Inbox::\"b\"", "context": {"role": "admin", "n": [1, {"x": true}]}}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "entities": [{"uid": {"type": "Inbox", "id": "b"}, "attrs": {}, "parents": []}]}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "entities": null}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "entities": [{"uid": {"type": "Member", "id": "a\"\u00e9"}, "attrs": {"n": -5, "big": 18446744073709551615, "f": 1.5, "s": [null, true, {"k": "v"}]}, "parents": []}]}"#,
        ];
        for body in taken {
            let fast = fast::item(body.as_bytes()).unwrap_or_else(|| panic!("not taken: {body}"));
            assert_eq!(Ok(fast), slow(body), "{body}");
        }
        let handed_over = [
            r#"{"principal": {"__entity": {"type": "Member", "id": "ann"}}, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": {"type": "Member", "id": "ann", "x": 1}, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": {"type": "Member"}, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": {"type": "Member", "id": 5}, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": "Member::\"a\"", "principal": "Member::\"b\"", "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": {"type": "Member", "type": "Inbox", "id": "a"}, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "context": []}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "entities": {}}"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\"", "contxt": {}}"#,
            r#"{"principal": "Member::a", "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"principal": null, "action": "V", "resource": "Inbox::\"b\""}"#,
            r#"{"action": "V", "resource": "Inbox::\"b\""}"#,
            r#"[1]"#,
            // A derived struct would read an array field by field.
            r#"["Member::\"a\"", "V", "Inbox::\"b\""]"#,
            r#"["Member::\"a\"", "V", "Inbox::\"b\"", {}, []]"#,
            r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\""} x"#,
        ];
        for body in handed_over {
            assert!(fast::item(body.as_bytes()).is_none(), "taken: {body}");
        }
        // Duplicate keys: the walk keeps the last one; the typed reader
        // hands such bodies over, so the answer is the walk's either way.
        assert_eq!(
            parse_single(handed_over[4].as_bytes())
                .unwrap()
                .query
                .principal
                .to_string(),
            r#"Member::"b""#
        );
        assert_eq!(
            field_of(parse_single(handed_over[2].as_bytes())),
            (Code::InvalidField, "principal.id".into())
        );
    }

    #[test]
    fn batch_items_are_read_alike_on_both_paths() {
        let good = r#"{"principal": "Member::\"a\"", "action": "V", "resource": "Inbox::\"b\""}"#;
        let body = format!(r#"{{"requests": [{good}, {good}], "entities": []}}"#);
        let fast = fast::batch(body.as_bytes(), 5).expect("taken");
        assert_eq!(fast.requests.len(), 2);
        assert_eq!(fast.requests[0], parse_single(good.as_bytes()));
        assert_eq!(fast.entities, Some(Brought::Walked(vec![])));
        // Over the limit, or one bad item: handed to the walk, which refuses
        // the batch whole or only that item.
        assert!(fast::batch(body.as_bytes(), 1).is_none());
        assert_eq!(
            parse_batch_body(body.as_bytes(), 1).unwrap_err().code,
            Code::BatchTooLarge
        );
        let as_array = r#"["Member::\"a\"", "V", "Inbox::\"b\""]"#;
        let arrays = format!(r#"{{"requests": [{good}, {as_array}]}}"#);
        assert!(fast::batch(arrays.as_bytes(), 5).is_none());
        assert_eq!(
            parse_batch_body(arrays.as_bytes(), 5).unwrap().requests[1]
                .clone()
                .unwrap_err()
                .field
                .as_deref(),
            Some("requests[1]")
        );
        assert!(fast::batch(b"[[]]", 5).is_none());
        assert_eq!(
            parse_batch_body(b"[[]]", 5).unwrap_err().code,
            Code::InvalidField
        );
        let mixed = format!(r#"{{"requests": [{good}, {{"principal": 5}}]}}"#);
        let read = parse_batch_body(mixed.as_bytes(), 5).unwrap();
        assert!(read.requests[0].is_ok());
        assert_eq!(
            read.requests[1].clone().unwrap_err().field.as_deref(),
            Some("requests[1].principal")
        );
    }

    #[test]
    fn errors_placed_within_a_batch_item_keep_their_message() {
        let e =
            ApiError::at(Code::InvalidRequest, "principal", "no such type").within("requests[2]");
        assert_eq!(e.field.as_deref(), Some("requests[2].principal"));
        assert_eq!(e.message, "requests[2].principal: no such type");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_700_000_000, 0)), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(at(1_795_597_200, 999)), "2026-11-25T09:00:00.999Z");
    }
}
