//! Request-scoped entities: an overlay on the stored entity set.
//!
//! A gateway may send entities with a request (a member invited a second ago,
//! a contact's fresh labels). They must win over stored entities with the
//! same UID, and their parents may name stored entities. Cedar evaluates
//! against one `Entities`, and merging into the store would mean cloning it
//! (or recomputing its transitive closure) per request. Instead the overlay
//! builds a small `Entities` holding only what this request can reach: the
//! principal, action, resource and context entities, every entity named in a
//! policy, and, transitively, their ancestors and the entities their
//! attributes and tags name. Cedar can only look at entities it reaches that
//! way, so the decision is the same as against the merged store, at a cost
//! proportional to what the request reaches, not to the store's size.
//!
//! Known limit: a request entity that *removes* a parent edge of a stored
//! entity does not remove the ancestors that stored descendants inherited
//! through it (their ancestor sets were closed at load time).

use std::collections::{HashMap, HashSet};

use cedar_policy::{Entities, Entity, EntityUid, EvalResult, Schema};
use serde_json::Value;

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
        let mut entities = HashMap::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let entity = Entity::from_json_value(item, schema).map_err(|e| OverlayError {
                index,
                message: e.to_string(),
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
    while let Some(uid) = queue.pop() {
        if !seen.insert(uid.clone()) {
            continue;
        }
        let from_request = layers.iter().find_map(|l| l.get(&uid));
        let entity = match from_request {
            Some((entity, parents)) => {
                queue.extend(parents.iter().cloned());
                entity
            }
            None => match store.get(&uid) {
                Some(entity) => {
                    // Stored ancestor sets are already closed; each ancestor
                    // is still visited so it is present with its attributes.
                    queue.extend(store.ancestors(&uid).into_iter().flatten().cloned());
                    entity
                }
                // Unknown to both: Cedar treats it as an entity with no
                // attributes and no parents, which is what leaving it out does.
                None => continue,
            },
        };
        for value in entity
            .attrs()
            .map(|(_, v)| v)
            .chain(entity.tags().map(|(_, v)| v))
        {
            if let Ok(v) = value {
                collect_uids(&v, &mut queue);
            }
        }
        let entity = entity.clone();
        picked.insert(uid, entity);
    }
    Entities::from_entities(picked.into_values(), None).map_err(|e| e.to_string())
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
