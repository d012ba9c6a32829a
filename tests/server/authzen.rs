//! AuthZEN 1.0 over HTTP against the real binary, on the tests' own model
//! (tests/data/authzen: the certification scenario's fixture in two
//! tenants, actions in a namespace). One test per section of the
//! certification checklist: transport (§2, §5), evaluations (§3), search
//! (§4) and metadata (§6), each asserting the decisions the fixture
//! mandates and the exact answer shapes clients compare.

use std::collections::BTreeSet;
use std::path::Path;

use doorman::{Sources, ValidationMode};
use serde_json::{Value, json};

use crate::support::*;

const EVALUATION: &str = "/access/v1/evaluation";
const EVALUATIONS: &str = "/access/v1/evaluations";
const SUBJECTS: &str = "/access/v1/search/subject";
const RESOURCES: &str = "/access/v1/search/resource";
const ACTIONS: &str = "/access/v1/search/action";
const METADATA: &str = "/.well-known/authzen-configuration";

fn sources() -> Sources {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/authzen");
    Sources {
        policies: root.join("policies"),
        schema: Some(root.join("schema")),
        entities: vec![root.join("entities")],
        databases: vec![],
        validation: ValidationMode::Strict,
        routes: None,
    }
}

fn start(extra: &[&str]) -> Process {
    let mut args = load_flags(&sources());
    args.extend(extra.iter().map(|s| s.to_string()));
    Process::start_with(&args)
}

fn user(id: &str) -> Value {
    json!({"type": "user", "id": id})
}

fn record(id: &str) -> Value {
    json!({"type": "record", "id": id})
}

fn act(name: &str) -> Value {
    json!({"name": name})
}

fn ask(subject: Value, action: Value, resource: Value) -> Value {
    json!({"subject": subject, "action": action, "resource": resource})
}

/// The decision of a 200 answer, which must be exactly `{"decision": b}`.
fn plain(r: &Response) -> bool {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let json = r.json();
    let decision = json["decision"].as_bool().expect("a boolean decision");
    assert_eq!(
        json,
        json!({"decision": decision}),
        "nothing but the decision"
    );
    decision
}

/// The field a 400 names.
fn refused(r: &Response) -> String {
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    r.error().1.unwrap_or_default()
}

