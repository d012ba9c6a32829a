//! Request-scoped entities layered over the bundled store, against Cedar's
//! plain `Authorizer` on the merged data.
//!
//! The library answers a request with entities of its own from a small
//! per-request view (`src/view.rs`): the store seen through the request's
//! entities (`src/entities.rs`), ancestors walked through the merged
//! hierarchy. The reference is what `tests/slicing.rs` and
//! `tests/store.rs` compare with: the stored entities with the request's
//! replacing those of the same UID, read by Cedar with the schema, and
//! Cedar's `Authorizer` on the whole policy set, the request built and
//! validated as the library documents.
//!
//! The first byte chooses the input's reading: even, the rest is a JSON
//! question (`{"principal", "action", "resource", "context", "entities"}`,
//! references in Cedar's text form or `{"type", "id"}`); odd, the rest is
//! raw material for [`arbitrary`]: a question (mostly a principal and a
//! resource of types its action applies to) and entities built from the
//! sample world's UIDs, attribute names and values, each entity a stored
//! one edited or a new one. Edits mostly keep the schema's types (an
//! attribute changed within its type, a parent replaced by another of its
//! type: a seat moved to another company or role), so that the decision,
//! not the schema check, is what is compared; others set or drop any
//! attribute, add tags, or rewrite the parents (cycles). Bit 1 chooses the snapshot: the bundled one, or
//! the same answered through views only.
//!
//! Asserted, beyond not panicking: when both sides accept the request,
//! the answers are equal (decision, determining policies, policies that
//! failed to evaluate, with their messages); and one side refuses the
//! request entities exactly when the other does (a cycle, a type the
//! schema does not allow), except that doorman refuses a UID given twice
//! even when both copies are equal (as its loader refuses an entity
//! defined twice), which Cedar takes.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use cedar_policy::{Authorizer, Context, Entities, Entity, EntityUid, Request, Schema};
use doorman::decide::{parse_action, parse_uid, uid_from_parts};
use doorman::{Answer, Query, Snapshot};
use doorman_fuzz::{bundled, bundled_views, check_answer, root};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// The sample world as entity JSON, and the pools the structured inputs
/// pick from.
struct World {
    items: Vec<Value>,
    /// The same, each read by Cedar's entity parser with the schema, once.
    stored: Vec<(EntityUid, Entity)>,
    uids: Vec<(String, String)>,
    actions: Vec<String>,
    types: Vec<String>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("fixtures/entities/world.yaml"))
            .expect("the sample world");
        let items: Vec<Value> = serde_saphyr::from_str(&text).expect("the sample world is YAML");
        let uids = items
            .iter()
            .map(|i| {
                let uid = &i["uid"];
                (
                    uid["type"].as_str().unwrap_or_default().to_owned(),
                    uid["id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let schema = schema();
        let mut actions: Vec<String> = schema
            .actions()
            .map(|a| a.id().unescaped().to_owned())
            .collect();
        actions.sort();
        let mut types: Vec<String> = schema.entity_types().map(ToString::to_string).collect();
        types.sort();
        types.push("Action".to_owned());
        types.push("Ghost".to_owned());
        let stored = items
            .iter()
            .map(|i| {
                let e = Entity::from_json_value(i.clone(), Some(schema)).expect("Cedar reads it");
                (e.uid(), e)
            })
            .collect();
        World {
            items,
            stored,
            uids,
            actions,
            types,
        }
    })
}

fn schema() -> &'static Schema {
    bundled().schema().expect("the bundled model has a schema")
}

const ATTRS: &[&str] = &[
    "company",
    "email",
    "kind",
    "labels",
    "archived",
    "anonymous",
    "inboxes",
    "agents",
    "stores",
    "grants",
    "private",
    "store",
    "has_recording",
    "name",
    "managers_can_invite_admins",
    "admin_count",
    "role",
    "expires_at",
    "revoked",
    "ghost",
];

