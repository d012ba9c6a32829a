//! The entities one request can see, as a small Cedar `Entities`.
//!
//! Cedar evaluates against one `Entities`, and its evaluator only ever looks
//! an entity up by UID: for an attribute, a tag, or the left side of `in`
//! (whose ancestor set it reads). It can therefore only reach entities that
//! are the request's principal, action or resource, named in its context,
//! named by a policy it evaluates (the literals of its slice, see
//! [`crate::slice`]), or named by an attribute or tag of an entity it
//! reached, the last only when a policy of its slice looks up past the
//! request's own entities (`resource.company.admin_count`).
//! [`View::entities`] collects exactly those from the store, gives each its
//! closed ancestor set, and hands Cedar the lot with its closure
//! computation skipped: the answers are those of Cedar on the whole store
//! (`tests/store.rs` checks it on generated requests).
//!
//! Each entity carries only the attributes (and tags) the request's
//! policies may read ([`Reads`]): Cedar cannot tell it from the whole
//! entity, and it is much cheaper to build.
//!
//! Request-scoped entities ([`Overlay`]s, earlier ones winning) replace
//! stored entities with the same UID and may add new ones. Their ancestors
//! are walked through the merged hierarchy: an overlay entity's parents as
//! the request gives them, a stored entity's closed set when none of its
//! ancestors is replaced, its stored parents one by one when one is. So a
//! request that moves an entity also moves the stored entities below it,
//! as Cedar would on the merged data, and a cycle the request's entities
//! close is refused, as Cedar refuses it.

use std::sync::Arc;

use cedar_policy_core::ast::{Entity, EntityUID, Literal, PartialValue, Value, ValueKind};

use crate::entities::{Given, Overlay};
use crate::slice::Reads;
use crate::store::{Key, Store};

/// The store seen through a request's entities.
pub(crate) struct View<'a> {
    store: &'a Store,
    layers: &'a [&'a Overlay],
}

impl<'a> View<'a> {
    /// Refuses request entities that make an entity its own ancestor.
    pub(crate) fn new(store: &'a Store, layers: &'a [&'a Overlay]) -> Result<View<'a>, String> {
        let view = View { store, layers };
        for (i, layer) in layers.iter().enumerate() {
            for uid in layer.uids() {
                // Shadowed by an earlier layer: not part of the merged data.
                if layers[..i].iter().any(|l| l.get(uid).is_some()) {
                    continue;
                }
                view.ancestors(uid)?;
            }
        }
        Ok(view)
    }

    fn layered(&self, uid: &EntityUID) -> Option<&'a Given> {
        self.layers.iter().find_map(|l| l.get(uid))
    }

    fn replaced(&self, key: &Key) -> bool {
        !self.layers.is_empty() && self.layered(&key.uid()).is_some()
    }

    /// `uid`'s ancestors in the merged hierarchy.
    pub(crate) fn ancestors(&self, uid: &EntityUID) -> Result<Vec<EntityUID>, String> {
        if self.layers.is_empty() {
            return Ok(self.store.ancestors(uid));
        }
        let mut found: Vec<EntityUID> = Vec::new();
        let mut queue: Vec<EntityUID> = Vec::new();
        self.edges(uid, &mut queue, &mut found);
        while let Some(next) = queue.pop() {
            if next == *uid {
                return Err(format!(
                    "`{uid}` would be its own ancestor: the request's entities form a cycle \
                     through their parents"
                ));
            }
            // Ancestor lists are short; a linear scan beats hashing here.
            if found.contains(&next) {
                continue;
            }
            self.edges(&next, &mut queue, &mut found);
            found.push(next);
        }
        if found.contains(uid) {
            return Err(format!(
                "`{uid}` would be its own ancestor: the request's entities form a cycle \
                 through their parents"
            ));
        }
        Ok(found)
    }

    /// Where the walk from `uid` goes: parents still to walk into `queue`,
    /// ancestors known to be closed straight into `found`.
    fn edges(&self, uid: &EntityUID, queue: &mut Vec<EntityUID>, found: &mut Vec<EntityUID>) {
        if let Some(given) = self.layered(uid) {
            queue.extend(given.parents.iter().cloned());
        } else if let Some(record) = self.store.get(uid) {
            if record.ancestors.iter().any(|a| self.replaced(a)) {
                queue.extend(record.parents.iter().map(Key::uid));
            } else {
                // Closed, and nothing in it replaced: each one's own
                // ancestors are already among them.
                for a in record.ancestors.iter() {
                    let a = a.uid();
                    if !found.contains(&a) {
                        found.push(a);
                    }
                }
            }
        } else if let Some(action) = self.store.action(uid) {
            for a in action.ancestors() {
                if !found.contains(a) {
                    found.push(a.clone());
                }
            }
        }
    }

    /// Every entity the request can reach from `roots` (through their
    /// attributes and tags when `follow`; else `roots` alone), as Cedar's
    /// `Entities` with closed ancestor sets, each entity holding only what
    /// the request's policies may read of it (`reads`).
    pub(crate) fn entities<'r>(
        &self,
        roots: impl IntoIterator<Item = &'r EntityUID>,
        follow: bool,
        reads: &Reads,
    ) -> Result<cedar_policy::Entities, String> {
        let attr = |name: &str| reads.keeps(name);
        let tags = reads.tags();
        let mut queue: Vec<EntityUID> = roots.into_iter().cloned().collect();
        let mut seen: foldhash::HashSet<EntityUID> = foldhash::HashSet::default();
        let mut out: Vec<Arc<Entity>> = Vec::with_capacity(queue.len() + 4);
        while let Some(uid) = queue.pop() {
            if seen.contains(&uid) {
                continue;
            }
            let entity = if let Some(given) = self.layered(&uid) {
                given.to_cedar_with(self.ancestors(&uid)?.into_iter(), attr, tags)
            } else if let Some(record) = self.store.get(&uid) {
                if record.ancestors.iter().any(|a| self.replaced(a)) {
                    record.to_cedar_with(self.ancestors(&uid)?.into_iter(), attr, tags)
                } else {
                    record.to_cedar_with(record.ancestors.iter().map(Key::uid), attr, tags)
                }
            } else {
                if let Some(action) = self.store.action(&uid) {
                    out.push(Arc::clone(action));
                }
                // Unknown to both: Cedar treats it as an entity that does
                // not exist, which is what leaving it out does.
                seen.insert(uid);
                continue;
            };
            if follow {
                for (_, v) in entity.attrs().chain(entity.tags()) {
                    if let PartialValue::Value(v) = v {
                        value_uids(v, &mut queue);
                    }
                }
            }
            out.push(Arc::new(entity));
            seen.insert(uid);
        }
        cedar_policy_core::entities::Entities::new()
            .add_entities(
                out,
                None::<&cedar_policy_core::entities::NoEntitiesSchema>,
                cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
                cedar_policy_core::extensions::Extensions::all_available(),
            )
            .map(Into::into)
            .map_err(|e| e.to_string())
    }
}

fn value_uids(value: &Value, out: &mut Vec<EntityUID>) {
    match &value.value {
        ValueKind::Lit(Literal::EntityUID(uid)) => out.push((**uid).clone()),
        ValueKind::Set(set) => set.iter().for_each(|v| value_uids(v, out)),
        ValueKind::Record(fields) => fields.values().for_each(|v| value_uids(v, out)),
        _ => {}
    }
}
