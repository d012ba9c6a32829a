//! doorman's entity store: every stored entity in a compact form, its
//! ancestors closed once, shared between generations.
//!
//! Why not Cedar's `Entities`: it keeps about 4.5 KB per entity of the
//! bundled model's shape (B-tree nodes and hash sets per attribute, 120-byte
//! UIDs everywhere) and recomputes the whole transitive closure whenever
//! anything is added, so 1M members took 7 GiB and 50 s to load and a
//! one-file change cost the same again. Here:
//!
//! - an entity is a [`Record`]: its reference as a [`Key`], attribute names
//!   shared by every entity with the same names, values compact
//!   ([`value::Val`]), its parents, and its *closed* ancestor set, itself
//!   shared by every entity with the same parents;
//! - records live in hash maps ("shards", [`SHARDS`] or more, sized by the
//!   first load) behind `Arc`s. A new generation ([`Store::apply`]) copies
//!   the shards it changes and shares the rest, so a change costs what it
//!   touches, not what the store holds;
//! - closures are computed for the changed entities, and for entities below
//!   a changed one only when a changed entity has children (the store counts
//!   children per parent, so it knows without looking);
//! - a request never sees this form: [`crate::view`] turns what a request
//!   can reach into a small Cedar `Entities`, with the closed ancestor sets
//!   as they are (Cedar is told not to recompute them).
//!
//! The store holds what the loader checked: every record conformed to the
//! schema when it was read ([`schema::Conformance`]), and [`Store::apply`]
//! refuses duplicates and cycles, as Cedar's own `Entities` does.

mod by_type;
mod paged;
pub(crate) mod schema;
pub(crate) mod value;

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use cedar_policy_core::ast::{Entity, EntityUID, PartialValue};
use smol_str::SmolStr;

pub(crate) use by_type::Position;
pub(crate) use value::{Key, KeyRef, Types, Val};

use paged::Paged;

/// How many maps the records are spread over, at least. A generation
/// copies the maps a change touches: a tenant's hundred-odd entities touch
/// about as many maps, so what a change costs is the size of a map, which
/// the first load bounds by choosing more maps for a larger store
/// ([`SHARD_SIZE`]).
pub(crate) const SHARDS: usize = 1024;

/// About how many records a shard holds after the first load (at most
/// 65,536 shards): a one-tenant change in a 1M-member store then copies
/// about as much as in a 100k one.
const SHARD_SIZE: usize = 128;

type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
type Shard = Map<Key, Arc<Record>>;
/// A record's key and its new closure.
type Closed = (Key, Arc<[Key]>);

/// One stored entity.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) key: Key,
    names: Arc<[SmolStr]>,
    values: Box<[Val]>,
    tags: Box<[(SmolStr, Val)]>,
    pub(crate) parents: Box<[Key]>,
    /// Every ancestor (parents included), sorted; shared between records.
    pub(crate) ancestors: Arc<[Key]>,
    /// The entity file it came from (an index the loader assigns).
    pub(crate) file: u32,
}

/// Shares attribute-name lists among the records one reader makes.
#[derive(Default)]
pub(crate) struct Names {
    known: foldhash::HashSet<Arc<[SmolStr]>>,
}

impl Names {
    pub(crate) fn intern(&mut self, names: Vec<SmolStr>) -> Arc<[SmolStr]> {
        if let Some(known) = self.known.get(names.as_slice()) {
            return Arc::clone(known);
        }
        let names: Arc<[SmolStr]> = names.into();
        self.known.insert(Arc::clone(&names));
        names
    }
}

impl Record {
    /// A record as entity JSON gives it: attributes in any order (kept
    /// sorted by name, as Cedar keeps them), parents in any order and
    /// possibly repeated (a set, as in Cedar). Its closure is computed when
    /// it enters a store.
    pub(crate) fn new(
        key: Key,
        mut attrs: Vec<(SmolStr, Val)>,
        mut parents: Vec<Key>,
        names: &mut Names,
        file: u32,
    ) -> Record {
        attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (attr_names, values): (Vec<SmolStr>, Vec<Val>) = attrs.into_iter().unzip();
        parents.sort();
        parents.dedup();
        Record {
            key,
            names: names.intern(attr_names),
            values: values.into(),
            tags: Box::default(),
            parents: parents.into(),
            ancestors: Arc::from([]),
            file,
        }
    }

