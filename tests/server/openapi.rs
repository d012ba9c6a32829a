//! `/openapi.json`: the document is OpenAPI 3.1, its schemas are JSON
//! Schema 2020-12, every example is valid and is answered by the server,
//! and the server's real answers validate against the documented schemas.
//!
//! The OpenAPI Initiative's own schema of the format is not vendored (the
//! project copies no public text); the document is instead parsed by
//! `oas3`'s typed OpenAPI 3.1 model, each schema is checked against JSON
//! Schema 2020-12's meta-schema (which `jsonschema` ships), every `$ref` is
//! resolved, and the structural rules are asserted here.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

/// The bundled model, which the README's (and so the document's) examples
/// are written against.
fn bundled() -> Process {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = [
        "--policies",
        "policies",
        "--schema",
        "schema",
        "--entities",
        "fixtures/entities",
        "--watch",
        "off",
    ]
    .iter()
    .map(|a| {
        if a.starts_with("--") || *a == "off" {
            a.to_string()
        } else {
            root.join(a).display().to_string()
        }
    })
    .collect();
    Process::start_with(&args)
}

async fn document(server: &Process) -> Value {
    let r = server.connect().await.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// A validator for `schema` (which may hold `$ref`s into the document).
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"],
    });
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{schema} does not compile: {e}"))
}

fn assert_valid(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what}: {instance}\ndoes not match {schema}:\n{errors:#?}"
    );
}

fn refs<'a>(value: &'a Value, into: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                into.push(r);
            }
            map.values().for_each(|v| refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, into)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_valid_schemas_and_resolvable_refs() {
    let server = bundled();
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let spec = oas3::from_json(doc.to_string()).expect("oas3 reads it as OpenAPI 3.1");
    let paths = spec.paths.as_ref().expect("paths");
    for path in [
        "/v1/is_authorized",
        "/v1/batch_is_authorized",
        "/access/v1/evaluation",
        "/access/v1/evaluations",
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
        "/.well-known/authzen-configuration",
        "/v1/status",
        "/v1/policies",
        "/v1/reload",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/ext/envoy/{path}",
        "/ext/nginx",
        "/ext/forward-auth",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("components.schemas.{name} is not JSON Schema 2020-12: {e}");
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "the document uses refs");
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
    }
    // Every operation answers something, names itself, and says which
    // security applies; wrong methods get 405, except at the gateway
    // checks, which take any method (a proxy sends the original one).
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(
                ids.insert(op["operationId"].as_str().unwrap()),
                "{method} {path}: operation ids are unique"
            );
            assert!(op["security"].is_array(), "{method} {path}");
            assert!(op["responses"]["200"].is_object(), "{method} {path}");
            let gateway = op["tags"] == json!(["gateway"]);
            assert_eq!(gateway, path.starts_with("/ext/"), "{method} {path}");
            assert_eq!(
                op["responses"]["405"].is_object(),
                !gateway,
                "{method} {path}: wrong methods get 405, but gateways take any"
            );
        }
    }
    for path in ["/ext/envoy/{path}", "/ext/forward-auth"] {
        let methods: Vec<&String> = doc["paths"][path].as_object().unwrap().keys().collect();
        assert_eq!(methods.len(), 8, "{path} documents every method");
    }
}

#[tokio::test]
async fn every_example_is_valid_and_answered_by_the_server() {
    let server = bundled();
    let doc = document(&server).await;
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else {
            continue;
        };
        let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        let example = &doc["components"]["schemas"][name]["example"];
        assert!(example.is_object(), "{path}: {name} has no example");
        assert_valid(&doc, schema, example, &format!("the example of {name}"));
        let r = server.connect().await.post(path, example).await;
        assert_eq!(
            r.status,
            200,
            "{path} refused its own example {example}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let answer = op
            .pointer("/responses/200/content/application~1json/schema")
            .unwrap();
        assert_valid(
            &doc,
            answer,
            &r.json(),
            &format!("{path}'s answer to its example"),
        );
        tried += 1;
    }
    assert_eq!(tried, 7, "every POST endpoint with a body has an example");
}

