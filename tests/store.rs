//! Differential test of doorman's entity store against Cedar's own
//! `Entities`, and of per-request views against Cedar's plain authorizer.
//!
//! The store (`src/store`) keeps entities in a form of its own, closes
//! ancestors itself and is updated file by file; a request is answered
//! from a small Cedar `Entities` of what it can reach (`src/view.rs`). Both
//! must be invisible, so this test generates a world that uses everything
//! entity data can hold (entity-typed attributes, sets of entities, nested
//! records, tags, ip/decimal/datetime/duration values, references to
//! entities that do not exist, a hierarchy several levels deep), and:
//!
//! - checks `Entities::deep_eq` between Cedar's reading of the files and the
//!   store fully materialised, after a fresh load and after incremental
//!   reloads that re-parent, change, add and remove entities;
//! - compares decision, reasons and errors with Cedar's unsliced
//!   authorizer over its own `Entities` on 10,000 generated requests with
//!   generated policies, a quarter with request entities (new entities,
//!   changed ones, re-parented groups, cycles), through per-request views.
//!
//! A fixed-seed SplitMix64 makes failures reproducible;
//! `DOORMAN_STORE_SEED` explores other seeds.

use std::path::{Path, PathBuf};

use cedar_policy::{Authorizer, Context, Entities, EntityUid, Request, Schema};
use doorman::{Decision, Query, Snapshot, Sources, ValidationMode, load, load_over};
use serde_json::{Value, json};

#[path = "common/differential.rs"]
mod differential;
use differential::{Outcome, Rng};

const REQUESTS: usize = 10_000;
const POLICIES: usize = 30;
const ORGS: usize = 3;
const TEAMS: usize = 8;
const USERS: usize = 24;
const DOCS: usize = 24;

const SCHEMA: &str = r#"
entity Org in [Org] = {
  name: String, net: ipaddr, budget: decimal, founded: datetime, owner?: User,
};
entity Team in [Org, Team] = { org: Org, lead?: User, labels: Set<String> };
entity User in [Team, Org] = {
  org: Org, manager?: User, teams: Set<Team>, level: Long, since: datetime,
  quota: decimal, ip: ipaddr,
  prefs: { theme: String, wait: duration, buddy?: User },
} tags String;
entity Doc in [Team, Org] = {
  owner: User, org: Org, readers: Set<User>, public: Bool,
} tags Long;
action group;
action read, edit in [group] appliesTo { principal: User, resource: Doc };
action share appliesTo { principal: User, resource: [Doc, Team] };
action admin appliesTo { principal: User, resource: [Org, Team] };
"#;