    /// The compact form of a Cedar entity (its closure is computed when it
    /// enters a store). `None` if a value is a residual, which entity data
    /// never holds.
    pub(crate) fn from_cedar(
        entity: &Entity,
        types: &mut Types,
        names: &mut Names,
        file: u32,
    ) -> Option<Record> {
        let mut attr_names = Vec::with_capacity(entity.attrs_len());
        let mut values = Vec::with_capacity(entity.attrs_len());
        for (k, v) in entity.attrs() {
            attr_names.push(k.clone());
            values.push(Val::from_cedar(v, types)?);
        }
        let tags = entity
            .tags()
            .map(|(k, v)| Some((k.clone(), Val::from_cedar(v, types)?)))
            .collect::<Option<_>>()?;
        let mut parents: Vec<Key> = entity.ancestors().map(|p| types.key(p)).collect();
        parents.sort();
        parents.dedup();
        Some(Record {
            key: types.key(entity.uid()),
            names: names.intern(attr_names),
            values: values.into(),
            tags,
            parents: parents.into(),
            ancestors: Arc::from([]),
            file,
        })
    }

    /// Cedar's entity, with `ancestors` as its ancestor set (the record's
    /// own closure, or the one a request's entities give it).
    pub(crate) fn to_cedar(&self, ancestors: impl Iterator<Item = EntityUID>) -> Entity {
        self.to_cedar_with(ancestors, |_| true, true)
    }

    /// [`Record::to_cedar`] with only the attributes `attr` keeps, and the
    /// tags only when `tags`: what a view builds of the entity when its
    /// policies can read no more (see [`crate::slice::Reads`]).
    pub(crate) fn to_cedar_with(
        &self,
        ancestors: impl Iterator<Item = EntityUID>,
        attr: impl Fn(&str) -> bool,
        tags: bool,
    ) -> Entity {
        let attrs = self
            .names
            .iter()
            .zip(self.values.iter())
            .filter(|(k, _)| attr(k))
            .map(|(k, v)| (k.clone(), PartialValue::Value(v.to_cedar())));
        let tags = self
            .tags
            .iter()
            .filter(|_| tags)
            .map(|(k, v)| (k.clone(), PartialValue::Value(v.to_cedar())));
        Entity::new_with_attr_partial_value(
            self.key.uid(),
            attrs,
            HashSet::new(),
            ancestors.collect(),
            tags,
        )
    }

    /// Every entity its attributes and tags name.
    pub(crate) fn references<'r>(&'r self, out: &mut Vec<&'r Key>) {
        self.values.iter().for_each(|v| v.keys(out));
        self.tags.iter().for_each(|(_, v)| v.keys(out));
    }
}

/// Why a change could not be applied.
#[derive(Debug, Clone)]
pub(crate) enum StoreError {
    /// `key` is defined twice: by file `first` and by file `second`
    /// (the same number when a file names it twice).
    Duplicate { key: Key, first: u32, second: u32 },
    /// `key` is its own ancestor, through its parent `through`.
    Cycle { key: Key, through: Key, file: u32 },
}

/// One generation of the stored entities. Cloning shares everything.
#[derive(Clone)]
pub struct Store {
    shards: Paged<Shard>,
    len: usize,
    /// How many stored records name each key as a parent.
    /// Sharded like the records, so a change copies only the counts it
    /// touches.
    children: Paged<Map<Key, u32>>,
    /// The schema's action entities (none without a schema).
    actions: Arc<foldhash::HashMap<EntityUID, Arc<Entity>>>,
    /// Each shard's records grouped by type, for searches
    /// ([`by_type`]); regrouped by `apply` for the shards it copies.
    types: Paged<by_type::ShardTypes>,
}

impl Store {
    pub(crate) fn new(actions: foldhash::HashMap<EntityUID, Arc<Entity>>) -> Store {
        Store::with_shards(SHARDS, Arc::new(actions))
    }

    fn with_shards(n: usize, actions: Arc<foldhash::HashMap<EntityUID, Arc<Entity>>>) -> Store {
        Store {
            shards: (0..n).map(|_| Arc::new(Shard::default())).collect(),
            len: 0,
            children: (0..n).map(|_| Arc::default()).collect(),
            actions,
            types: (0..n).map(|_| Arc::default()).collect(),
        }
    }

