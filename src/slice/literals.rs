//! Which entity literals of a policy Cedar may look up.
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
//! The walk is over Cedar's own JSON form of the policy (its EST), and it
//! is conservative: a literal anywhere else (an `if` branch, a record, a
//! set that is not the right of `in`, a method argument) counts as looked
//! up. Scope constraints only compare (`principal == X`, `resource in X`).

use cedar_policy::{EntityUid, Policy};
use serde_json::Value;

/// The entity literals of `p` that Cedar may look up when it evaluates it.
pub(crate) fn looked_up(p: &Policy) -> Vec<EntityUid> {
    let est = match p.to_json() {
        Ok(est) if readable(&est) => est,
        // Cannot tell: every literal may be.
        _ => return p.entity_literals(),
    };
    let mut found = Vec::new();
    for c in est
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(body) = c.get("body") {
            walk(body, false, &mut found);
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for (ty, id) in found {
        match crate::uid::uid_from_parts(ty, id) {
            Ok(uid) => out.push(uid),
            Err(_) => return p.entity_literals(),
        }
    }
    out.sort_by_key(ToString::to_string);
    out.dedup();
    out
}

/// Whether every `__entity` in the EST has the form [`entity`] reads.
fn readable(est: &Value) -> bool {
    match est {
        Value::Object(map) => map.iter().all(|(k, v)| {
            if k == "__entity" {
                v.get("type").is_some_and(Value::is_string)
                    && v.get("id").is_some_and(Value::is_string)
            } else {
                readable(v)
            }
        }),
        Value::Array(items) => items.iter().all(readable),
        _ => true,
    }
}

/// `{"__entity": {"type", "id"}}`: an entity literal.
fn entity(v: &Value) -> Option<(&str, &str)> {
    let uid = v.as_object().filter(|m| m.len() == 1)?.get("__entity")?;
    Some((uid.get("type")?.as_str()?, uid.get("id")?.as_str()?))
}

/// Collects the literals under `e`, except where `inert` (the value is
/// only compared) says they cannot be looked up. `e` is an expression node
/// (`{op: arg}`) or, when called on containers, anything: an unknown shape
/// is searched with nothing inert.
fn walk<'v>(e: &'v Value, inert: bool, out: &mut Vec<(&'v str, &'v str)>) {
    if let Some(uid) = entity(e) {
        if !inert {
            out.push(uid);
        }
        return;
    }
    let node = e
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next());
    if let Some((op, arg)) = node {
        let sides = || Some((arg.get("left")?, arg.get("right")?));
        match (op.as_str(), sides()) {
            ("Value", _) if inert => return,
            ("==" | "!=", Some((left, right))) => {
                walk(left, true, out);
                walk(right, true, out);
                return;
            }
            ("in", Some((left, right))) => {
                walk(left, false, out);
                walk(right, true, out);
                return;
            }
            ("Set", _) if inert && arg.is_array() => {
                for item in arg.as_array().into_iter().flatten() {
                    walk(item, true, out);
                }
                return;
            }
            _ => {}
        }
    }
    match e {
        Value::Object(map) => map.values().for_each(|v| walk(v, false, out)),
        Value::Array(items) => items.iter().for_each(|v| walk(v, false, out)),
        _ => {}
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
