//! Stored entities by type: what a search walks instead of the whole store.
//!
//! A search (AuthZEN's "which Members may view this inbox?") has every
//! stored entity of one type as its candidates. Finding them by walking
//! every record would cost the whole store per query, so each shard keeps
//! its records grouped by type, ids sorted ([`ShardTypes`]).
//!
//! The index lives beside the shards, one entry per shard, and follows them
//! the way the child counts do: a generation ([`Store::apply`]) copies the
//! shards a change touches, and [`refresh`] then regroups exactly the shards
//! the new generation no longer shares with the old one (a pointer
//! comparison finds them). A one-tenant change thus regroups a few hundred
//! records, whatever the store holds. Groups hold the records' own `Arc`s,
//! so the index costs a pointer per entity.
//!
//! Each group also lists its records by ancestor (a 32-bit hash of the
//! ancestor and the record's place in the group, sorted), so a search that
//! the policies confine to one tenant ("every candidate is in
//! `Company::"c5"`") finds that tenant's members without looking at the
//! others: about 8 bytes per (entity, ancestor) pair.
//!
//! The walk order is the shard, then the id. A store keeps its shard count
//! from its first load on, so a [`Position`] taken in one generation means
//! the same place in the next: a paginated search resumes where it stopped
//! even across a reload (entities changed meanwhile may be missed or seen
//! twice, as AuthZEN allows).

use std::hash::BuildHasher;
use std::sync::Arc;

use cedar_policy_core::ast::{EntityType, EntityUID};
use smol_str::SmolStr;

use super::{KeyRef, Record, Shard, Store, Val, on_cores, workers_for};

/// One shard's records, grouped by type (each group non-empty, ids sorted).
#[derive(Debug, Default)]
pub(crate) struct ShardTypes {
    groups: Box<[Group]>,
}

/// The records of one type in one shard.
#[derive(Debug)]
struct Group {
    records: Box<[Arc<Record>]>,
    /// `(hash of an ancestor, index in records)` for every ancestor of
    /// every record, sorted: the records under an entity, found by a
    /// binary search (hashes that collide are told apart by the records'
    /// own ancestor lists).
    under: Box<[(u32, u32)]>,
}

