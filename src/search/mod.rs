//! Search: which principals, resources or actions a question allows.
//!
//! AuthZEN's search APIs ask "which Members may view this inbox?", "which
//! Inboxes may this Member view?", "what may this Member do to this
//! inbox?". A search here is many decisions, each made by the one decision
//! path ([`Snapshot::decide_with`]) on one snapshot, so a result is exactly
//! what an evaluation of it would answer. Only the candidates differ:
//!
//! - for a principal or a resource, every stored entity of the searched
//!   type, found through the store's per-type index (never a walk over the
//!   whole store), in the store's fixed order, and first narrowed by the
//!   forbids that certainly deny most of them ([`guard`]): a tenant's
//!   isolation rule leaves one tenant's entities to decide, and under a
//!   strictly validated policy set they are found through the index's
//!   ancestor lists without reading the other tenants' records;
//! - for an action, every action the schema declares for the principal's
//!   and the resource's types (without a schema, every action the policies
//!   name), in the order of their names.
//!
//! A search answers a page: up to `limit` results, and a [`Cursor`] when
//! the search goes on. A page's work is bounded twice: by `limit`, and by
//! a `budget` of candidates decided, because a search the forbids cannot
//! narrow (input entities with properties, a model without a tenant rule)
//! decides candidates until it has `limit` allowed ones, and when few are
//! allowed that is every entity of the type (about a second per 100,000).
//! The page ends at whichever comes first:
//!
//! - `limit` results: it looks one result ahead, and the cursor is at the
//!   last result when there is another allowed candidate (none when there
//!   is not);
//! - `budget` candidates decided with candidates left: the cursor is at
//!   the last candidate decided, so the next page goes on after it; such a
//!   page may hold fewer than `limit` results, or none, and still have a
//!   cursor (AuthZEN pages may be short; only an empty `next_token` ends
//!   them).
//!
//! Either way a cursor lies past where the page began, so paging always
//! advances. A cursor is a place in the candidate order, not a snapshot,
//! so the next page may be answered by a newer snapshot: entities changed
//! in between may be missed or seen twice, as AuthZEN allows.

mod guard;

use std::num::NonZeroUsize;

use cedar_policy::{EntityUid, Schema};
use smol_str::SmolStr;

use crate::decide::{Decision, Query, QueryError};
use crate::entities::Overlay;
use crate::snapshot::{Snapshot, ValidationMode};
use crate::store::Position;
use guard::{Fixed, Narrowing, Side};

/// What a search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    /// The principal: the query's principal gives the type; its id is
    /// ignored.
    Principal,
    /// The resource: the query's resource gives the type; its id is
    /// ignored.
    Resource,
    /// The action: the query's action is ignored.
    Action,
}

/// Where a page of a search ended; the next page starts after it.
/// Opaque: carry it as [`Cursor::to_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(Place);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Start,
    Entity(Position),
    /// After the action whose UID reads this.
    Action(String),
}

impl Cursor {
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.0 {
            Place::Start => vec![0],
            Place::Entity(p) => {
                let mut out = vec![1];
                out.extend_from_slice(&p.shard.to_be_bytes());
                out.extend_from_slice(p.id.as_bytes());
                out
            }
            Place::Action(a) => [&[2], a.as_bytes()].concat(),
        }
    }

    /// `None` for bytes no cursor gives.
    pub fn from_bytes(bytes: &[u8]) -> Option<Cursor> {
        let (tag, rest) = bytes.split_first()?;
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        Some(Cursor(match tag {
            0 if rest.is_empty() => Place::Start,
            1 if rest.len() >= 4 => {
                let (shard, id) = rest.split_at(4);
                Place::Entity(Position {
                    shard: u32::from_be_bytes(shard.try_into().ok()?),
                    id: SmolStr::new(text(id)?),
                })
            }
            2 => Place::Action(text(rest)?),
            _ => return None,
        }))
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Allowed candidates, in the search's order.
    pub results: Vec<EntityUid>,
    /// Where the next page starts: set when another allowed candidate
    /// follows the last result, or when the budget ran out before the
    /// candidates did (then what follows may hold nothing allowed).
    pub next: Option<Cursor>,
    /// How many candidates were decided for this page (those the policies
    /// ruled out beforehand are not counted): what the page cost.
    pub decided: usize,
}

