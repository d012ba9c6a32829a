//! Narrowing a search by the policies: forbids that rule most candidates
//! out without a decision.
//!
//! A search decides every candidate of a type, and a decision costs
//! microseconds, so a million candidates cost seconds. Most models confine
//! a principal to its tenant with a forbid such as the bundled model's
//!
//! ```cedar
//! forbid (principal, action, resource)
//! unless { principal in principal.company && resource in principal.company };
//! ```
//!
//! and that one policy rules out every candidate of another tenant. A
//! [`Guard`] is such a forbid read once per search: one whose scope applies
//! to every candidate (no `==` or `in` on the principal or resource, an
//! `is` only of the right type, an action scope the searched action
//! satisfies) and whose condition is a single `unless` over a chain of `&&`.
//! Each link that is `X in Y` or `X == Y` over `principal`, `resource`, one
//! attribute of either, or an entity literal is evaluated here, natively,
//! against the store's records; anything else ends the chain.
//!
//! Soundness is the point: a candidate is ruled out only when the chain
//! evaluates to `false` exactly as Cedar would evaluate it (left to right,
//! stopping at the first `false`), with no link before it that could have
//! raised an error (a missing attribute, a value that is not an entity):
//! Cedar then finds the forbid satisfied and denies, whatever the permits
//! say. Wherever this evaluation is unsure it keeps the candidate, and the
//! real decision decides. `tests/search.rs` holds the narrowed search
//! against deciding every candidate.
//!
//! Testing every candidate this way still reads every record of the type.
//! Under a strictly validated policy set the guards say more: Cedar's
//! validator accepted `principal.company` unguarded, so every stored
//! principal has a `company` and every link read here evaluates without
//! an error. A chain `principal in principal.company && resource in
//! principal.company` can then only be true for a principal under one of
//! the resource's ancestors (of the attribute's declared type: the
//! resource's `Company`), and one `resource in E` only for a resource
//! under `E`. Those entities are the [`Narrowing::within`] anchors, and the
//! store's per-group ancestor lists yield the candidates under them
//! without reading the others; each is still tested and decided.
//!
//! Guards read the stored entities only: a search with request-scoped
//! entities (AuthZEN `properties`) is not narrowed.

use std::sync::Arc;

use cedar_policy_core::ast::{
    ActionConstraint, BinaryOp, Effect, Eid, EntityType, EntityUID, Expr, ExprKind, Literal,
    PrincipalOrResourceConstraint, UnaryOp, Var,
};
use smol_str::SmolStr;

use crate::snapshot::{Snapshot, ValidationMode};
use crate::store::{Key, Record, Store, Val};

/// Which request variable is the searched one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Principal,
    Resource,
}

/// A value a link names.
#[derive(Debug, Clone)]
enum Term {
    /// The candidate (the searched variable).
    Candidate,
    /// The fixed variable (the other of principal and resource).
    Fixed,
    /// An attribute of the candidate, or of the fixed entity.
    Attr {
        candidate: bool,
        name: SmolStr,
    },
    Lit(Arc<EntityUID>),
}

#[derive(Debug, Clone)]
enum Link {
    In(Term, Term),
    Eq(Term, Term),
    /// Known to be false for every candidate.
    False,
    /// Not understood (or not known to be error-free): the chain's value
    /// from here on is unknown.
    Unknown,
}

/// One forbid read as a chain of links; the candidate is ruled out when
/// the chain is known to be false.
#[derive(Debug)]
pub(super) struct Guard {
    links: Vec<Link>,
}

/// What the policies say about a search before any candidate is looked at.
pub(super) enum Narrowing {
    /// A forbid applies to every candidate: there is nothing to find.
    Nothing,
    /// These guards rule candidates out (none: every candidate is decided).
    Guards {
        guards: Vec<Guard>,
        /// When set, only candidates that are one of these entities or
        /// under one can be allowed.
        within: Option<Vec<EntityUID>>,
    },
}

/// An entity as a link sees it.
#[derive(Clone, Copy)]
struct Ent<'a> {
    ty: &'a EntityType,
    id: &'a str,
}

impl Ent<'_> {
    fn of_key(key: &Key) -> Ent<'_> {
        Ent {
            ty: key.ty(),
            id: key.id(),
        }
    }

    fn of_uid(uid: &EntityUID) -> Ent<'_> {
        Ent {
            ty: uid.entity_type(),
            id: uid.eid().as_ref(),
        }
    }

    fn same(&self, other: &Ent<'_>) -> bool {
        self.id == other.id && self.ty == other.ty
    }
}

