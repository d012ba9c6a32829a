//! Which attributes and tags a policy may read, so that a request's view
//! builds only those.
//!
//! Cedar reads an entity's attributes only by name, and every name is
//! written in the policy: `e.name`, `e has name`, `e has a.b.c` (no
//! expression computes an attribute name). Nothing else in an evaluation
//! sees an entity's attributes: entities are compared, put in sets and
//! tested with `in` and `is` by their UID and ancestors alone. So an
//! entity that carries only the attributes its request's policies name
//! gives the same values, the same `has` answers and the same errors as the
//! whole entity (an error's message names the entity and the attribute it
//! lacks, never the others; only Cedar's help text lists those, and doorman
//! answers with the message). Tags are read by computed keys (`getTag(k)`),
//! so a policy that uses tags at all keeps them all.
//!
//! Why it matters: a seat of the bundled model has ten attributes, five of
//! them sets, and most questions read three or four. Building Cedar's form
//! of the rest (a B-tree node and a hash set per set) was most of what a
//! per-request view cost, and following references only through the
//! attributes kept also keeps out entities no policy can reach.

use cedar_policy::Policy;
use cedar_policy_core::ast::{BinaryOp, ExprKind};
use smol_str::SmolStr;

/// The attribute names and whether any tags some policies may read.
/// Guarantees: an entity built with only [`Reads::keeps`]'s attributes
/// (and its tags when [`Reads::tags`]) evaluates those policies exactly as
/// the whole entity does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    /// Sorted, each once.
    names: Vec<SmolStr>,
    tags: bool,
}

impl Reads {
    /// What `p`'s condition may read. Its scope reads no attribute.
    pub(crate) fn of(p: &Policy) -> Reads {
        let ast: &cedar_policy_core::ast::Policy = p.as_ref();
        let mut reads = Reads::default();
        if let Some(body) = ast.non_scope_constraints() {
            for e in body.subexpressions() {
                match e.expr_kind() {
                    ExprKind::GetAttr { attr, .. } | ExprKind::HasAttr { attr, .. } => {
                        reads.names.push(attr.clone())
                    }
                    ExprKind::ExtHasAttr { attrs, .. } => reads.names.extend(attrs.iter().cloned()),
                    ExprKind::BinaryApp {
                        op: BinaryOp::GetTag | BinaryOp::HasTag,
                        ..
                    } => reads.tags = true,
                    _ => {}
                }
            }
        }
        reads.names.sort_unstable();
        reads.names.dedup();
        reads
    }

    /// Adds what `other` reads.
    pub(crate) fn add(&mut self, other: &Reads) {
        self.tags |= other.tags;
        if other.names.iter().all(|n| self.keeps(n)) {
            return;
        }
        self.names.extend(other.names.iter().cloned());
        self.names.sort_unstable();
        self.names.dedup();
    }

    /// Whether the attribute `name` may be read.
    pub(crate) fn keeps(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    /// Whether any tag may be read.
    pub(crate) fn tags(&self) -> bool {
        self.tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn reads(condition: &str) -> Reads {
        let text = format!("permit (principal, action, resource) when {{ {condition} }};");
        Reads::of(&Policy::from_str(&text).expect("parses"))
    }

    #[test]
    fn every_way_of_naming_an_attribute_is_found() {
        let r = reads(
            "principal.a && resource has b && principal has c.d && \
             context.e.f == 1 && (if principal.g then resource else principal)[\"h\"] == 2",
        );
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            assert!(r.keeps(name), "{name}");
        }
        assert!(!r.keeps("role"));
        assert!(!r.tags());
        assert!(reads("principal.hasTag(\"k\")").tags());
        assert!(reads("resource.getTag(context.key) == 1").tags());
    }

    #[test]
    fn the_scope_reads_nothing_and_unions_keep_both_sides() {
        let scope = Policy::from_str(
            "permit (principal in Role::\"admin\", action, resource is Inbox in Company::\"c\");",
        )
        .expect("parses");
        assert_eq!(Reads::of(&scope), Reads::default());
        let mut both = reads("principal.a");
        both.add(&reads("resource.getTag(\"t\") == principal.b"));
        assert!(both.keeps("a") && both.keeps("b") && both.tags());
    }
}
