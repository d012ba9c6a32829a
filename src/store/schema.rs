//! Schema conformance of single entities, with each type described once.
//!
//! Cedar's checker asks its schema for a description of an entity's type
//! on every entity, and the validator's schema builds that description
//! afresh each time (cloning the type's attributes and scanning every type
//! for allowed parents): about half of Cedar's time loading a large store.
//! [`Conformance`] builds each description once and hands Cedar's own
//! checker the copy, so the verdicts and their messages stay Cedar's.

use std::collections::HashSet;
use std::sync::Arc;

use cedar_policy_core::ast::{Eid, Entity, EntityType, EntityUID};
use cedar_policy_core::entities::conformance::EntitySchemaConformanceChecker;
use cedar_policy_core::entities::{EntityTypeDescription, SchemaType};
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::validator::{CoreSchema, ValidatorSchema};
use nonempty::NonEmpty;
use smol_str::SmolStr;

use super::{Key, Record, Val};

/// A schema's entity types, described once, and its actions.
pub(crate) struct Conformance {
    types: foldhash::HashMap<EntityType, Described>,
    names: Vec<EntityType>,
    actions: foldhash::HashMap<EntityUID, Arc<Entity>>,
}

/// One entity type as Cedar's checker asks about it.
#[derive(Clone)]
pub(crate) struct Described(Arc<Description>);

struct Description {
    ty: EntityType,
    attrs: foldhash::HashMap<SmolStr, SchemaType>,
    required: Vec<SmolStr>,
    tags: Option<SchemaType>,
    parents: Arc<HashSet<EntityType>>,
    open: bool,
    choices: Option<NonEmpty<Eid>>,
    external: bool,
}

impl Conformance {
    pub(crate) fn new(schema: &cedar_policy::Schema) -> Conformance {
        let validator: &ValidatorSchema = schema.as_ref();
        let core = CoreSchema::new(validator);
        let mut types = foldhash::HashMap::default();
        let mut names = Vec::new();
        for ty in validator.entity_types() {
            let name = ty.name().clone();
            let Some(d) = cedar_policy_core::entities::Schema::entity_type(&core, &name) else {
                continue;
            };
            let attrs = ty
                .attributes()
                .iter()
                .filter_map(|(k, _)| Some((k.clone(), d.attr_type(k)?)))
                .collect();
            types.insert(
                name.clone(),
                Described(Arc::new(Description {
                    ty: name.clone(),
                    attrs,
                    required: d.required_attrs().collect(),
                    tags: d.tag_type(),
                    parents: d.allowed_parent_types(),
                    open: d.open_attributes(),
                    choices: d.enum_entity_eids().cloned(),
                    external: d.is_external(),
                })),
            );
            names.push(name);
        }
        let actions = cedar_policy_core::entities::Schema::action_entities(&core)
            .map(|e| (e.uid().clone(), e))
            .collect();
        Conformance {
            types,
            names,
            actions,
        }
    }

    /// Cedar's verdict on one entity (its parents, not yet its closure),
    /// with Cedar's message and its causes.
    pub(crate) fn check(&self, entity: &Entity) -> Result<(), String> {
        EntitySchemaConformanceChecker::new(self, Extensions::all_available())
            .validate_entity(entity)
            .map_err(|e| crate::diag::error_chain(&e))
    }

    /// Whether `record` certainly conforms: `true` only where Cedar's
    /// checker ([`Self::check`]) would accept the same entity. `false`
    /// means "ask Cedar", which decides and words the refusal. This is the
    /// loader's check: it reads the compact form directly, where Cedar's
    /// needs a Cedar entity and turns every value back into an expression.
    pub(crate) fn accepts(&self, record: &Record) -> bool {
        let key = &record.key;
        let Some(Described(d)) = self.types.get(key.ty()) else {
            return false;
        };
        if d.external || key.ty().is_action() || !self.names_known(key) {
            return false;
        }
        // Names are sorted (`Record::new`), so each lookup is a search.
        let names = &record.names;
        if d.required.iter().any(|r| names.binary_search(r).is_err()) {
            return false;
        }
        for (name, value) in names.iter().zip(record.values.iter()) {
            match d.attrs.get(name) {
                None if !d.open => return false,
                None => {}
                Some(ty) if !has_type(value, ty) => return false,
                Some(_) => {}
            }
        }
        if !record.tags.is_empty() {
            let Some(ty) = &d.tags else { return false };
            if record.tags.iter().any(|(_, v)| !has_type(v, ty)) {
                return false;
            }
        }
        if record
            .parents
            .iter()
            .any(|p| !d.parents.contains(p.ty()) || !self.names_known(p))
        {
            return false;
        }
        let mut named = Vec::new();
        record.references(&mut named);
        named.into_iter().all(|k| self.names_known(k))
    }