const STRINGS: &[&str] = &[
    "team",
    "customer",
    "admin",
    "manager",
    "agent",
    "member",
    "store_member",
    "edit_agents",
    "advanced_editor",
    "crm",
    "billable_minutes",
    "recordings",
    "vip",
    "",
    "2026-11-25T09:00:00Z",
    "2026-01-01",
    "2027-01-01T00:00:00Z",
    "1.5",
    "x@acme.test",
    "acme",
    "globex",
];

/// The bundled schema's context attributes (`InviteMember`'s `role`,
/// `AcceptInvitation`'s `now`), and one it does not declare.
const CONTEXT_KEYS: &[&str] = &["role", "now", "ghost"];

const IDS: &[&str] = &["new", "acme", "globex", "acme-ada", "x", ""];

// ------------------------------------------------------------- structured

#[derive(Arbitrary, Debug)]
enum Ref {
    Stored(u8),
    New(u8, u8),
}

/// A request's principal or resource: when the first byte is below 224
/// (7 in 8), a stored entity of a type the action applies to, chosen by
/// it (so that the request is valid and gets decided); else any
/// reference.
#[derive(Arbitrary, Debug)]
struct Part(u8, Ref);

/// A change that keeps an attribute's type (so the entity still fits the
/// schema and the decision, not the schema check, is what differs).
#[derive(Arbitrary, Debug)]
enum Like {
    /// A boolean negated, a number replaced, a string from the pool.
    Other(i64, u8),
    /// An entity reference to another stored entity of its type.
    Sibling(u8),
    /// An element added to a set (a copy of one with another id or text),
    /// or removed.
    Grow(u8),
    Shrink(u8),
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Bool(bool),
    Long(i64),
    Str(u8),
    Entity(Ref),
}

#[derive(Arbitrary, Debug)]
enum Val {
    One(Scalar),
    Set(Vec<Scalar>),
    Record(Vec<(u8, Scalar)>),
    Extension(u8, u8),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// The `n`th attribute it has, changed within its type.
    Change(u8, Like),
    /// The `n`th parent replaced by another stored entity of its type:
    /// the entity moves (to another company, store, role).
    Move(u8, u8),
    Set(u8, Val),
    Drop(u8),
    Parents(Vec<Ref>),
    AddParent(Ref),
    Tag(u8, Scalar),
}

#[derive(Arbitrary, Debug)]
struct Given {
    uid: Ref,
    /// Start from the stored entity of that UID, if there is one.
    keep: bool,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
struct Built {
    principal: Part,
    action: u8,
    resource: Part,
    /// `None`: `{}`, what most actions take.
    context: Option<Vec<(u8, Val)>>,
    entities: Vec<Given>,
}

fn pick<'a, T>(items: &'a [T], i: u8) -> &'a T {
    &items[usize::from(i) % items.len()]
}

impl Ref {
    fn parts(&self) -> (String, String) {
        let w = world();
        match self {
            Ref::Stored(i) => pick(&w.uids, *i).clone(),
            Ref::New(t, id) => (pick(&w.types, *t).clone(), pick(IDS, *id).to_string()),
        }
    }

    fn json(&self) -> Value {
        let (t, id) = self.parts();
        json!({"type": t, "id": id})
    }
}

/// A stored entity of the same type as the reference `like` (`{"type",
/// "id"}` or `{"__entity": ...}`), chosen by `i`, written the same way.
fn sibling(like: &Value, i: u8) -> Value {
    let inner = like.get("__entity").unwrap_or(like);
    let Some(t) = inner.get("type").and_then(Value::as_str) else {
        return like.clone();
    };
    let same: Vec<&(String, String)> = world().uids.iter().filter(|(ty, _)| ty == t).collect();
    if same.is_empty() {
        return like.clone();
    }
    let (_, id) = pick(&same, i);
    let reference = json!({"type": t, "id": id});
    if like.get("__entity").is_some() {
        json!({"__entity": reference})
    } else {
        reference
    }
}