impl Group {
    fn new(records: Box<[Arc<Record>]>) -> Group {
        let mut under: Vec<(u32, u32)> = records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.ancestors
                    .iter()
                    .map(move |a| (hash(a.as_ref()), i as u32))
            })
            .collect();
        under.sort_unstable();
        Group {
            records,
            under: under.into(),
        }
    }

    /// The places of the records that are one of `anchors` or under one,
    /// in id order.
    fn under(&self, anchors: &[EntityUID]) -> Vec<usize> {
        let mut found = Vec::new();
        for anchor in anchors {
            let key = KeyRef::of(anchor);
            if key.ty == self.records[0].key.ty()
                && let Ok(i) = self.records.binary_search_by(|r| r.key.id().cmp(key.id))
            {
                found.push(i);
            }
            let h = hash(key);
            let from = self.under.partition_point(|&(x, _)| x < h);
            for &(_, i) in self.under[from..].iter().take_while(|&&(x, _)| x == h) {
                let r = &self.records[i as usize];
                if r.ancestors
                    .binary_search_by(|a| (a.ty(), a.id()).cmp(&(key.ty, key.id)))
                    .is_ok()
                {
                    found.push(i as usize);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

fn hash(key: KeyRef<'_>) -> u32 {
    foldhash::fast::FixedState::default().hash_one(key) as u32
}

impl ShardTypes {
    fn of(shard: &Shard) -> ShardTypes {
        let mut records: Vec<&Arc<Record>> = shard.values().collect();
        records.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let mut groups: Vec<Group> = Vec::new();
        let mut rest = records.as_slice();
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|r| r.key.ty() == first.key.ty())
                .count();
            groups.push(Group::new(
                rest[..n].iter().map(|r| Arc::clone(r)).collect(),
            ));
            rest = &rest[n..];
        }
        ShardTypes {
            groups: groups.into(),
        }
    }

    fn group(&self, ty: &EntityType) -> Option<&Group> {
        self.groups.iter().find(|g| g.records[0].key.ty() == ty)
    }
}

/// A place in the walk over one type's records: after the record `id` of
/// shard `shard`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) shard: u32,
    pub(crate) id: SmolStr,
}

/// Regroups the shards of `next` that it does not share with `before`
/// (every shard, when the two differ in shard count).
pub(super) fn refresh(before: &Store, next: &mut Store) {
    let n = next.shards.len();
    let same = before.shards.len() == n && next.types.len() == n;
    let stale: Vec<usize> = if same {
        next.shards.changed_since(&before.shards)
    } else {
        next.types = (0..n).map(|_| Arc::default()).collect();
        (0..n).collect()
    };
    let work: usize = stale.iter().map(|&i| next.shards[i].len()).sum();
    let per = stale.len().div_ceil(workers_for(work)).max(1);
    let shards = &next.shards;
    let regrouped = on_cores(stale.chunks(per).collect(), |part| {
        part.iter()
            .map(|&i| (i, Arc::new(ShardTypes::of(&shards[i]))))
            .collect::<Vec<_>>()
    });
    for (i, types) in regrouped.into_iter().flatten() {
        next.types[i] = types;
    }
}

impl Store {
    /// The stored entities of type `ty` in walk order (shard, then id),
    /// each with its shard, starting after `after` (from the start when
    /// `None`). Touches only this type's records and one small group list
    /// per shard.
    pub(crate) fn of_type<'s>(
        &'s self,
        ty: &'s EntityType,
        after: Option<&'s Position>,
    ) -> impl Iterator<Item = (u32, &'s Arc<Record>)> + 's {
        self.walk(ty, after, |g| g.records.iter())
    }

    /// [`Store::of_type`] narrowed to the records that are one of
    /// `anchors` or have one as an ancestor, found by the per-group
    /// ancestor lists without looking at the others.
    pub(crate) fn of_type_under<'s>(
        &'s self,
        ty: &'s EntityType,
        anchors: &'s [EntityUID],
        after: Option<&'s Position>,
    ) -> impl Iterator<Item = (u32, &'s Arc<Record>)> + 's {
        self.walk(ty, after, move |g| {
            g.under(anchors).into_iter().map(move |p| &g.records[p])
        })
    }

    /// The records `pick` takes from each shard's group of `ty` (in id
    /// order), shard by shard, after `after`.
    fn walk<'s, I>(
        &'s self,
        ty: &'s EntityType,
        after: Option<&'s Position>,
        pick: impl Fn(&'s Group) -> I + Copy + 's,
    ) -> impl Iterator<Item = (u32, &'s Arc<Record>)> + 's
    where
        I: Iterator<Item = &'s Arc<Record>> + 's,
    {
        let first = after.map_or(0, |p| p.shard as usize);
        self.types
            .iter()
            .enumerate()
            .skip(first)
            .flat_map(move |(i, types)| {
                let after = after.filter(|p| p.shard as usize == i);
                types
                    .group(ty)
                    .map(pick)
                    .into_iter()
                    .flatten()
                    .filter(move |r| after.is_none_or(|p| r.key.id() > p.id.as_str()))
                    .map(move |r| (i as u32, r))
            })
    }
}

// What searches read of the store besides the index.

impl Store {
    /// The record of the entity `ty::id`, found without building its UID.
    pub(crate) fn get_parts(&self, ty: &EntityType, id: &str) -> Option<&Arc<Record>> {
        self.get_ref(KeyRef { ty, id })
    }
}

impl Record {
    /// The value of attribute `name`, if the record has one (names are
    /// kept sorted).
    pub(crate) fn attr(&self, name: &str) -> Option<&Val> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.values[i])
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Names, SHARDS, Types};
    use super::*;

    fn record(
        types: &mut Types,
        names: &mut Names,
        ty: &str,
        id: &str,
        parents: &[&str],
    ) -> Record {
        let key = types.written(ty, id).expect("a type name");
        let parents = parents
            .iter()
            .map(|p| types.written("Org", p).expect("a type name"))
            .collect();
        Record::new(key, Vec::new(), parents, names, 0)
    }

    /// What the index must say: the records of `ty`, filtered from all.
    fn expected(store: &Store, ty: &str) -> Vec<String> {
        let mut ids: Vec<String> = store
            .records()
            .filter(|r| r.key.ty().to_string() == ty)
            .map(|r| r.key.id().to_owned())
            .collect();
        ids.sort();
        ids
    }

    fn indexed(store: &Store, ty: &str) -> Vec<String> {
        let ty: EntityType = ty.parse().expect("a type name");
        let mut ids: Vec<String> = store
            .of_type(&ty, None)
            .map(|(_, r)| r.key.id().to_owned())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_index_follows_every_generation_and_resumes_where_a_walk_stopped() {
        let (mut types, mut names) = (Types::default(), Names::default());
        let mut added = vec![record(&mut types, &mut names, "Org", "o", &[])];
        for i in 0..500 {
            added.push(record(
                &mut types,
                &mut names,
                "User",
                &format!("u{i}"),
                &["o"],
            ));
            added.push(record(
                &mut types,
                &mut names,
                "Doc",
                &format!("d{i}"),
                &["o"],
            ));
        }
        let store = Store::new(Default::default()).apply(&[], added).unwrap();
        assert_eq!(indexed(&store, "User").len(), 500);
        assert_eq!(indexed(&store, "User"), expected(&store, "User"));
        assert_eq!(indexed(&store, "Doc"), expected(&store, "Doc"));
        assert_eq!(indexed(&store, "Nothing"), Vec::<String>::new());

        // A generation that removes one user and adds another regroups
        // only the shards it copied.
        let gone = types.written("User", "u7").unwrap();
        let new = record(&mut types, &mut names, "User", "u-new", &["o"]);
        let next = store.apply(&[gone], vec![new]).unwrap();
        assert_eq!(indexed(&next, "User"), expected(&next, "User"));
        assert!(indexed(&next, "User").contains(&"u-new".to_owned()));
        assert!(!indexed(&next, "User").contains(&"u7".to_owned()));
        assert_eq!(indexed(&store, "User"), expected(&store, "User"));
        let regrouped = (0..SHARDS)
            .filter(|&i| !Arc::ptr_eq(&store.types[i], &next.types[i]))
            .count();
        assert!((1..=2).contains(&regrouped), "{regrouped} shards regrouped");

        // Walking in pieces from positions gives the whole walk once.
        let ty: EntityType = "User".parse().unwrap();
        let whole: Vec<String> = next
            .of_type(&ty, None)
            .map(|(_, r)| r.key.id().to_owned())
            .collect();
        let mut pieces = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let page: Vec<(u32, Arc<Record>)> = next
                .of_type(&ty, after.as_ref())
                .take(7)
                .map(|(s, r)| (s, Arc::clone(r)))
                .collect();
            let Some((shard, last)) = page.last() else {
                break;
            };
            after = Some(Position {
                shard: *shard,
                id: SmolStr::new(last.key.id()),
            });
            pieces.extend(page.iter().map(|(_, r)| r.key.id().to_owned()));
        }
        assert_eq!(pieces, whole);
    }

    /// The walk under anchors is the walk filtered by the anchors (a
    /// record that is one, or has one among its ancestors), in the same
    /// order, resumable alike.
    #[test]
    fn the_walk_under_anchors_is_the_filtered_walk() {
        let (mut types, mut names) = (Types::default(), Names::default());
        let mut added = Vec::new();
        for o in 0..6 {
            let parent: Vec<String> = (o > 0).then(|| format!("o{}", o / 2)).into_iter().collect();
            let parent: Vec<&str> = parent.iter().map(String::as_str).collect();
            added.push(record(
                &mut types,
                &mut names,
                "Org",
                &format!("o{o}"),
                &parent,
            ));
        }
        for i in 0..3000 {
            let org = format!("o{}", i % 6);
            added.push(record(
                &mut types,
                &mut names,
                "User",
                &format!("u{i}"),
                &[&org],
            ));
        }
        let store = Store::new(Default::default()).apply(&[], added).unwrap();
        let mut uid = |ty: &str, id: &str| types.written(ty, id).unwrap().uid();
        let ty: EntityType = "User".parse().unwrap();
        let org_ty: EntityType = "Org".parse().unwrap();
        for anchors in [
            vec![uid("Org", "o5")],
            vec![uid("Org", "o1"), uid("Org", "o4")],
            vec![uid("Org", "o0")],
            vec![uid("User", "u17"), uid("Org", "nowhere")],
            vec![],
        ] {
            for (t, anchors) in [(&ty, &anchors), (&org_ty, &anchors)] {
                let within = |r: &Record| {
                    anchors.iter().any(|a| {
                        let k = KeyRef::of(a);
                        (r.key.ty() == k.ty && r.key.id() == k.id)
                            || r.ancestors.iter().any(|x| x.ty() == k.ty && x.id() == k.id)
                    })
                };
                let want: Vec<(u32, String)> = store
                    .of_type(t, None)
                    .filter(|(_, r)| within(r))
                    .map(|(s, r)| (s, r.key.id().to_owned()))
                    .collect();
                let got: Vec<(u32, String)> = store
                    .of_type_under(t, anchors, None)
                    .map(|(s, r)| (s, r.key.id().to_owned()))
                    .collect();
                assert_eq!(got, want, "{anchors:?}");
                if let Some((shard, id)) = want.get(want.len() / 2) {
                    let after = Position {
                        shard: *shard,
                        id: SmolStr::new(id),
                    };
                    let rest: Vec<String> = store
                        .of_type_under(t, anchors, Some(&after))
                        .map(|(_, r)| r.key.id().to_owned())
                        .collect();
                    let want_rest: Vec<String> = want[want.len() / 2 + 1..]
                        .iter()
                        .map(|(_, id)| id.clone())
                        .collect();
                    assert_eq!(rest, want_rest);
                }
            }
        }
    }

    #[test]
    fn attributes_are_found_by_name() {
        let (mut types, mut names) = (Types::default(), Names::default());
        let key = types.written("User", "u").unwrap();
        let r = Record::new(
            key,
            vec![
                ("zeta".into(), Val::Long(1)),
                ("alpha".into(), Val::Bool(true)),
            ],
            Vec::new(),
            &mut names,
            0,
        );
        assert_eq!(r.attr("alpha"), Some(&Val::Bool(true)));
        assert_eq!(r.attr("zeta"), Some(&Val::Long(1)));
        assert_eq!(r.attr("beta"), None);
    }
}
