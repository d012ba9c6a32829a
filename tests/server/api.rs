//! The endpoints over HTTP against the real binary and the tests' own model
//! (tests/data/server): decisions, both reference forms, request-scoped
//! entities, batches, the read-only endpoints and every kind of bad input.

use serde_json::{Value, json};

use crate::support::*;

fn member(id: &str, team: &str, level: i64, suspended: bool) -> Value {
    json!({
        "uid": {"type": "Member", "id": id},
        "attrs": {"team": {"type": "Team", "id": team}, "level": level, "suspended": suspended},
        "parents": [{"type": "Team", "id": team}],
    })
}

#[tokio::test]
async fn decisions_carry_their_reasons_errors_and_revision() {
    let server = Process::start(&[]);
    let revision = model_snapshot().revision().to_owned();
    let mut c = server.connect().await;
    let cases = [
        (
            ("Member", "ann"),
            "ViewInbox",
            ("Inbox", "support-desk"),
            allow(&["inbox.view-team"]),
        ),
        (
            ("Member", "ann"),
            "ViewInbox",
            ("Inbox", "lobby"),
            allow(&["inbox.view-public"]),
        ),
        (
            ("Member", "ann"),
            "ViewInbox",
            ("Inbox", "sales-desk"),
            deny(&[]),
        ),
        (
            ("Member", "sue"),
            "ViewInbox",
            ("Inbox", "support-desk"),
            deny(&["guard.suspended"]),
        ),
        (
            ("Member", "bob"),
            "SendMessage",
            ("Inbox", "support-desk"),
            deny(&[]),
        ),
        (
            ("Member", "bob"),
            "SendMessage",
            ("Inbox", "sales-desk"),
            allow(&["inbox.send-team"]),
        ),
    ];
    for (principal, action, resource, expected) in cases {
        let mut body = query(principal, action, resource);
        if action == "SendMessage" {
            body["context"] = json!({"urgent": false});
        }
        let r = c.post("/v1/is_authorized", &body).await;
        assert_eq!(r.status, 200, "{body}");
        let answer = r.json();
        assert_eq!(verdict(&answer), expected, "{body}");
        assert_eq!(answer["errors"], json!([]));
        assert_eq!(answer["revision"], revision.as_str());
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    // A policy that fails to evaluate is reported, and does not apply.
    let r = c
        .post(
            "/v1/is_authorized",
            &query(("Member", "bob"), "Audit", ("Inbox", "lobby")),
        )
        .await;
    let answer = r.json();
    assert_eq!(verdict(&answer), deny(&[]));
    assert_eq!(answer["errors"][0]["policy"], "audit.overflow");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("overflow")),
        "{answer}"
    );
    let r = c
        .post(
            "/v1/is_authorized",
            &query(("Member", "ann"), "Audit", ("Inbox", "lobby")),
        )
        .await;
    assert_eq!(verdict(&r.json()), allow(&["audit.overflow"]));
}

#[tokio::test]
async fn entity_references_may_be_written_in_cedar_string_form() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let forms = [
        json!({"principal": "Member::\"ann\"", "action": "Action::\"ViewInbox\"", "resource": "Inbox::\"support-desk\""}),
        json!({"principal": "Member::\"ann\"", "action": "ViewInbox", "resource": {"type": "Inbox", "id": "support-desk"}}),
        json!({"principal": {"__entity": {"type": "Member", "id": "ann"}}, "action": {"type": "Action", "id": "ViewInbox"}, "resource": "Inbox::\"support-desk\"", "context": {}, "entities": []}),
    ];
    for body in forms {
        let r = c.post("/v1/is_authorized", &body).await;
        assert_eq!(
            r.status,
            200,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]), "{body}");
    }
    let r = c
        .post(
            "/v1/is_authorized",
            &json!({"principal": "Member::\"sue\"", "action": "ViewInbox", "resource": "Inbox::\"support-desk\""}),
        )
        .await;
    assert_eq!(verdict(&r.json()), deny(&["guard.suspended"]));
}

#[tokio::test]
async fn request_entities_add_a_member_for_that_request_only() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let mut body = query(("Member", "newbie"), "ViewInbox", ("Inbox", "sales-desk"));
    // Unknown to the store: no attributes, so nothing permits.
    let r = c.post("/v1/is_authorized", &body).await;
    assert_eq!(r.json()["decision"], "deny");

    // Sent with the request, parented to a stored team.
    body["entities"] = json!([member("newbie", "sales", 1, false)]);
    let r = c.post("/v1/is_authorized", &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // Nothing of it stays behind.
    body.as_object_mut().unwrap().remove("entities");
    let r = c.post("/v1/is_authorized", &body).await;
    assert_eq!(r.json()["decision"], "deny");
}

