//! Cedar entity JSON read fast, for the loader and for request entities.
//!
//! Cedar's JSON parser tries every value as each of its escape forms and
//! builds an error message for each miss: about 25 µs per entity of the
//! sample world's shape, 10 s for a store of 100k seats. [`Reader`] reads
//! plain entity JSON directly and leaves the verdict to the schema
//! conformance check, falling back to Cedar's parser for anything it is
//! unsure of.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Entity, EntityId, EntityTypeName, EntityUid, EvalResult, RestrictedExpression, Schema,
};
use serde_json::{Map, Value};

/// Cedar entity JSON → [`Entity`] without Cedar's JSON parser, which tries
/// every value as each of its escape forms and builds an error message for
/// each miss: about 25 µs per entity of the sample world's shape, 10 s for a
/// store of 100k seats.
///
/// A value is read the way JSON says: strings as strings, `{"type", "id"}`
/// objects as entity references, arrays as sets, other objects as records.
/// The schema may mean otherwise (a string that is a `datetime`, a record
/// that happens to have `type` and `id`); [`Hints`] learned from Cedar's own
/// reading of a first entity of each type cover that. Whatever is read this
/// way must then pass the schema conformance check Cedar's parser itself
/// runs, and a value read differently from Cedar has a different type, so
/// it fails that check: the caller then falls back to Cedar's parser, which
/// decides (and words the error). Anything unusual (escapes other than
/// `__entity`/`__extn`, tags, action entities, non-integer numbers) is left
/// to Cedar from the start.
pub(crate) struct Reader<'s> {
    schema: &'s Schema,
    names: HashMap<String, EntityTypeName>,
    hints: HashMap<String, Hints>,
    learn: bool,
}

/// Where the schema reads an entity type's attribute values other than the
/// way JSON suggests, by path (`attr`, `attr[]` for set elements,
/// `attr.field` inside records).
#[derive(Default)]
struct Hints {
    /// Attributes already seen (and learned from) for this type.
    seen: HashSet<String>,
    paths: HashMap<String, Hint>,
}

#[derive(Clone, Copy, PartialEq)]
enum Hint {
    /// A string the schema reads with this extension constructor.
    Extension(Extension),
    /// A `{"type", "id"}` object that is a record, not a reference.
    Record,
}

#[derive(Clone, Copy, PartialEq)]
enum Extension {
    Datetime,
    Decimal,
    Ip,
    Duration,
}

impl Extension {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "datetime" => Self::Datetime,
            "decimal" => Self::Decimal,
            "ip" => Self::Ip,
            "duration" => Self::Duration,
            _ => return None,
        })
    }

    fn call(self, arg: &str) -> RestrictedExpression {
        match self {
            Self::Datetime => RestrictedExpression::new_datetime(arg),
            Self::Decimal => RestrictedExpression::new_decimal(arg),
            Self::Ip => RestrictedExpression::new_ip(arg),
            Self::Duration => RestrictedExpression::new_duration(arg),
        }
    }
}

impl<'s> Reader<'s> {
    /// `learn`: consult Cedar's parser on the first entity of each type (and
    /// on any entity bringing an attribute not seen yet for its type). Worth
    /// it for a store; a request's few entities skip it.
    pub(crate) fn new(schema: &'s Schema, learn: bool) -> Self {
        Reader {
            schema,
            names: HashMap::new(),
            hints: HashMap::new(),
            learn,
        }
    }

    /// One entity and its parents, or `None` when Cedar's parser must decide.
    pub(crate) fn entity(&mut self, item: &Value) -> Option<(Entity, Vec<EntityUid>)> {
        let obj = item.as_object()?;
        let attrs = obj.get("attrs")?.as_object()?;
        let parents = obj.get("parents")?.as_array()?;
        if obj
            .get("tags")
            .is_some_and(|t| t.as_object().is_none_or(|t| !t.is_empty()))
        {
            return None;
        }
        let (ty, this) = uid(&mut self.names, obj.get("uid")?)?;
        if ty == "Action" || ty.ends_with("::Action") {
            return None;
        }
        if self.learn {
            let hints = self.hints.entry(ty.to_owned()).or_default();
            if attrs.keys().any(|k| !hints.seen.contains(k)) {
                let cedar = Entity::from_json_value(item.clone(), Some(self.schema)).ok()?;
                for (k, v) in attrs {
                    if let Some(Ok(read)) = cedar.attr(k) {
                        learn(&mut hints.paths, &mut k.clone(), v, &read);
                    }
                    hints.seen.insert(k.clone());
                }
            }
        }
        let hints = self
            .hints
            .get(ty)
            .map(|h| &h.paths)
            .filter(|p| !p.is_empty());
        let mut path = String::new();
        let mut values = HashMap::with_capacity(attrs.len());
        for (k, v) in attrs {
            path.clear();
            path.push_str(k);
            values.insert(k.clone(), value(&mut self.names, hints, &mut path, v)?);
        }
        let parents = parents
            .iter()
            .map(|p| uid(&mut self.names, p).map(|(_, u)| u))
            .collect::<Option<Vec<_>>>()?;
        let entity = Entity::new(this, values, parents.iter().cloned().collect()).ok()?;
        Some((entity, parents))
    }
}

