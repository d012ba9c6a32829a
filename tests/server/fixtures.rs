//! Every question in the bundled fixtures (fixtures/*.test.yaml), asked of
//! the library and of the server over HTTP: the answers (decision, reasons,
//! errors) must be the same, one by one and in batches, through doorman's
//! own API and through AuthZEN (`/access/v1/evaluation` and
//! `/access/v1/evaluations`, with explanations asked for so that reasons
//! and errors are compared too).
//!
//! Only the questions are read from the suites (principal, action, resource,
//! context; matrix rows expanded to each principal), not the expectations:
//! whether the model is right is `doorman test`'s business; this test is
//! about the server adding nothing and losing nothing on the way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use doorman::decide::{parse_action, parse_uid};
use doorman::{Query, Sources, ValidationMode};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) struct Question {
    pub(crate) label: String,
    pub(crate) principal: String,
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) context: Value,
}

#[tokio::test]
async fn the_server_answers_every_bundled_fixture_as_the_library_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suites = suite_files(&root.join("fixtures"));
    assert!(
        !suites.is_empty(),
        "no fixtures/*.test.yaml: nothing to compare"
    );
    // Suites name their own entity files; group them by that list so each
    // world gets one server.
    let mut worlds: BTreeMap<Vec<PathBuf>, Vec<Question>> = BTreeMap::new();
    for suite in &suites {
        let text = std::fs::read_to_string(suite).unwrap();
        let doc: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", suite.display()));
        let dir = suite.parent().unwrap();
        let entities = match doc["entities"].as_array() {
            Some(files) => files
                .iter()
                .map(|f| dir.join(f.as_str().expect("entity file names are strings")))
                .collect(),
            None => vec![root.join("fixtures/entities")],
        };
        worlds
            .entry(entities)
            .or_default()
            .extend(questions(suite, &doc));
    }

    let mut asked = 0;
    for (entities, questions) in worlds {
        let sources = Sources {
            policies: root.join("policies"),
            schema: Some(root.join("schema")),
            entities,
            databases: vec![],
            validation: ValidationMode::Strict,
            routes: None,
        };
        let snapshot = doorman::load(&sources).expect("the bundled model loads");
        let mut args = load_flags(&sources);
        args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
        let server = Process::start_with(&args);
        let mut c = server.connect().await;

        let mut expected = Vec::new();
        for q in &questions {
            let answer = Query::parse(&q.principal, &q.action, &q.resource, q.context.clone())
                .and_then(|query| snapshot.decide(&query));
            let library = match answer {
                Ok(a) => serde_json::to_value(&a).unwrap(),
                Err(e) => json!({"error": e.field}),
            };
            let body = json!({
                "principal": q.principal, "action": q.action,
                "resource": q.resource, "context": q.context,
            });
            let r = c.post("/v1/is_authorized", &body).await;
            let mut served = r.json();
            if r.status == 200 {
                assert_eq!(served["revision"], snapshot.revision(), "{}", q.label);
                served.as_object_mut().unwrap().remove("revision");
            } else {
                served = json!({"error": served["error"]["field"]});
            }
            assert_eq!(served, library, "{}", q.label);
            expected.push((body, library));
        }

        for chunk in expected.chunks(100) {
            let requests: Vec<&Value> = chunk.iter().map(|(body, _)| body).collect();
            let r = c
                .post("/v1/batch_is_authorized", &json!({"requests": requests}))
                .await;
            assert_eq!(r.status, 200);
            let json = r.json();
            assert_eq!(json["revision"], snapshot.revision());
            for ((body, library), served) in chunk.iter().zip(json["responses"].as_array().unwrap())
            {
                match served.get("error") {
                    None => assert_eq!(served, library, "batch: {body}"),
                    Some(e) => {
                        let field = e["field"].as_str().unwrap_or_default();
                        let want = library["error"].as_str().unwrap_or("(an answer)");
                        assert!(field.ends_with(want), "batch: {body}: {served}");
                    }
                }
            }
        }
        authzen_answers_alike(&mut c, &questions, &expected, snapshot.revision()).await;
        asked += questions.len();
    }
    assert!(asked > 0, "the suites hold questions");
    println!("{asked} fixture questions answered alike by the library and the server");
}