fn seed() -> u64 {
    std::env::var("DOORMAN_STORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0057_0BE5)
}

fn r(t: &str, id: impl std::fmt::Display) -> Value {
    json!({"type": t, "id": id.to_string()})
}

/// Ids `0..n`, and now and then one that no entity has.
fn some(rng: &mut Rng, prefix: &str, n: usize) -> String {
    if rng.chance(6) {
        format!("{prefix}ghost{}", rng.below(2))
    } else {
        format!("{prefix}{}", rng.below(n))
    }
}

fn org(rng: &mut Rng, k: usize) -> Value {
    let mut attrs = json!({
        "name": format!("org {k}"),
        "net": format!("10.{k}.0.0/16"),
        "budget": format!("{}.{:02}", rng.below(900), rng.below(100)),
        "founded": format!("20{:02}-0{}-1{}T00:00:00Z", 10 + rng.below(15), 1 + rng.below(9), rng.below(9)),
    });
    if rng.chance(50) {
        attrs["owner"] = r("User", some(rng, "u", USERS));
    }
    // Orgs form a chain: o2 in o1 in o0.
    let parents = if k > 0 {
        vec![r("Org", format!("o{}", k - 1))]
    } else {
        vec![]
    };
    json!({"uid": r("Org", format!("o{k}")), "attrs": attrs, "parents": parents})
}

fn team(rng: &mut Rng, k: usize) -> Value {
    let mut parents = vec![r("Org", format!("o{}", k % ORGS))];
    // Teams nest under lower-numbered teams (a DAG), sometimes under a
    // team that does not exist.
    if k > 0 && rng.chance(60) {
        parents.push(r("Team", format!("t{}", rng.below(k))));
    }
    if rng.chance(10) {
        parents.push(r("Team", "tghost"));
    }
    let mut attrs = json!({
        "org": r("Org", format!("o{}", k % ORGS)),
        "labels": (0..rng.below(3)).map(|i| format!("l{i}")).collect::<Vec<_>>(),
    });
    if rng.chance(60) {
        attrs["lead"] = r("User", some(rng, "u", USERS));
    }
    json!({"uid": r("Team", format!("t{k}")), "attrs": attrs, "parents": parents})
}

fn user(rng: &mut Rng, id: &str) -> Value {
    let teams: Vec<Value> = (0..rng.below(3))
        .map(|_| r("Team", some(rng, "t", TEAMS)))
        .collect();
    let mut parents = teams.clone();
    if rng.chance(30) {
        parents.push(r("Org", format!("o{}", rng.below(ORGS))));
    }
    let theme = ["dark", "light"][rng.below(2)];
    let mut prefs = json!({"theme": theme, "wait": format!("{}m", rng.below(120))});
    if rng.chance(40) {
        prefs["buddy"] = r("User", some(rng, "u", USERS));
    }
    let mut attrs = json!({
        "org": r("Org", format!("o{}", rng.below(ORGS))),
        "teams": teams,
        "level": rng.below(6),
        "since": format!("20{:02}-0{}-0{}T00:00:00Z", 10 + rng.below(15), 1 + rng.below(9), 1 + rng.below(9)),
        "quota": format!("{}.{}", rng.below(900), rng.below(10)),
        "ip": format!("10.{}.{}.{}", rng.below(ORGS + 1), rng.below(3), rng.below(250)),
        "prefs": prefs,
    });
    if rng.chance(60) {
        attrs["manager"] = r("User", some(rng, "u", USERS));
    }
    let tags: serde_json::Map<String, Value> = (0..rng.below(3))
        .map(|_| {
            (
                format!("k{}", rng.below(3)),
                json!(if rng.chance(50) { "v" } else { "w" }),
            )
        })
        .collect();
    json!({"uid": r("User", id), "attrs": attrs, "parents": parents, "tags": tags})
}

fn doc(rng: &mut Rng, k: usize) -> Value {
    let readers: Vec<Value> = (0..rng.below(4))
        .map(|_| r("User", some(rng, "u", USERS)))
        .collect();
    let tags: serde_json::Map<String, Value> = (0..rng.below(3))
        .map(|_| (format!("n{}", rng.below(3)), json!(rng.below(5))))
        .collect();
    json!({
        "uid": r("Doc", format!("d{k}")),
        "attrs": {
            "owner": r("User", some(rng, "u", USERS)),
            "org": r("Org", format!("o{}", rng.below(ORGS))),
            "readers": readers,
            "public": rng.chance(30),
        },
        "parents": [r("Team", some(rng, "t", TEAMS))],
        "tags": tags,
    })
}

/// The world, split over four files as a deployment might split it.
fn world(rng: &mut Rng) -> Vec<Vec<Value>> {
    vec![
        (0..ORGS).map(|k| org(rng, k)).collect(),
        (0..TEAMS).map(|k| team(rng, k)).collect(),
        (0..USERS).map(|k| user(rng, &format!("u{k}"))).collect(),
        (0..DOCS).map(|k| doc(rng, k)).collect(),
    ]
}

/// Random policies over the world's names; with validation off they may be
/// ill-typed or fail at run time, on purpose.
fn policies(rng: &mut Rng) -> String {
    let conditions = [
        "resource in principal.org",
        "principal.manager in Team::\"t1\"",
        "principal.manager.level > 2",
        "principal has manager && principal.manager.org == resource.org",
        "resource.owner.prefs.buddy.level < 3",
        "resource.owner.prefs has buddy && resource.owner.prefs.buddy in Team::\"t2\"",
        "principal.hasTag(\"k1\") && principal.getTag(\"k1\") == \"v\"",
        "resource.getTag(\"n0\") > 2",
        "resource.hasTag(\"n1\")",
        "principal.ip.isInRange(resource.org.net)",
        "principal.quota.lessThan(resource.org.budget)",
        "principal.since < resource.org.founded",
        "principal.prefs.wait > duration(\"1h\")",
        "resource.readers.contains(principal)",
        "principal.teams.containsAny(resource.owner.teams)",
        "resource.owner.manager == principal",
        "principal in resource.owner.manager",
        "resource.org.owner in Org::\"o0\"",
        "principal.level >= 3",
        "resource.public",
        "resource.lead.org == principal.org",
        "Org::\"o2\".owner.level > 1",
        "Team::\"t3\".lead in principal.teams",
        // Literals looked up from other places than a `.` (see
        // src/slice/literals.rs: only compared ones are left out).
        "Team::\"t1\" in principal.teams",
        "Org::\"o1\" has owner && Org::\"o1\".owner == principal",
        "(if principal.level > 2 then Org::\"o1\" else Org::\"o2\").owner.level > 1",
        "{o: Org::\"o3\"}.o.owner == principal",
        "[Org::\"o0\", Org::\"o1\"].contains(resource.org)",
        "principal in [Team::\"t0\", Team::\"t2\"] && resource.org != Org::\"o1\"",
        // Attributes only tested with `has` (views build only what the
        // policies read: see src/slice/reads.rs).
        "!(principal has manager)",
        "resource has lead",
        "principal has prefs.buddy",
        "resource.owner has prefs.buddy.manager",
    ];
    let principals = [
        "principal",
        "principal in Team::\"t0\"",
        "principal in Team::\"t3\"",
        "principal in Org::\"o1\"",
        "principal == User::\"u1\"",
        "principal is User in Org::\"o0\"",
    ];
    let actions = [
        "action",
        "action == Action::\"read\"",
        "action in Action::\"group\"",
        "action in [Action::\"share\", Action::\"admin\"]",
    ];
    let resources = [
        "resource",
        "resource in Org::\"o0\"",
        "resource in Team::\"t2\"",
        "resource is Doc",
        "resource == Doc::\"d3\"",
    ];
    let mut out = String::new();
    for i in 0..POLICIES {
        let effect = if rng.chance(30) { "forbid" } else { "permit" };
        let a = conditions[rng.below(conditions.len())];
        let b = conditions[rng.below(conditions.len())];
        let when = if rng.chance(40) {
            format!("{a} || {b}")
        } else {
            a.to_owned()
        };
        out.push_str(&format!(
            "@id(\"p{i}\")\n{effect} ({}, {}, {})\nwhen {{ {when} }};\n\n",
            principals[rng.below(principals.len())],
            actions[rng.below(actions.len())],
            resources[rng.below(resources.len())],
        ));
    }
    out
}

struct Model {
    dir: tempfile::TempDir,
    schema: Schema,
}

impl Model {
    fn new(rng: &mut Rng) -> Model {
        Model::with_policies(&policies(rng))
    }

    fn with_policies(text: &str) -> Model {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("policies")).expect("policies dir");
        std::fs::create_dir_all(dir.path().join("entities")).expect("entities dir");
        std::fs::write(dir.path().join("policies/p.cedar"), text).expect("policies");
        std::fs::write(dir.path().join("s.cedarschema"), SCHEMA).expect("schema");
        let schema = Schema::from_cedarschema_str(SCHEMA).expect("schema").0;
        Model { dir, schema }
    }

    fn file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("entities/part{i}.json"))
    }

    fn write(&self, parts: &[Vec<Value>]) {
        for (i, items) in parts.iter().enumerate() {
            // Write, then rename: as the README asks of deploys.
            let tmp = self.dir.path().join(format!("part{i}.tmp"));
            std::fs::write(&tmp, Value::Array(items.clone()).to_string()).expect("write");
            std::fs::rename(&tmp, self.file(i)).expect("rename");
        }
    }

    fn sources(&self) -> Sources {
        Sources {
            policies: self.dir.path().join("policies"),
            schema: Some(self.dir.path().join("s.cedarschema")),
            entities: vec![self.dir.path().join("entities")],
            databases: vec![],
            validation: ValidationMode::Off,
            routes: None,
        }
    }

    fn cedar(&self, parts: &[Vec<Value>]) -> Result<Entities, String> {
        let all: Vec<Value> = parts.iter().flatten().cloned().collect();
        Entities::from_json_value(Value::Array(all), Some(&self.schema)).map_err(|e| e.to_string())
    }
}