/// `{"type", "id"}` or `{"__entity": {"type", "id"}}`, with the type name as
/// written (Cedar's parser refuses a type name that is not in normal form).
fn uid<'v>(
    names: &mut HashMap<String, EntityTypeName>,
    value: &'v Value,
) -> Option<(&'v str, EntityUid)> {
    let obj = value.as_object()?;
    let obj = match obj.get("__entity") {
        Some(inner) if obj.len() == 1 => inner.as_object()?,
        Some(_) => return None,
        None => obj,
    };
    let (ty, id) = type_and_id(obj)?;
    let name = match names.get(ty) {
        Some(n) => n.clone(),
        None => {
            let n = crate::uid::entity_type(ty).ok()?;
            if n.to_string() != ty {
                return None;
            }
            names.insert(ty.to_owned(), n.clone());
            n
        }
    };
    Some((
        ty,
        EntityUid::from_type_name_and_id(name, EntityId::new(id)),
    ))
}

fn type_and_id(obj: &Map<String, Value>) -> Option<(&str, &str)> {
    match (obj.len(), obj.get("type"), obj.get("id")) {
        (2, Some(Value::String(t)), Some(Value::String(id))) => Some((t, id)),
        _ => None,
    }
}

fn value(
    names: &mut HashMap<String, EntityTypeName>,
    hints: Option<&HashMap<String, Hint>>,
    path: &mut String,
    v: &Value,
) -> Option<RestrictedExpression> {
    let hint = || hints.and_then(|h| h.get(path.as_str())).copied();
    Some(match v {
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
        Value::String(s) => match hint() {
            Some(Hint::Extension(e)) => e.call(s),
            _ => RestrictedExpression::new_string(s.clone()),
        },
        Value::Array(items) => {
            let len = path.len();
            path.push_str("[]");
            let items = items
                .iter()
                .map(|i| value(names, hints, path, i))
                .collect::<Option<Vec<_>>>();
            path.truncate(len);
            RestrictedExpression::new_set(items?)
        }
        Value::Object(obj) if obj.keys().any(|k| k.starts_with("__")) => {
            match (obj.len(), obj.get("__entity"), obj.get("__extn")) {
                (1, Some(_), None) => RestrictedExpression::new_entity_uid(uid(names, v)?.1),
                (1, None, Some(Value::Object(call))) => {
                    match (call.len(), call.get("fn"), call.get("arg")) {
                        (2, Some(Value::String(f)), Some(Value::String(arg))) => {
                            Extension::named(f)?.call(arg)
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Value::Object(obj) if type_and_id(obj).is_some() && hint() != Some(Hint::Record) => {
            RestrictedExpression::new_entity_uid(uid(names, v)?.1)
        }
        Value::Object(obj) => {
            let len = path.len();
            let mut fields = Vec::with_capacity(obj.len());
            for (k, field) in obj {
                path.push('.');
                path.push_str(k);
                let read = value(names, hints, path, field);
                path.truncate(len);
                fields.push((k.clone(), read?));
            }
            RestrictedExpression::new_record(fields).ok()?
        }
        Value::Null => return None,
    })
}

/// Records where Cedar read `json` (at `path`) differently from [`value`].
fn learn(paths: &mut HashMap<String, Hint>, path: &mut String, json: &Value, read: &EvalResult) {
    match (json, read) {
        (Value::String(_), EvalResult::ExtensionValue(call)) => {
            if let Some(e) = call.split('(').next().and_then(Extension::named) {
                paths.insert(path.clone(), Hint::Extension(e));
            }
        }
        (Value::Object(obj), EvalResult::Record(record)) => {
            if type_and_id(obj).is_some() {
                paths.insert(path.clone(), Hint::Record);
            }
            let len = path.len();
            for (k, field) in obj {
                if let Some(read) = record.get(k) {
                    path.push('.');
                    path.push_str(k);
                    learn(paths, path, field, read);
                    path.truncate(len);
                }
            }
        }
        (Value::Array(items), EvalResult::Set(set)) => {
            // Set elements come back unordered; all share the element type,
            // so any element tells how the schema reads them.
            let len = path.len();
            path.push_str("[]");
            for read in set.iter() {
                if let Some(json) = items.iter().find(|i| same_kind(i, read)) {
                    learn(paths, path, json, read);
                }
            }
            path.truncate(len);
        }
        _ => {}
    }
}

/// Whether Cedar's `read` can have come from `json` (to pair set elements).
fn same_kind(json: &Value, read: &EvalResult) -> bool {
    matches!(
        (json, read),
        (Value::String(_), EvalResult::ExtensionValue(_))
            | (Value::Object(_), EvalResult::Record(_))
            | (Value::Array(_), EvalResult::Set(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::Entities;
    use serde_json::json;

    const SCHEMA: &str = r#"
        entity Org in [Org];
        entity User in [Org] = {
            when: datetime,
            amount: decimal,
            addr: ipaddr,
            wait: duration,
            pair: { type: String, id: String },
            org: Org,
            orgs: Set<Org>,
            words: Set<String>,
            times: Set<datetime>,
            nested: { at: datetime, who: User },
            maybe?: String,
            n: Long,
        };
    "#;

    fn schema() -> Schema {
        Schema::from_cedarschema_str(SCHEMA).unwrap().0
    }

    fn user(id: &str, attrs: Value) -> Value {
        let mut base = json!({
            "when": "2026-01-02T03:04:05Z",
            "amount": "1.25",
            "addr": "10.0.0.1",
            "wait": "1h30m",
            "pair": {"type": "T", "id": "i"},
            "org": {"type": "Org", "id": "o"},
            "orgs": [{"__entity": {"type": "Org", "id": "o"}}, {"type": "Org", "id": "p"}],
            "words": ["a", "b"],
            "times": ["2026-01-01T00:00:00Z"],
            "nested": {"at": {"__extn": {"fn": "datetime", "arg": "2026-05-05T00:00:00Z"}}, "who": {"type": "User", "id": "u0"}},
            "n": 3,
        });
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), attrs) {
            base.extend(extra);
        }
        json!({"uid": {"type": "User", "id": id}, "attrs": base, "parents": [{"type": "Org", "id": "o"}]})
    }

    /// The fast reading of `items` as a store, or `None` where it defers.
    fn fast(schema: &Schema, items: &[Value]) -> Option<Entities> {
        let mut reader = Reader::new(schema, true);
        let all = items
            .iter()
            .map(|i| reader.entity(i).map(|(e, _)| e))
            .collect::<Option<Vec<_>>>()?;
        Entities::from_entities(all, Some(schema)).ok()
    }

    #[test]
    fn the_fast_reading_equals_cedars_or_defers_to_it() {
        let schema = schema();
        let org = |id: &str| json!({"uid": {"type": "Org", "id": id}, "attrs": {}, "parents": []});
        let good = vec![
            org("o"),
            org("p"),
            user("u0", json!({})),
            user("u1", json!({"maybe": "x", "words": []})),
            user(
                "u2",
                json!({"pair": {"type": "Org", "id": "o"}, "times": []}),
            ),
        ];
        assert!(fast(&schema, &good).is_some(), "plain data is read fast");

        // Whatever the fast reading accepts, Cedar accepts and reads alike;
        // the rest (Cedar refuses all but the last two) it leaves to Cedar.
        let cases = [
            user("u3", json!({"when": "yesterday"})),
            user("u4", json!({"org": "o"})),
            user("u5", json!({"n": 1.5})),
            user("u6", json!({"extra": true})),
            user("u7", json!({"words": ["a", 1]})),
            user("u8", json!({"nested": {"at": "2026-05-05T00:00:00Z"}})),
            user("u9", json!({"org": {"type": "Nope", "id": "o"}})),
            json!({"uid": {"type": "User", "id": "x"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Org", "id": "o"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Org", "id": "q"}, "attrs": {}, "parents": [], "tags": {}}),
        ];
        for case in std::iter::once(None).chain(cases.into_iter().map(Some)) {
            let mut items = good.clone();
            items.extend(case.clone());
            let cedar = Entities::from_json_value(Value::Array(items.clone()), Some(&schema));
            if let Some(read) = fast(&schema, &items) {
                let cedar = cedar.unwrap_or_else(|e| panic!("fast accepted {case:?}: {e}"));
                assert_eq!(read.len(), cedar.len());
                for e in cedar.iter() {
                    assert_eq!(read.get(&e.uid()), Some(e), "{}", e.uid());
                }
            }
        }
    }

    #[test]
    fn the_sample_world_is_read_fast_and_alike() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("schema/doorman.cedarschema")).unwrap();
        let schema = Schema::from_cedarschema_str(&text).unwrap().0;
        let text = std::fs::read_to_string(root.join("fixtures/entities/world.yaml")).unwrap();
        let items: Vec<Value> = serde_saphyr::from_str(&text).unwrap();
        let cedar = Entities::from_json_value(Value::Array(items.clone()), Some(&schema)).unwrap();
        let read = fast(&schema, &items).expect("the sample world is read fast");
        assert_eq!(read.len(), cedar.len());
        for e in cedar.iter() {
            assert_eq!(read.get(&e.uid()), Some(e), "{}", e.uid());
        }
    }
}
