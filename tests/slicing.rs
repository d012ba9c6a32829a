//! Differential test of policy slicing: the library's answer (which
//! evaluates only the policies whose scope can match, see `src/slice.rs`)
//! against Cedar's own `Authorizer` on the whole policy set, field by field.
//!
//! Slicing is an optimisation that must be invisible, and the cases where it
//! could show are combinatorial (action groups, `in` through ancestors,
//! linked values, request-scoped entities that move a seat to another
//! company), so the test draws random requests rather than listing cases:
//!
//! - the bundled model over the sample world, strictly validated, with
//!   requests mostly shaped as the schema expects and some that are not;
//! - the bundled model plus generated policies over the same world with
//!   validation off, so policies may name any scope and fail at run time
//!   (missing attributes, overflow, unknown entities): errors must match too;
//! - a quarter of the requests bring request-scoped entities (new seats,
//!   changed seats, inboxes, contacts, companies, stores); the reference then
//!   evaluates against the stored entities merged with them.
//!
//! The generator is a fixed-seed SplitMix64, so a failure reproduces; set
//! `DOORMAN_SLICING_SEED` to explore other seeds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cedar_policy::{Authorizer, Context, Entities, EntityUid, Request, Schema};
use doorman::{Decision, Query, Snapshot, Sources, ValidationMode, load};
use serde_json::{Value, json};

#[path = "common/differential.rs"]
mod differential;
use differential::{Outcome, Rng};

const REQUESTS_PER_MODEL: usize = 6_000;
const GENERATED_POLICIES: usize = 120;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample world as entity JSON, and its ids by entity type.
struct World {
    items: Vec<Value>,
    ids: HashMap<String, Vec<String>>,
}

impl World {
    fn read() -> World {
        let text = std::fs::read_to_string(root().join("fixtures/entities/world.yaml"))
            .expect("the sample world is readable");
        let items: Vec<Value> = serde_saphyr::from_str(&text).expect("the sample world is YAML");
        let mut ids: HashMap<String, Vec<String>> = HashMap::new();
        for item in &items {
            let (t, id) = uid_parts(&item["uid"]);
            ids.entry(t).or_default().push(id);
        }
        World { items, ids }
    }

    fn ids(&self, t: &str) -> &[String] {
        self.ids.get(t).map_or(&[], Vec::as_slice)
    }

