//! AuthZEN 1.0 bodies (evaluation, evaluations, the three searches)
//! through the server's endpoints, against the bundled model.
//!
//! The first byte chooses: its low three bits the endpoint (modulo 5:
//! evaluation, evaluations, search/subject, search/resource,
//! search/action), bit 3 `Doorman-Explain: true`; the rest is the body.
//!
//! Asserted, beyond not panicking:
//! - every answer is a 200 or a 400 with a JSON body; a 400 is doorman's
//!   error shape, and names its field (the message starting with it)
//!   unless it is about the body as a whole; so does every item error in
//!   `evaluations`;
//! - a decision is exactly `{"decision": bool}` unless explained, and an
//!   explanation is consistent with the policies; an evaluation without
//!   entity properties is answered as `/v1/is_authorized` answers the same
//!   question (decision, and the reasons when explained);
//! - `evaluations` answers every item (or stops where its semantic says);
//! - every search result is of the searched type and evaluates to
//!   `true`; a page holds no more than its limit; a `next_token` given
//!   is accepted by the follow-up request.

#![no_main]

use std::sync::OnceLock;

use doorman::fuzzing::authzen::{Endpoint, answer};
use doorman::server::State;
use doorman::{Snapshot, Sources};
use doorman_fuzz::{bundled_sources, check_answer};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let sources: Sources = bundled_sources(None);
        let snapshot = doorman::load(&sources).expect("the bundled model loads");
        State::with_snapshot(Default::default(), snapshot)
    })
}

const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::Evaluation,
    Endpoint::Evaluations,
    Endpoint::SearchSubject,
    Endpoint::SearchResource,
    Endpoint::SearchAction,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let endpoint = ENDPOINTS[usize::from(choice & 7) % 5];
    let explain = choice & 8 != 0;
    let (status, out) = answer(state(), endpoint, body, explain);
    let out: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {out:?}"));
    match status {
        400 => check_error(&out["error"], false),
        200 => {
            // A 200 means the body was a JSON object without repeated keys,
            // which serde_json reads the same way.
            let request: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
            match endpoint {
                Endpoint::Evaluation => {
                    check_decision(&out, explain);
                    same_as_v1(&request, &out);
                }
                Endpoint::Evaluations => check_evaluations(&request, &out, explain),
                _ => check_search(endpoint, &request, &out, explain),
            }
        }
        other => panic!("status {other}: {out}"),
    }
});

fn snapshot() -> std::sync::Arc<Snapshot> {
    state().snapshot().expect("loaded")
}

/// doorman's error object (`{"code", "message", "field"?}`); `item`: an
/// item's error within `evaluations`, which always names its field.
fn check_error(error: &Value, item: bool) {
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {error}"));
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {error}"));
    assert!(
        matches!(
            code,
            "invalid_json"
                | "invalid_field"
                | "invalid_request"
                | "invalid_entities"
                | "batch_too_large"
        ),
        "refused with {code}: {error}"
    );
    match error.get("field") {
        Some(Value::String(field)) => {
            assert!(!field.is_empty(), "an empty field: {error}");
            assert!(
                message.starts_with(&format!("{field}: ")),
                "the message does not start with its field: {error}"
            );
        }
        Some(other) => panic!("field is {other}: {error}"),
        None => {
            assert!(!item, "an item's error names no field: {error}");
            assert!(
                code == "invalid_json"
                    || (code == "invalid_field" && message.starts_with("the body ")),
                "a {code} refusal names no field: {error}"
            );
        }
    }
}

/// `{"decision": bool}`, with an explanation only when one was asked for.
fn check_decision(out: &Value, explain: bool) {
    let object = out
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {out}"));
    let decision = object["decision"]
        .as_bool()
        .unwrap_or_else(|| panic!("{out}"));
    match object.get("context") {
        None => assert!(!explain, "no explanation: {out}"),
        Some(context) if explain => {
            let why = &context["reason_admin"];
            let reasons: Vec<String> = serde_json::from_value(why["policies"].clone())
                .unwrap_or_else(|e| panic!("{e}: {out}"));
            let errors: Vec<doorman::PolicyError> = why["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{out}"))
                .iter()
                .map(|e| doorman::PolicyError {
                    policy: e["policy"].as_str().unwrap_or_default().to_owned(),
                    message: e["message"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            let snapshot = snapshot();
            assert_eq!(why["revision"], snapshot.revision(), "{out}");
            let answer = doorman::Answer {
                decision: if decision {
                    doorman::Decision::Allow
                } else {
                    doorman::Decision::Deny
                },
                reasons,
                errors,
            };
            check_answer(&snapshot, &answer);
        }
        Some(_) => panic!("an explanation nobody asked for: {out}"),
    }
    assert!(object.len() <= 2, "{out}");
}

/// An evaluation without entity properties is the same question as a
/// `/v1/is_authorized` body (`action.properties` joining the context), and
/// the one decision path answers both alike.
fn same_as_v1(request: &Value, out: &Value) {
    let part = |name: &str| request.get(name).filter(|v| !v.is_null());
    let has_properties = |v: Option<&Value>| {
        v.and_then(|v| v.get("properties"))
            .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()))
    };
    if has_properties(part("subject")) || has_properties(part("resource")) {
        return;
    }
    let reference =
        |v: Option<&Value>| json!({"type": v.map(|v| &v["type"]), "id": v.map(|v| &v["id"])});
    let mut context = part("context").cloned().unwrap_or_else(|| json!({}));
    if let Some(Value::Object(props)) = part("action").and_then(|a| a.get("properties")) {
        for (k, v) in props {
            context[k] = v.clone();
        }
    }
    let body = json!({
        "principal": reference(part("subject")),
        "action": {"type": "Action", "id": part("action").map(|a| &a["name"])},
        "resource": reference(part("resource")),
        "context": context,
    });
    let v1 = doorman::server::answer_body(&snapshot(), &serde_json::to_vec(&body).expect("JSON"))
        .unwrap_or_else(|e| panic!("AuthZEN answered {out}, /v1 refused {body}: {e}"));
    assert_eq!(
        out["decision"].as_bool(),
        Some(v1.decision == doorman::Decision::Allow),
        "AuthZEN {out}, /v1 {v1:?} for {body}"
    );
    if let Some(policies) = out.get("context").map(|c| &c["reason_admin"]["policies"]) {
        assert_eq!(policies, &json!(v1.reasons), "AuthZEN {out}, /v1 {v1:?}");
    }
}

