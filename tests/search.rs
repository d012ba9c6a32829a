//! Searches (`Snapshot::search`) against deciding every entity one by one.
//!
//! A search finds its candidates through the store's per-type index and
//! rules most of them out with the forbids it can read (`src/search/guard.rs`)
//! before deciding the rest. Neither may change an answer, so each search
//! here is compared with an oracle that takes every entity of the type from
//! Cedar's own `Entities` (the store materialised) and asks
//! `Snapshot::decide` about each:
//!
//! - the bundled model over the sample world, every member as principal
//!   for every action and resource type, every entity as resource for
//!   every action, on the small-store path and on per-request views;
//! - generated worlds under forbids written to trip the narrowing (with
//!   optional attributes and no validation, and again strictly validated,
//!   where candidates come from the ancestor lists): chains
//!   with `in`, `==`, entity literals, set attributes, optional attributes
//!   that are missing, attributes naming entities that are not stored,
//!   attributes that are not entities, and `||` it must not read;
//! - every page size from 1 to 3, under a budget of 1 to 3 decisions per
//!   page and under none, walked to the end, which must give the unpaged
//!   answer once, in order, no page deciding more than its budget (and
//!   pages the budget ends early, even empty ones, going on after it).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;

use cedar_policy::{EntityTypeName, EntityUid};
use doorman::{Cursor, Decision, Page, Query, Searched, Snapshot, Sources, ValidationMode};
use serde_json::{Value, json};

#[path = "common/differential.rs"]
mod differential;
use differential::Rng;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every stored entity of `ty`, from Cedar's own materialisation.
fn entities_of(snapshot: &Snapshot, ty: &EntityTypeName) -> Vec<EntityUid> {
    snapshot
        .store()
        .to_cedar()
        .iter()
        .map(|e| e.uid())
        .filter(|u| u.type_name() == ty)
        .collect()
}

/// A question with no context, from the textual forms.
fn query(principal: &str, action: &str, resource: &str) -> Query {
    Query::parse(principal, action, resource, json!({})).expect("a query")
}

/// A page size or a budget.
fn n(k: usize) -> NonZeroUsize {
    NonZeroUsize::new(k).expect("not 0")
}

/// No bound.
const MAX: NonZeroUsize = NonZeroUsize::MAX;

fn placeholder(ty: &EntityTypeName) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), cedar_policy::EntityId::new(""))
}

/// What a search must find: every candidate the decision allows; `Err`
/// when the question itself is refused (for every candidate alike).
fn oracle(
    snapshot: &Snapshot,
    searched: Searched,
    query: &Query,
) -> Result<BTreeSet<String>, String> {
    let (ty, field) = match searched {
        Searched::Principal => (query.principal.type_name(), "principal"),
        Searched::Resource => (query.resource.type_name(), "resource"),
        Searched::Action => unreachable!("actions are compared in the server tests"),
    };
    let mut found = BTreeSet::new();
    for uid in entities_of(snapshot, ty) {
        let mut q = query.clone();
        match searched {
            Searched::Principal => q.principal = uid.clone(),
            _ => q.resource = uid.clone(),
        }
        match snapshot.decide(&q) {
            Ok(a) if a.decision == Decision::Allow => {
                found.insert(uid.to_string());
            }
            Ok(_) => {}
            Err(e) if e.field == field => {}
            Err(e) => return Err(e.field),
        }
    }
    Ok(found)
}

fn search_all(snapshot: &Snapshot, searched: Searched, query: &Query) -> Result<Page, String> {
    snapshot
        .search(searched, query, &[], None, MAX, MAX)
        .map_err(|e| e.field)
}

/// What the comparisons covered: results found, and decisions the
/// narrowing spared (0 would mean it was never exercised).
#[derive(Default)]
struct Tally {
    found: usize,
    spared: usize,
    searches: usize,
    /// Pages the budget ended short of their limit, and those it ended
    /// with no result at all, each with a cursor to go on.
    cut: usize,
    cut_empty: usize,
}

