//! The store's compact forms of entity references and attribute values.
//!
//! Cedar's own `Value` is built for evaluation: a set is an `Arc` of a
//! B-tree (a node of eleven slots even for one element) plus a hash set of
//! its literals, an entity reference an `Arc` of a 120-byte UID. Kept for
//! every entity of a large store that is most of its memory. Here a
//! reference is a [`Key`] (a shared type name and an inline id), a set a
//! boxed slice; a value becomes Cedar's again only when a request reaches
//! its entity ([`Val::to_cedar`]), and converting back and forth loses
//! nothing (`tests/store.rs` compares both ways against Cedar's parser).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cedar_policy_core::ast::{
    Eid, EntityType, EntityUID, Literal, PartialValue, RepresentableExtensionValue, Value,
    ValueKind,
};
use smol_str::SmolStr;

/// An entity reference: 32 bytes, where Cedar's `EntityUID` is 120.
/// Type names are shared (see [`Types`]), ids of up to 23 bytes are inline.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    ty: Arc<EntityType>,
    id: SmolStr,
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && (Arc::ptr_eq(&self.ty, &other.ty) || self.ty == other.ty)
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        KeyRef::hash_parts(&self.ty, &self.id, state);
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&*self.ty, &self.id).cmp(&(&*other.ty, &other.id))
    }
}

impl Key {
    pub(crate) fn ty(&self) -> &EntityType {
        &self.ty
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn uid(&self) -> EntityUID {
        EntityUID::from_components((*self.ty).clone(), Eid::new(self.id.clone()), None)
    }

    pub(crate) fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            ty: &self.ty,
            id: &self.id,
        }
    }
}

/// A borrowed key, to look an `EntityUID` up without building a [`Key`].
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub ty: &'a EntityType,
    pub id: &'a str,
}

impl<'a> KeyRef<'a> {
    pub(crate) fn of(uid: &'a EntityUID) -> Self {
        KeyRef {
            ty: uid.entity_type(),
            id: uid.eid().as_ref(),
        }
    }

    fn hash_parts<H: Hasher>(ty: &EntityType, id: &str, state: &mut H) {
        ty.hash(state);
        id.hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Self::hash_parts(self.ty, self.id, state);
    }
}

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.id == key.id && *self.ty == *key.ty
    }
}

/// Shares one `Arc` per entity type name among the keys one reader makes.
#[derive(Default)]
pub(crate) struct Types {
    known: foldhash::HashMap<EntityType, Arc<EntityType>>,
    /// Type names as JSON spells them, for those in Cedar's normal form.
    written: foldhash::HashMap<SmolStr, Arc<EntityType>>,
}

impl Types {
    /// The key for a type name and an id as entity JSON writes them, or
    /// `None` when the name is not in Cedar's normal form (`A :: B`, which
    /// Cedar's JSON parser refuses).
    pub(crate) fn written(&mut self, ty: &str, id: &str) -> Option<Key> {
        let ty = match self.written.get(ty) {
            Some(known) => Arc::clone(known),
            None => {
                let name = crate::uid::entity_type(ty).ok()?;
                if name.to_string() != ty {
                    return None;
                }
                let core: &EntityType = name.as_ref();
                let shared = self.shared(core);
                self.written.insert(SmolStr::new(ty), Arc::clone(&shared));
                shared
            }
        };
        Some(Key {
            ty,
            id: SmolStr::new(id),
        })
    }

    fn shared(&mut self, ty: &EntityType) -> Arc<EntityType> {
        match self.known.get(ty) {
            Some(ty) => Arc::clone(ty),
            None => {
                let shared = Arc::new(ty.clone());
                self.known.insert(ty.clone(), Arc::clone(&shared));
                shared
            }
        }
    }

    pub(crate) fn key(&mut self, uid: &EntityUID) -> Key {
        Key {
            ty: self.shared(uid.entity_type()),
            id: SmolStr::new(uid.eid().as_ref()),
        }
    }
}

/// An attribute or tag value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Bool(bool),
    Long(i64),
    Str(SmolStr),
    Entity(Key),
    Set(Box<[Val]>),
    Record(Box<[(SmolStr, Val)]>),
    /// Extension values (ip, decimal, datetime, duration) are Cedar's own:
    /// immutable and shared, and few enough not to matter.
    Ext(Arc<RepresentableExtensionValue>),
}

impl Val {
    /// `None` for a residual (an unknown), which entity data never holds
    /// without Cedar's partial evaluation.
    pub(crate) fn from_cedar(value: &PartialValue, types: &mut Types) -> Option<Val> {
        match value {
            PartialValue::Value(v) => Some(Self::from_value(v, types)),
            PartialValue::Residual(_) => None,
        }
    }

    fn from_value(value: &Value, types: &mut Types) -> Val {
        match &value.value {
            ValueKind::Lit(Literal::Bool(b)) => Val::Bool(*b),
            ValueKind::Lit(Literal::Long(n)) => Val::Long(*n),
            ValueKind::Lit(Literal::String(s)) => Val::Str(s.clone()),
            ValueKind::Lit(Literal::EntityUID(uid)) => Val::Entity(types.key(uid)),
            ValueKind::Set(set) => {
                Val::Set(set.iter().map(|v| Self::from_value(v, types)).collect())
            }
            ValueKind::Record(fields) => Val::Record(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::from_value(v, types)))
                    .collect(),
            ),
            ValueKind::ExtensionValue(ext) => Val::Ext(Arc::clone(ext)),
        }
    }

    /// Cedar's value, as Cedar's own parser would have built it.
    pub(crate) fn to_cedar(&self) -> Value {
        match self {
            Val::Bool(b) => Value::from(*b),
            Val::Long(n) => Value::from(*n),
            Val::Str(s) => Value::from(s.clone()),
            Val::Entity(key) => Value::from(key.uid()),
            Val::Set(items) => Value::set(items.iter().map(Val::to_cedar), None),
            Val::Record(fields) => {
                Value::record(fields.iter().map(|(k, v)| (k.clone(), v.to_cedar())), None)
            }
            Val::Ext(ext) => Value::new(ValueKind::ExtensionValue(Arc::clone(ext)), None),
        }
    }

    /// Every entity this value names, however deep.
    pub(crate) fn keys<'v>(&'v self, out: &mut Vec<&'v Key>) {
        match self {
            Val::Entity(key) => out.push(key),
            Val::Set(items) => items.iter().for_each(|v| v.keys(out)),
            Val::Record(fields) => fields.iter().for_each(|(_, v)| v.keys(out)),
            _ => {}
        }
    }
}