fn check_evaluations(request: &Value, out: &Value, explain: bool) {
    let items = match request.get("evaluations") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        // No evaluations: answered as one evaluation.
        _ => return check_decision(out, explain),
    };
    let answers = out["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("no evaluations: {out}"));
    let semantic = request["options"]["evaluations_semantic"]
        .as_str()
        .unwrap_or("execute_all");
    assert!(answers.len() <= items.len(), "{out}");
    assert!(!answers.is_empty(), "{out}");
    for (i, a) in answers.iter().enumerate() {
        let decision = a["decision"].as_bool().unwrap_or_else(|| panic!("{out}"));
        match a.get("context").and_then(|c| c.get("error")) {
            Some(error) => {
                assert!(!decision, "an error with an allow: {out}");
                assert_eq!(error["status"], 400, "{out}");
                check_error(error, true);
            }
            None => check_decision(a, explain),
        }
        let last = i + 1 == answers.len();
        match semantic {
            "deny_on_first_deny" if !last => assert!(decision, "went on after a deny: {out}"),
            "permit_on_first_permit" if !last => {
                assert!(!decision, "went on after a permit: {out}")
            }
            _ => {}
        }
    }
    if answers.len() < items.len() {
        let stopped = answers[answers.len() - 1]["decision"].as_bool();
        match semantic {
            "deny_on_first_deny" => assert_eq!(stopped, Some(false), "{out}"),
            "permit_on_first_permit" => assert_eq!(stopped, Some(true), "{out}"),
            _ => panic!(
                "{semantic} stopped after {} of {}: {out}",
                answers.len(),
                items.len()
            ),
        }
    }
}

fn check_search(endpoint: Endpoint, request: &Value, out: &Value, explain: bool) {
    let results = out["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {out}"));
    let limit = request["page"]["limit"].as_u64().unwrap_or(1000).min(1000);
    assert!(results.len() as u64 <= limit, "more than the limit: {out}");
    if let Some(page) = out.get("page") {
        assert_eq!(page["count"].as_u64(), Some(results.len() as u64), "{out}");
        let token = page["next_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{out}"));
        if !token.is_empty() {
            let mut next = request.clone();
            let page = next
                .as_object_mut()
                .expect("an object")
                .entry("page")
                .or_insert_with(|| Value::Object(Map::new()));
            if !page.is_object() {
                *page = Value::Object(Map::new());
            }
            page["token"] = Value::String(token.to_owned());
            let body = serde_json::to_vec(&next).expect("JSON");
            let (status, again) = answer(state(), endpoint, &body, explain);
            assert_eq!(
                status,
                200,
                "the follow-up was refused: {}",
                String::from_utf8_lossy(&again)
            );
        }
    }
    for result in results {
        let mut question = Map::new();
        for part in ["subject", "action", "resource", "context"] {
            if let Some(v) = request.get(part) {
                question.insert(part.to_owned(), v.clone());
            }
        }
        match endpoint {
            Endpoint::SearchSubject | Endpoint::SearchResource => {
                let part = if endpoint == Endpoint::SearchSubject {
                    "subject"
                } else {
                    "resource"
                };
                assert_eq!(result["type"], request[part]["type"], "another type: {out}");
                let id = result["id"].as_str().unwrap_or_else(|| panic!("{out}"));
                question.insert(part.to_owned(), json!({"type": result["type"], "id": id}));
            }
            _ => {
                let name = result["name"].as_str().unwrap_or_else(|| panic!("{out}"));
                question.insert("action".to_owned(), json!({"name": name}));
            }
        }
        let body = serde_json::to_vec(&question).expect("JSON");
        let (status, decided) = answer(state(), Endpoint::Evaluation, &body, false);
        assert_eq!(
            (status, decided.as_ref()),
            (200, &b"{\"decision\":true}\n"[..]),
            "search result {result} does not evaluate to true: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