impl Snapshot {
    /// The candidates of `searched` for which `query` (with the candidate
    /// in place of the searched part) is allowed, at most `limit` of them,
    /// starting after `after`, deciding at most `budget` candidates (the
    /// module's doc says where such a page ends).
    ///
    /// Refused, as a decision would be, when a part that does not vary is
    /// invalid (an unknown action, a context the action does not take); a
    /// principal or resource of a type the action does not take, searched
    /// or not, simply leaves nothing to find, as does a candidate the
    /// schema refuses.
    pub fn search(
        &self,
        searched: Searched,
        query: &Query,
        layers: &[&Overlay],
        after: Option<&Cursor>,
        limit: NonZeroUsize,
        budget: NonZeroUsize,
    ) -> Result<Page, QueryError> {
        let bounds = Bounds { limit, budget };
        self.search_with(searched, query, layers, after, bounds, true)
    }

    /// [`Snapshot::search`] deciding every candidate, without narrowing by
    /// the policies and without a budget: what the tests hold the narrowing
    /// against.
    #[doc(hidden)]
    pub fn search_deciding_all(
        &self,
        searched: Searched,
        query: &Query,
        after: Option<&Cursor>,
        limit: NonZeroUsize,
    ) -> Result<Page, QueryError> {
        let bounds = Bounds {
            limit,
            budget: NonZeroUsize::MAX,
        };
        self.search_with(searched, query, &[], after, bounds, false)
    }

    fn search_with(
        &self,
        searched: Searched,
        query: &Query,
        layers: &[&Overlay],
        after: Option<&Cursor>,
        bounds: Bounds,
        narrow: bool,
    ) -> Result<Page, QueryError> {
        let layers: Vec<&Overlay> = layers.iter().copied().filter(|l| !l.is_empty()).collect();
        let from = after.map_or(Place::Start, |c| c.0.clone());
        match searched {
            Searched::Principal => {
                self.search_entities(Side::Principal, query, &layers, from, bounds, narrow)
            }
            Searched::Resource => {
                self.search_entities(Side::Resource, query, &layers, from, bounds, narrow)
            }
            Searched::Action => self.search_actions(query, &layers, from, bounds),
        }
    }

    fn search_entities(
        &self,
        side: Side,
        query: &Query,
        layers: &[&Overlay],
        from: Place,
        bounds: Bounds,
        narrow: bool,
    ) -> Result<Page, QueryError> {
        let (searched, fixed, field) = match side {
            Side::Principal => (&query.principal, &query.resource, "principal"),
            Side::Resource => (&query.resource, &query.principal, "resource"),
        };
        let after = match &from {
            Place::Start => None,
            Place::Entity(p) => Some(p),
            Place::Action(_) => return Err(not_this_search()),
        };
        if !self.takes(query)? {
            return Ok(Page::empty());
        }
        let core: &cedar_policy_core::ast::EntityUID = searched.as_ref();
        let ty = core.entity_type();
        let fixed = Fixed {
            uid: fixed.as_ref(),
            record: self.store.get(fixed.as_ref()),
        };
        let narrowing = if narrow && layers.is_empty() {
            Narrowing::read(self, side, ty, query.action.as_ref(), &fixed)
        } else {
            Narrowing::Guards {
                guards: Vec::new(),
                within: None,
            }
        };
        if matches!(narrowing, Narrowing::Nothing) {
            return Ok(Page::empty());
        }
        let mut asked = query.clone();
        // Under the entities the policies confine the candidates to, when
        // they say; else every entity of the type.
        let store = &self.store;
        let candidates: Box<dyn Iterator<Item = _>> = match narrowing.within() {
            Some(anchors) => Box::new(store.of_type_under(ty, anchors, after)),
            None => Box::new(store.of_type(ty, after)),
        };
        let candidates = candidates.filter(|(_, r)| !narrowing.rules_out(store, &fixed, r));
        collect(
            candidates,
            bounds,
            |(shard, r)| {
                Place::Entity(Position {
                    shard: *shard,
                    id: SmolStr::new(r.key.id()),
                })
            },
            |(_, r)| {
                let uid = EntityUid::from(r.key.uid());
                match side {
                    Side::Principal => asked.principal = uid,
                    Side::Resource => asked.resource = uid,
                }
                match self.decide_with(&asked, layers) {
                    Ok(a) => Ok(a.decision == Decision::Allow),
                    // The schema refuses this candidate, not the question.
                    Err(e) if e.field == field => Ok(false),
                    Err(e) => Err(e),
                }
            },
            |(_, r)| EntityUid::from(r.key.uid()),
        )
    }

    /// Whether the schema lets `query.action` take principals and
    /// resources of the query's types (the searched one's and the fixed
    /// one's): when not, no candidate can be allowed and none is decided.
    /// True without a schema or validation. An action the schema does not
    /// declare is refused, as a decision refuses it.
    fn takes(&self, query: &Query) -> Result<bool, QueryError> {
        let Some(schema) = self.schema.as_ref() else {
            return Ok(true);
        };
        if self.validation == ValidationMode::Off {
            return Ok(true);
        }
        let action = &query.action;
        let (Some(mut principals), Some(mut resources)) = (
            schema.principals_for_action(action),
            schema.resources_for_action(action),
        ) else {
            return Err(QueryError::new(
                "action",
                format!("`{action}` is not an action in the schema"),
            ));
        };
        Ok(principals.any(|t| t == query.principal.type_name())
            && resources.any(|t| t == query.resource.type_name()))
    }