fn same_entities(store: &Snapshot, cedar: &Entities) -> bool {
    let ours = store.store().to_cedar();
    let ours: &cedar_policy_core::entities::Entities = ours.as_ref();
    ours.deep_eq(cedar.as_ref())
}

#[test]
fn the_store_holds_what_cedar_reads_after_loads_and_incremental_reloads() {
    let mut rng = Rng(seed());
    let model = Model::new(&mut rng);
    let mut parts = world(&mut rng);
    model.write(&parts);
    let mut serving = load(&model.sources()).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert!(same_entities(
        &serving,
        &model.cedar(&parts).expect("Cedar reads it")
    ));
    assert_eq!(serving.changed_entity_files().len(), 4);

    for round in 0..30 {
        // Change one file: re-parent or rewrite teams and users, drop one
        // entity, add another.
        let i = 1 + round % 3;
        let k = rng.below(parts[i].len());
        parts[i][k] = match i {
            1 => team(&mut rng, k),
            2 => user(&mut rng, &format!("u{k}")),
            _ => doc(&mut rng, k),
        };
        if rng.chance(30) && parts[i].len() > 2 {
            parts[i].pop();
        }
        if i == 2 && rng.chance(30) {
            let id = format!("u{}", USERS + round);
            parts[2].push(user(&mut rng, &id));
        }
        let before = std::fs::read(model.file(i)).expect("the file");
        model.write(&parts);
        let next = load_over(&model.sources(), Some(&serving))
            .unwrap_or_else(|e| panic!("round {round}: {:#?}", e.diagnostics));
        // Only the rewritten file is read again, and only if its bytes
        // changed (a regenerated entity can come out the same).
        let expected: Vec<String> = if std::fs::read(model.file(i)).expect("the file") == before {
            vec![]
        } else {
            vec![model.file(i).display().to_string()]
        };
        assert_eq!(next.changed_entity_files(), expected, "round {round}");
        let cedar = model.cedar(&parts).expect("Cedar reads it");
        assert!(
            same_entities(&next, &cedar),
            "round {round}: store differs from Cedar's"
        );
        // The same files loaded afresh give the same revision.
        let fresh = load(&model.sources()).expect("loads afresh");
        assert_eq!(fresh.revision(), next.revision(), "round {round}");
        if !expected.is_empty() {
            assert_ne!(serving.revision(), next.revision(), "round {round}");
        }
        serving = next;
    }

    // A cycle (the first team under the last, which is under the first) is
    // refused with the file named, and the serving snapshot is untouched.
    let mut cyclic = parts.clone();
    let last = cyclic[1].len() - 1;
    let (first_uid, last_uid) = (cyclic[1][0]["uid"].clone(), cyclic[1][last]["uid"].clone());
    cyclic[1][0]["parents"] = json!([last_uid]);
    cyclic[1][last]["parents"] = json!([first_uid]);
    model.write(&cyclic);
    let Err(refused) = load_over(&model.sources(), Some(&serving)) else {
        panic!("a cycle is refused")
    };
    let d = &refused.diagnostics[0];
    assert!(d.message.contains("its own ancestor"), "{}", d.message);
    assert!(d.file.ends_with("part1.json") && d.line > 0, "{d:?}");
    assert!(model.cedar(&cyclic).is_err(), "Cedar refuses it too");
    assert!(same_entities(
        &serving,
        &model.cedar(&parts).expect("Cedar reads it")
    ));

    // An entity moved to another file in one reload is no duplicate; the
    // same entity in two files is, named at both places.
    let mut moved = parts.clone();
    let taken = moved[3].remove(0);
    moved[0].push(taken.clone());
    model.write(&moved);
    let next = load_over(&model.sources(), Some(&serving)).expect("a move is no duplicate");
    assert!(same_entities(
        &next,
        &model.cedar(&moved).expect("Cedar reads it")
    ));
    let mut twice = moved.clone();
    twice[3].push(taken);
    model.write(&twice);
    let Err(refused) = load_over(&model.sources(), Some(&next)) else {
        panic!("a duplicate is refused")
    };
    let d = &refused.diagnostics[0];
    assert!(d.message.contains("duplicate entity"), "{}", d.message);
    assert!(d.message.contains("part0.json:"), "{}", d.message);
}

