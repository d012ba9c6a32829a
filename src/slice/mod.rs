//! Policy slicing: which policies a request has to evaluate.
//!
//! Cedar's authorizer evaluates every policy of the set it is given, and
//! each evaluation rebuilds the policy's condition expression, so the cost
//! of a decision grows with the whole policy set (about 1 µs per policy).
//! Most policies cannot apply to a given request: their scope names another
//! action, or a principal or resource the request's entities are not in.
//!
//! Cedar evaluates a policy as one expression, `scope && conditions`, and
//! the `&&` short-circuits: a policy whose scope does not match is false and
//! never raises an error. Leaving such policies out therefore changes
//! nothing in the decision, its reasons or its errors. The converse is what
//! this module must get right: every policy whose scope *can* match has to
//! be evaluated. `tests/slicing.rs` checks that against the unsliced
//! authorizer on random requests.
//!
//! The shape, decided by measurement (docs/performance.md):
//!
//! - Policies are grouped at snapshot build time into [`Bucket`]s, each a
//!   ready-made `PolicySet`. Building a `PolicySet` per request costs about
//!   as much as evaluating its policies (6 µs for 8 policies, measured), and
//!   a cache of per-request sets grows with the number of tenants; fixed
//!   buckets cost neither. Evaluating two or three buckets instead of one
//!   set costs Cedar's per-call overhead, about 0.3 µs each.
//! - A bucket is keyed by its policies' action and by one *anchor*: the
//!   entity a policy's resource (else principal) scope names with `==` or
//!   `in`. A request looks up the buckets of its action (and its action
//!   groups) for every anchor it can be in: the principal, the resource and
//!   their ancestors. Tenant policies (`resource in Company::"…"`) thus cost
//!   a request only when it is about that company.
//! - For each action the schema declares, the buckets of "any action", of
//!   the action itself and of its groups are merged ahead of time, so the
//!   usual request needs one `PolicySet` for its unanchored policies plus one
//!   per anchor that has policies. The merge assumes the action's groups are
//!   those of the schema; a request whose action has other ancestors (no
//!   schema, or entity data that declares actions) takes the general path,
//!   which looks each group up on its own.
//! - A bucket may still hold policies whose `is` type or other-side
//!   constraint fails for a request; those evaluate to false at a cost,
//!   never to a different answer.
//!
//! Each bucket's answer is one Cedar [`Response`]; [`merge`] combines them
//! the way Cedar combines policies (any satisfied forbid denies, else any
//! satisfied permit allows, else deny; errors from all).

mod literals;
mod reads;

pub(crate) use reads::Reads;

use std::collections::HashSet;

use foldhash::{HashMap, HashMapExt};

use cedar_policy::{
    ActionConstraint, Authorizer, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Request, ResourceConstraint, Response, Schema,
};

/// Policies that share an action key and an anchor, ready to evaluate.
pub(crate) struct Bucket {
    set: PolicySet,
    /// Entity literals these policies may look up (read an attribute, a
    /// tag or the ancestors of; see [`literals`]): a request's view must
    /// contain them. Literals only compared are left out.
    literals: Vec<EntityUid>,
    /// Whether any of these policies may look up an entity reached through
    /// an attribute (see [`literals::reaches_beyond_roots`]): then a view
    /// must also hold what its entities' attributes name.
    deep: bool,
    /// The attributes (and whether tags) these policies may read: a view
    /// builds only those.
    reads: Reads,
}

impl Bucket {
    pub(crate) fn literals(&self) -> &[EntityUid] {
        &self.literals
    }

    pub(crate) fn deep(&self) -> bool {
        self.deep
    }

    pub(crate) fn reads(&self) -> &Reads {
        &self.reads
    }
}

/// The buckets of one action key: unanchored policies, and policies
/// anchored on a principal or a resource entity.
#[derive(Default)]
struct Slice {
    free: Option<Bucket>,
    by_principal: HashMap<EntityUid, Bucket>,
    by_resource: HashMap<EntityUid, Bucket>,
}

impl Slice {
    fn select<'s>(&'s self, scope: &Scope<'_>, out: &mut Vec<&'s Bucket>) {
        out.extend(self.free.as_ref());
        if !self.by_principal.is_empty() {
            for uid in scope.principal() {
                out.extend(self.by_principal.get(uid));
            }
        }
        if !self.by_resource.is_empty() {
            for uid in scope.resource() {
                out.extend(self.by_resource.get(uid));
            }
        }
    }
}