    fn search_actions(
        &self,
        query: &Query,
        layers: &[&Overlay],
        from: Place,
        bounds: Bounds,
    ) -> Result<Page, QueryError> {
        let after = match &from {
            Place::Start => None,
            Place::Action(a) => Some(a.as_str()),
            Place::Entity(_) => return Err(not_this_search()),
        };
        let mut actions: Vec<(String, EntityUid)> = match self.schema.as_ref() {
            Some(schema) => schema_actions(schema, query),
            None => policy_actions(self),
        }
        .into_iter()
        .map(|a| (a.to_string(), a))
        .collect();
        actions.sort();
        actions.dedup();
        let start = after.map_or(0, |a| actions.partition_point(|(s, _)| s.as_str() <= a));
        let mut asked = query.clone();
        collect(
            actions[start..].iter(),
            bounds,
            |(s, _)| Place::Action(s.clone()),
            |(_, action)| {
                asked.action = action.clone();
                // Every refusal depends on the candidate action (its
                // context, the types it takes): not a result.
                Ok(self
                    .decide_with(&asked, layers)
                    .is_ok_and(|a| a.decision == Decision::Allow))
            },
            |(_, action)| action.clone(),
        )
    }
}

impl Page {
    fn empty() -> Page {
        Page {
            results: Vec::new(),
            next: None,
            decided: 0,
        }
    }
}

fn not_this_search() -> QueryError {
    QueryError::new("page", "the cursor belongs to another kind of search")
}

fn schema_actions(schema: &Schema, query: &Query) -> Vec<EntityUid> {
    schema
        .actions_for_principal_and_resource(query.principal.type_name(), query.resource.type_name())
        .cloned()
        .collect()
}

/// Without a schema: every action a policy's scope names.
fn policy_actions(snapshot: &Snapshot) -> Vec<EntityUid> {
    use cedar_policy::ActionConstraint;
    snapshot
        .policy_set()
        .policies()
        .flat_map(|p| match p.action_constraint() {
            ActionConstraint::Any => Vec::new(),
            ActionConstraint::Eq(a) => vec![a],
            ActionConstraint::In(list) => list,
        })
        .collect()
}

/// What one page may cost: results and candidates decided.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    limit: NonZeroUsize,
    budget: NonZeroUsize,
}

/// Up to `limit` candidates that `allowed` accepts, then one more looked
/// for: if there is one, the page ends with a cursor at its last result (a
/// full page has one: `limit` is at least 1). Whatever it has found, the
/// page ends once `budget` candidates are decided and another is left,
/// with a cursor at the last one decided. Every cursor is past where the
/// page began, so paging always advances.
fn collect<C>(
    candidates: impl Iterator<Item = C>,
    bounds: Bounds,
    place: impl Fn(&C) -> Place,
    mut allowed: impl FnMut(&C) -> Result<bool, QueryError>,
    uid: impl Fn(&C) -> EntityUid,
) -> Result<Page, QueryError> {
    let mut candidates = candidates.peekable();
    let mut results = Vec::new();
    let mut last = None;
    let mut decided = 0;
    while let Some(c) = candidates.next() {
        decided += 1;
        if allowed(&c)? {
            if results.len() == bounds.limit.get() {
                return Ok(Page {
                    results,
                    next: last.map(Cursor),
                    decided,
                });
            }
            last = Some(place(&c));
            results.push(uid(&c));
        }
        if decided == bounds.budget.get() && candidates.peek().is_some() {
            return Ok(Page {
                results,
                next: Some(Cursor(place(&c))),
                decided,
            });
        }
    }
    Ok(Page {
        results,
        next: None,
        decided,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_their_bytes_and_refuse_other_bytes() {
        let cursors = [
            Cursor(Place::Start),
            Cursor(Place::Entity(Position {
                shard: 70_000,
                id: SmolStr::new("acme-\"ada\"-é"),
            })),
            Cursor(Place::Action(r#"Docs::Action::"read""#.into())),
        ];
        for c in cursors {
            assert_eq!(Cursor::from_bytes(&c.to_bytes()), Some(c));
        }
        for bad in [&[][..], &[0, 1], &[1, 0, 0], &[3], &[1, 0, 0, 0, 0, 0xff]] {
            assert_eq!(Cursor::from_bytes(bad), None, "{bad:?}");
        }
    }
}