/// A term's value: one entity, or the elements of a set attribute.
enum Value<'a> {
    One(Ent<'a>),
    Set(&'a [Val]),
}

/// The fixed half of a search: the entity that does not vary.
pub(super) struct Fixed<'a> {
    pub(super) uid: &'a EntityUID,
    pub(super) record: Option<&'a Arc<Record>>,
}

/// Everything a link can read while one candidate is tested.
struct Env<'a> {
    store: &'a Store,
    fixed: &'a Fixed<'a>,
    candidate: Option<&'a Record>,
}

impl Narrowing {
    /// Reads the snapshot's forbids for a search of `side` over entities
    /// of type `ty`, with `action` and the `fixed` other side.
    pub(super) fn read(
        snapshot: &Snapshot,
        side: Side,
        ty: &EntityType,
        action: &EntityUID,
        fixed: &Fixed<'_>,
    ) -> Narrowing {
        let store = snapshot.store();
        let action_ancestors = store.ancestors(action);
        let mut guards = Vec::new();
        let mut within: Option<Vec<EntityUID>> = None;
        // Links over required attributes cannot raise errors (see above).
        let strict = snapshot.validation() == ValidationMode::Strict;
        let schema = snapshot.schema().filter(|_| strict);
        for policy in snapshot.policy_set().policies() {
            let ast: &cedar_policy_core::ast::Policy = policy.as_ref();
            if ast.effect() != Effect::Forbid {
                continue;
            }
            let principal = ast.principal_constraint().into_inner();
            let resource = ast.resource_constraint().into_inner();
            let (candidate_scope, fixed_scope) = match side {
                Side::Principal => (&principal, &resource),
                Side::Resource => (&resource, &principal),
            };
            let covers = |c: &PrincipalOrResourceConstraint, ty: &EntityType| match c {
                PrincipalOrResourceConstraint::Any => true,
                PrincipalOrResourceConstraint::Is(t) => **t == *ty,
                _ => false,
            };
            let action_applies = match ast.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => **a == *action,
                ActionConstraint::In(list) => list
                    .iter()
                    .any(|a| **a == *action || action_ancestors.contains(a)),
                #[allow(unreachable_patterns)]
                _ => false,
            };
            if !covers(candidate_scope, ty)
                || !covers(fixed_scope, fixed.uid.entity_type())
                || !action_applies
            {
                continue;
            }
            let Some(chain) = ast.non_scope_constraints().and_then(unless_chain) else {
                continue;
            };
            let env = Env {
                store,
                fixed,
                candidate: None,
            };
            match Guard::read(&chain, side, &env) {
                Some(g) if matches!(g.links.first(), Some(Link::False)) => {
                    return Narrowing::Nothing;
                }
                Some(g) => {
                    if let Some(schema) = schema
                        && let Some(anchors) = g.anchors(&env, ty, schema)
                        && within.as_ref().is_none_or(|w| anchors.len() < w.len())
                    {
                        within = Some(anchors);
                    }
                    guards.push(g);
                }
                None => {}
            }
        }
        Narrowing::Guards { guards, within }
    }

    /// The entities the candidates must be (or be under), if the policies
    /// say.
    pub(super) fn within(&self) -> Option<&[EntityUID]> {
        match self {
            Narrowing::Nothing => Some(&[]),
            Narrowing::Guards { within, .. } => within.as_deref(),
        }
    }

    /// Whether `candidate` is certainly denied by one of the guards.
    pub(super) fn rules_out(&self, store: &Store, fixed: &Fixed<'_>, candidate: &Record) -> bool {
        let Narrowing::Guards { guards, .. } = self else {
            return true;
        };
        let env = Env {
            store,
            fixed,
            candidate: Some(candidate),
        };
        guards.iter().any(|g| g.value(&env) == Some(false))
    }
}

/// `C` of a body that is exactly `unless { C }` (Cedar reads it as `!C`),
/// as its chain of `&&` operands in evaluation order.
fn unless_chain(body: &Expr) -> Option<Vec<&Expr>> {
    let ExprKind::UnaryApp {
        op: UnaryOp::Not,
        arg,
    } = body.expr_kind()
    else {
        return None;
    };
    let mut out = Vec::new();
    flatten_and(arg, &mut out);
    Some(out)
}

fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e.expr_kind() {
        ExprKind::And { left, right } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        _ => out.push(e),
    }
}