    /// Cedar's check of a reference wherever it appears: an entity of an
    /// enumerated type must be one of its ids, an action one the schema
    /// declares.
    fn names_known(&self, key: &Key) -> bool {
        if key.ty().is_action() {
            return self.actions.contains_key(&key.uid());
        }
        match self.types.get(key.ty()).and_then(|d| d.0.choices.as_ref()) {
            Some(choices) => choices
                .iter()
                .any(|c| <Eid as AsRef<str>>::as_ref(c) == key.id()),
            None => true,
        }
    }

    /// The schema's action entities, with their ancestors closed.
    pub(crate) fn actions(&self) -> &foldhash::HashMap<EntityUID, Arc<Entity>> {
        &self.actions
    }
}

/// Whether `value` has schema type `ty`, as Cedar's
/// `typecheck_restricted_expr_against_schematype` decides it for a value
/// (an extension value by the type its constructor returns, which is its
/// own type name).
fn has_type(value: &Val, ty: &SchemaType) -> bool {
    match (ty, value) {
        (SchemaType::Bool, Val::Bool(_))
        | (SchemaType::Long, Val::Long(_))
        | (SchemaType::String, Val::Str(_)) => true,
        (SchemaType::EmptySet, Val::Set(items)) => items.is_empty(),
        (SchemaType::Set { element_ty }, Val::Set(items)) => {
            items.iter().all(|i| has_type(i, element_ty))
        }
        (SchemaType::Record { attrs, open_attrs }, Val::Record(fields)) => {
            let field = |name: &SmolStr| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            attrs.iter().all(|(name, a)| {
                field(name).map_or(!a.is_required(), |v| has_type(v, a.schema_type()))
            }) && fields
                .iter()
                .all(|(name, _)| *open_attrs || attrs.contains_key(name))
        }
        (SchemaType::Entity { ty }, Val::Entity(key)) => key.ty() == ty,
        (SchemaType::Extension { name }, Val::Ext(ext)) => ext.typename() == *name,
        _ => false,
    }
}

impl cedar_policy_core::entities::Schema for Conformance {
    type EntityTypeDescription = Described;
    type ActionEntityIterator = Vec<Arc<Entity>>;

    fn entity_type(&self, entity_type: &EntityType) -> Option<Described> {
        self.types.get(entity_type).cloned()
    }

    fn action(&self, action: &EntityUID) -> Option<Arc<Entity>> {
        self.actions.get(action).cloned()
    }

    fn entity_types_with_basename<'a>(
        &'a self,
        basename: &'a cedar_policy_core::ast::UnreservedId,
    ) -> Box<dyn Iterator<Item = EntityType> + 'a> {
        Box::new(
            self.names
                .iter()
                .filter(move |n| &n.name().basename() == basename)
                .cloned(),
        )
    }

    fn action_entities(&self) -> Vec<Arc<Entity>> {
        self.actions.values().cloned().collect()
    }
}

impl EntityTypeDescription for Described {
    fn entity_type(&self) -> EntityType {
        self.0.ty.clone()
    }

    fn attr_type(&self, attr: &str) -> Option<SchemaType> {
        self.0.attrs.get(attr).cloned()
    }

    fn tag_type(&self) -> Option<SchemaType> {
        self.0.tags.clone()
    }

    fn required_attrs<'s>(&'s self) -> Box<dyn Iterator<Item = SmolStr> + 's> {
        Box::new(self.0.required.iter().cloned())
    }

    fn allowed_parent_types(&self) -> Arc<HashSet<EntityType>> {
        Arc::clone(&self.0.parents)
    }

    fn open_attributes(&self) -> bool {
        self.0.open
    }

    fn enum_entity_eids(&self) -> Option<&NonEmpty<Eid>> {
        self.0.choices.as_ref()
    }

    fn is_external(&self) -> bool {
        self.0.external
    }
}
