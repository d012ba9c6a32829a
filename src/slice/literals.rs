//! Which entities a policy may make Cedar look up: which of its entity
//! literals, and whether any entity reached through an attribute.
//!
//! A request answered through a view ([`crate::view`]) must hold every
//! entity Cedar can look up, and Cedar looks an entity up only to read its
//! attributes, its tags, or (on the left of `in`) its ancestors. A literal
//! compared with `==` or `!=`, or on the right of `in` (alone or in a set
//! literal there), is used as a value and never looked up: `principal in
//! Role::"admin"` reads the principal's ancestors, not the role's. Leaving
//! those out spares each request the entities of every role, team and
//! group its policies name, most of what a view would otherwise build.
//!
//! The walk is over the policy's body in Cedar's own AST, and it is
//! conservative: a literal anywhere else (an `if` branch, a record, a set
//! that is not the right of `in`, a method argument) counts as looked up.
//! Scope constraints only compare (`principal == X`, `resource in X`), and
//! template slots are filled by links in the scope alone.

use cedar_policy::{EntityUid, Policy};
use cedar_policy_core::ast::{BinaryOp, Expr, ExprKind, Literal};

/// The entity literals of `p` that Cedar may look up when it evaluates it.
pub(crate) fn looked_up(p: &Policy) -> Vec<EntityUid> {
    let ast: &cedar_policy_core::ast::Policy = p.as_ref();
    let mut out = Vec::new();
    if let Some(body) = ast.non_scope_constraints() {
        walk(body, false, &mut out);
    }
    let mut out: Vec<EntityUid> = out.into_iter().map(EntityUid::from).collect();
    out.sort_by_key(ToString::to_string);
    out.dedup();
    out
}

/// Whether `p` may look up an entity other than the request's principal,
/// action and resource and its own literals: one reached through an
/// attribute (`resource.company.admin_count`, `principal.team in X`) or
/// through anything but a variable or a literal. Only then must a view
/// hold the entities the roots' attributes name.
///
/// The places Cedar looks an entity up: `.` and `has` on it, the left of
/// `in`, `getTag` and `hasTag`. Anything under those other than a bare
/// `principal`, `action`, `resource`, `context` (a record: `context.x`
/// looks nothing up) or an entity literal counts, so `principal.rec.field`
/// on a record attribute counts too (harmlessly: the view is only bigger).
pub(crate) fn reaches_beyond_roots(p: &Policy) -> bool {
    let ast: &cedar_policy_core::ast::Policy = p.as_ref();
    ast.non_scope_constraints().is_some_and(|body| {
        body.subexpressions().any(|e| match e.expr_kind() {
            ExprKind::GetAttr { expr, .. } | ExprKind::HasAttr { expr, .. } => !root(expr),
            // `has a.b` also reads `a`: count it whatever it is under.
            ExprKind::ExtHasAttr { .. } => true,
            ExprKind::BinaryApp {
                op: BinaryOp::In | BinaryOp::GetTag | BinaryOp::HasTag,
                arg1,
                ..
            } => !root(arg1),
            _ => false,
        })
    })
}

/// A request variable or an entity literal (both in every view).
fn root(e: &Expr) -> bool {
    matches!(
        e.expr_kind(),
        ExprKind::Var(_) | ExprKind::Lit(Literal::EntityUID(_))
    )
}