/// `value` changed as `how` says, keeping its type.
fn changed(value: &Value, how: &Like) -> Value {
    match (value, how) {
        (Value::Bool(b), _) => json!(!b),
        (Value::Number(_), Like::Other(n, _)) => json!(n),
        (Value::String(_), Like::Other(_, i)) => json!(pick(STRINGS, *i)),
        (Value::Object(_), Like::Sibling(i) | Like::Other(_, i)) => sibling(value, *i),
        (Value::Array(items), Like::Grow(i)) => {
            let mut items = items.clone();
            match items.first() {
                Some(Value::String(_)) => items.push(json!(pick(STRINGS, *i))),
                Some(first @ Value::Object(_)) => items.push(sibling(first, *i)),
                _ => {}
            }
            Value::Array(items)
        }
        (Value::Array(items), Like::Shrink(i) | Like::Sibling(i) | Like::Other(_, i)) => {
            let mut items = items.clone();
            if !items.is_empty() {
                items.remove(usize::from(*i) % items.len());
            }
            Value::Array(items)
        }
        (other, _) => other.clone(),
    }
}

impl Scalar {
    fn json(&self) -> Value {
        match self {
            Scalar::Bool(b) => json!(b),
            Scalar::Long(n) => json!(n),
            Scalar::Str(i) => json!(pick(STRINGS, *i)),
            Scalar::Entity(r) => json!({"__entity": r.json()}),
        }
    }
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::One(s) => s.json(),
            Val::Set(items) => Value::Array(items.iter().map(Scalar::json).collect()),
            Val::Record(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (pick(ATTRS, *k).to_string(), v.json()))
                    .collect(),
            ),
            Val::Extension(f, arg) => {
                let f = pick(&["datetime", "decimal", "ip", "duration"], *f);
                json!({"__extn": {"fn": f, "arg": pick(STRINGS, *arg)}})
            }
        }
    }
}

impl Given {
    fn json(&self) -> Value {
        let (t, id) = self.uid.parts();
        let stored = self
            .keep
            .then(|| {
                world()
                    .items
                    .iter()
                    .find(|i| i["uid"]["type"] == t.as_str() && i["uid"]["id"] == id.as_str())
            })
            .flatten();
        let mut item = stored
            .cloned()
            .unwrap_or_else(|| json!({"attrs": {}, "parents": []}));
        item["uid"] = json!({"type": t, "id": id});
        for edit in &self.edits {
            match edit {
                Edit::Change(k, how) => {
                    if let Some(attrs) = item["attrs"].as_object_mut()
                        && !attrs.is_empty()
                    {
                        let key = attrs.keys().nth(usize::from(*k) % attrs.len()).cloned();
                        if let Some(v) = key.and_then(|k| attrs.get_mut(&k)) {
                            *v = changed(v, how);
                        }
                    }
                }
                Edit::Move(n, to) => {
                    if let Some(parents) = item["parents"].as_array_mut()
                        && !parents.is_empty()
                    {
                        let n = usize::from(*n) % parents.len();
                        parents[n] = sibling(&parents[n], *to);
                    }
                }
                Edit::Set(k, v) => {
                    item["attrs"][pick(ATTRS, *k)] = v.json();
                }
                Edit::Drop(k) => {
                    if let Some(attrs) = item["attrs"].as_object_mut() {
                        attrs.remove(*pick(ATTRS, *k));
                    }
                }
                Edit::Parents(parents) => {
                    item["parents"] = Value::Array(parents.iter().map(Ref::json).collect());
                }
                Edit::AddParent(p) => {
                    if let Some(parents) = item["parents"].as_array_mut() {
                        parents.push(p.json());
                    }
                }
                Edit::Tag(k, v) => {
                    item["tags"][pick(ATTRS, *k)] = v.json();
                }
            }
        }
        item
    }
}