/// A fixture question as an AuthZEN evaluation.
fn authzen_body(q: &Question) -> Value {
    let principal = parse_uid(&q.principal).expect("fixture principals parse");
    let resource = parse_uid(&q.resource).expect("fixture resources parse");
    let action = parse_action(&q.action).expect("fixture actions parse");
    let entity = |u: &cedar_policy::EntityUid| json!({"type": u.type_name().to_string(), "id": u.id().unescaped()});
    json!({
        "subject": entity(&principal),
        "action": {"name": action.id().unescaped()},
        "resource": entity(&resource),
        "context": q.context,
    })
}

/// The library's answer (`{decision, reasons, errors}` or `{error:
/// field}`) as AuthZEN gives it with an explanation: the decision as a
/// boolean, reasons and errors under `context.reason_admin`; a refusal as
/// the AuthZEN field at fault.
fn as_authzen(library: &Value, revision: &str) -> Value {
    match library.get("error") {
        Some(field) => {
            let field = field.as_str().unwrap_or_default();
            let field = match field {
                "principal" => "subject",
                other => other,
            };
            json!({"error": field})
        }
        None => json!({
            "decision": library["decision"] == "allow",
            "context": {"reason_admin": {
                "policies": library["reasons"], "errors": library["errors"], "revision": revision,
            }},
        }),
    }
}

async fn authzen_answers_alike(
    c: &mut Conn<tokio::net::TcpStream>,
    questions: &[Question],
    expected: &[(Value, Value)],
    revision: &str,
) {
    let explain = [("Doorman-Explain", "true")];
    let mut bodies = Vec::new();
    for (q, (_, library)) in questions.iter().zip(expected) {
        let body = authzen_body(q);
        let want = as_authzen(library, revision);
        let r = c
            .send(
                "POST",
                "/access/v1/evaluation",
                &explain,
                Some(body.to_string().as_bytes()),
            )
            .await;
        let served = match r.status {
            200 => r.json(),
            400 => json!({"error": r.error().1}),
            other => panic!("{}: status {other}", q.label),
        };
        assert_eq!(served, want, "AuthZEN: {}", q.label);
        bodies.push((body, want));
    }
    for chunk in bodies.chunks(100) {
        let items: Vec<&Value> = chunk.iter().map(|(body, _)| body).collect();
        let r = c
            .send(
                "POST",
                "/access/v1/evaluations",
                &explain,
                Some(json!({"evaluations": items}).to_string().as_bytes()),
            )
            .await;
        assert_eq!(r.status, 200);
        let json = r.json();
        let served = json["evaluations"].as_array().expect("evaluations");
        assert_eq!(served.len(), chunk.len());
        for (i, ((body, want), served)) in chunk.iter().zip(served).enumerate() {
            match served["context"].get("error") {
                None => assert_eq!(served, want, "AuthZEN batch: {body}"),
                Some(e) => {
                    assert_eq!(served["decision"], false);
                    let field = format!(
                        "evaluations[{i}].{}",
                        want["error"].as_str().unwrap_or("(an answer)")
                    );
                    assert_eq!(e["field"], field, "AuthZEN batch: {body}: {served}");
                }
            }
        }
    }
}

pub(crate) fn suite_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".test.yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

pub(crate) fn questions(suite: &Path, doc: &Value) -> Vec<Question> {
    let name = suite.file_name().unwrap().to_string_lossy();
    let text = |v: &Value, what: &str, at: &str| -> String {
        v.as_str()
            .unwrap_or_else(|| panic!("{name}: {at}: {what} is not a string"))
            .to_owned()
    };
    let context = |v: &Value| if v.is_null() { json!({}) } else { v.clone() };
    let mut out = Vec::new();
    for (i, case) in doc["cases"].as_array().into_iter().flatten().enumerate() {
        let at = format!("cases[{i}]");
        out.push(Question {
            label: format!("{name} {at} {}", case["name"]),
            principal: text(&case["principal"], "principal", &at),
            action: text(&case["action"], "action", &at),
            resource: text(&case["resource"], "resource", &at),
            context: context(&case["context"]),
        });
    }
    for (m, matrix) in doc["matrix"].as_array().into_iter().flatten().enumerate() {
        let principals = matrix["principals"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (r, row) in matrix["rows"].as_array().into_iter().flatten().enumerate() {
            for (alias, principal) in &principals {
                let at = format!("matrix[{m}].rows[{r}] as {alias}");
                out.push(Question {
                    label: format!("{name} {at}"),
                    principal: text(principal, "principal", &at),
                    action: text(&row["action"], "action", &at),
                    resource: text(&row["resource"], "resource", &at),
                    context: context(&row["context"]),
                });
            }
        }
    }
    out
}