/// Collects the literals under `e`, except where `inert` (its value is
/// only compared) says they cannot be looked up.
fn walk(e: &Expr, inert: bool, out: &mut Vec<cedar_policy_core::ast::EntityUID>) {
    let mut each = |children: &mut dyn Iterator<Item = &Expr>| {
        children.for_each(|c| walk(c, false, out));
    };
    match e.expr_kind() {
        ExprKind::Lit(Literal::EntityUID(uid)) => {
            if !inert {
                out.push((**uid).clone());
            }
        }
        ExprKind::Lit(_) | ExprKind::Var(_) | ExprKind::Slot(_) | ExprKind::Unknown(_) => {}
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => {
            walk(arg1, true, out);
            walk(arg2, true, out);
        }
        ExprKind::BinaryApp {
            op: BinaryOp::In,
            arg1,
            arg2,
        } => {
            walk(arg1, false, out);
            walk(arg2, true, out);
        }
        ExprKind::Set(items) if inert => items.iter().for_each(|i| walk(i, true, out)),
        ExprKind::Set(items) => each(&mut items.iter()),
        ExprKind::If {
            test_expr,
            then_expr,
            else_expr,
        } => each(&mut [test_expr, then_expr, else_expr].into_iter().map(|e| &**e)),
        ExprKind::And { left, right } | ExprKind::Or { left, right } => {
            each(&mut [left, right].into_iter().map(|e| &**e))
        }
        ExprKind::BinaryApp { arg1, arg2, .. } => each(&mut [arg1, arg2].into_iter().map(|e| &**e)),
        ExprKind::UnaryApp { arg, .. } => walk(arg, false, out),
        ExprKind::GetAttr { expr, .. }
        | ExprKind::HasAttr { expr, .. }
        | ExprKind::ExtHasAttr { expr, .. }
        | ExprKind::Like { expr, .. }
        | ExprKind::Is { expr, .. } => walk(expr, false, out),
        ExprKind::ExtensionFunctionApp { args, .. } => each(&mut args.iter()),
        ExprKind::Record(fields) => each(&mut fields.values()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn looked_up_in(condition: &str) -> Vec<String> {
        let text = format!(
            "permit (principal in Role::\"scope\", action, resource) when {{ {condition} }};"
        );
        let p = Policy::from_str(&text).expect("parses");
        looked_up(&p).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn lookups_past_the_roots_are_found() {
        let reaches = |condition: &str| {
            let text = format!("permit (principal, action, resource) when {{ {condition} }};");
            reaches_beyond_roots(&Policy::from_str(&text).expect("parses"))
        };
        for shallow in [
            "principal.level > 2 && resource has owner",
            "principal in resource.owners && resource.owner == principal",
            "principal.teams.contains(resource.team) && context.ip == \"x\"",
            "Org::\"o\".owner == principal && resource.hasTag(\"k\")",
            "context.x > 1 && Team::\"t\" in principal.teams",
        ] {
            assert!(!reaches(shallow), "{shallow}");
        }
        for deep in [
            "resource.company.admin_count > 1",
            "principal.manager in Team::\"t\"",
            "principal.manager has level",
            "principal.manager.getTag(\"k\") == 1",
            "(if context.a then principal else resource).level > 1",
            "principal has manager.level",
            // `context.actor` may be an entity (in the view: the context
            // names it), its `manager` one it names (not in the view).
            "context.actor.manager.level > 1",
        ] {
            assert!(reaches(deep), "{deep}");
        }
    }

    #[test]
    fn compared_literals_are_left_out_and_the_rest_kept() {
        let none: [&str; 0] = [];
        for condition in [
            "principal in Role::\"admin\" || principal.role == Role::\"x\"",
            "principal.role != Role::\"x\"",
            "principal in [Team::\"a\", Team::\"b\"]",
            "resource.owner == principal",
        ] {
            assert_eq!(looked_up_in(condition), none, "{condition}");
        }
        for (condition, kept) in [
            ("Org::\"o\".owner == principal", "Org::\"o\""),
            ("Team::\"t\" in principal.teams", "Team::\"t\""),
            ("Org::\"o\" has owner", "Org::\"o\""),
            ("Org::\"o\".hasTag(\"k\")", "Org::\"o\""),
            ("{x: Org::\"o\"}.x.owner == principal", "Org::\"o\""),
            ("[Team::\"a\"].contains(principal)", "Team::\"a\""),
            (
                "principal in (if principal.a then Team::\"a\" else Team::\"a\")",
                "Team::\"a\"",
            ),
        ] {
            assert_eq!(looked_up_in(condition), [kept], "{condition}");
        }
    }
}