impl Built {
    fn question(&self) -> (Query, Vec<Value>) {
        let action = uid_from_parts("Action", pick(&world().actions, self.action).as_str())
            .expect("an action");
        let uid = |part: &Part, principal: bool| {
            let (t, id) = match part {
                Part(224.., r) => r.parts(),
                Part(i, _) => {
                    let schema = schema();
                    let types: Vec<String> = if principal {
                        schema
                            .principals_for_action(&action)
                            .map(|ts| ts.map(ToString::to_string).collect())
                    } else {
                        schema
                            .resources_for_action(&action)
                            .map(|ts| ts.map(ToString::to_string).collect())
                    }
                    .unwrap_or_default();
                    let fits: Vec<&(String, String)> = world()
                        .uids
                        .iter()
                        .filter(|(t, _)| types.contains(t))
                        .collect();
                    if fits.is_empty() {
                        pick(&world().uids, *i).clone()
                    } else {
                        (*pick(&fits, *i)).clone()
                    }
                }
            };
            uid_from_parts(&t, &id).expect("pool UIDs are well formed")
        };
        let context: Map<String, Value> = self
            .context
            .iter()
            .flatten()
            .map(|(k, v)| (pick(CONTEXT_KEYS, *k).to_string(), v.json()))
            .collect();
        let query = Query {
            principal: uid(&self.principal, true),
            action: action.clone(),
            resource: uid(&self.resource, false),
            context: Value::Object(context),
        };
        (query, self.entities.iter().map(Given::json).collect())
    }
}

// ------------------------------------------------------------------- JSON

fn from_json(bytes: &[u8]) -> Option<(Query, Vec<Value>)> {
    let Value::Object(mut q) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    let reference = |v: Option<Value>, action: bool| -> Option<EntityUid> {
        match v? {
            Value::String(s) if action => parse_action(&s).ok(),
            Value::String(s) => parse_uid(&s).ok(),
            Value::Object(o) => {
                uid_from_parts(o.get("type")?.as_str()?, o.get("id")?.as_str()?).ok()
            }
            _ => None,
        }
    };
    let query = Query {
        principal: reference(q.remove("principal"), false)?,
        action: reference(q.remove("action"), true)?,
        resource: reference(q.remove("resource"), false)?,
        context: match q.remove("context") {
            None | Some(Value::Null) => json!({}),
            Some(c @ Value::Object(_)) => c,
            Some(_) => return None,
        },
    };
    let entities = match q.remove("entities") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items,
        Some(_) => return None,
    };
    Some((query, entities))
}

// ---------------------------------------------------------------- compare

/// What both sides must agree on: reasons and errors sorted (only doorman
/// promises an order; its order is checked by `check_answer`).
#[derive(Debug, PartialEq)]
struct Outcome {
    allow: bool,
    reasons: Vec<String>,
    errors: Vec<(String, String)>,
}

impl Outcome {
    fn of_answer(a: &Answer) -> Outcome {
        let mut reasons = a.reasons.clone();
        reasons.sort();
        let mut errors: Vec<(String, String)> = a
            .errors
            .iter()
            .map(|e| (e.policy.clone(), e.message.clone()))
            .collect();
        errors.sort();
        Outcome {
            allow: a.decision == doorman::Decision::Allow,
            reasons,
            errors,
        }
    }

    fn of_cedar(r: &cedar_policy::Response) -> Outcome {
        let mut reasons: Vec<String> = r.diagnostics().reason().map(ToString::to_string).collect();
        reasons.sort();
        let mut errors: Vec<(String, String)> = r
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(err) => {
                    let message = err.inner().to_string();
                    // doorman clips messages (they may quote the request).
                    let clipped = doorman::clip::clip(&message, doorman::clip::MESSAGE_CHARS);
                    (err.policy_id().to_string(), clipped.into_owned())
                }
            })
            .collect();
        errors.sort();
        Outcome {
            allow: r.decision() == cedar_policy::Decision::Allow,
            reasons,
            errors,
        }
    }
}