/// Rows of a database source, as `doorman.entities` would give them.
fn rows(items: &[Value]) -> Vec<doorman::load::Row> {
    items
        .iter()
        .map(|i| doorman::load::Row {
            uid_type: i["uid"]["type"].as_str().unwrap().to_owned(),
            uid_id: i["uid"]["id"].as_str().unwrap().to_owned(),
            json: Some(i.to_string()),
        })
        .collect()
}

#[test]
fn database_rows_enter_the_store_as_cedar_reads_them_and_bad_ones_alone_are_refused() {
    use doorman::load::{DatabaseSource, Scope};
    let mut rng = Rng(seed().rotate_left(7));
    let model = Model::new(&mut rng);
    let mut parts = world(&mut rng);
    // The orgs in a file, everything else from a database.
    model.write(&parts[..1]);
    let mut sources = model.sources();
    sources.databases = vec![DatabaseSource::parse("postgres://app@db.invalid/app").unwrap()];
    let files = load(&sources).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics));
    assert!(!files.is_complete());
    let from_db: Vec<Value> = parts[1..].iter().flatten().cloned().collect();
    let batch = files.read_rows(0, Scope::Full, &rows(&from_db));
    let (full, refused) = files
        .with_database(0, Scope::Full, batch, 10)
        .expect("applies");
    assert!(refused.is_empty(), "{refused:?}");
    assert!(full.is_complete());
    assert_eq!(full.databases()[0].entities, from_db.len());
    assert!(same_entities(
        &full,
        &model.cedar(&parts).expect("Cedar reads it")
    ));

    // One change: two teams made each other's parent (a cycle), a user
    // changed, a row that redefines a file's org, a row that breaks the
    // schema, and a doc gone. The cycle costs one team its change, the
    // org and the bad row are refused, the rest applies.
    let (t0, t1) = (team(&mut rng, 0), team(&mut rng, 1));
    let mut cycle = [t0.clone(), t1.clone()];
    cycle[0]["parents"] = json!([r("Team", "t1")]);
    cycle[1]["parents"] = json!([r("Team", "t0")]);
    let changed_user = user(&mut rng, "u0");
    let mut bad = user(&mut rng, "u1");
    bad["attrs"]["level"] = json!("high");
    let org = org(&mut rng, 0);
    let mut change = rows(&[
        cycle[0].clone(),
        cycle[1].clone(),
        changed_user.clone(),
        org,
        bad,
    ]);
    let gone = parts[3][0]["uid"]["id"].as_str().unwrap().to_owned();
    change.push(doorman::load::Row {
        uid_type: "Doc".into(),
        uid_id: gone.clone(),
        json: None,
    });
    let batch = full.read_rows(0, Scope::Changes, &change);
    let (next, refused) = full
        .with_database(0, Scope::Changes, batch, 11)
        .expect("applies");
    let refused_uids: Vec<&str> = refused.iter().map(|r| r.uid.as_str()).collect();
    assert!(refused_uids.contains(&"Org::\"o0\""), "{refused:#?}");
    assert!(refused_uids.contains(&"User::\"u1\""), "{refused:#?}");
    assert!(!refused_uids.contains(&"User::\"u0\""), "{refused:#?}");
    // At least one team of the cycle (both, when a refused one's old
    // parents lead back to the other).
    let teams: Vec<&Value> = cycle
        .iter()
        .filter(|t| !refused_uids.contains(&format!("Team::{}", t["uid"]["id"]).as_str()))
        .collect();
    assert!(teams.len() < 2, "{refused:#?}");
    assert!(
        refused
            .iter()
            .filter(|r| r.uid.starts_with("Team::"))
            .all(|r| r.message.contains("own ancestor")),
        "{refused:#?}"
    );
    // What Cedar reads from the world with the accepted changes.
    let accepted: Vec<Value> = teams.into_iter().chain([&changed_user]).cloned().collect();
    for item in accepted {
        for part in parts.iter_mut() {
            part.retain(|i| i["uid"] != item["uid"]);
        }
        parts[1].push(item);
    }
    parts[3].retain(|i| i["uid"]["id"] != gone.as_str());
    assert!(same_entities(
        &next,
        &model.cedar(&parts).expect("Cedar reads it")
    ));
    assert_eq!(
        next.databases()[0].entities,
        from_db.len() - 1,
        "one doc gone"
    );
    assert_ne!(next.revision(), full.revision());
}

