//! Request-scoped entities: an overlay on the stored entity set.
//!
//! A gateway may send entities with a request (a member invited a second ago,
//! a contact's fresh labels). They must win over stored entities with the
//! same UID, and their parents may name stored entities. Cedar evaluates
//! against one `Entities`, and merging into the store would mean cloning it
//! (or recomputing its transitive closure) per request. Instead the overlay
//! builds a small `Entities` holding only what this request can reach: the
//! principal, action, resource and context entities, every entity named in a
//! policy the request evaluates (its slice, see [`crate::slice`]), and,
//! transitively, their ancestors and the entities their
//! attributes and tags name. Cedar can only look at entities it reaches that
//! way, so the decision is the same as against the merged store, at a cost
//! proportional to what the request reaches, not to the store's size.
//!
//! One case cannot be answered this way: a request entity that overrides a
//! stored entity and *drops* one of its stored ancestors, while stored
//! descendants of it are in the view. Their ancestor sets were closed at
//! load time and still hold the dropped ancestor, so the view would be
//! wrong (a moved agent's calls would stay in the old company). That case
//! is refused with an error naming the descendants to send along, never
//! answered wrongly.
//!
//! Reading entity JSON is the other cost this module keeps down: Cedar's
//! parser spends tens of microseconds per entity. [`Reader`] reads plain
//! entity JSON directly and leaves the verdict to the schema conformance
//! check Cedar's parser runs anyway, falling back to Cedar's parser for
//! anything it is unsure of. The loader uses it for stored entities too.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Entities, Entity, EntityId, EntityTypeName, EntityUid, EvalResult, RestrictedExpression, Schema,
};
use serde_json::{Map, Value};

/// Entities sent with a request, parsed and checked against the schema.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// Each entity with its parents (kept apart because `Entity` only gives
    /// them up by value).
    entities: HashMap<EntityUid, (Entity, Vec<EntityUid>)>,
}

/// Why request entities were refused; `index` is the position in the list.
#[derive(Debug, Clone, thiserror::Error)]
#[error("entities[{index}]: {message}")]
pub struct OverlayError {
    pub index: usize,
    pub message: String,
}

impl Overlay {
    /// Parses Cedar entity JSON (a list of `{uid, attrs, parents}`),
    /// schema-directed when there is a schema, exactly like stored entities.
    pub fn parse(json: Value, schema: Option<&Schema>) -> Result<Overlay, OverlayError> {
        let items = match json {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => {
                return Err(OverlayError {
                    index: 0,
                    message: "must be a list of entities".into(),
                });
            }
        };
        if let Some(schema) = schema
            && let Some(overlay) = Self::parse_plain(&items, schema)
        {
            return Ok(overlay);
        }
        let mut entities = HashMap::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let entity = Entity::from_json_value(item, schema).map_err(|e| OverlayError {
                index,
                message: crate::load::error_chain(&e),
            })?;
            let (_, _, parents) = entity.clone().into_inner();
            let parents = parents.into_iter().collect();
            if entities.insert(entity.uid(), (entity, parents)).is_some() {
                return Err(OverlayError {
                    index,
                    message: "the same entity is given twice".into(),
                });
            }
        }
        Ok(Overlay { entities })
    }

    /// The fast path of [`Overlay::parse`] (see [`Reader`]): the entities
    /// read directly, then checked against the schema by the conformance
    /// check Cedar's parser runs on each entity. `None` sends the request
    /// down the per-entity path, which gives every refusal its message
    /// (and accepts what this path is unsure of, such as a cycle among the
    /// request's entities, which only matters if the request reaches it).
    fn parse_plain(items: &[Value], schema: &Schema) -> Option<Overlay> {
        let mut reader = Reader::new(schema, false);
        let mut entities = HashMap::with_capacity(items.len());
        let mut check = Vec::with_capacity(items.len());
        for item in items {
            let (entity, parents) = reader.entity(item)?;
            check.push(entity.clone());
            if entities.insert(entity.uid(), (entity, parents)).is_some() {
                return None;
            }
        }
        Entities::empty().add_entities(check, Some(schema)).ok()?;
        Some(Overlay { entities })
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    fn get(&self, uid: &EntityUid) -> Option<&(Entity, Vec<EntityUid>)> {
        self.entities.get(uid)
    }
}

/// The entities one request can reach: `layers` (first match wins) over the
/// stored `store`, starting from `roots`.
pub(crate) fn request_view<'a>(
    store: &Entities,
    layers: &[&Overlay],
    roots: impl IntoIterator<Item = &'a EntityUid>,
) -> Result<Entities, String> {
    let mut picked: HashMap<EntityUid, Entity> = HashMap::new();
    let mut queue: Vec<EntityUid> = roots.into_iter().cloned().collect();
    let mut seen: HashSet<EntityUid> = HashSet::new();
    // Request entities that replace a stored one, and stored entities taken.
    let mut overriding: Vec<EntityUid> = Vec::new();
    let mut stored: Vec<EntityUid> = Vec::new();
    while let Some(uid) = queue.pop() {
        if !seen.insert(uid.clone()) {
            continue;
        }
        let from_request = layers.iter().find_map(|l| l.get(&uid));
        let entity = match from_request {
            Some((entity, parents)) => {
                queue.extend(parents.iter().cloned());
                if store.get(&uid).is_some() {
                    overriding.push(uid.clone());
                }
                entity
            }
            None => match store.get(&uid) {
                Some(entity) => {
                    // Stored ancestor sets are already closed; each ancestor
                    // is still visited so it is present with its attributes.
                    queue.extend(store.ancestors(&uid).into_iter().flatten().cloned());
                    stored.push(uid.clone());
                    entity
                }
                // Unknown to both: Cedar treats it as an entity with no
                // attributes and no parents, which is what leaving it out does.
                None => continue,
            },
        };
        let values = entity
            .attrs()
            .chain(entity.tags())
            .filter_map(|(_, v)| v.ok());
        for value in values {
            collect_uids(&value, &mut queue);
        }
        let entity = entity.clone();
        picked.insert(uid, entity);
    }
    for uid in &overriding {
        check_dropped_ancestors(store, layers, uid, &stored)?;
    }
    Entities::from_entities(picked.into_values(), None).map_err(|e| e.to_string())
}

