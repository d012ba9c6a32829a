//! Which request environments a policy edit can touch.
//!
//! A request environment is one (principal type, action, resource type)
//! the schema allows. Only the policies whose scope can match an
//! environment decide its requests, so an environment whose relevant
//! policies are the same on both sides (compared as policy *text*: layout,
//! comments, annotations such as a moved `@id`, and file order do not
//! count) answers every request the same, and neither the exhaustive nor
//! the symbolic mode needs to look at it.
//!
//! Relevance is decided from the scope alone and errs towards "relevant"
//! (`principal in X` is relevant to every principal type, since entity data
//! decides what is in `X`): a wrongly relevant policy costs evaluations,
//! never a missed change.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{
    ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, RequestEnv,
    ResourceConstraint, Schema,
};

/// One request environment, in the order reports list them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Env {
    pub principal: String,
    pub action: String,
    pub resource: String,
}

impl std::fmt::Display for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {}, {}", self.principal, self.action, self.resource)
    }
}

/// A schema environment with what the edit did to it.
pub struct Touched {
    pub env: Env,
    pub request_env: RequestEnv,
    /// Policy IDs on each side that are relevant here and have no twin
    /// (same text) on the other side.
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

/// A policy's text with its annotations and layout removed: Cedar's JSON
/// form, which is the same for the same policy however it is written.
pub fn canonical(policy: &Policy) -> String {
    match policy.to_json() {
        Ok(mut json) => {
            if let Some(o) = json.as_object_mut() {
                o.remove("annotations");
            }
            json.to_string()
        }
        // Not expected for a parsed policy; its text is still a fine key.
        Err(_) => policy.to_string(),
    }
}

/// The environments where base and head differ, with the policies that
/// differ there, sorted (principal type, action, resource type).
pub fn touched(schema: &Schema, base: &PolicySet, head: &PolicySet) -> Vec<Touched> {
    let actions = schema.action_entities().ok();
    let ancestors = |a: &EntityUid| -> Vec<EntityUid> {
        actions
            .as_ref()
            .and_then(|e| e.ancestors(a).map(|it| it.cloned().collect()))
            .unwrap_or_default()
    };
    let base: Vec<(String, &Policy)> = base.policies().map(|p| (canonical(p), p)).collect();
    let head: Vec<(String, &Policy)> = head.policies().map(|p| (canonical(p), p)).collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for request_env in schema.request_envs() {
        let anc = ancestors(request_env.action());
        let relevant = |side: &[(String, &Policy)]| -> BTreeMap<String, Vec<String>> {
            let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (key, p) in side {
                if applies(p, &request_env, &anc) {
                    m.entry(key.clone()).or_default().push(p.id().to_string());
                }
            }
            m
        };
        let (b, h) = (relevant(&base), relevant(&head));
        if b.keys().eq(h.keys()) && b.values().map(Vec::len).eq(h.values().map(Vec::len)) {
            continue;
        }
        let only = |x: &BTreeMap<String, Vec<String>>, y: &BTreeMap<String, Vec<String>>| {
            x.iter()
                .filter(|(k, v)| y.get(*k).map_or(0, Vec::len) < v.len())
                .flat_map(|(_, v)| v.iter().cloned())
                .collect::<Vec<_>>()
        };
        let env = env_of(&request_env);
        if !seen.insert(env.clone()) {
            continue;
        }
        out.push(Touched {
            removed: only(&b, &h),
            added: only(&h, &b),
            env,
            request_env,
        });
    }
    out.sort_by(|a, b| a.env.cmp(&b.env));
    out
}

pub fn env_of(e: &RequestEnv) -> Env {
    Env {
        principal: e.principal().to_string(),
        action: short_action(e.action()),
        resource: e.resource().to_string(),
    }
}

/// `ViewInbox` for `Action::"ViewInbox"`, the way users type actions.
pub fn short_action(a: &EntityUid) -> String {
    let ty = a.type_name().to_string();
    let id: &str = a.id().as_ref();
    if ty == "Action" && !id.contains(['"', '\\']) {
        id.to_owned()
    } else {
        a.to_string()
    }
}

/// Whether `p`'s scope can match a request of `env` (see the module note).
pub fn applies(p: &Policy, env: &RequestEnv, action_ancestors: &[EntityUid]) -> bool {
    let action = env.action();
    let action_ok = match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => &a == action,
        ActionConstraint::In(list) => list
            .iter()
            .any(|a| a == action || action_ancestors.contains(a)),
    };
    let principal = match p.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
        PrincipalConstraint::Eq(u) => u.type_name() == env.principal(),
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == env.principal(),
    };
    let resource = match p.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::In(_) => true,
        ResourceConstraint::Eq(u) => u.type_name() == env.resource(),
        ResourceConstraint::Is(t) | ResourceConstraint::IsIn(t, _) => &t == env.resource(),
    };
    action_ok && principal && resource
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const SCHEMA: &str = "entity U; entity D; action w; action e in [w] appliesTo { principal: U, resource: D }; action v appliesTo { principal: U, resource: D };";

    fn envs(base: &str, head: &str) -> Vec<String> {
        let schema = Schema::from_cedarschema_str(SCHEMA).unwrap().0;
        let (b, h) = (
            PolicySet::from_str(base).unwrap(),
            PolicySet::from_str(head).unwrap(),
        );
        touched(&schema, &b, &h)
            .into_iter()
            .map(|t| t.env.action)
            .collect()
    }

    #[test]
    fn ids_layout_comments_and_order_are_not_changes() {
        let base = "@id(\"a\") permit(principal, action == Action::\"v\", resource) when { true };\n@id(\"b\") forbid(principal, action, resource) when { principal == resource };";
        let head = "// moved\n@id(\"b2\")\nforbid (principal, action, resource)\nwhen { principal == resource };\n@id(\"a2\")\npermit (principal, action == Action::\"v\", resource)\nwhen { true };";
        assert!(envs(base, head).is_empty());
    }

    #[test]
    fn a_policy_on_an_action_group_touches_its_members_only() {
        let base = "permit(principal, action in Action::\"w\", resource) when { true };";
        let head = "permit(principal, action in Action::\"w\", resource) when { false };";
        assert_eq!(envs(base, head), ["e"]);
        // A duplicate is a change: one copy removed is still the same
        // decisions, but the count of policies differs, so it is looked at.
        let twice = format!("{base}\n{base}");
        assert_eq!(envs(&twice, base), ["e"]);
    }

    #[test]
    fn principal_types_narrow_relevance() {
        let base = "permit(principal is U, action, resource is D);";
        let head = "permit(principal is D, action, resource is D);";
        assert_eq!(envs(base, head), ["e", "v"]);
        // A principal type no action takes touches nothing.
        let added = format!("{base}\npermit(principal is D, action, resource);");
        assert!(envs(base, &added).is_empty());
    }
}