#[tokio::test]
async fn request_entities_override_a_stored_member() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let base = query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"));
    let r = c.post("/v1/is_authorized", &base).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // Same UID, suspended: the request's version wins.
    let mut suspended = base.clone();
    suspended["entities"] = json!([member("ann", "support", 1, true)]);
    let r = c.post("/v1/is_authorized", &suspended).await;
    assert_eq!(verdict(&r.json()), deny(&["guard.suspended"]));

    // Moved to another team: parents and attributes both come from the request.
    let mut moved = query(("Member", "ann"), "ViewInbox", ("Inbox", "sales-desk"));
    let r = c.post("/v1/is_authorized", &moved).await;
    assert_eq!(verdict(&r.json()), deny(&[]));
    moved["entities"] = json!([member("ann", "sales", 1, false)]);
    let r = c.post("/v1/is_authorized", &moved).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // And the stored Ann is untouched.
    let r = c.post("/v1/is_authorized", &base).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));
}

#[tokio::test]
async fn context_is_parsed_against_the_schema() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let send = |who: &str, inbox: &str, context: Value| {
        let mut q = query(("Member", who), "SendMessage", ("Inbox", inbox));
        q["context"] = context;
        q
    };
    let r = c
        .post(
            "/v1/is_authorized",
            &send("ann", "support-desk", json!({"urgent": true})),
        )
        .await;
    assert_eq!(verdict(&r.json()), deny(&["guard.urgent-needs-level-2"]));
    let r = c
        .post(
            "/v1/is_authorized",
            &send("bob", "sales-desk", json!({"urgent": true})),
        )
        .await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.send-team"]));
    for context in [json!({"urgent": "yes"}), json!({})] {
        let r = c
            .post(
                "/v1/is_authorized",
                &send("bob", "sales-desk", context.clone()),
            )
            .await;
        assert_eq!(r.status, 400, "{context}");
        assert_eq!(
            r.error(),
            ("invalid_request".into(), Some("context".into())),
            "{context}"
        );
    }
}