// ---------------------------------------------------------------- requests

/// Request entities: a few new users, changed users, re-parented teams
/// (which can close a cycle), and a new team some users are put in.
fn request_entities(rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let item = match rng.below(4) {
            0 => {
                let id = format!("u{}", rng.below(USERS));
                user(rng, &id)
            }
            1 => {
                let id = format!("fresh{}", rng.below(3));
                user(rng, &id)
            }
            2 => {
                let k = rng.below(TEAMS);
                let mut t = team(rng, k);
                if rng.chance(50) {
                    t["parents"] =
                        json!([r("Team", format!("t{}", rng.below(TEAMS))), r("Org", "o1")]);
                }
                t
            }
            _ => json!({"uid": r("Team", "tghost"), "attrs": {"org": r("Org", "o2"), "labels": []},
                        "parents": [r("Org", format!("o{}", rng.below(ORGS)))]}),
        };
        let uid = item["uid"].clone();
        out.retain(|i: &Value| i["uid"] != uid);
        out.push(item);
    }
    out
}

fn merged(parts: &[Vec<Value>], overlay: &[Value]) -> Vec<Value> {
    let mut all: Vec<Value> = parts
        .iter()
        .flatten()
        .filter(|i| !overlay.iter().any(|o| o["uid"] == i["uid"]))
        .cloned()
        .collect();
    all.extend(overlay.iter().cloned());
    all
}