impl Guard {
    /// Reads a chain; links that do not involve the candidate are evaluated
    /// now (a true one dropped, a false one kept as [`Link::False`]).
    /// `None` when the guard can never rule a candidate out.
    fn read(chain: &[&Expr], side: Side, env: &Env<'_>) -> Option<Guard> {
        let mut links = Vec::new();
        for e in chain {
            let link = link(e, side);
            let link = match &link {
                Link::In(a, b) | Link::Eq(a, b) if !a.candidate() && !b.candidate() => {
                    match link.value(env) {
                        Some(true) => continue,
                        Some(false) => Link::False,
                        None => Link::Unknown,
                    }
                }
                _ => link,
            };
            let stop = matches!(link, Link::False | Link::Unknown);
            links.push(link);
            if stop {
                break;
            }
        }
        match links.first() {
            // Always true (the forbid never applies), or unknown from the
            // start: nothing to rule out.
            None | Some(Link::Unknown) => None,
            Some(_) => Some(Guard { links }),
        }
    }

    /// The entities a candidate must be or be under for this chain to be
    /// true, when the links say (`None` when they do not). Only for a
    /// strictly validated policy set over a conforming store, where the
    /// links read here raise no error, so a chain that is not true is
    /// false and the forbid denies; links after one whose fixed side does
    /// not evaluate are not used.
    fn anchors(
        &self,
        env: &Env<'_>,
        ty: &EntityType,
        schema: &cedar_policy::Schema,
    ) -> Option<Vec<EntityUID>> {
        let sound = |t: &Term| t.candidate() || t.value(env).is_some();
        let len = self
            .links
            .iter()
            .take_while(|l| match l {
                Link::In(a, b) | Link::Eq(a, b) => sound(a) && sound(b),
                Link::False => true,
                Link::Unknown => false,
            })
            .count();
        let links = &self.links[..len];
        let uid = |e: Ent<'_>| EntityUID::from_components(e.ty.clone(), Eid::new(e.id), None);
        let values = |t: &Term| -> Option<Vec<EntityUID>> {
            match t.value(env)? {
                Value::One(e) => Some(vec![uid(e)]),
                Value::Set(items) => items
                    .iter()
                    .map(|v| match v {
                        Val::Entity(k) => Some(k.uid()),
                        _ => None,
                    })
                    .collect(),
            }
        };
        let mut best: Option<Vec<EntityUID>> = None;
        for link in links {
            let found = match link {
                // Every candidate is ruled out.
                Link::False => Some(Vec::new()),
                Link::In(Term::Candidate, t) if !t.candidate() => values(t),
                Link::Eq(Term::Candidate, t) | Link::Eq(t, Term::Candidate) if !t.candidate() => {
                    match t.value(env)? {
                        Value::One(e) => Some(vec![uid(e)]),
                        Value::Set(_) => None,
                    }
                }
                // `candidate in candidate.a && fixed in candidate.a`: the
                // candidate is under one of the fixed entity's ancestors
                // (or the fixed entity), of the type `a` is declared with.
                Link::In(Term::Candidate, Term::Attr { candidate: true, name })
                    if links.iter().any(|l| {
                        matches!(l, Link::In(Term::Fixed, Term::Attr { candidate: true, name: n }) if n == name)
                    }) =>
                {
                    let declared = declared_entity_type(schema, ty, name);
                    let fixed = Ent::of_uid(env.fixed.uid);
                    let ancestors = env.fixed.record.map_or(&[][..], |r| &r.ancestors[..]);
                    Some(
                        std::iter::once(fixed)
                            .chain(ancestors.iter().map(Ent::of_key))
                            .filter(|e| declared.is_none_or(|d| e.ty == d))
                            .map(uid)
                            .collect(),
                    )
                }
                _ => None,
            };
            if let Some(found) = found
                && best.as_ref().is_none_or(|b| found.len() < b.len())
            {
                best = Some(found);
            }
        }
        best
    }

    /// The chain's value for the candidate in `env`: `None` when unknown
    /// (or when Cedar would raise an error).
    fn value(&self, env: &Env<'_>) -> Option<bool> {
        for link in &self.links {
            if !link.value(env)? {
                return Some(false);
            }
        }
        Some(true)
    }
}

/// The one entity type the schema declares for attribute `attr` of `ty`.
fn declared_entity_type<'s>(
    schema: &'s cedar_policy::Schema,
    ty: &EntityType,
    attr: &str,
) -> Option<&'s EntityType> {
    use cedar_policy_core::validator::ValidatorSchema;
    use cedar_policy_core::validator::types::{EntityKind, Type};
    let validator: &ValidatorSchema = schema.as_ref();
    let declared = validator.get_entity_type(ty)?.attr(attr)?;
    match &*declared.attr_type {
        Type::Entity(EntityKind::Entity(lub)) => lub.get_single_entity(),
        _ => None,
    }
}