/// Refuses an override of `uid` that drops a stored ancestor while stored
/// entities below `uid` are in the view (see the module comment).
fn check_dropped_ancestors(
    store: &Entities,
    layers: &[&Overlay],
    uid: &EntityUid,
    stored: &[EntityUid],
) -> Result<(), String> {
    let now = ancestors_through(store, layers, uid);
    let dropped: Vec<String> = store
        .ancestors(uid)
        .into_iter()
        .flatten()
        .filter(|a| !now.contains(a))
        .map(ToString::to_string)
        .collect();
    if dropped.is_empty() {
        return Ok(());
    }
    let below: Vec<String> = stored
        .iter()
        .filter(|e| store.ancestors(e).into_iter().flatten().any(|a| a == uid))
        .map(ToString::to_string)
        .collect();
    if below.is_empty() {
        return Ok(());
    }
    Err(format!(
        "`{uid}` is given without its stored ancestor(s) {}, but stored entities under it \
         ({}) would keep them; send those entities in `entities` too",
        dropped.join(", "),
        below.join(", ")
    ))
}

/// The ancestors `uid` has in the view [`request_view`] builds, computed
/// without building it: policy slicing needs them to choose the policies,
/// whose literals in turn are roots of the view.
///
/// The view's transitive closure follows each entity's parents as the
/// first layer holding it gives them, or else its stored (already closed)
/// ancestor set; the walk here follows the same edges, so both agree.
pub(crate) fn ancestors_through(
    store: &Entities,
    layers: &[&Overlay],
    uid: &EntityUid,
) -> Vec<EntityUid> {
    let mut found: Vec<EntityUid> = Vec::new();
    let mut queue: Vec<EntityUid> = Vec::new();
    let edges = |uid: &EntityUid, queue: &mut Vec<EntityUid>| match layers
        .iter()
        .find_map(|l| l.get(uid))
    {
        Some((_, parents)) => queue.extend(parents.iter().cloned()),
        None => queue.extend(store.ancestors(uid).into_iter().flatten().cloned()),
    };
    edges(uid, &mut queue);
    while let Some(next) = queue.pop() {
        // Ancestor lists are short; a linear scan beats hashing here.
        if found.contains(&next) {
            continue;
        }
        edges(&next, &mut queue);
        found.push(next);
    }
    found
}

fn collect_uids(value: &EvalResult, out: &mut Vec<EntityUid>) {
    match value {
        EvalResult::EntityUid(uid) => out.push(uid.clone()),
        EvalResult::Set(set) => set.iter().for_each(|v| collect_uids(v, out)),
        EvalResult::Record(rec) => rec.iter().for_each(|(_, v)| collect_uids(v, out)),
        _ => {}
    }
}

/// Entity references in a context as the gateway wrote it: `{"__entity":
/// {...}}` or (schema-directed) `{"type": ..., "id": ...}`. Taking a few too
/// many is harmless; missing one would change a decision.
pub(crate) fn context_uids(value: &Value, out: &mut Vec<EntityUid>) {
    match value {
        Value::Object(map) => {
            let target = map.get("__entity").unwrap_or(value);
            if let (Some(Value::String(t)), Some(Value::String(id))) =
                (target.get("type"), target.get("id"))
                && let Ok(uid) = crate::decide::uid_from_parts(t, id)
            {
                out.push(uid);
            }
            map.values().for_each(|v| context_uids(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| context_uids(v, out)),
        _ => {}
    }
}

// ------------------------------------------------------- entity JSON, fast

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
            let n = crate::decide::entity_type(ty).ok()?;
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
    fn request_entities_read_fast_answer_like_cedars() {
        let schema = schema();
        // Without learning, only values read the JSON way are fast: an
        // org's members, not a user's datetimes.
        let items = vec![
            json!({"uid": {"type": "Org", "id": "a"}, "attrs": {}, "parents": [{"type": "Org", "id": "b"}]}),
            json!({"uid": {"__entity": {"type": "Org", "id": "b"}}, "attrs": {}, "parents": []}),
        ];
        let fast = Overlay::parse_plain(&items, &schema).expect("read fast");
        for item in &items {
            let cedar = Entity::from_json_value(item.clone(), Some(&schema)).unwrap();
            let (entity, parents) = fast.get(&cedar.uid()).unwrap();
            assert_eq!(entity, &cedar);
            assert_eq!(
                parents.len(),
                usize::from(entity.uid().id().unescaped() == "a")
            );
        }
        // Not plain: the per-entity path decides, with its message.
        let refused = Overlay::parse(
            Value::Array(vec![user("u3", json!({"when": "soon"}))]),
            Some(&schema),
        );
        assert_eq!(refused.unwrap_err().index, 0);
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
