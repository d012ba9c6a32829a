//! Reading the bodies of doorman's own decision endpoints.
//!
//! Requests are read into a `serde_json::Value` and then walked by hand
//! rather than derived with serde, because every refusal must name the exact
//! field at fault (`requests[3].principal.id`), an entity reference comes in
//! two shapes (`{"type", "id"}` or Cedar's `Member::"acme-ada"`), and unknown
//! fields are refused: a gateway that misspells `context` must hear about it
//! instead of getting a decision made without its context.
//!
//! That walk is the slow path. Nearly every body is well formed, and for
//! those a typed serde reader ([`super::fast`], tried first by
//! [`parse_single`] and [`parse_batch_body`]) borrows the strings straight
//! out of the body instead of building a `Value` tree (a fifth of a whole
//! decision, measured). It accepts exactly the bodies the walk accepts and
//! reads them the same way; on anything else (an unknown field,
//! `__entity`, a wrong type, a duplicate key) it gives up and the walk reads
//! the body again, so every refusal is still worded by the walk.

use cedar_policy::EntityUid;
use serde_json::{Map, Value};

use super::fast;
use crate::decide::{Query, parse_action, parse_uid, uid_from_parts};
use crate::entity_json::Json;
use crate::server::error::{ApiError, Code, field_step, join, kind};

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
    walk_single(body)
}

/// [`parse_single`] by the walk alone, without trying the typed reader.
pub fn walk_single(body: &[u8]) -> Result<Item<'static>, ApiError> {
    parse_body(body).and_then(|v| parse_item(v, ""))
}

/// Reads the body of `/v1/batch_is_authorized`: the items, each read or
/// refused on its own (errors name `requests[i]`), and the shared entities.
/// Refused whole when it is not a batch or has more than `max_batch` items.
pub fn parse_batch_body(body: &[u8], max_batch: usize) -> Result<ReadBatch<'_>, ApiError> {
    if let Some(batch) = fast::batch(body, max_batch) {
        return Ok(batch);
    }
    walk_batch(body, max_batch)
}

/// [`parse_batch_body`] by the walk alone, without trying the typed reader.
pub fn walk_batch(body: &[u8], max_batch: usize) -> Result<ReadBatch<'static>, ApiError> {
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

/// Parses a request body as JSON, refusing a key repeated in any object
/// (serde_json would keep the last; a gateway whose JSON library keeps the
/// first would have asked another question).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("the body is not JSON: {e}")))?;
    if let Some(repeated) = json.repeated_key() {
        return Err(ApiError::repeated_key(repeated));
    }
    Ok(json.to_value())
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
        return Err(ApiError::batch_too_large(
            "requests",
            "requests",
            requests.len(),
            max_batch,
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
            join(path, &field_step(unknown)),
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
                    join(&field, &field_step(unknown)),
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

#[cfg(test)]
mod tests {
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

    /// Found by fuzzing (`fuzz/`, target `v1_request`): an unknown field
    /// named `""` was refused with an empty field path, and a key holding
    /// a `.` named two fields that do not exist.
    #[test]
    fn keys_that_are_not_plain_names_are_named_in_brackets() {
        let body = br#"{"": "InviteMember", "resource": "Company::\"acme\""}"#;
        let e = parse_single(body).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (Code::InvalidField, Some(r#"[""]"#))
        );
        assert!(e.message.starts_with(r#"[""]: unknown field"#), "{e}");
        let body = br#"{"requests": [{"principal": {"type": "M", "id": "a", "x.y": 1}}]}"#;
        let batch = parse_batch_body(body, 5).unwrap();
        assert_eq!(
            field_of(batch.requests[0].clone()),
            (Code::InvalidField, r#"requests[0].principal["x.y"]"#.into())
        );
        let repeated = parse_single(br#"{"": {"a": 1, "a": 2}}"#).unwrap_err();
        assert_eq!(
            (repeated.code, repeated.field.as_deref()),
            (Code::InvalidJson, Some(r#"[""]"#))
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
        let slow = |b: &str| walk_single(b.as_bytes());
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
        // Repeated keys: the typed reader hands such bodies over and the
        // walk refuses them, naming the key.
        let repeated = parse_single(handed_over[4].as_bytes()).unwrap_err();
        assert_eq!(repeated.code, Code::InvalidJson);
        assert!(repeated.message.contains(r#""principal""#), "{repeated}");
        assert_eq!(
            field_of(parse_single(handed_over[5].as_bytes())),
            (Code::InvalidJson, "principal".into())
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
}