fn reference(snapshot: &Snapshot, entities: &Entities, q: &Query) -> Outcome {
    let request = Request::new(
        q.principal.clone(),
        q.action.clone(),
        q.resource.clone(),
        Context::empty(),
        None,
    )
    .expect("a request without validation");
    let response = Authorizer::new().is_authorized(&request, snapshot.policy_set(), entities);
    Outcome::of_cedar(&response)
}

fn ours(snapshot: &Snapshot, q: &Query, overlay: Option<&[Value]>) -> Result<Outcome, String> {
    let answer = match overlay {
        None => snapshot.decide(q),
        Some(items) => {
            let overlay = snapshot
                .overlay(Value::Array(items.to_vec()))
                .map_err(|e| e.to_string())?;
            snapshot.decide_with(q, &[&overlay])
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(Outcome::of_answer(answer))
}

#[test]
fn views_answer_as_cedar_does_on_the_whole_store() {
    let mut rng = Rng(seed().rotate_left(23));
    let model = Model::new(&mut rng);
    let seen = compare_views(&model, &mut rng, REQUESTS);
    eprintln!("{REQUESTS} requests: {seen:?}");
    // The generator must exercise every outcome, or the test proves little.
    assert!(
        seen.allows > 500 && seen.errors > 1000 && seen.with_entities > 2000 && seen.cycles > 10
    );
}

/// A view builds only the attributes its request's policies read. Among
/// thirty random policies every bucket reads nearly every attribute, so
/// here each action has a policy or two of its own, and some read an
/// attribute only through `has` (plain and chained) or tags only through
/// `hasTag`: leaving any of those out of a view changes answers.
#[test]
fn views_hold_every_attribute_their_policies_test() {
    let policies = r#"
        permit (principal, action == Action::"read", resource) when { !(principal has manager) };
        forbid (principal, action == Action::"read", resource) when { resource has owner.prefs.buddy };
        permit (principal, action == Action::"edit", resource) when { principal has prefs.buddy.manager };
        permit (principal, action == Action::"share", resource) when { resource has lead };
        permit (principal, action == Action::"admin", resource) when { principal.hasTag("k2") };
    "#;
    let mut rng = Rng(seed().rotate_left(41));
    let model = Model::with_policies(policies);
    let seen = compare_views(&model, &mut rng, 2_000);
    eprintln!("2000 requests: {seen:?}");
    assert!(seen.allows > 200 && seen.allows < 1800, "{seen:?}");
}

/// What a run of [`compare_views`] saw.
#[derive(Debug, Default)]
struct Seen {
    allows: usize,
    errors: usize,
    with_entities: usize,
    cycles: usize,
}

/// Answers `requests` generated requests on a generated world through
/// views and asserts each answer is Cedar's on the whole store.
fn compare_views(model: &Model, rng: &mut Rng, requests: usize) -> Seen {
    let parts = world(rng);
    model.write(&parts);
    let snapshot = load(&model.sources())
        .unwrap_or_else(|e| panic!("{:#?}", e.diagnostics))
        .with_views_only();
    let stored = model.cedar(&parts).expect("Cedar reads the world");
    let uid = |t: &str, id: String| -> EntityUid {
        doorman::decide::uid_from_parts(t, &id).expect("uid")
    };
    let mut seen = Seen::default();
    for i in 0..requests {
        let action = ["read", "edit", "share", "admin"][rng.below(4)];
        let resource = match rng.below(4) {
            0 => uid("Team", some(rng, "t", TEAMS)),
            1 => uid("Org", format!("o{}", rng.below(ORGS))),
            _ => uid("Doc", some(rng, "d", DOCS)),
        };
        let overlay = rng.chance(25).then(|| request_entities(rng));
        let principal = match &overlay {
            Some(items) if rng.chance(50) => uid(
                "User",
                items[0]["uid"]["id"].as_str().unwrap_or("u0").to_owned(),
            ),
            _ => uid("User", some(rng, "u", USERS)),
        };
        let q = Query {
            principal,
            action: uid("Action", action.to_owned()),
            resource,
            context: json!({}),
        };
        let merged_entities;
        let entities = match &overlay {
            None => &stored,
            Some(items) => match Entities::from_json_value(
                Value::Array(merged(&parts, items)),
                Some(&model.schema),
            ) {
                Ok(e) => {
                    merged_entities = e;
                    &merged_entities
                }
                Err(_) => {
                    // Cedar refuses the merged data (a cycle): so must we.
                    let got = ours(&snapshot, &q, Some(items));
                    assert!(
                        got.is_err(),
                        "request {i}: Cedar refuses {items:#?}, we answered {got:?}"
                    );
                    seen.cycles += 1;
                    continue;
                }
            },
        };
        let expected = reference(&snapshot, entities, &q);
        let got = ours(&snapshot, &q, overlay.as_deref())
            .unwrap_or_else(|e| panic!("request {i}: refused: {e}\n{q:?}\n{overlay:#?}"));
        assert_eq!(
            got, expected,
            "request {i}: view (left) vs Cedar (right)\n{q:?}\n{overlay:#?}"
        );
        seen.allows += usize::from(expected.decision == Decision::Allow);
        seen.errors += usize::from(!expected.errors.is_empty());
        seen.with_entities += usize::from(overlay.is_some());
    }
    seen
}

#[test]
fn the_bundled_world_materialises_as_cedar_reads_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snapshot = load(&Sources {
        policies: root.join("policies"),
        schema: Some(root.join("schema")),
        entities: vec![root.join("fixtures/entities")],
        databases: vec![],
        validation: ValidationMode::Strict,
        routes: None,
    })
    .expect("the bundled model loads");
    let text = std::fs::read_to_string(root.join("fixtures/entities/world.yaml")).expect("world");
    let items: Vec<Value> = serde_saphyr::from_str(&text).expect("YAML");
    let cedar =
        Entities::from_json_value(Value::Array(items), snapshot.schema()).expect("Cedar reads it");
    assert!(same_entities(&snapshot, &cedar));
}