/// Compares one search with the oracle and with the unnarrowed search.
fn compare(snapshot: &Snapshot, searched: Searched, query: &Query, label: &str, tally: &mut Tally) {
    let want = oracle(snapshot, searched, query);
    let got = search_all(snapshot, searched, query);
    let plain = snapshot
        .search_deciding_all(searched, query, None, NonZeroUsize::MAX)
        .map_err(|e| e.field);
    tally.searches += 1;
    if let (Ok(a), Ok(b)) = (&got, &plain) {
        tally.spared += b.decided - a.decided;
    }
    let strip = |r: Result<Page, String>| r.map(|p| (p.results, p.next));
    assert_eq!(
        strip(got.clone()),
        strip(plain),
        "{label}: narrowed and unnarrowed differ"
    );
    match (got, want) {
        // The search may refuse up front what the oracle never asks
        // (an action that takes no entity of the type has no candidates).
        (Ok(page), Ok(want)) => {
            assert!(page.next.is_none(), "{label}: an unlimited page has a next");
            let got: Vec<String> = page.results.iter().map(ToString::to_string).collect();
            let set: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(set.len(), got.len(), "{label}: a result repeats");
            assert_eq!(set, want, "{label}");
            tally.found += got.len();
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{label}: refused for another reason");
        }
        (Ok(page), Err(field)) => {
            assert!(
                page.results.is_empty(),
                "{label}: found {:?} where a decision is refused ({field})",
                page.results
            );
        }
        (Err(field), Ok(want)) => {
            panic!("{label}: refused ({field}) but the oracle finds {want:?}")
        }
    }
}

/// Every page size from 1 to 3, under every budget of decisions from 1 to
/// 3 and none, gives the unpaged results, once, in order; no page decides
/// more than its budget. (A page of 0 cannot be asked for: its cursor
/// would be where it began.)
fn pages_agree(
    snapshot: &Snapshot,
    searched: Searched,
    query: &Query,
    label: &str,
    tally: &mut Tally,
) {
    let Ok(whole) = search_all(snapshot, searched, query) else {
        return;
    };
    let budgets = [MAX, n(1), n(2), n(3)];
    for (limit, budget) in (1..=3).map(n).flat_map(|l| budgets.map(|b| (l, b))) {
        let mut walked = Vec::new();
        let mut after: Option<Cursor> = None;
        // Each page decides at least one candidate and goes on after it.
        for _ in 0..1000 {
            let page = snapshot
                .search(searched, query, &[], after.as_ref(), limit, budget)
                .expect("a page of an accepted search");
            assert!(
                page.results.len() <= limit.get(),
                "{label}: page over {limit}"
            );
            assert!(
                page.decided <= budget.get(),
                "{label}: {} decided over a budget of {budget}",
                page.decided
            );
            if page.next.is_some() && page.results.len() < limit.get() {
                tally.cut += 1;
                tally.cut_empty += usize::from(page.results.is_empty());
            }
            walked.extend(page.results);
            // Cursors survive their bytes (the server's tokens carry them).
            after = page
                .next
                .map(|c| Cursor::from_bytes(&c.to_bytes()).expect("round trip"));
            if after.is_none() {
                break;
            }
        }
        assert!(after.is_none(), "{label}: limit {limit} never ended");
        assert_eq!(
            walked, whole.results,
            "{label}: limit {limit}, budget {budget}"
        );
    }
}

/// Which entities of type `ty` may do `action` on `resource`: compared,
/// and walked page by page.
fn principals(
    snapshot: &Snapshot,
    ty: &EntityTypeName,
    action: &EntityUid,
    resource: &EntityUid,
    note: &str,
    tally: &mut Tally,
) {
    let query = Query {
        principal: placeholder(ty),
        action: action.clone(),
        resource: resource.clone(),
        context: json!({}),
    };
    let label = format!("{note}which {ty} {action} {resource}?");
    compare(snapshot, Searched::Principal, &query, &label, tally);
    pages_agree(snapshot, Searched::Principal, &query, &label, tally);
}

/// On which entities of type `ty` may `principal` do `action`: compared.
fn resources(
    snapshot: &Snapshot,
    principal: &EntityUid,
    action: &EntityUid,
    ty: &EntityTypeName,
    note: &str,
    tally: &mut Tally,
) {
    let query = Query {
        principal: principal.clone(),
        action: action.clone(),
        resource: placeholder(ty),
        context: json!({}),
    };
    let label = format!("{note}{principal} {action} which {ty}?");
    compare(snapshot, Searched::Resource, &query, &label, tally);
}