#[tokio::test]
async fn a_batch_answers_every_item_in_order_from_one_snapshot() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let mut own = query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"));
    own["entities"] = json!([member("ann", "support", 1, true)]);
    let mut bad_own = query(("Member", "ann"), "ViewInbox", ("Inbox", "lobby"));
    bad_own["entities"] =
        json!([{"uid": {"type": "Member", "id": "x"}, "attrs": {"level": "high"}}]);
    let body = json!({
        "requests": [
            query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk")),
            {"principal": "Member::ann", "action": "ViewInbox", "resource": "Inbox::\"lobby\""},
            query(("Member", "ann"), "ViewInbox", ("Team", "sales")),
            // Shared entities reach every item...
            query(("Member", "newbie"), "ViewInbox", ("Inbox", "sales-desk")),
            // ...and an item's own entities win over them.
            own,
            "not a request",
            bad_own,
            query(("Member", "sue"), "ViewInbox", ("Inbox", "lobby")),
        ],
        "entities": [member("newbie", "sales", 1, false), member("ann", "support", 1, false)],
    });
    let r = c.post("/v1/batch_is_authorized", &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let json = r.json();
    assert_eq!(json["revision"], model_snapshot().revision());
    let responses = json["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 8);
    assert_eq!(verdict(&responses[0]), allow(&["inbox.view-team"]));
    let item_error = |i: usize| {
        let e = &responses[i]["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        (
            e["code"].as_str().unwrap().to_owned(),
            e["field"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        item_error(1),
        ("invalid_field".into(), "requests[1].principal".into())
    );
    assert_eq!(
        item_error(2),
        ("invalid_request".into(), "requests[2].resource".into())
    );
    assert_eq!(verdict(&responses[3]), allow(&["inbox.view-team"]));
    assert_eq!(verdict(&responses[4]), deny(&["guard.suspended"]));
    assert_eq!(
        item_error(5),
        ("invalid_field".into(), "requests[5]".into())
    );
    assert_eq!(
        item_error(6),
        ("invalid_entities".into(), "requests[6].entities[0]".into())
    );
    assert_eq!(verdict(&responses[7]), deny(&["guard.suspended"]));
    for answer in responses {
        assert!(
            answer.get("revision").is_none(),
            "the revision is given once"
        );
    }

    // Broken shared entities spoil every item: the batch is refused whole.
    let r = c
        .post(
            "/v1/batch_is_authorized",
            &json!({"requests": [query(("Member", "ann"), "ViewInbox", ("Inbox", "lobby"))],
                    "entities": [member("a", "sales", 1, false), {"uid": "nonsense"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error(),
        ("invalid_entities".into(), Some("entities[1]".into()))
    );

    let r = c
        .post("/v1/batch_is_authorized", &json!({"requests": []}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["responses"], json!([]));
}

/// A request that must be refused, and how.
struct Bad {
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

impl Bad {
    fn raw(path: &'static str, body: &[u8], status: u16, code: &'static str) -> Bad {
        Bad {
            path,
            body: body.to_vec(),
            status,
            code,
            field: None,
        }
    }
}

#[tokio::test]
async fn bad_input_gets_a_400_family_answer_and_harms_nothing() {
    let server = Process::start(&["--max-body", "4096", "--max-batch", "3"]);
    let ok = query(("Member", "ann"), "ViewInbox", ("Inbox", "support-desk"));
    let with = |key: &str, value: Value| {
        let mut q = ok.clone();
        q[key] = value;
        q
    };
    let without = |key: &str| {
        let mut q = ok.clone();
        q.as_object_mut().unwrap().remove(key);
        q
    };
    let batch_of = |n: usize| json!({"requests": vec![ok.clone(); n]});
    let too_big = format!("{{\"principal\": \"{}\"}}", "x".repeat(5000));
    let invalid = |body: Value, code: &'static str, field: &'static str| Bad {
        path: "/v1/is_authorized",
        body: body.to_string().into_bytes(),
        status: 400,
        code,
        field: Some(field),
    };
    let wrong = "invalid_field";
    let cases = vec![
        Bad::raw(
            "/v1/is_authorized",
            b"{\"principal\": ",
            400,
            "invalid_json",
        ),
        Bad::raw("/v1/is_authorized", b"", 400, "invalid_json"),
        Bad::raw("/v1/is_authorized", b"\xff\xfe", 400, "invalid_json"),
        Bad::raw("/v1/is_authorized", b"[1, 2]", 400, wrong),
        // An array holding a well-formed question, field by field, is
        // still not an object.
        Bad::raw(
            "/v1/is_authorized",
            br#"["Member::\"ann\"", "ViewInbox", "Inbox::\"support-desk\""]"#,
            400,
            wrong,
        ),
        Bad::raw("/v1/batch_is_authorized", b"[[]]", 400, wrong),
        invalid(with("principal", json!(5)), wrong, "principal"),
        invalid(with("action", json!(["ViewInbox"])), wrong, "action"),
        invalid(without("resource"), wrong, "resource"),
        invalid(with("principal", json!("Member::ann")), wrong, "principal"),
        invalid(
            with("principal", json!({"type": "Member"})),
            wrong,
            "principal.id",
        ),
        invalid(
            with("principal", json!({"type": "Member", "id": 7})),
            wrong,
            "principal.id",
        ),
        invalid(
            with("resource", json!({"type": "no such!", "id": "x"})),
            wrong,
            "resource.type",
        ),
        invalid(with("context", json!("urgent")), wrong, "context"),
        invalid(with("contxt", json!({})), wrong, "contxt"),
        invalid(with("entities", json!({"uid": {}})), wrong, "entities"),
        invalid(
            with("principal", json!("Robot::\"x\"")),
            "invalid_request",
            "principal",
        ),
        invalid(with("action", json!("Dance")), "invalid_request", "action"),
        invalid(
            with("resource", json!("Member::\"bob\"")),
            "invalid_request",
            "resource",
        ),
        invalid(
            with("context", json!({"urgent": true})),
            "invalid_request",
            "context",
        ),
        invalid(
            with(
                "entities",
                json!([{"uid": {"type": "Member", "id": "x"}, "attrs": {"level": "high"}}]),
            ),
            "invalid_entities",
            "entities[0]",
        ),
        invalid(
            with(
                "entities",
                json!([
                    member("x", "sales", 1, false),
                    member("x", "sales", 2, false)
                ]),
            ),
            "invalid_entities",
            "entities[1]",
        ),
        Bad {
            path: "/v1/batch_is_authorized",
            ..invalid(batch_of(4), "batch_too_large", "requests")
        },
        Bad {
            path: "/v1/batch_is_authorized",
            ..invalid(json!({"entities": []}), wrong, "requests")
        },
        Bad {
            path: "/v1/batch_is_authorized",
            ..invalid(json!({"requests": {}}), wrong, "requests")
        },
        Bad::raw("/v1/batch_is_authorized", b"nonsense", 400, "invalid_json"),
        Bad::raw(
            "/v1/is_authorized",
            too_big.as_bytes(),
            413,
            "body_too_large",
        ),
        Bad::raw(
            "/v1/batch_is_authorized",
            too_big.as_bytes(),
            413,
            "body_too_large",
        ),
        Bad::raw(
            "/v1/is_authorised",
            ok.to_string().as_bytes(),
            404,
            "not_found",
        ),
        Bad::raw("/", b"", 404, "not_found"),
    ];

    // All on one keep-alive connection: a refusal does not end it.
    let mut c = server.connect().await;
    for Bad {
        path,
        body,
        status,
        code,
        field,
    } in &cases
    {
        let r = c.post_raw(path, body).await;
        let shown = String::from_utf8_lossy(body);
        assert_eq!(
            r.status,
            *status,
            "{path} {shown}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.error(),
            (code.to_string(), field.map(str::to_owned)),
            "{path} {shown}"
        );
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        if let Some(field) = field {
            assert!(
                message.starts_with(field),
                "message names the field: {message}"
            );
        }
    }
    let r = c.post("/v1/is_authorized", &ok).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // A batch at the limit is fine.
    let r = c.post("/v1/batch_is_authorized", &batch_of(3)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["responses"].as_array().map(Vec::len), Some(3));

    // Wrong methods: 405 with Allow.
    for (method, path, allowed) in [
        ("GET", "/v1/is_authorized", "POST"),
        ("PUT", "/v1/batch_is_authorized", "POST"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/v1/policies", "GET"),
    ] {
        let r = c.request(method, path, Some(b"{}")).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allowed), "{method} {path}");
        assert_eq!(r.error().0, "method_not_allowed");
    }

    // A declared length over the limit is refused before the body is sent.
    let mut c = server.connect().await;
    c.write(b"POST /v1/is_authorized HTTP/1.1\r\nHost: d\r\nContent-Length: 999999999\r\n\r\n")
        .await;
    let r = c
        .read_response()
        .await
        .expect("a 413, not a dropped connection");
    assert_eq!(r.status, 413);
    assert_eq!(r.error().0, "body_too_large");

    // So is a chunked body that grows past it.
    let mut c = server.connect().await;
    let chunk = "y".repeat(3000);
    let chunked = format!(
        "POST /v1/is_authorized HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    c.write(chunked.as_bytes()).await;
    let r = c
        .read_response()
        .await
        .expect("a 413, not a dropped connection");
    assert_eq!(r.status, 413);

    // The rest of a moderately oversized body is read and dropped, so the
    // client sees its 413 and may even go on using the connection.
    let mut c = server.connect().await;
    let r = c.post_raw("/v1/is_authorized", &vec![b' '; 50_000]).await;
    assert_eq!(r.status, 413);
    let r = c.post("/v1/is_authorized", &ok).await;
    assert_eq!(verdict(&r.json()), allow(&["inbox.view-team"]));

    // And after all that, fresh connections get right answers.
    let mut c = server.connect().await;
    let r = c
        .post(
            "/v1/is_authorized",
            &query(("Member", "sue"), "ViewInbox", ("Inbox", "lobby")),
        )
        .await;
    assert_eq!(verdict(&r.json()), deny(&["guard.suspended"]));
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test]
async fn read_only_endpoints_describe_the_snapshot() {
    let server = Process::start(&[]);
    let snapshot = model_snapshot();
    let mut c = server.connect().await;

    let r = c.get("/healthz").await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = c.get("/readyz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["revision"], snapshot.revision());

    let status = c.get("/v1/status").await.json();
    assert_eq!(status["ready"], true);
    assert_eq!(status["revision"], snapshot.revision());
    assert_eq!(status["policies"], 6);
    assert_eq!(status["templates"], 0);
    assert_eq!(status["entities"], 8);
    assert_eq!(status["validation"], "strict");
    assert_eq!(status["limits"]["max_batch"], 100);
    assert_eq!(status["limits"]["max_body"], 1 << 20);
    let loaded_at = status["loaded_at"].as_str().expect("loaded_at");
    assert!(
        loaded_at.ends_with('Z') && loaded_at.len() == 24,
        "{loaded_at}"
    );

    let r = c.get("/v1/policies").await;
    assert_eq!(r.status, 200);
    let json = r.json();
    assert_eq!(json["revision"], snapshot.revision());
    let policies = json["policies"].as_array().expect("policies");
    let ids: Vec<&str> = policies.iter().filter_map(|p| p["id"].as_str()).collect();
    let expected: Vec<&str> = snapshot.policies().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, expected);
    let audit = policies
        .iter()
        .find(|p| p["id"] == "audit.overflow")
        .expect("audit.overflow listed");
    assert_eq!(audit["effect"], "permit");
    assert!(audit["file"].as_str().unwrap().ends_with("guards.cedar"));
    assert_eq!(audit["line"], 10);
    assert_eq!(audit["annotations"]["note"], "deliberately fragile");
    let suspended = policies
        .iter()
        .find(|p| p["id"] == "guard.suspended")
        .unwrap();
    assert_eq!(
        (suspended["effect"].as_str(), suspended["line"].as_u64()),
        (Some("forbid"), Some(1))
    );

    // The start line names the address, the revision and the counts.
    let log = server.log();
    let start = log
        .lines()
        .find(|l| l.contains(" serving "))
        .expect("start line");
    assert_eq!(
        field(start, "address").as_deref(),
        Some(server.address.as_str())
    );
    assert_eq!(
        field(start, "revision").as_deref(),
        Some(snapshot.revision())
    );
    assert_eq!(field(start, "policies").as_deref(), Some("6"));
    assert_eq!(field(start, "entities").as_deref(), Some("8"));
}

#[tokio::test]
async fn a_huge_declared_length_under_a_huge_limit_allocates_nothing_up_front() {
    // The limit allows it, but the bytes never come: the server must not
    // reserve 90 GB on the client's word (that aborted the process once).
    let server = Process::start(&["--max-body", "100000000000", "--read-timeout", "1s"]);
    let mut conn = server.connect().await;
    conn.write(b"POST /v1/is_authorized HTTP/1.1\r\nhost: x\r\ncontent-length: 90000000000\r\n\r\n{\"principal\"")
        .await;
    let r = conn
        .read_response()
        .await
        .expect("an answer, not a dead server");
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    let mut fresh = server.connect().await;
    assert_eq!(fresh.get("/healthz").await.status, 200);
}

/// An agent moved to another company by a request entity: its stored calls
/// carry the old company among their stored (closed) ancestors, so
/// answering from those would let the old company in. The view walks the
/// merged hierarchy instead, so the stored call moves with its agent, as it
/// would in Cedar over the merged data (until 2026-12 this was refused).
#[tokio::test]
async fn a_request_entity_that_moves_a_stored_parent_moves_what_is_below_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundled = doorman::Sources {
        policies: root.join("policies"),
        schema: Some(root.join("schema")),
        entities: vec![root.join("fixtures/entities")],
        databases: vec![],
        validation: doorman::ValidationMode::Strict,
        routes: None,
    };
    let server = Process::start_with(&load_flags(&bundled));
    let mut conn = server.connect().await;
    let moved_agent = json!({"uid": {"type": "Agent", "id": "acme-ivy"},
        "attrs": {"company": {"type": "Company", "id": "globex"}},
        "parents": [{"type": "Company", "id": "globex"}]});
    let call = json!({"uid": {"type": "Call", "id": "acme-ivy-call-1"},
        "attrs": {"company": {"type": "Company", "id": "acme"}, "has_recording": true},
        "parents": [{"type": "Agent", "id": "acme-ivy"}]});
    let ask = |entities: Value| {
        json!({"principal": "Member::\"acme-ada\"", "action": "ViewCall",
               "resource": "Call::\"acme-ivy-call-1\"", "entities": entities})
    };

    let r = conn.post("/v1/is_authorized", &ask(json!([]))).await;
    assert_eq!(
        verdict(&r.json()).0,
        "allow",
        "as stored, acme's admin sees acme's call"
    );

    let r = conn
        .post("/v1/is_authorized", &ask(json!([moved_agent.clone()])))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(verdict(&r.json()), deny(&["guardrail.tenant-isolation"]));

    let r = conn
        .post("/v1/is_authorized", &ask(json!([moved_agent, call])))
        .await;
    assert_eq!(verdict(&r.json()), deny(&["guardrail.tenant-isolation"]));
}

/// A key given twice anywhere in a body is refused, naming the key and the
/// object that repeats it, on the typed reader's path and the walk's alike:
/// serde_json would keep the last, a gateway's JSON library the first, and
/// the two would have asked different questions.
#[tokio::test]
async fn a_key_given_twice_anywhere_is_refused_by_name() {
    let server = Process::start(&[]);
    let mut c = server.connect().await;
    let ok = r#""action": "ViewInbox", "resource": {"type": "Inbox", "id": "support-desk"}"#;
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "/v1/is_authorized",
            format!(r#"{{"principal": "Member::\"sue\"", "principal": "Member::\"ann\"", {ok}}}"#),
            None,
        ),
        (
            "/v1/is_authorized",
            format!(
                r#"{{"principal": {{"type": "Member", "id": "ann", "id": "sue"}}, {ok}}}"#
            ),
            Some("principal"),
        ),
        (
            "/v1/is_authorized",
            format!(
                r#"{{"principal": "Member::\"ann\"", {ok}, "context": {{"n": {{"a": 1, "a": 2}}}}}}"#
            ),
            Some("context.n"),
        ),
        (
            "/v1/is_authorized",
            format!(
                r#"{{"principal": "Member::\"zed\"", {ok}, "entities": [{{"uid": {{"type": "Member", "id": "zed"}}, "attrs": {{"level": 1, "level": 9}}, "parents": []}}]}}"#
            ),
            Some("entities[0].attrs"),
        ),
        (
            "/v1/batch_is_authorized",
            format!(
                r#"{{"requests": [{{"principal": "Member::\"ann\"", {ok}}}, {{"principal": "Member::\"ann\"", {ok}, "context": {{}}, "context": {{}}}}]}}"#
            ),
            Some("requests[1]"),
        ),
        (
            "/access/v1/evaluation",
            r#"{"subject": {"type": "Member", "id": "ann", "properties": {"x": {"k": 1, "k": 2}}}, "action": {"name": "ViewInbox"}, "resource": {"type": "Inbox", "id": "support-desk"}}"#.to_owned(),
            Some("subject.properties.x"),
        ),
    ];
    for (path, body, field) in cases {
        let r = c.post_raw(path, body.as_bytes()).await;
        assert_eq!(
            r.status,
            400,
            "{path} {body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let (code, got) = r.error();
        assert_eq!(code, "invalid_json", "{body}");
        assert_eq!(got.as_deref(), field, "{body}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("repeats the key"), "{message}");
    }
    // The same bodies without the repeat are answered.
    let r = c
        .post_raw(
            "/v1/is_authorized",
            format!(r#"{{"principal": {{"type": "Member", "id": "ann"}}, {ok}, "context": {{}}}}"#)
                .as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// An error quotes a bounded part of what the request sent: a megabyte of
/// entity id or type name does not come back whole.
#[tokio::test]
async fn errors_quote_a_bounded_part_of_the_request() {
    let server = Process::start(&["--max-body", "4000000"]);
    let mut c = server.connect().await;
    let huge = "x".repeat(1 << 20);
    // An unknown type: refused, with the type quoted.
    let body = json!({
        "principal": {"type": huge, "id": "ann"},
        "action": "ViewInbox",
        "resource": {"type": "Inbox", "id": "support-desk"},
    });
    let r = c.post("/v1/is_authorized", &body).await;
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 4096, "{} bytes", r.body.len());
    assert!(
        String::from_utf8_lossy(&r.body).contains("more bytes"),
        "says what it left out"
    );
    // A request entity with a huge id that a policy reaches: whatever Cedar
    // says about it is bounded too, and the answer stays small.
    let body = json!({
        "principal": {"type": "Member", "id": huge},
        "action": "ViewInbox",
        "resource": {"type": "Inbox", "id": "support-desk"},
        "context": {},
    });
    let r = c.post("/v1/is_authorized", &body).await;
    assert!(r.body.len() < 8192, "{} bytes", r.body.len());
    for e in r.json()["errors"].as_array().into_iter().flatten() {
        assert!(e["message"].as_str().unwrap().len() < 2048, "{e}");
    }
}