/// The ids (or action names) of a search answer's results, in order.
fn found(r: &Response) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["results"]
        .as_array()
        .expect("a results list")
        .iter()
        .map(|x| {
            x.get("id")
                .or_else(|| x.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("a result without id or name: {x}"))
                .to_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn as_set(items: Vec<String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

/// What a search request finds, as a set.
async fn finds(c: &mut Conn<tokio::net::TcpStream>, path: &str, body: &Value) -> BTreeSet<String> {
    as_set(found(&c.post(path, body).await))
}

// ------------------------------------------------------------ transport

#[tokio::test]
async fn transport_follows_the_https_binding() {
    let server = start(&[]);
    let mut c = server.connect().await;
    let good = ask(user("alice"), act("read"), record("record-1"));
    let body = good.to_string();

    // Content-Type: JSON required, parameters and case aside.
    let r = c.send("POST", EVALUATION, &[], Some(body.as_bytes())).await;
    assert!(plain(&r));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = c
        .send(
            "POST",
            EVALUATION,
            &[("Content-Type", "Application/JSON; charset=utf-8")],
            Some(body.as_bytes()),
        )
        .await;
    assert!(plain(&r));
    for ty in ["text/plain", "-", "application/x-www-form-urlencoded"] {
        let r = c
            .send(
                "POST",
                EVALUATION,
                &[("Content-Type", ty)],
                Some(body.as_bytes()),
            )
            .await;
        assert_eq!(r.status, 400, "{ty}");
        assert_eq!(r.error().0, "invalid_content_type", "{ty}");
    }
    // On every endpoint, search included.
    let r = c
        .send(
            "POST",
            SUBJECTS,
            &[("Content-Type", "text/plain")],
            Some(b"{}"),
        )
        .await;
    assert_eq!(r.error().0, "invalid_content_type");

    // Malformed, empty, not an object: 400.
    for bad in [&b"{"[..], b"", b"[1]", b"\"x\"", b"{\"subject\": }"] {
        let r = c.post_raw(EVALUATION, bad).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
    }

    // Missing parts and sub-parts, wrong types: 400 naming the field.
    let without = |key: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    for key in ["subject", "action", "resource"] {
        assert_eq!(refused(&c.post(EVALUATION, &without(key)).await), key);
    }
    let cases = [
        (
            ask(json!({"id": "alice"}), act("read"), record("record-1")),
            "subject.type",
        ),
        (
            ask(json!({"type": "user"}), act("read"), record("record-1")),
            "subject.id",
        ),
        (
            ask(user("alice"), json!({}), record("record-1")),
            "action.name",
        ),
        (
            ask(user("alice"), act("read"), json!({"id": "record-1"})),
            "resource.type",
        ),
        (
            ask(user("alice"), act("read"), json!({"type": "record"})),
            "resource.id",
        ),
        (
            ask(json!("alice"), act("read"), record("record-1")),
            "subject",
        ),
        (
            ask(user("alice"), json!({"name": 123}), record("record-1")),
            "action.name",
        ),
        (
            ask(
                user("alice"),
                act("read"),
                json!({"type": "record", "id": 7}),
            ),
            "resource.id",
        ),
        (
            ask(
                json!({"type": "user", "id": "alice", "properties": "x"}),
                act("read"),
                record("record-1"),
            ),
            "subject.properties",
        ),
        (
            json!({"subject": user("alice"), "action": act("read"), "resource": record("record-1"), "context": []}),
            "context",
        ),
        (
            ask(
                json!({"type": "no such type", "id": "x"}),
                act("read"),
                record("record-1"),
            ),
            "subject.type",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(refused(&c.post(EVALUATION, &body).await), field, "{body}");
    }

    // Unknown fields are ignored, anywhere; nulls read as absent.
    let mut extra = good.clone();
    extra["foo"] = json!("bar");
    extra["futureField"] = json!({"nested": true});
    extra["subject"]["nickname"] = json!("al");
    extra["context"] = json!(null);
    assert!(plain(&c.post(EVALUATION, &extra).await));

    // X-Request-ID: echoed when sent (answers and refusals alike), made
    // up when not.
    let r = c
        .send(
            "POST",
            EVALUATION,
            &[("X-Request-ID", "bfe9eb29-ab87")],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("bfe9eb29-ab87"));
    let r = c
        .send("POST", EVALUATION, &[("X-Request-ID", "req-2")], Some(b"{"))
        .await;
    assert_eq!((r.status, r.header("x-request-id")), (400, Some("req-2")));
    let r = c
        .send("GET", EVALUATION, &[("X-Request-ID", "req-3")], None)
        .await;
    assert_eq!((r.status, r.header("x-request-id")), (405, Some("req-3")));
    assert_eq!(r.header("allow"), Some("POST"));
    let r = c
        .send("GET", METADATA, &[("X-Request-ID", "req-4")], None)
        .await;
    assert_eq!((r.status, r.header("x-request-id")), (200, Some("req-4")));
    let a = c.post(EVALUATION, &good).await;
    let b = c.post(EVALUATION, &good).await;
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert!(!a.is_empty() && a != b, "{a} {b}");

    // The same question, the same answer.
    for _ in 0..5 {
        assert!(plain(&c.post(EVALUATION, &good).await));
    }
    // doorman's own API is unchanged: it still wants no Content-Type.
    let r = c
        .send("POST", "/v1/is_authorized", &[("Content-Type", "-")], Some(br#"{"principal": "user::\"alice\"", "action": "Docs::Action::\"read\"", "resource": "record::\"record-1\""}"#))
        .await;
    assert_eq!(
        (r.status, r.json()["decision"].clone()),
        (200, json!("allow"))
    );
}

/// A refusal read from the headers (a bad `Doorman-Explain`) is given
/// only once the body is read, so the connection carries on: here the body
/// arrives after the headers, in two writes, and the next request on the
/// same connection is answered.
#[tokio::test]
async fn a_bad_explain_header_leaves_the_connection_usable() {
    let server = start(&[]);
    let mut c = server.connect().await;
    let body = ask(user("alice"), act("read"), record("record-1")).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let head = format!(
        "POST {EVALUATION} HTTP/1.1\r\nHost: doorman\r\nContent-Type: application/json\r\n\
         Doorman-Explain: perhaps\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write(&[head.as_bytes(), first].concat()).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    c.write(rest).await;
    let r = c
        .read_response()
        .await
        .expect("an answer to the first request");
    assert_eq!(refused(&r), "Doorman-Explain");
    // The same connection: the next request is read as one.
    let r = c.post_raw(EVALUATION, body.as_bytes()).await;
    assert!(plain(&r));
    // And with the whole request in one write.
    let r = c
        .send(
            "POST",
            EVALUATION,
            &[("Doorman-Explain", "maybe")],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(refused(&r), "Doorman-Explain");
    assert!(plain(&c.post_raw(EVALUATION, body.as_bytes()).await));
}

// ----------------------------------------------------------- evaluation

#[tokio::test]
async fn evaluations_give_the_fixtures_decisions_and_map_onto_cedar() {
    let server = start(&[]);
    let mut c = server.connect().await;
    let archived =
        json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let admin = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    let delete = |soft: bool| json!({"name": "delete", "properties": {"soft": soft}});
    // The certification fixture's eight decisions (rules 1 to 8).
    let rules = [
        (ask(user("alice"), act("read"), record("record-1")), true),
        (ask(user("alice"), act("write"), record("record-1")), true),
        (ask(user("bob"), act("read"), record("record-1")), true),
        (ask(user("bob"), act("write"), record("record-1")), false),
        (ask(user("alice"), act("write"), archived.clone()), false),
        (ask(admin.clone(), act("write"), archived.clone()), true),
        (ask(user("alice"), delete(true), record("record-1")), true),
        (ask(user("alice"), delete(false), record("record-1")), false),
    ];
    for (i, (body, want)) in rules.iter().enumerate() {
        assert_eq!(
            plain(&c.post(EVALUATION, body).await),
            *want,
            "rule {}",
            i + 1
        );
    }
    // Context and extra properties change nothing here (c-2-2-3, c-2-2-8).
    let mut with_context = rules[0].0.clone();
    with_context["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    assert!(plain(&c.post(EVALUATION, &with_context).await));
    let rich = ask(
        json!({"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}}),
        json!({"name": "read", "properties": {"method": "GET"}}),
        json!({"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}),
    );
    assert!(plain(&c.post(EVALUATION, &rich).await));

    // A property replaces the stored attribute (record-2 is stored
    // archived); stored parents are kept (the tenant rule still holds).
    let revived = json!({"type": "record", "id": "record-2", "properties": {"status": "active"}});
    assert!(plain(
        &c.post(EVALUATION, &ask(user("alice"), act("write"), revived))
            .await
    ));
    assert!(!plain(
        &c.post(
            EVALUATION,
            &ask(user("alice"), act("write"), record("record-2"))
        )
        .await
    ));
    let other_tenant =
        json!({"type": "record", "id": "record-9", "properties": {"status": "active"}});
    assert!(!plain(
        &c.post(EVALUATION, &ask(user("alice"), act("read"), other_tenant))
            .await
    ));
    // An entity that is not stored is made of its properties (and has no
    // parents, so the tenant rule denies it); what the schema requires it
    // must bring, and what the schema does not declare is refused.
    let newcomer = json!({"type": "user", "id": "newbie", "properties": {"org": {"type": "org", "id": "acme"}}});
    assert!(!plain(
        &c.post(EVALUATION, &ask(newcomer, act("read"), record("record-1")))
            .await
    ));
    for props in [
        json!({"role": "x"}),
        json!({"org": {"type": "org", "id": "acme"}, "shoe_size": 9}),
    ] {
        let body = ask(
            json!({"type": "user", "id": "newbie", "properties": props}),
            act("read"),
            record("record-1"),
        );
        let r = c.post(EVALUATION, &body).await;
        assert_eq!(refused(&r), "subject.properties", "{body}");
        assert_eq!(r.error().0, "invalid_entities");
    }
    // Action properties and context are one Cedar context; a key in both
    // is refused. A required context attribute may come from either.
    let mut both = ask(user("alice"), delete(true), record("record-1"));
    both["context"] = json!({"soft": true});
    assert_eq!(
        refused(&c.post(EVALUATION, &both).await),
        "action.properties.soft"
    );
    let mut in_context = ask(user("alice"), act("delete"), record("record-1"));
    in_context["context"] = json!({"soft": true});
    assert!(plain(&c.post(EVALUATION, &in_context).await));
    let r = c
        .post(
            EVALUATION,
            &ask(user("alice"), act("delete"), record("record-1")),
        )
        .await;
    assert_eq!(
        (refused(&r), r.error().0),
        ("context".to_owned(), "invalid_request".to_owned())
    );
    // Names Cedar does not know: the schema refuses them, naming the part.
    assert_eq!(
        refused(
            &c.post(
                EVALUATION,
                &ask(user("alice"), act("fly"), record("record-1"))
            )
            .await
        ),
        "action"
    );
    assert_eq!(
        refused(
            &c.post(
                EVALUATION,
                &ask(
                    json!({"type": "spaceship", "id": "x"}),
                    act("read"),
                    record("record-1")
                )
            )
            .await
        ),
        "subject"
    );
    // A user that is not stored has no org: allowed nothing.
    assert!(!plain(
        &c.post(
            EVALUATION,
            &ask(user("nobody"), act("read"), record("record-1"))
        )
        .await
    ));

    // Explanations only when asked: the determining policies and the
    // snapshot's revision, in `context.reason_admin`.
    let revision = doorman::load(&sources()).unwrap().revision().to_owned();
    let explain = [("Doorman-Explain", "true")];
    let r = c
        .send(
            "POST",
            EVALUATION,
            &explain,
            Some(rules[0].0.to_string().as_bytes()),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"decision": true, "context": {"reason_admin": {"policies": ["read"], "errors": [], "revision": revision}}})
    );
    let r = c
        .send(
            "POST",
            EVALUATION,
            &explain,
            Some(rules[3].0.to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.json()["context"]["reason_admin"]["policies"], json!([]));
    let tenant = ask(user("gil"), act("read"), record("record-1")).to_string();
    let r = c
        .send("POST", EVALUATION, &explain, Some(tenant.as_bytes()))
        .await;
    assert_eq!(r.json()["decision"], json!(false));
    assert_eq!(
        r.json()["context"]["reason_admin"]["policies"],
        json!(["tenant"])
    );
    let r = c
        .send(
            "POST",
            EVALUATION,
            &[("Doorman-Explain", "perhaps")],
            Some(tenant.as_bytes()),
        )
        .await;
    assert_eq!(refused(&r), "Doorman-Explain");
}

/// What the README promises gateway teams: a property or context key the
/// schema does not declare is a 400 naming where it was sent, in every
/// validation mode (the schema directs reading requests in all of them).
#[tokio::test]
async fn undeclared_properties_and_context_keys_are_refused_by_field() {
    for mode in ["strict", "permissive", "off"] {
        let server = start(&["--validation", mode]);
        let mut c = server.connect().await;
        let cases = [
            (
                ask(
                    json!({"type": "user", "id": "alice", "properties": {"shoe_size": 9}}),
                    act("read"),
                    record("record-1"),
                ),
                ("subject.properties", "invalid_entities"),
            ),
            (
                ask(
                    user("alice"),
                    act("read"),
                    json!({"type": "record", "id": "record-1", "properties": {"colour": "red"}}),
                ),
                ("resource.properties", "invalid_entities"),
            ),
            (
                json!({"subject": user("alice"), "action": act("read"),
                       "resource": record("record-1"), "context": {"mood": "x"}}),
                ("context", "invalid_request"),
            ),
            (
                ask(
                    user("alice"),
                    json!({"name": "read", "properties": {"mood": "x"}}),
                    record("record-1"),
                ),
                ("action.properties", "invalid_request"),
            ),
        ];
        for (body, (field, code)) in cases {
            let r = c.post(EVALUATION, &body).await;
            assert_eq!(
                (refused(&r), r.error().0),
                (field.to_owned(), code.to_owned()),
                "{mode}: {body}"
            );
        }
        // Declared ones are fine.
        let mut declared = ask(
            json!({"type": "user", "id": "alice", "properties": {"department": "Sales"}}),
            act("read"),
            record("record-1"),
        );
        declared["context"] = json!({"ip": "192.168.1.1"});
        assert!(plain(&c.post(EVALUATION, &declared).await), "{mode}");
    }
}

// ---------------------------------------------------------- evaluations

#[tokio::test]
async fn batches_take_defaults_whole_and_stop_as_asked() {
    let server = start(&["--max-batch", "6"]);
    let mut c = server.connect().await;
    let decisions = |r: &Response| -> Vec<Value> {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let json = r.json();
        assert_eq!(
            json.as_object().unwrap().len(),
            1,
            "only evaluations: {json}"
        );
        json["evaluations"].as_array().expect("evaluations").clone()
    };
    let bools = |items: &[Value]| -> Vec<bool> {
        items
            .iter()
            .map(|i| {
                if i.get("context").is_none() {
                    assert_eq!(i.as_object().unwrap().len(), 1, "only a decision: {i}");
                }
                i["decision"].as_bool().expect("a decision")
            })
            .collect()
    };

    // c-3-2-1, c-3-2-2: defaults, order kept.
    let r = c
        .post(
            EVALUATIONS,
            &json!({
                "subject": user("bob"), "resource": record("record-1"),
                "evaluations": [{"action": act("read")}, {"action": act("write")}],
            }),
        )
        .await;
    assert_eq!(bools(&decisions(&r)), [true, false]);
    // c-3-2-3, c-3-2-4: properties per item.
    let r = c.post(EVALUATIONS, &json!({
        "subject": user("alice"), "action": act("write"),
        "evaluations": [
            {"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
            {"resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}}},
        ],
    })).await;
    assert_eq!(bools(&decisions(&r)), [true, false]);
    let r = c.post(EVALUATIONS, &json!({
        "action": act("write"),
        "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
        "evaluations": [{"subject": user("alice")}, {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}],
    })).await;
    assert_eq!(bools(&decisions(&r)), [false, true]);
    // c-3-2-5: no defaults.
    let r = c
        .post(
            EVALUATIONS,
            &json!({"evaluations": [
                ask(user("alice"), act("read"), record("record-1")),
                ask(user("bob"), act("write"), record("record-1")),
            ]}),
        )
        .await;
    assert_eq!(bools(&decisions(&r)), [true, false]);
    // c-3-2-6: a default context, and an item's own replacing it whole
    // (the item's has no `soft`, so its delete is refused).
    let r = c
        .post(
            EVALUATIONS,
            &json!({
                "subject": user("alice"), "action": act("delete"), "context": {"soft": true},
                "evaluations": [
                    {"resource": record("record-1")},
                    {"resource": record("record-1"), "context": {"time": "19:00"}},
                    {"resource": record("record-1"), "context": {}},
                ],
            }),
        )
        .await;
    let items = decisions(&r);
    assert_eq!(bools(&items), [true, false, false]);
    assert_eq!(
        items[1]["context"]["error"]["field"],
        "evaluations[1].context"
    );
    assert_eq!(
        items[2]["context"]["error"]["field"],
        "evaluations[2].context"
    );
    // c-3-2-7: an item's key replaces the default whole, properties and
    // all (the item's record-1 is not the default's archived copy).
    let r = c.post(EVALUATIONS, &json!({
        "subject": user("alice"), "action": act("write"),
        "resource": {"type": "record", "id": "record-1", "properties": {"status": "archived"}},
        "evaluations": [{}, {"resource": record("record-1")}],
    })).await;
    assert_eq!(bools(&decisions(&r)), [false, true]);

    // c-3-4-1: a bad item is that item's error, the others answered.
    let r = c.post(EVALUATIONS, &json!({
        "subject": user("alice"), "action": act("read"),
        "options": {"evaluations_semantic": "execute_all"},
        "evaluations": [{"resource": record("record-1")}, {}, {"resource": {"type": "record"}}, "x",
                        {"resource": record("record-1"), "action": act("fly")}],
    })).await;
    let items = decisions(&r);
    assert_eq!(bools(&items), [true, false, false, false, false]);
    let error = |i: usize| {
        (
            items[i]["context"]["error"]["status"].clone(),
            items[i]["context"]["error"]["field"].clone(),
        )
    };
    assert_eq!(error(1), (json!(400), json!("evaluations[1].resource")));
    assert_eq!(error(2), (json!(400), json!("evaluations[2].resource.id")));
    assert_eq!(error(3), (json!(400), json!("evaluations[3]")));
    assert_eq!(error(4), (json!(400), json!("evaluations[4].action")));
    assert!(
        items[4]["context"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an action")
    );

    // c-3-4-2, c-3-4-3: no or empty evaluations is one evaluation.
    let one = ask(user("alice"), act("read"), record("record-1"));
    assert!(plain(&c.post(EVALUATIONS, &one).await));
    let mut empty = one.clone();
    empty["evaluations"] = json!([]);
    assert!(plain(&c.post(EVALUATIONS, &empty).await));
    empty.as_object_mut().unwrap().remove("resource");
    assert_eq!(refused(&c.post(EVALUATIONS, &empty).await), "resource");

    // The three semantics over allow, deny, error, allow.
    let mixed = |semantic: &str| {
        json!({
            "subject": user("alice"), "action": act("write"),
            "options": {"evaluations_semantic": semantic, "another_option": 1},
            "evaluations": [{"resource": record("record-1")}, {"resource": record("record-2")},
                            {"resource": {"id": "x"}}, {"resource": record("record-3")}],
        })
    };
    assert_eq!(
        bools(&decisions(
            &c.post(EVALUATIONS, &mixed("execute_all")).await
        )),
        [true, false, false, true]
    );
    assert_eq!(
        bools(&decisions(
            &c.post(EVALUATIONS, &mixed("deny_on_first_deny")).await
        )),
        [true, false]
    );
    assert_eq!(
        bools(&decisions(
            &c.post(EVALUATIONS, &mixed("permit_on_first_permit")).await
        )),
        [true]
    );
    let mut error_first = mixed("deny_on_first_deny");
    error_first["evaluations"]
        .as_array_mut()
        .unwrap()
        .swap(0, 2);
    let items = decisions(&c.post(EVALUATIONS, &error_first).await);
    assert_eq!(items.len(), 1, "an error is a deny: {items:?}");
    let mut deny_first = mixed("permit_on_first_permit");
    deny_first["evaluations"].as_array_mut().unwrap().swap(0, 1);
    assert_eq!(
        bools(&decisions(&c.post(EVALUATIONS, &deny_first).await)),
        [false, true]
    );
    let mut no_options = mixed("x");
    no_options.as_object_mut().unwrap().remove("options");
    assert_eq!(decisions(&c.post(EVALUATIONS, &no_options).await).len(), 4);

    // The payload's own shape is refused whole.
    assert_eq!(
        refused(&c.post(EVALUATIONS, &mixed("all_of_them")).await),
        "options.evaluations_semantic"
    );
    let mut bad = mixed("execute_all");
    bad["options"] = json!("fast");
    assert_eq!(refused(&c.post(EVALUATIONS, &bad).await), "options");
    let mut bad = mixed("execute_all");
    bad["evaluations"] = json!({"resource": record("record-1")});
    assert_eq!(refused(&c.post(EVALUATIONS, &bad).await), "evaluations");
    let mut bad = mixed("execute_all");
    bad["subject"] = json!("alice");
    assert_eq!(refused(&c.post(EVALUATIONS, &bad).await), "subject");
    let mut big = mixed("execute_all");
    big["evaluations"] = json!(vec![json!({"resource": record("record-1")}); 7]);
    let r = c.post(EVALUATIONS, &big).await;
    assert_eq!(
        (r.status, r.error()),
        (
            400,
            ("batch_too_large".to_owned(), Some("evaluations".to_owned()))
        )
    );
    // A default that does not resolve spoils only the items that use it.
    let r = c.post(EVALUATIONS, &json!({
        "subject": {"type": "user", "id": "newbie", "properties": {"shoe_size": 9}}, "action": act("read"),
        "evaluations": [{"resource": record("record-1")}, {"subject": user("alice"), "resource": record("record-1")}],
    })).await;
    let items = decisions(&r);
    assert_eq!(items[0]["context"]["error"]["field"], "subject.properties");
    assert_eq!(items[1], json!({"decision": true}));

    // Explanations per item when asked.
    let body = json!({"subject": user("gil"), "action": act("read"),
                      "evaluations": [{"resource": record("record-9")}, {"resource": record("record-1")}]});
    let r = c
        .send(
            "POST",
            EVALUATIONS,
            &[("Doorman-Explain", "1")],
            Some(body.to_string().as_bytes()),
        )
        .await;
    let items = decisions(&r);
    assert_eq!(
        items[0]["context"]["reason_admin"]["policies"],
        json!(["read"])
    );
    assert_eq!(
        items[1]["context"]["reason_admin"]["policies"],
        json!(["tenant"])
    );
}

// --------------------------------------------------------------- search

#[tokio::test]
async fn searches_find_what_evaluations_allow_page_by_page() {
    let server = start(&[]);
    let mut c = server.connect().await;
    let acme = ["alice", "bob", "carol", "dave", "erin"];

    // S1 (c-4-2-1..3): every acme user reads record-1; the searched id
    // and properties are ignored; a context is accepted.
    let who_reads =
        json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1")});
    let r = c.post(SUBJECTS, &who_reads).await;
    assert_eq!(as_set(found(&r)), set(&acme));
    assert_eq!(
        r.json().as_object().unwrap().len(),
        1,
        "no page when none was asked"
    );
    for result in r.json()["results"].as_array().unwrap() {
        assert_eq!(result.as_object().unwrap().len(), 2);
        assert_eq!(result["type"], "user");
    }
    let mut with_id = who_reads.clone();
    with_id["subject"] = json!({"type": "user", "id": "alice", "properties": {"role": "admin"}});
    with_id["context"] = json!({"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"});
    assert_eq!(finds(&mut c, SUBJECTS, &with_id).await, set(&acme));
    // The other tenant's record: its users only.
    let mut globex = who_reads.clone();
    globex["resource"] = record("record-9");
    assert_eq!(finds(&mut c, SUBJECTS, &globex).await, set(&["gil", "gus"]));
    // Writers of record-1: users without a role.
    let mut writers = who_reads.clone();
    writers["action"] = act("write");
    assert_eq!(
        finds(&mut c, SUBJECTS, &writers).await,
        set(&["alice", "carol", "erin"])
    );

    // S2 (c-4-3-1..3), resource search.
    let alice_reads =
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"}});
    assert_eq!(
        finds(&mut c, RESOURCES, &alice_reads).await,
        set(&["record-1", "record-2", "record-3"])
    );
    let mut with_id = alice_reads.clone();
    with_id["resource"] = record("record-1");
    with_id["context"] = json!({"ip": "192.168.1.1"});
    assert_eq!(
        finds(&mut c, RESOURCES, &with_id).await,
        set(&["record-1", "record-2", "record-3"])
    );
    let alice_writes =
        json!({"subject": user("alice"), "action": act("write"), "resource": {"type": "record"}});
    assert_eq!(
        finds(&mut c, RESOURCES, &alice_writes).await,
        set(&["record-1", "record-3"])
    );

    // S3 (c-4-4-1, 2), action search: names only, the namespace dropped;
    // delete needs a context alice did not give.
    let alice_on_1 = json!({"subject": user("alice"), "resource": record("record-1")});
    let r = c.post(ACTIONS, &alice_on_1).await;
    assert_eq!(found(&r), ["read", "write"]);
    assert_eq!(r.json()["results"][0], json!({"name": "read"}));
    // The context is every candidate's: `soft` makes delete's request
    // valid and read's and write's invalid (their context has no `soft`),
    // and an action the schema refuses is not a result.
    let mut soft = alice_on_1.clone();
    soft["context"] = json!({"soft": true});
    assert_eq!(found(&c.post(ACTIONS, &soft).await), ["delete"]);
    let mut ignored = soft.clone();
    ignored["action"] = json!({"name": 5});
    assert_eq!(found(&c.post(ACTIONS, &ignored).await), ["delete"]);

    // S4, S5, S6: properties of the input entities.
    let archived =
        json!({"type": "record", "id": "record-2", "properties": {"status": "archived"}});
    let admin = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    let r = c
        .post(
            SUBJECTS,
            &json!({"subject": {"type": "user"}, "action": act("write"), "resource": archived}),
        )
        .await;
    assert_eq!(as_set(found(&r)), set(&["bob"]));
    let r = c
        .post(
            RESOURCES,
            &json!({"subject": admin, "action": act("write"), "resource": {"type": "record"}}),
        )
        .await;
    assert_eq!(as_set(found(&r)), set(&["record-2"]));
    let r = c
        .post(ACTIONS, &json!({"subject": admin, "resource": archived}))
        .await;
    assert_eq!(found(&r), ["read", "write"]);
    let r = c.post(RESOURCES, &json!({"subject": {"type": "user", "id": "bob", "properties": {"age": 3}}, "action": act("write"), "resource": {"type": "record"}})).await;
    assert_eq!(refused(&r), "subject.properties");

    // c-4-6: nothing to find is `{"results": []}`, not an error: unknown
    // ids and types, on every endpoint, searched or given.
    let empty = json!({"results": []});
    let nobody = json!({"subject": user("nonexistent-user"), "resource": record("record-1")});
    assert_eq!(c.post(ACTIONS, &nobody).await.json(), empty);
    for ty in ["spaceship", "space ship", "App::Thing"] {
        let r = c.post(SUBJECTS, &json!({"subject": {"type": ty}, "action": act("read"), "resource": record("record-1")})).await;
        assert_eq!((r.status, r.json()), (200, empty.clone()), "{ty}");
        let r = c
            .post(
                RESOURCES,
                &json!({"subject": user("alice"), "action": act("read"), "resource": {"type": ty}}),
            )
            .await;
        assert_eq!((r.status, r.json()), (200, empty.clone()), "{ty}");
    }
    let r = c
        .post(
            ACTIONS,
            &json!({"subject": {"type": "spaceship", "id": "x"}, "resource": record("record-1")}),
        )
        .await;
    assert_eq!(r.json(), empty);
    let r = c.post(RESOURCES, &json!({"subject": {"type": "spaceship", "id": "x"}, "action": act("read"), "resource": {"type": "record"}})).await;
    assert_eq!(r.json(), empty);

    // c-4-7: missing parts and input ids are 400, naming the field.
    let cases = [
        (
            SUBJECTS,
            json!({"subject": {"type": "user"}, "resource": record("record-1")}),
            "action",
        ),
        (
            RESOURCES,
            json!({"action": act("read"), "resource": {"type": "record"}}),
            "subject",
        ),
        (ACTIONS, json!({"subject": user("alice")}), "resource"),
        (
            SUBJECTS,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
            "resource.id",
        ),
        (
            RESOURCES,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": {"type": "record"}}),
            "subject.id",
        ),
        (
            ACTIONS,
            json!({"subject": {"type": "user"}, "resource": record("record-1")}),
            "subject.id",
        ),
        (
            SUBJECTS,
            json!({"subject": {"id": "x"}, "action": act("read"), "resource": record("record-1")}),
            "subject.type",
        ),
        (
            RESOURCES,
            json!({"subject": user("alice"), "action": act("fly"), "resource": {"type": "record"}}),
            "action",
        ),
        (
            RESOURCES,
            json!({"subject": {"type": "a b", "id": "x"}, "action": act("read"), "resource": {"type": "record"}}),
            "subject.type",
        ),
        (
            SUBJECTS,
            json!({"subject": {"type": "user"}, "action": act("read"), "resource": record("record-1"), "context": {"mood": "x"}}),
            "context",
        ),
    ];
    for (path, body, field) in cases {
        assert_eq!(refused(&c.post(path, &body).await), field, "{path} {body}");
    }

    // Pagination (c-4-5): pages of one walk the whole answer once, with
    // a count, a `next_token` on every page ("" on the last), and follow-
    // ups that leave the limit out or repeat it.
    let whole = found(&c.post(SUBJECTS, &who_reads).await);
    for repeat_limit in [false, true] {
        let mut walked = Vec::new();
        let mut body = who_reads.clone();
        body["page"] = json!({"limit": 2});
        let mut pages = 0;
        loop {
            let r = c.post(SUBJECTS, &body).await;
            let json = r.json();
            let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["page", "results"], "page first");
            let page = &json["page"];
            let results = found(&r);
            assert_eq!(page["count"], results.len());
            walked.extend(results);
            pages += 1;
            let token = page["next_token"]
                .as_str()
                .expect("a next_token on every page");
            if token.is_empty() {
                break;
            }
            body["page"] = if repeat_limit {
                json!({"token": token, "limit": 2})
            } else {
                json!({"token": token})
            };
            assert!(pages < 10, "pagination never ends");
        }
        assert_eq!(walked, whole);
        assert_eq!(pages, 3);
    }
    // A page that holds everything still says it is the last.
    let mut all = who_reads.clone();
    all["page"] = json!({"limit": 50});
    let r = c.post(SUBJECTS, &all).await;
    assert_eq!(r.json()["page"], json!({"next_token": "", "count": 5}));
    // A token is refused when the request changed, when the limit
    // differs, or when it is not one.
    let mut first = who_reads.clone();
    first["page"] = json!({"limit": 1});
    let token = c.post(SUBJECTS, &first).await.json()["page"]["next_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!token.is_empty());
    let mut changed = writers.clone();
    changed["page"] = json!({"token": token});
    assert_eq!(refused(&c.post(SUBJECTS, &changed).await), "page.token");
    let mut elsewhere =
        json!({"subject": user("alice"), "action": act("read"), "resource": {"type": "record"}});
    elsewhere["page"] = json!({"token": token});
    assert_eq!(refused(&c.post(RESOURCES, &elsewhere).await), "page.token");
    let mut other_limit = who_reads.clone();
    other_limit["page"] = json!({"token": token, "limit": 3});
    assert_eq!(refused(&c.post(SUBJECTS, &other_limit).await), "page.limit");
    for bad in [
        json!({"token": "not-a-token"}),
        json!({"token": 5}),
        json!({"limit": -1}),
        json!({"limit": 1.5}),
        json!("p"),
    ] {
        let mut body = who_reads.clone();
        body["page"] = bad.clone();
        let field = refused(&c.post(SUBJECTS, &body).await);
        assert!(field.starts_with("page"), "{bad}: {field}");
    }
    // A page of 0 would never advance (its token would be where it
    // started): refused, and so is a token made to carry a limit of 0
    // (version, 16 bytes of binding, then the limit).
    let mut zero = who_reads.clone();
    zero["page"] = json!({"limit": 0});
    let r = c.post(SUBJECTS, &zero).await;
    assert_eq!(refused(&r), "page.limit");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 1"),
        "{}",
        r.json()
    );
    assert_eq!(&token[34..42], "00000001");
    let forged = format!("{}00000000{}", &token[..34], &token[42..]);
    let mut body = who_reads.clone();
    body["page"] = json!({"token": forged});
    assert_eq!(refused(&c.post(SUBJECTS, &body).await), "page.token");
    // The same request with its keys in another order keeps its token.
    let reordered = format!(
        r#"{{"page": {{"token": "{token}"}}, "resource": {{"id": "record-1", "type": "record"}}, "action": {{"name": "read"}}, "subject": {{"type": "user"}}}}"#
    );
    let r = c.post_raw(SUBJECTS, reordered.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// A search the forbids cannot narrow (the resource comes with
/// properties) decides every user; past the budget of decisions a page
/// holds (20,000) it ends early, short of its limit, with a token that
/// goes on after the last user decided, and the pages together find what
/// one search would.
#[tokio::test]
async fn an_unnarrowed_search_pages_by_its_budget_of_decisions() {
    const EXTRA: usize = 20_500;
    let dir = tempfile::tempdir().expect("a temp dir");
    let globex = json!({"type": "org", "id": "globex"});
    let users: Vec<Value> = (0..EXTRA)
        .map(|i| {
            json!({"uid": {"type": "user", "id": format!("g{i:05}")},
                   "attrs": {"org": globex}, "parents": [globex]})
        })
        .collect();
    std::fs::write(
        dir.path().join("more.json"),
        Value::Array(users).to_string(),
    )
    .expect("write the extra users");
    let mut sources = sources();
    sources.entities.push(dir.path().to_owned());
    let server = Process::start_with(&load_flags(&sources));
    let mut c = server.connect().await;

    let mut body = json!({"subject": {"type": "user"}, "action": act("read"),
                          "resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}},
                          "page": {"limit": 10}});
    let mut walked = Vec::new();
    let mut pages = Vec::new();
    loop {
        let r = c.post(SUBJECTS, &body).await;
        let results = found(&r);
        let token = r.json()["page"]["next_token"]
            .as_str()
            .expect("a next_token")
            .to_owned();
        pages.push((results.len(), !token.is_empty()));
        walked.extend(results);
        if token.is_empty() {
            break;
        }
        body["page"] = json!({"token": token});
        assert!(pages.len() < 5, "pagination never ends: {pages:?}");
    }
    // 20,507 users: the first page decides 20,000 of them and stops short
    // of 10 results (there are 5 in all); the second decides the rest.
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[0].0 < 10 && pages[0].1, "{pages:?}");
    assert_eq!(
        as_set(walked.clone()),
        set(&["alice", "bob", "carol", "dave", "erin"])
    );
    assert_eq!(walked.len(), 5, "a user found twice: {walked:?}");
}

// ------------------------------------------------------------- metadata

#[tokio::test]
async fn metadata_names_every_endpoint_under_the_pdp_identifier() {
    let server = start(&[]);
    let mut c = server.connect().await;
    let r = c.get(METADATA).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // The same for every request: cacheable.
    assert_eq!(r.header("cache-control"), None);
    let base = format!("http://{}", server.address);
    assert_eq!(
        r.json(),
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}{EVALUATION}"),
            "access_evaluations_endpoint": format!("{base}{EVALUATIONS}"),
            "search_subject_endpoint": format!("{base}{SUBJECTS}"),
            "search_resource_endpoint": format!("{base}{RESOURCES}"),
            "search_action_endpoint": format!("{base}{ACTIONS}"),
        })
    );
    let r = c.post(METADATA, &json!({})).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));

    // The advertised endpoints are the ones that answer.
    for path in [EVALUATION, EVALUATIONS] {
        assert!(plain(
            &c.post(path, &ask(user("alice"), act("read"), record("record-1")))
                .await
        ));
    }

    // --authzen-pdp-url sets the identifier (a trailing / dropped).
    let server = start(&["--authzen-pdp-url", "https://pdp.example.com/authz/"]);
    let mut c = server.connect().await;
    let json = c.get(METADATA).await.json();
    assert_eq!(
        json["policy_decision_point"],
        "https://pdp.example.com/authz"
    );
    assert_eq!(
        json["search_action_endpoint"],
        "https://pdp.example.com/authz/access/v1/search/action"
    );

    // A listener on every address advertises the host the client named,
    // and says not to keep that document for anyone else.
    let mut args = load_flags(&sources());
    args.extend(["--listen".to_owned(), "0.0.0.0:0".to_owned()]);
    let server = Process::start_with(&args);
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let mut c = Conn::tcp(&format!("127.0.0.1:{port}")).await;
    let r = c.get(METADATA).await;
    assert_eq!(r.json()["policy_decision_point"], "http://doorman");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let mut get = async |target: &str, host: &str| {
        c.write(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await;
        let r = c.read_response().await.expect("an answer");
        assert_eq!(r.status, 200, "{host}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{host}");
        r.json()
    };
    let json = get(METADATA, "pdp.example.com:8443").await;
    assert_eq!(json["policy_decision_point"], "http://pdp.example.com:8443");
    assert_eq!(
        json["access_evaluation_endpoint"],
        format!("http://pdp.example.com:8443{EVALUATION}")
    );
    let json = get(METADATA, "[::1]:8700").await;
    assert_eq!(json["policy_decision_point"], "http://[::1]:8700");
    // The target's authority comes first (HTTP/2 sends only that).
    let json = get(&format!("http://pdp.internal:9000{METADATA}"), "doorman").await;
    assert_eq!(json["policy_decision_point"], "http://pdp.internal:9000");
    // A Host that is not host[:port] is not reflected: the listen address
    // is advertised instead.
    for hostile in [
        "evil.example/phish?x=",
        "user@evil.example",
        "evil.example\"><script>x</script>",
        "evil.example:80/..",
        "evil.example#",
    ] {
        let json = get(METADATA, hostile).await;
        assert_eq!(
            json["policy_decision_point"],
            format!("http://0.0.0.0:{port}"),
            "{hostile}"
        );
        assert!(!json.to_string().contains("evil"), "{hostile}: {json}");
    }

    // A URL that is not one stops the start, naming the flag.
    let mut args = load_flags(&sources());
    args.extend([
        "--authzen-pdp-url".to_owned(),
        "pdp.example.com?x".to_owned(),
    ]);
    let (status, stderr) = Process::run_to_exit(&args);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--authzen-pdp-url"), "{stderr}");
}