/// A request: method, path, body, extra headers.
type Case = (
    &'static str,
    &'static str,
    Option<Value>,
    Vec<(&'static str, &'static str)>,
);

/// The documented schema of `path`'s `method` answer with `status`; for a
/// method the path does not serve (a 405), its one operation's.
fn documented<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let item = &doc["paths"][path];
    let op = match item.get(method) {
        Some(op) => op,
        None => item
            .as_object()
            .and_then(|i| i.values().next())
            .expect("documented path"),
    };
    op["responses"][status.to_string()]
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{method} {path} does not document a JSON {status}"))
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let server = bundled();
    let doc = document(&server).await;
    let ada = json!({"principal": "Member::\"acme-ada\"", "action": "ViewInbox",
                     "resource": "Inbox::\"acme-support\""});
    let cases: Vec<Case> = vec![
        ("post", "/v1/is_authorized", Some(ada.clone()), vec![]),
        (
            "post",
            "/v1/is_authorized",
            Some(json!({"principal": 3})),
            vec![],
        ),
        (
            "post",
            "/v1/is_authorized",
            Some(json!({"contxt": {}})),
            vec![],
        ),
        (
            "post",
            "/v1/batch_is_authorized",
            Some(json!({"requests": [ada, {"principal": "nobody"}]})),
            vec![],
        ),
        ("post", "/v1/batch_is_authorized", Some(json!([])), vec![]),
        ("get", "/v1/is_authorized", None, vec![]),
        (
            "post",
            "/access/v1/evaluation",
            Some(
                json!({"subject": {"type": "Member", "id": "globex-gil"}, "action": {"name": "ViewInbox"},
                     "resource": {"type": "Inbox", "id": "acme-support"}}),
            ),
            vec![("Doorman-Explain", "true")],
        ),
        (
            "post",
            "/access/v1/evaluation",
            Some(json!({"subject": 1})),
            vec![],
        ),
        (
            "post",
            "/access/v1/evaluations",
            Some(
                json!({"subject": {"type": "Member", "id": "acme-mia"}, "action": {"name": "ViewInbox"},
                     "evaluations": [{"resource": {"type": "Inbox", "id": "acme-support"}},
                                     {"resource": {"type": "Inbox"}}]}),
            ),
            vec![("Doorman-Explain", "true")],
        ),
        (
            "post",
            "/access/v1/search/subject",
            Some(
                json!({"subject": {"type": "Member"}, "action": {"name": "ViewInbox"},
                     "resource": {"type": "Inbox", "id": "acme-support"}, "page": {"limit": 1}}),
            ),
            vec![],
        ),
        (
            "post",
            "/access/v1/search/action",
            Some(json!({"subject": {"type": "Member", "id": "acme-ada"},
                     "resource": {"type": "Inbox", "id": "acme-support"}})),
            vec![],
        ),
        ("get", "/.well-known/authzen-configuration", None, vec![]),
        ("get", "/v1/status", None, vec![]),
        ("get", "/v1/policies", None, vec![]),
        ("post", "/v1/reload", None, vec![]),
        ("get", "/healthz", None, vec![]),
        ("get", "/readyz", None, vec![]),
        ("get", "/openapi.json", None, vec![]),
        ("post", "/v1/status", None, vec![]),
    ];
    for (method, path, body, headers) in cases {
        let bytes = body.as_ref().map(|b| b.to_string().into_bytes());
        let r = server
            .connect()
            .await
            .send(&method.to_uppercase(), path, &headers, bytes.as_deref())
            .await;
        let schema = documented(&doc, method, path, r.status);
        assert_valid(
            &doc,
            schema,
            &r.json(),
            &format!("{method} {path} ({})", r.status),
        );
    }
}