    /// A random entity of type `t` (sometimes one that does not exist).
    fn entity(&self, rng: &mut Rng, t: &str) -> String {
        let ids = self.ids(t);
        if ids.is_empty() || rng.chance(5) {
            format!(r#"{t}::"ghost-{}""#, rng.below(3))
        } else {
            format!(r#"{t}::"{}""#, rng.pick(ids))
        }
    }

    fn any_entity(&self, rng: &mut Rng) -> String {
        let mut types: Vec<&String> = self.ids.keys().collect();
        types.sort();
        let t = (*rng.pick(&types)).clone();
        self.entity(rng, &t)
    }
}

fn uid_parts(v: &Value) -> (String, String) {
    let v = v.get("__entity").unwrap_or(v);
    (
        v["type"].as_str().unwrap_or_default().to_owned(),
        v["id"].as_str().unwrap_or_default().to_owned(),
    )
}

fn eref(t: &str, id: &str) -> Value {
    json!({"__entity": {"type": t, "id": id}})
}

// ---------------------------------------------------------------- policies

/// Random policies over the sample world's names, in Cedar syntax. With
/// validation off they may be ill-typed on purpose.
fn generate_policies(rng: &mut Rng, world: &World, actions: &[String], n: usize) -> String {
    let groups = [
        "StoreScoped",
        "CompanySettings",
        "MemberAccount",
        "Offboarding",
        "AgentVisibility",
        "AgentEditing",
        "CompanyToggles",
    ];
    let types = [
        "Company",
        "Store",
        "Member",
        "Inbox",
        "Agent",
        "Call",
        "Contact",
        "Property",
        "Campaign",
        "Invitation",
        "ApiKey",
        "Role",
    ];
    let mut out = String::new();
    for i in 0..n {
        let effect = if rng.chance(20) { "forbid" } else { "permit" };
        let principal = match rng.below(8) {
            0 | 1 => "principal".to_owned(),
            2 => format!("principal == {}", world.entity(rng, "Member")),
            3 => format!("principal in {}", world.entity(rng, "Role")),
            4 => format!("principal in {}", world.entity(rng, "Company")),
            5 => "principal is Member".to_owned(),
            6 => format!("principal is Member in {}", world.entity(rng, "Company")),
            _ => format!("principal in {}", world.entity(rng, "Member")),
        };
        let action = match rng.below(6) {
            0 => "action".to_owned(),
            1 | 2 => format!(r#"action == Action::"{}""#, rng.pick(actions)),
            3 => format!(r#"action in Action::"{}""#, rng.pick(&groups)),
            4 => format!(
                r#"action in [Action::"{}", Action::"{}"]"#,
                rng.pick(actions),
                rng.pick(&groups)
            ),
            _ => format!(
                r#"action in [Action::"{}", Action::"{}"]"#,
                rng.pick(actions),
                rng.pick(actions)
            ),
        };
        let resource = match rng.below(9) {
            0 | 1 => "resource".to_owned(),
            2 => format!("resource == {}", world.any_entity(rng)),
            3 | 4 => format!("resource in {}", world.entity(rng, "Company")),
            5 => format!("resource in {}", world.entity(rng, "Store")),
            6 => format!("resource in {}", world.entity(rng, "Agent")),
            7 => format!("resource is {}", rng.pick(&types)),
            _ => format!(
                "resource is {} in {}",
                rng.pick(&types),
                world.entity(rng, "Company")
            ),
        };
        let condition = match rng.below(14) {
            0..=2 => String::new(),
            3 => " when { resource.private }".to_owned(),
            4 => r#" when { principal.grants.contains("crm") }"#.to_owned(),
            5 => " when { resource.company == principal.company }".to_owned(),
            6 => " unless { principal.archived }".to_owned(),
            7 => r#" when { context.role == "admin" }"#.to_owned(),
            8 => format!(
                " when {{ {}.admin_count > 1 }}",
                world.entity(rng, "Company")
            ),
            9 => " when { resource in principal.company }".to_owned(),
            10 => " when { principal.company.managers_can_invite_admins }".to_owned(),
            11 => format!(
                " when {{ resource has store && resource.store in {} }}",
                world.entity(rng, "Company")
            ),
            12 => " when { principal.company.admin_count * 9223372036854775807 > 0 }".to_owned(),
            _ => r#" when { resource.labels.contains("vip") }"#.to_owned(),
        };
        out.push_str(&format!(
            "@id(\"gen-{i}\")\n{effect} ({principal}, {action}, {resource}){condition};\n\n"
        ));
    }
    out
}

// ---------------------------------------------------------------- requests

struct Case {
    query: Query,
    /// Request-scoped entities as the gateway would send them.
    overlay: Option<Vec<Value>>,
}

fn generate_case(rng: &mut Rng, world: &World, schema: &Schema, actions: &[EntityUid]) -> Case {
    let action = if rng.chance(3) {
        r#"Action::"StoreScoped""#.to_owned()
    } else if rng.chance(2) {
        r#"Action::"NoSuchAction""#.to_owned()
    } else {
        rng.pick(actions).to_string()
    };
    let action_uid: EntityUid = action.parse().expect("generated actions parse");
    // Mostly the types the schema expects for the action; sometimes not.
    let resource = match schema.resources_for_action(&action_uid) {
        Some(types) if !rng.chance(10) => {
            let types: Vec<String> = types.map(ToString::to_string).collect();
            if types.is_empty() {
                world.any_entity(rng)
            } else {
                let t = rng.pick(&types).clone();
                world.entity(rng, &t)
            }
        }
        _ => world.any_entity(rng),
    };
    let mut principal = if rng.chance(92) {
        world.entity(rng, "Member")
    } else {
        world.any_entity(rng)
    };
    let context = match action_uid.id().unescaped() {
        // Contexts the action does not expect, or of the wrong shape: the
        // library builds plain contexts itself and must refuse exactly
        // what Cedar's schema-directed parser refuses.
        _ if rng.chance(8) => rng
            .pick(&[
                json!({"role": "admin"}),
                json!({"role": 5}),
                json!({"role": ["admin"]}),
                json!({"role": {"name": "admin"}}),
                json!({"role": "agent", "extra": true}),
                json!({"now": "not a date"}),
                json!({"now": "2026-11-25"}),
                json!({"role": null}),
                json!({"role": 1.5}),
                json!({"who": {"type": "Member", "id": "acme-ada"}}),
                json!({"who": {"__entity": {"type": "Member", "id": "acme-ada"}}}),
            ])
            .clone(),
        "InviteMember" if !rng.chance(5) => {
            json!({"role": rng.pick(&["admin", "manager", "agent", "member", "store_member", "owner"])})
        }
        "AcceptInvitation" if !rng.chance(5) => {
            json!({"now": rng.pick(&["2026-11-25T09:00:00Z", "2027-06-01T00:00:00Z", "2020-01-01T00:00:00Z"])})
        }
        _ => json!({}),
    };
    let overlay = if rng.chance(25) {
        let (entities, seat) = generate_overlay(rng, world);
        if let Some(seat) = seat.filter(|_| rng.chance(70)) {
            principal = seat;
        }
        Some(entities)
    } else {
        None
    };
    let query =
        Query::parse(&principal, &action, &resource, context).expect("generated references parse");
    Case { query, overlay }
}

/// A few request-scoped entities, and the seat (if any) among them to use
/// as principal. Only entities without stored descendants are replaced, and
/// companies keep their (empty) parents: the overlay's documented limit is
/// about parent edges removed under stored descendants.
fn generate_overlay(rng: &mut Rng, world: &World) -> (Vec<Value>, Option<String>) {
    let mut out: Vec<Value> = Vec::new();
    let mut seat = None;
    let mut new_store = None;
    if rng.chance(30) {
        let company = rng.pick(world.ids("Company")).clone();
        let id = format!("pop-up-{}", rng.below(1000));
        out.push(json!({
            "uid": eref("Store", &id),
            "attrs": {"company": eref("Company", &company)},
            "parents": [eref("Company", &company)],
        }));
        new_store = Some(id);
    }
    if rng.chance(80) {
        let id = if rng.chance(50) {
            format!("new-{}", rng.below(1_000_000))
        } else {
            rng.pick(world.ids("Member")).clone()
        };
        let company = rng.pick(world.ids("Company")).clone();
        let role = rng.pick(world.ids("Role")).clone();
        let some = |rng: &mut Rng, t: &str| -> Vec<Value> {
            (0..rng.below(3))
                .map(|_| eref(t, rng.pick(world.ids(t)).as_str()))
                .collect()
        };
        let mut stores = some(rng, "Store");
        if let Some(s) = &new_store {
            stores.push(eref("Store", s));
        }
        let grants: Vec<&str> = ["edit_agents", "advanced_editor", "crm", "recordings"]
            .into_iter()
            .filter(|_| rng.chance(30))
            .collect();
        let mut parents = vec![eref("Role", &role)];
        if rng.chance(90) {
            parents.push(eref("Company", &company));
        }
        let attr_company = if rng.chance(90) {
            company.clone()
        } else {
            rng.pick(world.ids("Company")).clone()
        };
        out.push(json!({
            "uid": eref("Member", &id),
            "attrs": {
                "company": eref("Company", &attr_company),
                "email": rng.pick(&["ada@example.com", "x@y.test", "nia@acme.test"]),
                "kind": if rng.chance(90) { "team" } else { "customer" },
                "labels": if rng.chance(20) { vec!["vip-desk"] } else { vec![] },
                "archived": rng.chance(10),
                "anonymous": rng.chance(5),
                "inboxes": some(rng, "Inbox"),
                "agents": some(rng, "Agent"),
                "stores": stores,
                "grants": grants,
            },
            "parents": parents,
        }));
        seat = Some(format!(r#"Member::"{id}""#));
    }
    if rng.chance(30) {
        let id = rng.pick(world.ids("Inbox")).clone();
        let company = rng.pick(world.ids("Company")).clone();
        let mut attrs = json!({"company": eref("Company", &company), "private": rng.chance(50)});
        if let Some(s) = new_store.as_ref().filter(|_| rng.chance(50)) {
            attrs["store"] = eref("Store", s);
        }
        out.push(json!({"uid": eref("Inbox", &id), "attrs": attrs, "parents": [eref("Company", &company)]}));
    }
    if rng.chance(20) {
        let id = rng.pick(world.ids("Contact")).clone();
        let company = rng.pick(world.ids("Company")).clone();
        let labels: Vec<&str> = if rng.chance(50) { vec!["vip"] } else { vec![] };
        out.push(json!({
            "uid": eref("Contact", &id),
            "attrs": {"company": eref("Company", &company), "labels": labels},
            "parents": [eref("Company", &company)],
        }));
    }
    if rng.chance(20) {
        let id = rng.pick(world.ids("Company")).clone();
        out.push(json!({
            "uid": eref("Company", &id),
            "attrs": {
                "name": "changed",
                "managers_can_invite_admins": rng.chance(50),
                "admin_count": rng.below(3) as i64,
            },
            "parents": [],
        }));
    }
    (out, seat)
}

// ---------------------------------------------------------------- compare

/// Cedar's answer on the whole policy set, with the request built the way
/// the library documents (context parsed against the schema; request
/// validated unless validation is off) and request entities merged into
/// the stored ones.
fn reference(
    snapshot: &Snapshot,
    stored: &Entities,
    world: &World,
    case: &Case,
) -> Result<Outcome, String> {
    let q = &case.query;
    let schema = snapshot.schema();
    let context = match Context::from_json_value(q.context.clone(), schema.map(|s| (s, &q.action)))
    {
        Ok(c) => c,
        Err(_)
            if snapshot.validation() == ValidationMode::Off
                && !schema.is_some_and(|s| s.actions().any(|a| a == &q.action)) =>
        {
            Context::from_json_value(q.context.clone(), None).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let validating = match snapshot.validation() {
        ValidationMode::Off => None,
        _ => schema,
    };
    let request = Request::new(
        q.principal.clone(),
        q.action.clone(),
        q.resource.clone(),
        context,
        validating,
    )
    .map_err(|e| e.to_string())?;
    let merged;
    let entities = match &case.overlay {
        None => stored,
        Some(overlay) => {
            let mut by_uid: Vec<(String, Value)> = world
                .items
                .iter()
                .map(|i| (format!("{:?}", uid_parts(&i["uid"])), i.clone()))
                .collect();
            for item in overlay {
                let key = format!("{:?}", uid_parts(&item["uid"]));
                match by_uid.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = item.clone(),
                    None => by_uid.push((key, item.clone())),
                }
            }
            let all = Value::Array(by_uid.into_iter().map(|(_, v)| v).collect());
            merged = Entities::from_json_value(all, schema).map_err(|e| e.to_string())?;
            &merged
        }
    };
    let response = Authorizer::new().is_authorized(&request, snapshot.policy_set(), entities);
    Ok(Outcome::of_cedar(&response))
}

fn sliced(snapshot: &Snapshot, case: &Case) -> Result<Outcome, String> {
    let answer = match &case.overlay {
        None => snapshot.decide(&case.query),
        Some(items) => {
            let overlay = snapshot
                .overlay(Value::Array(items.clone()))
                .map_err(|e| e.to_string())?;
            snapshot.decide_with(&case.query, &[&overlay])
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(Outcome::of_answer(answer))
}

#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    with_entities: usize,
    allows: usize,
    with_errors: usize,
    refused: usize,
}

fn compare(snapshot: &Snapshot, world: &World, seed: u64, n: usize) -> Tally {
    let mut rng = Rng(seed);
    let schema = snapshot.schema().expect("the bundled model has a schema");
    let actions: Vec<EntityUid> = schema
        .actions()
        .filter(|a| {
            schema
                .principals_for_action(a)
                .is_some_and(|mut p| p.next().is_some())
        })
        .cloned()
        .collect();
    let mut tally = Tally::default();
    // Cedar's own reading of the entity files, not the store's.
    let stored = Entities::from_json_value(Value::Array(world.items.clone()), Some(schema))
        .expect("the sample world is valid");
    // Every other request through a per-request view of the store rather
    // than the whole store (see `src/view.rs`).
    let views = snapshot
        .with_entity_json(Path::new("world"), Value::Array(world.items.clone()))
        .expect("the sample world loads")
        .with_views_only();
    for i in 0..n {
        let case = generate_case(&mut rng, world, schema, &actions);
        let expected = reference(snapshot, &stored, world, &case);
        let got = sliced(if i % 2 == 0 { snapshot } else { &views }, &case);
        match (&expected, &got) {
            (Ok(e), Ok(g)) => {
                assert_eq!(
                    g, e,
                    "request {i} (seed {seed}) differs: sliced (left) vs whole set (right)\n\
                     query: {:?}\nentities: {:#?}",
                    case.query, case.overlay
                );
                tally.allows += usize::from(e.decision == Decision::Allow);
                tally.with_errors += usize::from(!e.errors.is_empty());
            }
            (Err(_), Err(_)) => tally.refused += 1,
            _ => panic!(
                "request {i} (seed {seed}): one side refused: sliced {got:?}, whole set {expected:?}\n\
                 query: {:?}\nentities: {:#?}",
                case.query, case.overlay
            ),
        }
        tally.requests += 1;
        tally.with_entities += usize::from(case.overlay.is_some());
    }
    tally
}

fn seed() -> u64 {
    std::env::var("DOORMAN_SLICING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_D00D)
}

fn sources(policies: &Path, validation: ValidationMode) -> Sources {
    Sources {
        policies: policies.to_path_buf(),
        schema: Some(root().join("schema")),
        entities: vec![root().join("fixtures/entities")],
        databases: vec![],
        validation,
        routes: None,
    }
}

#[test]
fn sliced_answers_equal_whole_set_answers_on_the_bundled_model() {
    let world = World::read();
    let snapshot = load(&sources(&root().join("policies"), ValidationMode::Strict))
        .expect("the bundled model loads");
    let tally = compare(&snapshot, &world, seed(), REQUESTS_PER_MODEL);
    eprintln!("bundled model: {tally:?}");
    // The generator must exercise every outcome, or the test proves little.
    assert!(tally.allows > 200 && tally.refused > 50, "{tally:?}");
    assert!(tally.with_entities > 1000, "{tally:?}");
}

#[test]
fn sliced_answers_equal_whole_set_answers_with_generated_policies() {
    let world = World::read();
    let bundled = load(&sources(&root().join("policies"), ValidationMode::Strict))
        .expect("the bundled model loads");
    let actions: Vec<String> = bundled
        .schema()
        .expect("the bundled model has a schema")
        .actions()
        .map(|a| a.id().unescaped().to_owned())
        .chain(["NoSuchAction".to_owned()])
        .collect();

    let dir = tempfile::tempdir().expect("a temp dir");
    for entry in std::fs::read_dir(root().join("policies")).expect("policies/ is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().expect("a file name");
        std::fs::copy(&path, dir.path().join(name)).expect("policies copy");
    }
    let mut rng = Rng(seed() ^ 0xA11C_E5ED);
    let text = generate_policies(&mut rng, &world, &actions, GENERATED_POLICIES);
    std::fs::write(dir.path().join("generated.cedar"), text).expect("policies written");

    let snapshot = load(&sources(dir.path(), ValidationMode::Off))
        .unwrap_or_else(|e| panic!("generated policies load: {:#?}", e.diagnostics));
    let tally = compare(
        &snapshot,
        &world,
        seed().rotate_left(17),
        REQUESTS_PER_MODEL,
    );
    eprintln!("generated policies: {tally:?}");
    assert!(tally.allows > 100 && tally.with_errors > 200, "{tally:?}");
    assert!(tally.with_entities > 1000, "{tally:?}");
}