/// One operand of the chain as a link.
fn link(e: &Expr, side: Side) -> Link {
    let ExprKind::BinaryApp { op, arg1, arg2 } = e.expr_kind() else {
        return Link::Unknown;
    };
    let (Some(a), Some(b)) = (term(arg1, side), term(arg2, side)) else {
        return Link::Unknown;
    };
    match op {
        BinaryOp::In => Link::In(a, b),
        BinaryOp::Eq => Link::Eq(a, b),
        _ => Link::Unknown,
    }
}

fn term(e: &Expr, side: Side) -> Option<Term> {
    let var = |v: &Var| match (v, side) {
        (Var::Principal, Side::Principal) | (Var::Resource, Side::Resource) => Some(true),
        (Var::Principal, Side::Resource) | (Var::Resource, Side::Principal) => Some(false),
        _ => None,
    };
    match e.expr_kind() {
        ExprKind::Var(v) => Some(if var(v)? {
            Term::Candidate
        } else {
            Term::Fixed
        }),
        ExprKind::GetAttr { expr, attr } => match expr.expr_kind() {
            ExprKind::Var(v) => Some(Term::Attr {
                candidate: var(v)?,
                name: attr.clone(),
            }),
            _ => None,
        },
        ExprKind::Lit(Literal::EntityUID(uid)) => Some(Term::Lit(Arc::clone(uid))),
        _ => None,
    }
}

impl Term {
    fn candidate(&self) -> bool {
        matches!(
            self,
            Term::Candidate
                | Term::Attr {
                    candidate: true,
                    ..
                }
        )
    }

    /// The term's value, or `None` where Cedar would raise an error (an
    /// attribute that is missing, of an entity that is not stored).
    fn value<'a>(&'a self, env: &Env<'a>) -> Option<Value<'a>> {
        Some(match self {
            Term::Candidate => Value::One(Ent::of_key(&env.candidate?.key)),
            Term::Fixed => Value::One(Ent::of_uid(env.fixed.uid)),
            Term::Lit(uid) => Value::One(Ent::of_uid(uid)),
            Term::Attr { candidate, name } => {
                let record: &Record = if *candidate {
                    env.candidate?
                } else {
                    env.fixed.record?
                };
                match record.attr(name)? {
                    Val::Entity(key) => Value::One(Ent::of_key(key)),
                    Val::Set(items) => Value::Set(items),
                    // Compared with `==` it would be false, on either side
                    // of `in` an error: unknown either way.
                    _ => return None,
                }
            }
        })
    }

    /// The stored ancestors of this term's entity `e` (Cedar's `in` reads
    /// those of the entity on its left; an entity not stored has none).
    fn ancestors<'a>(&self, e: Ent<'_>, env: &Env<'a>) -> &'a [Key] {
        match self {
            Term::Candidate => env.candidate.map_or(&[], |r| &r.ancestors[..]),
            Term::Fixed => env.fixed.record.map_or(&[], |r| &r.ancestors[..]),
            _ => env
                .store
                .get_parts(e.ty, e.id)
                .map_or(&[], |r| &r.ancestors[..]),
        }
    }
}

impl Link {
    fn value(&self, env: &Env<'_>) -> Option<bool> {
        match self {
            Link::False => Some(false),
            Link::Unknown => None,
            Link::Eq(a, b) => match (a.value(env)?, b.value(env)?) {
                (Value::One(x), Value::One(y)) => Some(x.same(&y)),
                _ => None,
            },
            Link::In(a, b) => {
                let Value::One(left) = a.value(env)? else {
                    return None;
                };
                let ancestors = a.ancestors(left, env);
                let within = |right: &Ent<'_>| {
                    left.same(right)
                        || ancestors
                            .binary_search_by(|k| (k.ty(), k.id()).cmp(&(right.ty, right.id)))
                            .is_ok()
                };
                match b.value(env)? {
                    Value::One(right) => Some(within(&right)),
                    Value::Set(items) => {
                        let mut found = false;
                        for item in items {
                            let Val::Entity(key) = item else {
                                return None;
                            };
                            found = found || within(&Ent::of_key(key));
                        }
                        Some(found)
                    }
                }
            }
        }
    }
}