/// One schema action with every policy that applies to it under the
/// schema's action groups.
struct Known {
    /// The action's ancestors in the schema, sorted: the merge is only valid
    /// for a request whose action has exactly these.
    ancestors: Vec<EntityUid>,
    slice: Slice,
}

/// The policy index of a snapshot. Depends on the policies and the schema
/// only, so snapshots that differ only in entities share it.
pub(crate) struct Slices {
    known: HashMap<EntityUid, Known>,
    any_action: Slice,
    by_action: HashMap<EntityUid, Slice>,
}

/// What slicing needs to know about a request: its action, principal and
/// resource with their ancestors in the entities it is evaluated against.
pub(crate) struct Scope<'a> {
    pub action: &'a EntityUid,
    pub action_ancestors: Vec<&'a EntityUid>,
    pub principal: &'a EntityUid,
    pub principal_ancestors: Vec<&'a EntityUid>,
    pub resource: &'a EntityUid,
    pub resource_ancestors: Vec<&'a EntityUid>,
}

impl<'a> Scope<'a> {
    /// The request's entities as the stored entity set sees them.
    pub(crate) fn in_store(
        store: &'a Entities,
        principal: &'a EntityUid,
        action: &'a EntityUid,
        resource: &'a EntityUid,
    ) -> Self {
        let ancestors = |uid| {
            store
                .ancestors(uid)
                .map(|it| it.collect())
                .unwrap_or_default()
        };
        Scope {
            action,
            action_ancestors: ancestors(action),
            principal,
            principal_ancestors: ancestors(principal),
            resource,
            resource_ancestors: ancestors(resource),
        }
    }

    fn principal(&self) -> impl Iterator<Item = &EntityUid> {
        std::iter::once(self.principal).chain(self.principal_ancestors.iter().copied())
    }

    fn resource(&self) -> impl Iterator<Item = &EntityUid> {
        std::iter::once(self.resource).chain(self.resource_ancestors.iter().copied())
    }
}

/// The entity a policy is filed under, besides its action.
#[derive(Clone)]
enum Anchor {
    None,
    Principal(EntityUid),
    Resource(EntityUid),
}

/// What the index needs of one policy.
struct Entry {
    policy: Policy,
    /// `None`: any action. Otherwise the actions its scope names.
    actions: Option<Vec<EntityUid>>,
    anchor: Anchor,
}

impl Slices {
    /// Indexes every policy (static and linked) of `set`. Templates are
    /// never evaluated on their own, so only their links are indexed.
    ///
    /// Should Cedar refuse to rebuild a set it has already accepted (it has
    /// no reason to), the index degrades to one bucket holding the whole set:
    /// slower, never wrong.
    pub(crate) fn build(set: &PolicySet, schema: Option<&Schema>) -> Slices {
        Self::try_build(set, schema).unwrap_or_else(|e| {
            tracing::warn!("policy index unavailable, evaluating every policy: {e}");
            Self::whole(set)
        })
    }

    fn whole(set: &PolicySet) -> Slices {
        let mut literals: Vec<EntityUid> = set.policies().flat_map(literals::looked_up).collect();
        literals.sort_by_key(ToString::to_string);
        literals.dedup();
        Slices {
            known: HashMap::new(),
            any_action: Slice {
                free: Some(Bucket {
                    set: set.clone(),
                    literals,
                    deep: set.policies().any(literals::reaches_beyond_roots),
                    reads: set.policies().fold(Reads::default(), |mut r, p| {
                        r.add(&Reads::of(p));
                        r
                    }),
                }),
                ..Slice::default()
            },
            by_action: HashMap::new(),
        }
    }

