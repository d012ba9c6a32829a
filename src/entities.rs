//! Request-scoped entities: what a gateway sends along with a request.
//!
//! A gateway may send entities with a request (a member invited a second
//! ago, a contact's fresh labels). They win over stored entities with the
//! same UID, and their parents may name stored entities. An [`Overlay`] is
//! those entities parsed and checked against the schema, kept apart from
//! the store: [`crate::view`] layers them over it for the one request,
//! never copying the store or recomputing its closure.
//!
//! Parsing is the cost to keep down here: plain entity JSON is read by
//! [`crate::entity_json::Reader`] and checked with the schema's cached type
//! descriptions ([`Conformance`]); anything the reader is unsure of takes
//! Cedar's own parser, which also words every refusal.

use std::collections::HashSet;

use cedar_policy::Schema;
use cedar_policy_core::ast::{Entity, EntityUID};
use serde_json::Value;

use crate::entity_json::{Json, Reader};
use crate::store::schema::Conformance;
use crate::store::{Key, Names, Record, Types};

/// Entities sent with a request, parsed and checked against the schema.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    // Looked up for every entity a request reaches: a fast hash, not SipHash.
    entities: foldhash::HashMap<EntityUID, Given>,
}

/// One request entity with its parents (as the request gives them).
#[derive(Debug, Clone)]
pub(crate) struct Given {
    form: Form,
    pub(crate) parents: Vec<EntityUID>,
}

/// A request entity as read: in the store's compact form when the fast
/// reader read it (the view builds its Cedar form once, with the ancestors
/// the merged hierarchy gives it), else as Cedar's parser read it.
#[derive(Debug, Clone)]
enum Form {
    Record(Record),
    Cedar(Entity),
}

impl Given {
    /// Cedar's entity, with `ancestors` as its ancestor set, the
    /// attributes `attr` keeps, and its tags when `tags` (see
    /// [`Record::to_cedar_with`]).
    pub(crate) fn to_cedar_with(
        &self,
        ancestors: impl Iterator<Item = EntityUID>,
        attr: impl Fn(&str) -> bool,
        tags: bool,
    ) -> Entity {
        match &self.form {
            Form::Record(record) => record.to_cedar_with(ancestors, attr, tags),
            Form::Cedar(entity) => {
                let (id, attrs, _, _, all_tags) = entity.clone().into_inner();
                Entity::new_with_attr_partial_value(
                    id,
                    attrs.into_iter().filter(|(k, _)| attr(k)),
                    HashSet::new(),
                    ancestors.collect(),
                    all_tags.into_iter().filter(|_| tags),
                )
            }
        }
    }
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
    /// schema-directed and checked when there is a schema, exactly like
    /// stored entities.
    pub(crate) fn parse(
        json: Value,
        schema: Option<(&Schema, &Conformance)>,
    ) -> Result<Overlay, OverlayError> {
        match &json {
            Value::Array(items) => {
                Overlay::read(&items.iter().map(Json::of).collect::<Vec<_>>(), schema)
            }
            Value::Null => Ok(Overlay::default()),
            _ => Err(OverlayError {
                index: 0,
                message: "must be a list of entities".into(),
            }),
        }
    }

