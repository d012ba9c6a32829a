//! Cedar entity JSON read fast, for the loader and for request entities.
//!
//! Cedar's JSON parser tries every value as each of its escape forms and
//! builds an error message for each miss, then evaluates every attribute as
//! a restricted expression: about 25 µs per entity of the sample world's
//! shape, 10 s for a store of 100k seats. [`Reader`] reads plain entity JSON
//! straight into the store's compact [`Record`] and leaves the verdict to
//! the schema conformance check, falling back to Cedar's parser for
//! anything it is unsure of.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use cedar_policy::{EvalResult, Schema};
use cedar_policy_core::ast::{ExtensionFunction, Name, PartialValue, ValueKind};
use cedar_policy_core::extensions::Extensions;
use serde_json::Value;
use smol_str::SmolStr;

use crate::store::{Key, Names, Record, Types, Val};

mod tree;
pub(crate) use tree::Fields;
pub(crate) use tree::Json;
pub(crate) use tree::Repeated;
pub(crate) use tree::field_step;

/// Cedar entity JSON → a [`Record`] without Cedar's JSON parser.
///
/// A value is read the way JSON says: strings as strings, `{"type", "id"}`
/// objects as entity references, arrays as sets, other objects as records.
/// The schema may mean otherwise (a string that is a `datetime`, a record
/// that happens to have `type` and `id`); [`Hints`] learned from Cedar's own
/// reading of a first entity of each type cover that. Whatever is read this
/// way must then pass the schema conformance check
/// ([`crate::store::schema::Conformance::accepts`]), and a value read
/// differently from Cedar has a different type, so it fails that check: the
/// caller then falls back to Cedar's parser, which decides (and words the
/// error). Anything unusual (escapes other than `__entity`/`__extn`, tags,
/// action entities, non-integer numbers) is left to Cedar from the start.
pub(crate) struct Reader<'s> {
    schema: &'s Schema,
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
    const ALL: [Extension; 4] = [Self::Datetime, Self::Decimal, Self::Ip, Self::Duration];

    fn name(self) -> &'static str {
        match self {
            Self::Datetime => "datetime",
            Self::Decimal => "decimal",
            Self::Ip => "ip",
            Self::Duration => "duration",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The value Cedar's constructor makes of `arg`, or `None` where it
    /// refuses it (then Cedar's parser words the refusal).
    fn call(self, arg: &str) -> Option<Val> {
        static FUNCTIONS: OnceLock<Vec<Option<&'static ExtensionFunction>>> = OnceLock::new();
        let functions = FUNCTIONS.get_or_init(|| {
            Self::ALL
                .iter()
                .map(|e| {
                    let name = Name::parse_unqualified_name(e.name()).ok()?;
                    Extensions::all_available().func(&name).ok()
                })
                .collect()
        });
        let function = functions.get(self as usize).copied().flatten()?;
        match function.call(&[arg.into()]).ok()? {
            PartialValue::Value(v) => match v.value {
                ValueKind::ExtensionValue(ext) => Some(Val::Ext(ext)),
                _ => None,
            },
            PartialValue::Residual(_) => None,
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
            hints: HashMap::new(),
            learn,
        }
    }

    /// One entity as a record from file `file` (type names shared through
    /// `types`, attribute-name lists through `names`), or `None` when
    /// Cedar's parser must decide.
    pub(crate) fn record(
        &mut self,
        item: &Json<'_>,
        types: &mut Types,
        names: &mut Names,
        file: u32,
    ) -> Option<Record> {
        let obj = item.as_object()?;
        let attrs = obj.get("attrs")?.as_object()?;
        let parents = obj.get("parents")?.as_array()?;
        if obj
            .get("tags")
            .is_some_and(|t| t.as_object().is_none_or(|t| t.len() != 0))
        {
            return None;
        }
        let (ty, key) = uid(types, obj.get("uid")?)?;
        if ty == "Action" || ty.ends_with("::Action") {
            return None;
        }
        if self.learn {
            if !self.hints.contains_key(ty) {
                self.hints.insert(ty.to_owned(), Hints::default());
            }
            let hints = self.hints.get_mut(ty)?;
            if attrs.iter()?.any(|(k, _)| !hints.seen.contains(k)) {
                let json = item.to_value();
                let cedar =
                    cedar_policy::Entity::from_json_value(json.clone(), Some(self.schema)).ok()?;
                for (k, v) in json.get("attrs")?.as_object()? {
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
        let mut values = Vec::with_capacity(attrs.len());
        for (k, v) in attrs.iter()? {
            path.clear();
            path.push_str(k);
            values.push((SmolStr::new(k), value(types, hints, &mut path, v)?));
        }
        let parents = parents
            .iter()
            .map(|p| uid(types, p).map(|(_, k)| k))
            .collect::<Option<Vec<_>>>()?;
        Some(Record::new(key, values, parents, names, file))
    }
}

/// `{"type", "id"}` or `{"__entity": {"type", "id"}}`, with the type name as
/// written (Cedar's parser refuses a type name that is not in normal form).
fn uid<'v>(types: &mut Types, value: &'v Json<'_>) -> Option<(&'v str, Key)> {
    let obj = value.as_object()?;
    let obj = match obj.get("__entity") {
        Some(inner) if obj.len() == 1 => inner.as_object()?,
        Some(_) => return None,
        None => obj,
    };
    let (ty, id) = type_and_id(obj)?;
    Some((ty, types.written(ty, id)?))
}

fn type_and_id<'v>(obj: &'v Fields<'_>) -> Option<(&'v str, &'v str)> {
    match (obj.len(), obj.get("type"), obj.get("id")) {
        (2, Some(Json::Str(t)), Some(Json::Str(id))) => Some((t, id)),
        _ => None,
    }
}

/// One attribute value. Sets keep the JSON's order and repeats: Cedar's
/// set, made of them when the entity is materialised, is the same.
fn value(
    types: &mut Types,
    hints: Option<&HashMap<String, Hint>>,
    path: &mut String,
    v: &Json<'_>,
) -> Option<Val> {
    let hint = || hints.and_then(|h| h.get(path.as_str())).copied();
    Some(match v {
        Json::Bool(b) => Val::Bool(*b),
        Json::Int(n) => Val::Long(*n),
        Json::Str(s) => match hint() {
            Some(Hint::Extension(e)) => e.call(s)?,
            _ => Val::Str(SmolStr::new(s)),
        },
        Json::Arr(items) => {
            let len = path.len();
            path.push_str("[]");
            let items = items
                .iter()
                .map(|i| value(types, hints, path, i))
                .collect::<Option<Box<[_]>>>();
            path.truncate(len);
            Val::Set(items?)
        }
        Json::Obj(obj) if obj.iter()?.any(|(k, _)| k.starts_with("__")) => {
            match (obj.len(), obj.get("__entity"), obj.get("__extn")) {
                (1, Some(_), None) => Val::Entity(uid(types, v)?.1),
                (1, None, Some(Json::Obj(call))) => {
                    match (call.len(), call.get("fn"), call.get("arg")) {
                        (2, Some(Json::Str(f)), Some(Json::Str(arg))) => {
                            Extension::named(f)?.call(arg)?
                        }
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Json::Obj(obj) if type_and_id(obj).is_some() && hint() != Some(Hint::Record) => {
            Val::Entity(uid(types, v)?.1)
        }
        Json::Obj(obj) => {
            let len = path.len();
            let mut fields = Vec::with_capacity(obj.len());
            for (k, field) in obj.iter()? {
                path.push('.');
                path.push_str(k);
                let read = value(types, hints, path, field);
                path.truncate(len);
                fields.push((SmolStr::new(k), read?));
            }
            fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Val::Record(fields.into())
        }
        Json::Num(_) | Json::Null => return None,
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
            if obj.len() == 2
                && obj.get("type").is_some_and(Value::is_string)
                && obj.get("id").is_some_and(Value::is_string)
            {
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
        entity Color enum ["red", "blue"];
        entity User in [Org] = {
            color?: Color,
            colors?: Set<Color>,
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

    /// The fast reading of `items`, accepted by the fast check, as Cedar's
    /// `Entities` (which checks them again against the schema), or `None`
    /// where it defers to Cedar.
    fn fast(schema: &Schema, items: &[Value]) -> Option<Entities> {
        let conformance = crate::store::schema::Conformance::new(schema);
        let mut reader = Reader::new(schema, true);
        let (mut types, mut names) = (Types::default(), Names::default());
        let all = items
            .iter()
            .map(|i| {
                let record = reader.record(&Json::of(i), &mut types, &mut names, 0)?;
                conformance.accepts(&record).then(|| {
                    cedar_policy::Entity::from(record.to_cedar(record.parents.iter().map(Key::uid)))
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(
            Entities::from_entities(all, Some(schema))
                .expect("Cedar accepts whatever the fast check accepted"),
        )
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
        let mut with_enum = good.clone();
        with_enum.push(user(
            "u11",
            json!({"color": {"type": "Color", "id": "red"}}),
        ));
        assert!(
            fast(&schema, &with_enum).is_some(),
            "an enumerated id is read fast"
        );

        // Whatever the fast reading accepts, Cedar accepts and reads alike;
        // the rest it leaves to Cedar. Cedar accepts `u11`, the enumerated
        // `Color::"red"` and the two `Org`s; it refuses all the others.
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
            user("u10", json!({"color": {"type": "Color", "id": "green"}})),
            user("u11", json!({"color": {"type": "Color", "id": "red"}})),
            user(
                "u12",
                json!({"colors": [{"type": "Color", "id": "red"}, {"type": "Color", "id": "pink"}]}),
            ),
            user(
                "u13",
                json!({"pair": {"type": "T", "id": "i", "more": "x"}}),
            ),
            user("u14", json!({"words": "a"})),
            json!({"uid": {"type": "User", "id": "u15"}, "attrs": user("x", json!({}))["attrs"], "parents": [{"type": "User", "id": "u0"}]}),
            json!({"uid": {"type": "Color", "id": "green"}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "Color", "id": "red"}, "attrs": {}, "parents": []}),
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