/// Where a side refused, if it did.
#[derive(Debug)]
enum Refused {
    /// The request entities (or their merge with the stored ones).
    Entities(String),
    /// The request itself (its types, its context).
    Request,
}

fn ours(snapshot: &Snapshot, query: &Query, entities: &[Value]) -> Result<Answer, Refused> {
    let overlay = snapshot
        .overlay(Value::Array(entities.to_vec()))
        .map_err(|e| Refused::Entities(e.to_string()))?;
    snapshot.decide_with(query, &[&overlay]).map_err(|e| {
        if e.field.starts_with("entities") {
            Refused::Entities(e.to_string())
        } else {
            Refused::Request
        }
    })
}

fn cedar(snapshot: &Snapshot, query: &Query, entities: &[Value]) -> Result<Outcome, Refused> {
    let schema = schema();
    let refused = |e: &dyn std::fmt::Display| Refused::Entities(e.to_string());
    // `Entities::from_json_value` on the merged list, in its two steps
    // (each entity read by the same parser, then the set built, checked
    // and closed), so the stored entities need not be parsed every time.
    let given = entities
        .iter()
        .map(|i| Entity::from_json_value(i.clone(), Some(schema)).map_err(|e| refused(&e)))
        .collect::<Result<Vec<Entity>, _>>()?;
    let replaced: Vec<EntityUid> = given.iter().map(Entity::uid).collect();
    let merged = world()
        .stored
        .iter()
        .filter(|(uid, _)| !replaced.contains(uid))
        .map(|(_, e)| e.clone())
        .chain(given);
    let entities = Entities::from_entities(merged, Some(schema)).map_err(|e| refused(&e))?;
    let context = Context::from_json_value(query.context.clone(), Some((schema, &query.action)))
        .map_err(|_| Refused::Request)?;
    let request = Request::new(
        query.principal.clone(),
        query.action.clone(),
        query.resource.clone(),
        context,
        Some(schema),
    )
    .map_err(|_| Refused::Request)?;
    let response = Authorizer::new().is_authorized(&request, snapshot.policy_set(), &entities);
    Ok(Outcome::of_cedar(&response))
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let question = if choice & 1 == 0 {
        from_json(rest)
    } else {
        Built::arbitrary_take_rest(Unstructured::new(rest))
            .ok()
            .map(|b| b.question())
    };
    let Some((query, entities)) = question else {
        return;
    };
    let snapshot = if choice & 2 == 0 {
        bundled()
    } else {
        bundled_views()
    };
    let got = ours(snapshot, &query, &entities);
    if let Ok(answer) = &got {
        check_answer(snapshot, answer);
    }
    // A UID given twice: doorman refuses it as its loader refuses an
    // entity defined twice, where Cedar takes two identical copies.
    let uids: Vec<EntityUid> = entities
        .iter()
        .filter_map(|i| EntityUid::from_json(i["uid"].clone()).ok())
        .collect();
    if (1..uids.len()).any(|i| uids[..i].contains(&uids[i])) {
        assert!(
            matches!(got, Err(Refused::Entities(_))),
            "a UID given twice, and answered: {got:?}"
        );
        return;
    }
    let expected = cedar(snapshot, &query, &entities);
    match (&got, &expected) {
        (Ok(g), Ok(e)) => assert_eq!(
            &Outcome::of_answer(g),
            e,
            "doorman (left) and Cedar (right) differ\n{query:?}\n{entities:#?}"
        ),
        (Err(Refused::Entities(_)), Err(Refused::Entities(_))) => {}
        (Err(Refused::Entities(ours)), Ok(_)) => {
            panic!("doorman refuses entities Cedar takes: {ours}\n{query:?}\n{entities:#?}")
        }
        (Ok(_), Err(Refused::Entities(theirs))) => {
            panic!("Cedar refuses entities doorman takes: {theirs}\n{query:?}\n{entities:#?}")
        }
        // A request either side refuses for itself: nothing to compare
        // (which refusal comes first depends on the order of the checks).
        _ => {}
    }
});