    /// [`Overlay::parse`] on a list already read into the fast reader's
    /// tree (the sidecar reads request bodies that way, strings borrowed
    /// from the body).
    pub(crate) fn read(
        items: &[Json<'_>],
        schema: Option<(&Schema, &Conformance)>,
    ) -> Result<Overlay, OverlayError> {
        let mut reader = schema.map(|(s, _)| Reader::new(s, false));
        let (mut types, mut names) = (Types::default(), Names::default());
        let mut entities =
            foldhash::HashMap::with_capacity_and_hasher(items.len(), Default::default());
        for (index, item) in items.iter().enumerate() {
            let refuse = |message: String| OverlayError { index, message };
            // The fast reading stands only if the schema certainly accepts
            // it: a value it read otherwise than Cedar (a string the schema
            // means as a datetime) has another type and fails the check.
            // Then Cedar's parser reads it, and Cedar's check on its reading
            // decides, with Cedar's words.
            let fast = reader
                .as_mut()
                .and_then(|r| r.record(item, &mut types, &mut names, 0))
                .filter(|r| schema.is_some_and(|(_, c)| c.accepts(r)));
            let (uid, given) = match fast {
                Some(record) => (
                    record.key.uid(),
                    Given {
                        parents: record.parents.iter().map(Key::uid).collect(),
                        form: Form::Record(record),
                    },
                ),
                None => {
                    let entity = cedar_policy::Entity::from_json_value(
                        item.to_value(),
                        schema.map(|(s, _)| s),
                    )
                    .map_err(|e| refuse(crate::diag::error_chain(&e)))?;
                    let entity: Entity = AsRef::<Entity>::as_ref(&entity).clone();
                    if let Some((_, conformance)) = schema {
                        conformance.check(&entity).map_err(refuse)?;
                    }
                    (
                        entity.uid().clone(),
                        Given {
                            parents: entity.parents().cloned().collect(),
                            form: Form::Cedar(entity),
                        },
                    )
                }
            };
            if entities.insert(uid, given).is_some() {
                return Err(refuse("the same entity is given twice".into()));
            }
        }
        Ok(Overlay { entities })
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub(crate) fn get(&self, uid: &EntityUID) -> Option<&Given> {
        self.entities.get(uid)
    }

    pub(crate) fn uids(&self) -> impl Iterator<Item = &EntityUID> {
        self.entities.keys()
    }
}

impl crate::snapshot::Snapshot {
    /// A request-scoped entity for `uid`: its stored attributes (if it is
    /// stored) with `properties` layered over them. A property replaces
    /// the stored attribute of the same name; the stored parents and tags
    /// are kept; an entity that is not stored is made of its properties
    /// alone. Parsed and checked against the schema like any request
    /// entity (errors name index 0).
    pub fn overlay_properties(
        &self,
        uid: &cedar_policy::EntityUid,
        properties: &serde_json::Map<String, Value>,
    ) -> Result<Overlay, OverlayError> {
        let refuse = |message: String| OverlayError { index: 0, message };
        let mut entity = match self.store.get(uid.as_ref()) {
            Some(record) => record
                .to_cedar(record.parents.iter().map(Key::uid))
                .to_json_value()
                .map_err(|e| refuse(crate::diag::error_chain(&e)))?,
            None => serde_json::json!({
                "uid": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()},
                "attrs": {},
                "parents": [],
            }),
        };
        if let Some(Value::Object(attrs)) = entity.get_mut("attrs") {
            for (name, value) in properties {
                attrs.insert(name.clone(), value.clone());
            }
        }
        self.overlay(Value::Array(vec![entity]))
    }
}

/// Entity references in a context as the gateway wrote it: `{"__entity":
/// {...}}` or (schema-directed) `{"type": ..., "id": ...}`. Taking a few too
/// many is harmless; missing one would change a decision.
pub(crate) fn context_uids(value: &Value, out: &mut Vec<EntityUID>) {
    match value {
        Value::Object(map) => {
            let target = map.get("__entity").unwrap_or(value);
            if let (Some(Value::String(t)), Some(Value::String(id))) =
                (target.get("type"), target.get("id"))
                && let Ok(uid) = crate::uid::uid_from_parts(t, id)
            {
                out.push(AsRef::<EntityUID>::as_ref(&uid).clone());
            }
            map.values().for_each(|v| context_uids(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| context_uids(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"
        entity Org in [Org];
        entity User in [Org] = { when: datetime, n: Long };
    "#;

    #[test]
    fn request_entities_read_like_cedars_and_are_checked() {
        let schema = Schema::from_cedarschema_str(SCHEMA).unwrap().0;
        let conformance = Conformance::new(&schema);
        let items = vec![
            json!({"uid": {"type": "Org", "id": "a"}, "attrs": {}, "parents": [{"type": "Org", "id": "b"}]}),
            json!({"uid": {"__entity": {"type": "Org", "id": "b"}}, "attrs": {}, "parents": []}),
            json!({"uid": {"type": "User", "id": "u"}, "attrs": {"when": "2026-01-01", "n": 1}, "parents": []}),
        ];
        let read = Overlay::parse(Value::Array(items.clone()), Some((&schema, &conformance)))
            .expect("read");
        for item in &items {
            let cedar = cedar_policy::Entity::from_json_value(item.clone(), Some(&schema)).unwrap();
            let cedar: &Entity = cedar.as_ref();
            let given = read.get(cedar.uid()).unwrap();
            // Request entities are read without learned hints: the string
            // the schema means as a datetime goes to Cedar's parser.
            let fast = cedar.uid().entity_type().to_string() == "Org";
            assert_eq!(
                matches!(given.form, Form::Record(_)),
                fast,
                "{}",
                cedar.uid()
            );
            let entity = given.to_cedar_with(given.parents.iter().cloned(), |_| true, true);
            // Cedar's parser keeps parents apart from other ancestors; the
            // view gives every entity its closed set as its parents.
            assert_eq!(entity.uid(), cedar.uid());
            assert_eq!(
                entity.attrs().collect::<Vec<_>>(),
                cedar.attrs().collect::<Vec<_>>()
            );
            let mut ours: Vec<_> = entity.ancestors().collect();
            let mut theirs: Vec<_> = cedar.ancestors().collect();
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs);
            assert_eq!(given.parents.len(), cedar.parents().count());
        }
        // Refusals name the entity's position and say why.
        for (bad, word) in [
            (
                json!({"uid": {"type": "User", "id": "x"}, "attrs": {"when": "soon", "n": 1}, "parents": []}),
                "datetime",
            ),
            (
                json!({"uid": {"type": "User", "id": "x"}, "attrs": {"n": 1}, "parents": []}),
                "when",
            ),
            (
                json!({"uid": {"type": "Org", "id": "x"}, "attrs": {}, "parents": [{"type": "User", "id": "u"}]}),
                "ancestor",
            ),
        ] {
            let err = Overlay::parse(
                json!([items[1].clone(), bad]),
                Some((&schema, &conformance)),
            )
            .unwrap_err();
            assert_eq!(err.index, 1);
            assert!(err.message.contains(word), "{}", err.message);
        }
        let twice = Overlay::parse(json!([items[1].clone(), items[1].clone()]), None).unwrap_err();
        assert_eq!(twice.index, 1);
    }
}