fn bundled(views_only: bool) -> Snapshot {
    let snapshot = doorman::load(&Sources {
        policies: root().join("policies"),
        schema: Some(root().join("schema")),
        entities: vec![root().join("fixtures/entities")],
        databases: vec![],
        validation: ValidationMode::Strict,
        routes: None,
    })
    .expect("the bundled model loads");
    if views_only {
        snapshot.with_views_only()
    } else {
        snapshot
    }
}

#[test]
fn bundled_searches_find_what_deciding_every_entity_finds() {
    for views_only in [false, true] {
        let snapshot = bundled(views_only);
        let schema = snapshot.schema().expect("a schema").clone();
        let member: EntityTypeName = "Member".parse().unwrap();
        let members = entities_of(&snapshot, &member);
        let mut tally = Tally::default();
        for action in schema.actions() {
            let Some(types) = schema.resources_for_action(action) else {
                continue;
            };
            let types: Vec<EntityTypeName> = types.cloned().collect();
            // Which resources may each member use this action on?
            for principal in &members {
                for ty in &types {
                    resources(&snapshot, principal, action, ty, "", &mut tally);
                }
            }
            // Which members may use it on each resource?
            for ty in &types {
                for resource in entities_of(&snapshot, ty) {
                    principals(&snapshot, &member, action, &resource, "", &mut tally);
                }
            }
        }
        assert!(tally.searches > 500, "{} searches", tally.searches);
        assert!(
            tally.cut > 100 && tally.cut_empty > 100,
            "the budget cut {} pages short, {} of them empty",
            tally.cut,
            tally.cut_empty
        );
        assert!(tally.found > 100, "only {} results compared", tally.found);
        assert!(
            tally.spared > 1000,
            "the narrowing spared {} decisions",
            tally.spared
        );
    }
}