    /// Number of stored entities (the schema's actions not counted).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn shard_of(&self, key: KeyRef<'_>) -> usize {
        shard_of(key, self.shards.len())
    }

    pub(crate) fn get(&self, uid: &EntityUID) -> Option<&Arc<Record>> {
        self.get_ref(KeyRef::of(uid))
    }

    /// Whether some stored record names `key` as a parent.
    fn has_children(&self, key: &Key) -> bool {
        self.children[self.shard_of(key.as_ref())].contains_key(key)
    }

    pub(crate) fn get_key(&self, key: &Key) -> Option<&Arc<Record>> {
        self.get_ref(key.as_ref())
    }

    fn get_ref(&self, key: KeyRef<'_>) -> Option<&Arc<Record>> {
        self.shards[self.shard_of(key)].get(&key)
    }

    /// A schema action entity.
    pub(crate) fn action(&self, uid: &EntityUID) -> Option<&Arc<Entity>> {
        self.actions.get(uid)
    }

    pub(crate) fn records(&self) -> impl Iterator<Item = &Arc<Record>> {
        self.shards.iter().flat_map(|s| s.values())
    }

    /// The closed ancestors of `uid` as stored (empty when unknown).
    pub(crate) fn ancestors(&self, uid: &EntityUID) -> Vec<EntityUID> {
        match self.get(uid) {
            Some(r) => r.ancestors.iter().map(Key::uid).collect(),
            None => self
                .action(uid)
                .map(|a| a.ancestors().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Every stored entity (and the schema's actions) as Cedar's own
    /// `Entities`: what Cedar would have built from the same files. For
    /// tests and for small stores, whose decisions then skip the per-request
    /// view; a large store is never turned into this.
    pub fn to_cedar(&self) -> cedar_policy::Entities {
        let entities = self
            .records()
            .map(|r| Arc::new(r.to_cedar(r.ancestors.iter().map(Key::uid))))
            .chain(self.actions.values().cloned());
        let core = cedar_policy_core::entities::Entities::new()
            .add_entities(
                entities,
                None::<&cedar_policy_core::entities::NoEntitiesSchema>,
                cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
                cedar_policy_core::extensions::Extensions::all_available(),
            )
            // Keys are unique in the store, so nothing can clash.
            .unwrap_or_default();
        core.into()
    }

    /// A new generation: `removed` taken out, then `added` put in, closures
    /// recomputed where they can have changed. `self` is untouched.
    pub(crate) fn apply(&self, removed: &[Key], added: Vec<Record>) -> Result<Store, StoreError> {
        self.apply_or_return(removed, added).map_err(|(e, _)| e)
    }

    /// [`Store::apply`], which gives the records back when it refuses them
    /// (all but a duplicate's second definition), so that a caller can
    /// leave out the one at fault and try again without having kept a copy
    /// of a million records.
    pub(crate) fn apply_or_return(
        &self,
        removed: &[Key],
        added: Vec<Record>,
    ) -> Result<Store, (StoreError, Vec<Record>)> {
        match self.apply_inner(removed, added) {
            Ok(next) => Ok(next),
            Err(refused) => {
                let (e, next) = *refused;
                Err((e, self.added_in(next)))
            }
        }
    }

    /// The records `next` (a refused generation over `self`, closures not
    /// yet written) holds that `self` does not: they sit, unshared, in the
    /// shards `next` copied.
    fn added_in(&self, mut next: Store) -> Vec<Record> {
        let resized = next.shards.len() != self.shards.len();
        let mut out = Vec::new();
        for i in next.shards.changed_since(&self.shards) {
            let shard = std::mem::take(&mut next.shards[i]);
            let shard = Arc::try_unwrap(shard).unwrap_or_else(|shared| (*shared).clone());
            for (key, record) in shard {
                let before = (!resized).then(|| self.get_key(&key)).flatten();
                if before.is_some_and(|b| Arc::ptr_eq(b, &record)) {
                    continue;
                }
                out.push(Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone()));
            }
        }
        out
    }

    fn apply_inner(
        &self,
        removed: &[Key],
        added: Vec<Record>,
    ) -> Result<Store, Box<(StoreError, Store)>> {
        // The first load of a large world sizes the shards; later
        // generations keep them (a change is small next to the store).
        let mut next = if self.is_empty() && added.len() > SHARDS * SHARD_SIZE {
            let n = (added.len() / SHARD_SIZE).next_power_of_two().min(1 << 16);
            Store::with_shards(n, Arc::clone(&self.actions))
        } else {
            self.clone()
        };
        let n = next.shards.len();
        // Keys whose place in the hierarchy may have changed: removed, new,
        // or back with other parents. An entity rewritten with the same
        // parents (a tenant's company when one of its seats changes) moves
        // nothing below it.
        let mut changed: Vec<Key> = Vec::with_capacity(removed.len() + added.len());
        let mut old_parents: Map<Key, Box<[Key]>> = Map::default();
        for key in removed {
            let shard = Arc::make_mut(&mut next.shards[shard_of(key.as_ref(), n)]);
            if let Some(old) = shard.remove(key) {
                next.len -= 1;
                for p in old.parents.iter() {
                    let counts = Arc::make_mut(&mut next.children[shard_of(p.as_ref(), n)]);
                    if let Some(c) = counts.get_mut(p) {
                        *c -= 1;
                        if *c == 0 {
                            counts.remove(p);
                        }
                    }
                }
                old_parents.insert(key.clone(), old.parents.clone());
            }
        }
        // Put in shard by shard, on every core when there is much to put.
        let count = added.len();
        let items: Vec<(usize, (usize, Record))> = added
            .into_iter()
            .enumerate()
            .map(|(i, record)| (shard_of(record.key.as_ref(), n), (i, record)))
            .collect();
        let old = &old_parents;
        let runs = each_run(
            &mut next.shards,
            items,
            Inserted::default,
            |shard, items, out| {
                let shard = Arc::make_mut(shard);
                for (i, record) in items {
                    if let Some(existing) = shard.get(&record.key) {
                        if out.duplicate.as_ref().is_none_or(|(first, _)| i < *first) {
                            let e = StoreError::Duplicate {
                                key: record.key.clone(),
                                first: existing.file,
                                second: record.file,
                            };
                            out.duplicate = Some((i, e));
                        }
                        continue;
                    }
                    for p in record.parents.iter() {
                        *out.children.entry(p.clone()).or_insert(0) += 1;
                    }
                    out.dirty.push(record.key.clone());
                    match old.get(&record.key) {
                        Some(before) => {
                            out.back.push(record.key.clone());
                            if *before != record.parents {
                                out.changed.push(record.key.clone());
                            }
                        }
                        None => out.changed.push(record.key.clone()),
                    }
                    shard.insert(record.key.clone(), Arc::new(record));
                    out.len += 1;
                }
            },
        );
        if let Some((_, e)) = runs
            .iter()
            .filter_map(|r| r.duplicate.as_ref())
            .min_by_key(|(i, _)| *i)
        {
            return Err(Box::new((e.clone(), next)));
        }
        let mut dirty: Vec<Key> = Vec::with_capacity(count);
        for run in runs {
            next.len += run.len;
            for (k, c) in run.children {
                let counts = Arc::make_mut(&mut next.children[shard_of(k.as_ref(), n)]);
                *counts.entry(k).or_insert(0) += c;
            }
            dirty.extend(run.dirty);
            changed.extend(run.changed);
            for k in run.back {
                old_parents.remove(&k);
            }
        }
        changed.extend(old_parents.into_keys());
        // Entities below a changed one: only looked for when a changed
        // entity had children before, which a seat never does. (Children
        // it gains now are among the added records, closed anyway.)
        let parents_changed: foldhash::HashSet<&Key> =
            changed.iter().filter(|k| self.has_children(k)).collect();
        if !parents_changed.is_empty() {
            let fresh: foldhash::HashSet<&Key> = dirty.iter().collect();
            let below: Vec<Key> = next
                .records()
                .filter(|r| !fresh.contains(&r.key))
                .filter(|r| r.ancestors.iter().any(|a| parents_changed.contains(a)))
                .map(|r| r.key.clone())
                .collect();
            dirty.extend(below);
        }
        match next.close(dirty) {
            Ok(()) => {
                by_type::refresh(self, &mut next);
                Ok(next)
            }
            Err(e) => Err(Box::new((e, next))),
        }
    }

    /// Recomputes the closure of every `dirty` record (each key once), from
    /// its parents' closures (parents outside `dirty` are already right).
    ///
    /// Records that are nobody's parent (seats: most of a store) are closed
    /// last, each from its parents' records alone: no other closure depends
    /// on theirs and no cycle can pass through them. The others (groups)
    /// are closed depth-first over their dirty parents, which is where
    /// cycles are found.
    fn close(&mut self, dirty: Vec<Key>) -> Result<(), StoreError> {
        let (groups, leaves): (Vec<Key>, Vec<Key>) =
            dirty.into_iter().partition(|k| self.has_children(k));
        let groups: Map<Key, ()> = groups.into_iter().map(|k| (k, ())).collect();
        self.close_groups(&groups)?;
        let per = leaves.len().div_ceil(workers_for(leaves.len())).max(1);
        let this = &*self;
        let closed = on_cores(leaves.chunks(per).collect(), |part| {
            this.leaf_closures(part)
        });
        self.set_closures(closed.into_iter().flatten());
        Ok(())
    }

    /// The closures of records nobody names as a parent: their parents'
    /// closures (already right) and the parents themselves.
    fn leaf_closures(&self, leaves: &[Key]) -> Vec<(Key, Arc<[Key]>)> {
        let mut by_parents: Map<Box<[Key]>, Arc<[Key]>> = Map::default();
        let mut closed = Vec::with_capacity(leaves.len());
        for key in leaves {
            let Some(record) = self.get_key(key) else {
                continue;
            };
            let closure = union(&mut by_parents, &record.parents, |p| {
                self.get_key(p).map(|r| &r.ancestors)
            });
            closed.push((key.clone(), closure));
        }
        closed
    }

    /// The depth-first half of [`Self::close`], for records with children.
    fn close_groups(&mut self, dirty: &Map<Key, ()>) -> Result<(), StoreError> {
        let mut done: Map<Key, Arc<[Key]>> = Map::default();
        let mut by_parents: Map<Box<[Key]>, Arc<[Key]>> = Map::default();
        let mut on_stack: Map<Key, ()> = Map::default();
        for start in dirty.keys() {
            if done.contains_key(start) {
                continue;
            }
            // Depth-first over dirty parents, without recursion: a deep
            // hierarchy must not overflow the stack.
            let mut stack: Vec<Key> = vec![start.clone()];
            on_stack.insert(start.clone(), ());
            while let Some(top) = stack.last().cloned() {
                let Some(record) = self.get_key(&top).cloned() else {
                    stack.pop();
                    on_stack.remove(&top);
                    continue;
                };
                let pending = record
                    .parents
                    .iter()
                    .find(|p| dirty.contains_key(*p) && !done.contains_key(*p));
                if let Some(p) = pending {
                    if on_stack.contains_key(p) || *p == top {
                        return Err(StoreError::Cycle {
                            key: p.clone(),
                            through: top,
                            file: record.file,
                        });
                    }
                    if self.get_key(p).is_some() {
                        on_stack.insert(p.clone(), ());
                        stack.push(p.clone());
                        continue;
                    }
                }
                let closure = union(&mut by_parents, &record.parents, |p| {
                    done.get(p)
                        .or_else(|| self.get_key(p).map(|r| &r.ancestors))
                });
                // Checked on every record, shared closure or not: whoever
                // is among its own ancestors closes a cycle.
                if closure.binary_search(&top).is_ok() {
                    let through = record.parents.first().cloned().unwrap_or(top.clone());
                    return Err(StoreError::Cycle {
                        key: top,
                        through,
                        file: record.file,
                    });
                }
                done.insert(top.clone(), closure);
                stack.pop();
                on_stack.remove(&top);
            }
        }
        self.set_closures(done);
        Ok(())
    }

    /// Stores each closure in its record (copying the record only if an
    /// older generation shares it).
    fn set_closures(&mut self, closures: impl IntoIterator<Item = (Key, Arc<[Key]>)>) {
        let n = self.shards.len();
        let items: Vec<(usize, Closed)> = closures
            .into_iter()
            .map(|(key, closure)| (shard_of(key.as_ref(), n), (key, closure)))
            .collect();
        each_run(
            &mut self.shards,
            items,
            || (),
            |shard, items, _| {
                let shard = Arc::make_mut(shard);
                for (key, closure) in items {
                    if let Some(slot) = shard.get_mut(&key)
                        && !Arc::ptr_eq(&slot.ancestors, &closure)
                    {
                        Arc::make_mut(slot).ancestors = closure;
                    }
                }
            },
        );
    }
}

/// What one run of shards of [`Store::apply`] put in.
#[derive(Default)]
struct Inserted {
    len: usize,
    children: Map<Key, u32>,
    dirty: Vec<Key>,
    changed: Vec<Key>,
    /// Keys removed and put back (a file read anew).
    back: Vec<Key>,
    /// The first duplicate in the order records were given.
    duplicate: Option<(usize, StoreError)>,
}

/// Below this many items a change is applied on the calling thread: a
/// tenant's reload is not worth a thread.
const PARALLEL_FROM: usize = 16_384;

fn workers_for(items: usize) -> usize {
    if items < PARALLEL_FROM {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` on each shard that has items (`(shard, item)`) for it, with
/// those items in their order (a shard with none is not touched, so it
/// stays shared with older generations), and returns each worker's `R`.
/// Many items are bucketed and the shards split into one contiguous run
/// per worker (so each worker owns its shards outright); a few (a change)
/// visit only their own shards, so that what a change costs does not grow
/// with the number of shards.
fn each_run<T: Send, R: Send>(
    shards: &mut Paged<Shard>,
    mut items: Vec<(usize, T)>,
    init: impl Fn() -> R + Sync,
    f: impl Fn(&mut Arc<Shard>, Vec<T>, &mut R) + Sync,
) -> Vec<R> {
    let workers = workers_for(items.len());
    if workers == 1 {
        // Stable: items of one shard keep their order.
        items.sort_by_key(|(s, _)| *s);
        let mut out = init();
        let mut items = items.into_iter().peekable();
        while let Some((s, first)) = items.next() {
            let mut group = vec![first];
            while let Some((_, item)) = items.next_if(|(t, _)| *t == s) {
                group.push(item);
            }
            f(&mut shards[s], group, &mut out);
        }
        return vec![out];
    }
    let mut buckets: Vec<Vec<T>> = (0..shards.len()).map(|_| Vec::new()).collect();
    for (s, item) in items {
        buckets[s].push(item);
    }
    // Whole pages per worker; a page is copied only if one of its shards
    // gets items.
    let page = Paged::<Shard>::page_len();
    let pages = shards.pages_mut();
    let per = pages.len().div_ceil(workers).max(1);
    let mut buckets = buckets.into_iter();
    let runs: Vec<_> = pages
        .chunks_mut(per)
        .map(|run| {
            let mine: Vec<Vec<T>> = buckets.by_ref().take(run.len() * page).collect();
            (run, mine)
        })
        .collect();
    on_cores(runs, |(run, mine)| {
        let mut out = init();
        let mut mine = mine.into_iter();
        for page_arc in run.iter_mut() {
            let items: Vec<Vec<T>> = mine.by_ref().take(page).collect();
            if items.iter().all(Vec::is_empty) {
                continue;
            }
            let shards = Arc::make_mut(page_arc);
            for (shard, items) in shards.iter_mut().zip(items) {
                if !items.is_empty() {
                    f(shard, items, &mut out);
                }
            }
        }
        out
    })
}

/// Which of `n` shards holds `key`. A fixed hasher: the shard must not
/// depend on the process.
fn shard_of(key: KeyRef<'_>, n: usize) -> usize {
    (foldhash::fast::FixedState::default().hash_one(key) as usize) % n
}

/// `f` on each part, on threads of their own when there is more than one
/// (results in `parts` order; a panic in one is the caller's panic).
fn on_cores<P: Send, R: Send>(parts: Vec<P>, f: impl Fn(P) -> R + Sync) -> Vec<R> {
    if parts.len() <= 1 {
        return parts.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// The closure of a record with `parents`: the parents and each one's
/// closure (`closure_of`; a parent not stored has none), sorted and
/// shared with every record with the same parents (`memo`).
fn union<'c>(
    memo: &mut Map<Box<[Key]>, Arc<[Key]>>,
    parents: &[Key],
    closure_of: impl Fn(&Key) -> Option<&'c Arc<[Key]>>,
) -> Arc<[Key]> {
    if let Some(c) = memo.get(parents) {
        return Arc::clone(c);
    }
    let mut all: Vec<Key> = parents.to_vec();
    for p in parents {
        if let Some(c) = closure_of(p) {
            all.extend(c.iter().cloned());
        }
    }
    all.sort();
    all.dedup();
    let c: Arc<[Key]> = all.into();
    memo.insert(parents.into(), Arc::clone(&c));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(types: &mut Types, names: &mut Names, id: &str, parents: &[&str]) -> Record {
        let key = |types: &mut Types, id: &str| types.written("T", id).expect("a type name");
        let parents = parents.iter().map(|p| key(types, p)).collect();
        Record::new(key(types, id), Vec::new(), parents, names, 0)
    }

    /// Enough records for the parallel path; one record changed afterwards
    /// copies the one shard it lives in (and the child counts of its
    /// parents), and closures are right both times.
    #[test]
    fn a_change_copies_only_the_shard_it_touches() {
        let (mut types, mut names) = (Types::default(), Names::default());
        let mut added = vec![
            record(&mut types, &mut names, "org", &[]),
            record(&mut types, &mut names, "team", &["org"]),
        ];
        for i in 0..(PARALLEL_FROM + 100) {
            added.push(record(
                &mut types,
                &mut names,
                &format!("seat{i}"),
                &["team"],
            ));
        }
        let store = Store::new(Default::default())
            .apply(&[], added)
            .expect("applies");
        let ids = |store: &Store, id: &str| -> Vec<String> {
            let key = Types::default().written("T", id).unwrap();
            let record = store.get_key(&key).expect("stored");
            record.ancestors.iter().map(|k| k.id().to_owned()).collect()
        };
        assert_eq!(ids(&store, "seat7"), ["org", "team"]);

        let moved = record(&mut types, &mut names, "seat7", &["org"]);
        let removed = [moved.key.clone()];
        let next = store.apply(&removed, vec![moved]).expect("applies");
        assert_eq!(ids(&next, "seat7"), ["org"]);
        assert_eq!(
            ids(&store, "seat7"),
            ["org", "team"],
            "the old generation stands"
        );
        let copied = (0..SHARDS)
            .filter(|&i| !Arc::ptr_eq(&store.shards[i], &next.shards[i]))
            .count();
        assert_eq!(copied, 1);
        // The child counts of its old and its new parent, no others.
        let counts = (0..SHARDS)
            .filter(|&i| !Arc::ptr_eq(&store.children[i], &next.children[i]))
            .count();
        assert!((1..=2).contains(&counts), "{counts} count shards copied");
    }

    /// A large first load spreads the records over more shards, so that a
    /// later change copies a shard of about [`SHARD_SIZE`] records however
    /// large the store.
    #[test]
    fn a_large_store_gets_more_shards() {
        let (mut types, mut names) = (Types::default(), Names::default());
        let count = 2 * SHARDS * SHARD_SIZE;
        let mut added = vec![record(&mut types, &mut names, "org", &[])];
        for i in 0..count {
            added.push(record(&mut types, &mut names, &format!("s{i}"), &["org"]));
        }
        let store = Store::new(Default::default())
            .apply(&[], added)
            .expect("applies");
        assert_eq!(store.shards.len(), 2 * SHARDS);
        assert_eq!(store.len(), count + 1);
        let moved = record(&mut types, &mut names, "s7", &[]);
        let removed = [moved.key.clone()];
        let next = store.apply(&removed, vec![moved]).expect("applies");
        assert_eq!(next.shards.len(), 2 * SHARDS, "later generations keep them");
        let copied = (0..next.shards.len())
            .filter(|&i| !Arc::ptr_eq(&store.shards[i], &next.shards[i]))
            .count();
        assert_eq!(copied, 1);
        let key = Types::default().written("T", "s7").unwrap();
        assert!(next.get_key(&key).expect("stored").ancestors.is_empty());
        let key = Types::default().written("T", "s8").unwrap();
        assert_eq!(next.get_key(&key).expect("stored").ancestors.len(), 1);
    }
}