    fn try_build(set: &PolicySet, schema: Option<&Schema>) -> Result<Slices, String> {
        let entries: Vec<Entry> = set.policies().map(entry).collect();

        let mut any_action = Vec::new();
        let mut by_action: HashMap<EntityUid, Vec<&Entry>> = HashMap::new();
        for e in &entries {
            match &e.actions {
                None => any_action.push(e),
                Some(actions) => {
                    // `action in [A, A]` is legal; file the policy once.
                    let distinct: HashSet<&EntityUid> = actions.iter().collect();
                    for a in distinct {
                        by_action.entry(a.clone()).or_default().push(e);
                    }
                }
            }
        }

        let mut known = HashMap::new();
        if let Some(schema) = schema {
            let actions = schema.action_entities().map_err(|e| e.to_string())?;
            for action in schema.actions() {
                let mut ancestors: Vec<EntityUid> = actions
                    .ancestors(action)
                    .map(|it| it.cloned().collect())
                    .unwrap_or_default();
                ancestors.sort_by_key(ToString::to_string);
                let applies = |e: &&Entry| match &e.actions {
                    None => true,
                    Some(named) => named.iter().any(|a| a == action || ancestors.contains(a)),
                };
                let slice = slice(set, entries.iter().filter(applies))?;
                known.insert(action.clone(), Known { ancestors, slice });
            }
        }

        Ok(Slices {
            known,
            any_action: slice(set, any_action.into_iter())?,
            by_action: by_action
                .into_iter()
                .map(|(a, es)| Ok((a, slice(set, es.into_iter())?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// The buckets whose policies can apply to `scope`, in no particular
    /// order. A policy may appear in two buckets on the general path;
    /// [`merge`] takes care of that.
    pub(crate) fn select<'s>(&'s self, scope: &Scope<'_>) -> Vec<&'s Bucket> {
        let mut out = Vec::new();
        if let Some(known) = self.known.get(scope.action)
            && same_set(&known.ancestors, &scope.action_ancestors)
        {
            known.slice.select(scope, &mut out);
            return out;
        }
        self.any_action.select(scope, &mut out);
        for action in std::iter::once(scope.action).chain(scope.action_ancestors.iter().copied()) {
            if let Some(slice) = self.by_action.get(action) {
                slice.select(scope, &mut out);
            }
        }
        out
    }
}

/// Evaluates `request` against each bucket: one response per bucket.
pub(crate) fn authorize(
    request: &Request,
    buckets: &[&Bucket],
    entities: &Entities,
) -> Vec<Response> {
    let authorizer = Authorizer::new();
    buckets
        .iter()
        .map(|b| authorizer.is_authorized(request, &b.set, entities))
        .collect()
}

/// Cedar's combination of policy results, applied to bucket results: a
/// bucket denies with reasons only when a forbid in it holds, and allows
/// only when no forbid in it holds and a permit does.
pub(crate) struct Merged<'r> {
    pub decision: Decision,
    pub reasons: Vec<&'r PolicyId>,
    pub errors: Vec<&'r cedar_policy::AuthorizationError>,
}

pub(crate) fn merge(responses: &[Response]) -> Merged<'_> {
    let mut forbids = Vec::new();
    let mut permits = Vec::new();
    let mut errors = Vec::new();
    for r in responses {
        let reasons = r.diagnostics().reason();
        match r.decision() {
            Decision::Deny => forbids.extend(reasons),
            Decision::Allow => permits.extend(reasons),
        }
        errors.extend(r.diagnostics().errors());
    }
    let (decision, reasons) = if !forbids.is_empty() {
        (Decision::Deny, forbids)
    } else if !permits.is_empty() {
        (Decision::Allow, permits)
    } else {
        (Decision::Deny, Vec::new())
    };
    Merged {
        decision,
        reasons,
        errors,
    }
}

/// Whether two small lists hold the same entities (neither has duplicates).
fn same_set(sorted: &[EntityUid], other: &[&EntityUid]) -> bool {
    sorted.len() == other.len() && other.iter().all(|u| sorted.contains(u))
}

fn entry(policy: &Policy) -> Entry {
    let actions = match policy.action_constraint() {
        ActionConstraint::Any => None,
        ActionConstraint::Eq(a) => Some(vec![a]),
        ActionConstraint::In(list) => Some(list),
    };
    // The resource side first: tenant policies name their company there,
    // and a company has far fewer requests than a role has members.
    let resource = match policy.resource_constraint() {
        ResourceConstraint::In(e) | ResourceConstraint::Eq(e) | ResourceConstraint::IsIn(_, e) => {
            Some(e)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => None,
    };
    let principal = match policy.principal_constraint() {
        PrincipalConstraint::In(e)
        | PrincipalConstraint::Eq(e)
        | PrincipalConstraint::IsIn(_, e) => Some(e),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
    };
    let anchor = match (resource, principal) {
        (Some(r), _) => Anchor::Resource(r),
        (None, Some(p)) => Anchor::Principal(p),
        (None, None) => Anchor::None,
    };
    Entry {
        policy: policy.clone(),
        actions,
        anchor,
    }
}

/// Files `entries` into buckets by anchor.
fn slice<'e>(set: &PolicySet, entries: impl Iterator<Item = &'e Entry>) -> Result<Slice, String> {
    let mut free = Vec::new();
    let mut by_principal: HashMap<EntityUid, Vec<&Policy>> = HashMap::new();
    let mut by_resource: HashMap<EntityUid, Vec<&Policy>> = HashMap::new();
    for e in entries {
        match &e.anchor {
            Anchor::None => free.push(&e.policy),
            Anchor::Principal(p) => by_principal.entry(p.clone()).or_default().push(&e.policy),
            Anchor::Resource(r) => by_resource.entry(r.clone()).or_default().push(&e.policy),
        }
    }
    let buckets = |m: HashMap<EntityUid, Vec<&Policy>>| {
        m.into_iter()
            .map(|(k, ps)| Ok((k, bucket(set, &ps)?)))
            .collect::<Result<HashMap<_, _>, String>>()
    };
    Ok(Slice {
        free: if free.is_empty() {
            None
        } else {
            Some(bucket(set, &free)?)
        },
        by_principal: buckets(by_principal)?,
        by_resource: buckets(by_resource)?,
    })
}

fn bucket(set: &PolicySet, policies: &[&Policy]) -> Result<Bucket, String> {
    let mut out = PolicySet::new();
    let mut literals = Vec::new();
    let mut deep = false;
    let mut reads = Reads::default();
    for p in policies {
        literals.extend(literals::looked_up(p));
        deep |= literals::reaches_beyond_roots(p);
        reads.add(&Reads::of(p));
        match (p.template_id(), p.template_links()) {
            (Some(template), Some(values)) => {
                if out.template(template).is_none() {
                    let t = set
                        .template(template)
                        .ok_or_else(|| format!("policy `{}` links a missing template", p.id()))?;
                    out.add_template(t.clone()).map_err(|e| e.to_string())?;
                }
                out.link(template.clone(), p.id().clone(), values)
                    .map_err(|e| e.to_string())?;
            }
            _ => out.add((*p).clone()).map_err(|e| e.to_string())?,
        }
    }
    literals.sort_by_key(ToString::to_string);
    literals.dedup();
    Ok(Bucket {
        set: out,
        literals,
        deep,
        reads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    fn ids(buckets: &[&Bucket]) -> Vec<String> {
        let mut out: Vec<String> = buckets
            .iter()
            .flat_map(|b| b.set.policies().map(|p| p.id().to_string()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn linked_policies_are_filed_by_their_linked_values() {
        // policy0 is the template, policy1 the static policy.
        let mut set = PolicySet::from_str(
            r#"permit (principal == ?principal, action == Action::"go", resource in ?resource);
               permit (principal, action, resource);"#,
        )
        .unwrap();
        let vals = std::collections::HashMap::from([
            (cedar_policy::SlotId::principal(), uid(r#"U::"ann""#)),
            (cedar_policy::SlotId::resource(), uid(r#"Folder::"f""#)),
        ]);
        set.link(PolicyId::new("policy0"), PolicyId::new("link"), vals)
            .unwrap();
        let slices = Slices::build(&set, None);

        let (ann, go, doc, folder) = (
            uid(r#"U::"ann""#),
            uid(r#"Action::"go""#),
            uid(r#"Doc::"d""#),
            uid(r#"Folder::"f""#),
        );
        let inside = Scope {
            action: &go,
            action_ancestors: vec![],
            principal: &ann,
            principal_ancestors: vec![],
            resource: &doc,
            resource_ancestors: vec![&folder],
        };
        assert_eq!(ids(&slices.select(&inside)), ["link", "policy1"]);
        let outside = Scope {
            resource_ancestors: vec![],
            ..inside
        };
        assert_eq!(ids(&slices.select(&outside)), ["policy1"]);
    }

    #[test]
    fn action_groups_reach_policies_on_the_general_path() {
        let set = PolicySet::from_str(
            r#"permit (principal, action in Action::"group", resource);
               permit (principal, action == Action::"other", resource);"#,
        )
        .unwrap();
        let slices = Slices::build(&set, None);
        let (p, a, g, r) = (
            uid(r#"U::"u""#),
            uid(r#"Action::"a""#),
            uid(r#"Action::"group""#),
            uid(r#"R::"r""#),
        );
        let scope = Scope {
            action: &a,
            action_ancestors: vec![&g],
            principal: &p,
            principal_ancestors: vec![],
            resource: &r,
            resource_ancestors: vec![],
        };
        assert_eq!(ids(&slices.select(&scope)), ["policy0"]);
    }
}