#[test]
fn the_tenant_rule_narrows_bundled_searches_to_one_tenant() {
    // The tenant-isolation forbid rules globex's members out before any
    // decision: the narrowed search decides acme's members only, where
    // deciding all decides every member (both find the same, above).
    let snapshot = bundled(false);
    let member: EntityTypeName = "Member".parse().unwrap();
    let members = entities_of(&snapshot, &member);
    let acme = members
        .iter()
        .filter(|u| u.id().unescaped().starts_with("acme-"))
        .count();
    assert!(acme < members.len());
    for q in [
        query(r#"Member::"""#, "ViewInbox", r#"Inbox::"acme-support""#),
        query(r#"Member::"""#, "RemoveTeamMember", r#"Member::"acme-mia""#),
    ] {
        let narrowed = snapshot
            .search(Searched::Principal, &q, &[], None, MAX, MAX)
            .unwrap();
        let all = snapshot
            .search_deciding_all(Searched::Principal, &q, None, NonZeroUsize::MAX)
            .unwrap();
        assert_eq!(all.decided, members.len());
        assert_eq!(narrowed.decided, acme, "{q:?}");
    }
    let inboxes = entities_of(&snapshot, &"Inbox".parse().unwrap());
    let q = query(r#"Member::"acme-ada""#, "ViewInbox", r#"Inbox::"""#);
    let narrowed = snapshot
        .search(Searched::Resource, &q, &[], None, MAX, MAX)
        .unwrap();
    assert!(
        narrowed.decided < inboxes.len(),
        "{} of {}",
        narrowed.decided,
        inboxes.len()
    );
    let q = query(r#"Member::"""#, "ViewInbox", r#"Inbox::"acme-support""#);
    let page = snapshot
        .search(Searched::Principal, &q, &[], None, MAX, MAX)
        .unwrap();
    assert!(!page.results.is_empty());
    assert!(
        page.results
            .iter()
            .all(|u| u.id().unescaped().starts_with("acme-")),
        "{:?}",
        page.results
    );
    // An unknown type has no candidates; an unknown action is refused.
    let q = query(r#"Spaceship::"""#, "ViewInbox", r#"Inbox::"acme-support""#);
    let page = snapshot
        .search(Searched::Principal, &q, &[], None, n(10), MAX)
        .unwrap();
    assert_eq!((page.results, page.next, page.decided), (vec![], None, 0));
    let q = query(r#"Member::"""#, "Fly", r#"Inbox::"acme-support""#);
    let e = snapshot
        .search(Searched::Principal, &q, &[], None, n(10), MAX)
        .unwrap_err();
    assert_eq!(e.field, "action");
}

// ------------------------------------------------------ generated worlds

/// Attributes optional, for unvalidated policies that read them unguarded:
/// the errors the narrowing must never mistake for a `false`.
const SCHEMA: &str = r#"
entity Org in [Org] = { parent?: Org };
entity Team in [Org] = { org?: Org };
entity User in [Team, Org] = { org?: Org, team?: Team, orgs?: Set<Org>, name?: String };
entity Doc in [Team, Org] = { org?: Org, team?: Team, owner?: User, public?: Bool };
action group;
action read, edit in [group] appliesTo { principal: User, resource: Doc };
action audit appliesTo { principal: User, resource: Doc };
"#;

/// The same attributes required, for strictly validated policies: where
/// the narrowing finds candidates through the ancestor lists.
const STRICT_SCHEMA: &str = r#"
entity Org in [Org] = { parent?: Org };
entity Team in [Org] = { org: Org };
entity User in [Team, Org] = { org: Org, team: Team, orgs: Set<Org>, name: String };
entity Doc in [Team, Org] = { org: Org, team: Team, owner: User, public: Bool };
action group;
action read, edit in [group] appliesTo { principal: User, resource: Doc };
action audit appliesTo { principal: User, resource: Doc };
"#;

/// Forbids for the narrowing to read (or to leave alone); each world gets
/// a few of them. The one marked `UNTYPED` does not validate.
const FORBIDS: &[&str] = &[
    "forbid (principal, action, resource) unless { principal in principal.org && resource in principal.org };",
    "forbid (principal, action, resource) unless { resource in principal.org };",
    "forbid (principal, action == Action::\"edit\", resource) unless { resource.owner == principal };",
    "forbid (principal, action in Action::\"group\", resource is Doc) unless { resource in principal.orgs };",
    UNTYPED,
    "forbid (principal, action, resource) unless { resource.team in principal.team && principal in Org::\"o1\" };",
    "forbid (principal is User, action, resource) unless { Org::\"o0\" in resource.org || principal in resource.team };",
    "forbid (principal, action, resource) unless { principal.org == resource.org };",
    "forbid (principal, action, resource is Doc) unless { Org::\"o2\" in Org::\"o0\" && resource in principal };",
    "forbid (principal, action, resource) unless { principal in Team::\"t1\" && resource in Org::\"o1\" };",
    "forbid (principal in Org::\"o0\", action, resource) unless { resource in principal.org };",
    "forbid (principal, action, resource) when { resource.public == false };",
];

const UNTYPED: &str =
    "forbid (principal, action, resource) unless { principal.name in resource.org };";

const PERMITS: &[&str] = &[
    "permit (principal, action, resource);",
    "permit (principal, action == Action::\"read\", resource) when { resource.public };",
    "permit (principal, action, resource) when { principal in resource.team };",
    "permit (principal, action == Action::\"audit\", resource in Org::\"o1\");",
];

/// Sets attribute `name` to `value` in `percent` of the cases (in all of
/// them when `all`).
fn maybe(
    rng: &mut Rng,
    attrs: &mut serde_json::Map<String, Value>,
    (name, all): (&str, bool),
    percent: usize,
    value: Value,
) {
    if all || rng.chance(percent) {
        attrs.insert(name.to_owned(), value);
    }
}

/// A world for the schemas above; `all`: every attribute set (for the
/// strict schema).
fn world(rng: &mut Rng, all: bool) -> Value {
    let org = |i: usize| json!({"type": "Org", "id": format!("o{i}")});
    let team = |i: usize| json!({"type": "Team", "id": format!("t{i}")});
    let user = |i: usize| json!({"type": "User", "id": format!("u{i}")});
    // A reference that names nothing stored, sometimes.
    let some_org = |rng: &mut Rng| {
        if rng.chance(15) {
            json!({"type": "Org", "id": "ghost"})
        } else {
            org(rng.below(3))
        }
    };
    let mut out = Vec::new();
    for i in 0..3 {
        let mut attrs = serde_json::Map::new();
        if i > 0 && rng.chance(60) {
            attrs.insert("parent".into(), org(i - 1));
        }
        let parents: Vec<Value> = attrs.get("parent").cloned().into_iter().collect();
        out.push(json!({"uid": org(i), "attrs": attrs, "parents": parents}));
    }
    for i in 0..4 {
        let o = some_org(rng);
        let mut attrs = serde_json::Map::new();
        maybe(rng, &mut attrs, ("org", all), 80, o.clone());
        out.push(json!({"uid": team(i), "attrs": attrs, "parents": [o]}));
    }
    for i in 0..10 {
        let mut attrs = serde_json::Map::new();
        let o = some_org(rng);
        let t = team(rng.below(4));
        maybe(rng, &mut attrs, ("org", all), 80, o.clone());
        maybe(rng, &mut attrs, ("team", all), 70, t.clone());
        if all || rng.chance(60) {
            let orgs: Vec<Value> = (0..rng.below(3)).map(|_| some_org(rng)).collect();
            attrs.insert("orgs".into(), Value::Array(orgs));
        }
        if all || rng.chance(30) {
            attrs.insert("name".into(), json!(format!("user {i}")));
        }
        let mut parents = vec![o];
        if rng.chance(60) {
            parents.push(t);
        }
        out.push(json!({"uid": user(i), "attrs": attrs, "parents": parents}));
    }
    for i in 0..10 {
        let mut attrs = serde_json::Map::new();
        let o = some_org(rng);
        let t = team(rng.below(4));
        maybe(rng, &mut attrs, ("org", all), 80, o.clone());
        maybe(rng, &mut attrs, ("team", all), 60, t.clone());
        let owner = user(rng.below(11));
        maybe(rng, &mut attrs, ("owner", all), 70, owner);
        let public = json!(rng.chance(50));
        maybe(rng, &mut attrs, ("public", all), 70, public);
        let mut parents = vec![o];
        if rng.chance(50) {
            parents.push(t);
        }
        out.push(json!({"uid": {"type": "Doc", "id": format!("d{i}")}, "attrs": attrs, "parents": parents}));
    }
    Value::Array(out)
}

#[test]
fn narrowing_never_drops_what_a_decision_allows_in_generated_worlds() {
    let mut rng = Rng(0x5EA2C4);
    for strict in [false, true] {
        let tally = generated_worlds(&mut rng, strict);
        println!(
            "strict {strict}: {} searches, {} results, {} decisions spared by the narrowing, \
             {} pages cut short by the budget ({} empty)",
            tally.searches, tally.found, tally.spared, tally.cut, tally.cut_empty
        );
        assert!(tally.found > 1000, "only {} results compared", tally.found);
        assert!(
            tally.spared > 1000,
            "the narrowing spared {} decisions",
            tally.spared
        );
        assert!(tally.cut > 100 && tally.cut_empty > 100);
    }
}

/// Forty worlds under random forbids and permits, every search compared.
fn generated_worlds(rng: &mut Rng, strict: bool) -> Tally {
    let mut tally = Tally::default();
    for trial in 0..40 {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let mut policies = String::new();
        for _ in 0..1 + rng.below(3) {
            let forbid: &&str = rng.pick(FORBIDS);
            if strict && *forbid == UNTYPED {
                continue;
            }
            policies.push_str(forbid);
            policies.push('\n');
        }
        for _ in 0..1 + rng.below(2) {
            let permit: &&str = rng.pick(PERMITS);
            policies.push_str(permit);
            policies.push('\n');
        }
        write("policies/p.cedar", &policies);
        write(
            "schema/s.cedarschema",
            if strict { STRICT_SCHEMA } else { SCHEMA },
        );
        write("entities/world.json", &world(rng, strict).to_string());
        let snapshot = doorman::load(&Sources {
            policies: dir.path().join("policies"),
            schema: Some(dir.path().join("schema")),
            entities: vec![dir.path().join("entities")],
            databases: vec![],
            validation: if strict {
                ValidationMode::Strict
            } else {
                ValidationMode::Off
            },
            routes: None,
        })
        .unwrap_or_else(|e| panic!("trial {trial}: {e}\n{policies}"));
        let user: EntityTypeName = "User".parse().unwrap();
        let doc: EntityTypeName = "Doc".parse().unwrap();
        for action in ["read", "edit", "audit"] {
            let action = doorman::decide::parse_action(action).unwrap();
            let note = format!("trial {trial}:\n{policies}\n");
            for u in entities_of(&snapshot, &user) {
                resources(&snapshot, &u, &action, &doc, &note, &mut tally);
            }
            for d in entities_of(&snapshot, &doc) {
                principals(&snapshot, &user, &action, &d, &note, &mut tally);
            }
        }
    }
    tally
}