#[tokio::test]
async fn a_guarded_server_documents_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.tokens");
    std::fs::write(&file, "admin-token-0123456789\n").unwrap();
    let server = Process::start(&["--admin-token-file", file.to_str().unwrap()]);
    // The document itself stays open.
    let doc = document(&server).await;
    assert_eq!(
        doc["paths"]["/v1/status"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert_eq!(
        doc["paths"]["/v1/is_authorized"]["post"]["security"],
        json!([{}, {"bearer": []}])
    );
    let r = server.connect().await.get("/v1/status").await;
    assert_eq!(r.status, 401);
    assert_valid(
        &doc,
        documented(&doc, "get", "/v1/status", 401),
        &r.json(),
        "a 401",
    );
}

/// The documented operation of a gateway request: `/ext/envoy/…` is the
/// `/ext/envoy/{path}` template.
fn gateway_operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let path = path.split('?').next().unwrap();
    let template = if path.starts_with("/ext/envoy/") {
        "/ext/envoy/{path}"
    } else {
        path
    };
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    op
}

/// Each gateway check, asked as its proxy asks it, against the binary with
/// the sample route map (and once without one): every status is
/// documented, every body validates against the schema documented for it,
/// and every header the document requires on that answer is there.
#[tokio::test]
async fn gateway_answers_match_their_documented_schemas() {
    let g = crate::gateway::Gateway::new();
    let mut args = load_flags(&g.sources());
    args.extend(["--routes", g.routes().to_str().unwrap(), "--watch", "off"].map(String::from));
    let with_routes = Process::start_with(&args);
    let without_routes = bundled();
    let ada = format!("Bearer {}", g.token("acme-ada"));
    let mia = format!("Bearer {}", g.token("acme-mia"));
    // (server has routes, method, path, headers, expected status)
    type GatewayCase<'a> = (bool, &'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<GatewayCase> = vec![
        // Envoy: allow, policy deny, no route, no or a bad credential,
        // a route that cannot be filled, no route map.
        (
            true,
            "GET",
            "/ext/envoy/inboxes/acme-support",
            vec![("authorization", &ada)],
            200,
        ),
        (
            true,
            "PUT",
            "/ext/envoy/companies/acme/billing",
            vec![("authorization", &mia)],
            403,
        ),
        (true, "TRACE", "/ext/envoy/nowhere", vec![], 403),
        (true, "GET", "/ext/envoy/inboxes/acme-support", vec![], 401),
        (
            true,
            "GET",
            "/ext/envoy/inboxes/acme-support",
            vec![("authorization", "Bearer not.a.token")],
            401,
        ),
        (
            true,
            "POST",
            "/ext/envoy/companies/acme/invitations",
            vec![("authorization", &ada)],
            400,
        ),
        (
            true,
            "POST",
            "/ext/envoy/companies/acme/invitations?role=agent",
            vec![("authorization", &ada)],
            200,
        ),
        (
            false,
            "GET",
            "/ext/envoy/inboxes/acme-support",
            vec![("authorization", &ada)],
            403,
        ),
        // nginx: the original request in headers; bad input is a 403.
        (
            true,
            "GET",
            "/ext/nginx",
            vec![
                ("x-original-method", "GET"),
                ("x-original-uri", "/inboxes/acme-support"),
                ("authorization", &ada),
            ],
            200,
        ),
        (
            true,
            "GET",
            "/ext/nginx",
            vec![
                ("x-original-method", "PUT"),
                ("x-original-uri", "/companies/acme/billing"),
                ("authorization", &mia),
            ],
            403,
        ),
        (
            true,
            "GET",
            "/ext/nginx",
            vec![
                ("x-original-method", "POST"),
                ("x-original-uri", "/companies/acme/invitations"),
                ("authorization", &ada),
            ],
            403,
        ),
        (
            true,
            "GET",
            "/ext/nginx",
            vec![
                ("x-original-method", "GET"),
                ("x-original-uri", "/inboxes/acme-support"),
            ],
            401,
        ),
        (true, "GET", "/ext/nginx", vec![], 403),
        (
            false,
            "GET",
            "/ext/nginx",
            vec![
                ("x-original-method", "GET"),
                ("x-original-uri", "/inboxes/acme-support"),
            ],
            403,
        ),
        // Traefik and APISIX.
        (
            true,
            "GET",
            "/ext/forward-auth",
            vec![
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/inboxes/acme-support"),
                ("x-forwarded-host", "app.test"),
                ("authorization", &ada),
            ],
            200,
        ),
        (
            true,
            "POST",
            "/ext/forward-auth",
            vec![
                ("x-forwarded-method", "POST"),
                ("x-forwarded-uri", "/companies/acme/invitations"),
                ("authorization", &ada),
            ],
            400,
        ),
        (
            true,
            "PATCH",
            "/ext/forward-auth",
            vec![
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/inboxes/acme-support"),
            ],
            401,
        ),
        (
            true,
            "OPTIONS",
            "/ext/forward-auth",
            vec![("x-forwarded-uri", "/inboxes/acme-support")],
            403,
        ),
    ];
    let doc = document(&with_routes).await;
    assert_eq!(
        doc,
        document(&without_routes).await,
        "one document whatever --routes says"
    );
    for (routes, method, path, headers, expected) in cases {
        let server = if routes {
            &with_routes
        } else {
            &without_routes
        };
        let r = server
            .connect()
            .await
            .send(method, path, &headers, None)
            .await;
        let what = format!("{method} {path} {headers:?} (routes: {routes})");
        assert_eq!(
            r.status,
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let answer = &gateway_operation(&doc, method, path)["responses"][r.status.to_string()];
        assert!(answer.is_object(), "{what}: {} is not documented", r.status);
        for (name, header) in answer["headers"].as_object().into_iter().flatten() {
            if header["required"] == json!(true) {
                assert!(r.header(name).is_some(), "{what}: no {name} header");
            }
        }
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        let schema = answer
            .pointer("/content/application~1json/schema")
            .unwrap_or_else(|| panic!("{what}: no JSON schema for {}", r.status));
        assert_valid(&doc, schema, &r.json(), &what);
    }
}

/// schemathesis, bounded, through `scripts/api-fuzz` against this build's
/// binary: the sample route map, token files, every check the script
/// makes (5xx, status, Content-Type, headers and bodies as documented,
/// tokens enforced, 405s), and a server that neither dies nor panics. A
/// fixed seed keeps CI repeatable; `scripts/api-fuzz` alone runs the
/// generous, random version.
#[test]
fn schemathesis_finds_nothing_in_a_bounded_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let installed = std::process::Command::new("python3")
        .args(["-c", "import schemathesis"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "schemathesis is not installed: run `pip3 install -r scripts/requirements-api-fuzz.txt` \
         (.ci/run installs it before the tests)"
    );
    let reports = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(root.join("scripts/api-fuzz"))
        .current_dir(root)
        .args(["--examples", "15", "--seed", "20261203", "--binary"])
        .arg(env!("CARGO_BIN_EXE_doorman"))
        .arg("--report-dir")
        .arg(reports.path())
        .output()
        .expect("scripts/api-fuzz runs");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/api-fuzz:\n{output}");
    let summary = std::fs::read_to_string(reports.path().join("summary.txt")).unwrap();
    assert!(summary.contains("result: no findings"), "{summary}");
    // Every documented operation was selected and tested.
    let operations = summary
        .lines()
        .find_map(|l| l.strip_prefix("Operations:"))
        .unwrap_or_else(|| panic!("no operation count in\n{summary}"));
    let counts: Vec<u32> = operations
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        counts.len() == 2 && counts[0] == counts[1] && counts[0] >= 31,
        "{operations}"
    );
}
