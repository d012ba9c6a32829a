//! The gateway checks in the OpenAPI document: `/ext/envoy/{path}`,
//! `/ext/nginx` and `/ext/forward-auth` (see [`crate::server::gateway`]).
//!
//! They differ from the rest of the API in three ways the document must
//! say. They are always routed but only answer usefully with a route map
//! (`serve --routes FILE`): without one every check is a 403 whose reason
//! names the flag. Envoy's and forward-auth's take any method (a proxy
//! sends the original request's), so they document all eight and never
//! answer 405; nginx's is documented as the `GET` nginx sends (other
//! methods are answered alike). And their credential is the end user's,
//! verified by the route map, not a token from doorman's token files: the
//! `gatewayUser` scheme, optional because the route map decides (an
//! unmatched request needs none).
//!
//! Every answer's body is a [`crate::server::gateway::GatewayAnswer`]
//! (503: the usual error body), whatever the status.

use serde_json::{Value, json};

use super::{error, schema_ref};

/// Every method a path item can hold (OpenAPI 3.1), as a proxy may send
/// any of them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The `gatewayUser` security scheme.
pub fn scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The end user's credential as the route map's `principal` says: by default `Authorization: Bearer <JWT>`, verified against the route map's JWKS (or, with `trusted_header`, a header an authenticating proxy sets). Not a token from --admin-token-file or --auth-token-file."
    })
}

/// The `gateway` tag.
pub fn tag() -> Value {
    json!({
        "name": "gateway",
        "description": "Checks for reverse proxies (Envoy ext_authz, nginx auth_request, Traefik and APISIX forward-auth). They answer only with `serve --routes FILE`: without a route map every check is a 403."
    })
}

/// The three paths, with their operations.
pub fn paths() -> Vec<(&'static str, Value)> {
    let envoy = every_method(
        "envoyCheck",
        "Envoy ext_authz (HTTP): may the original request through?",
        "Envoy's `path_prefix: /ext/envoy` + the original request target, with the original method and the headers `allowed_headers` lets through. `/ext/envoy` alone is the root path `/`.",
        json!([
            {
                "name": "path", "in": "path", "required": true,
                "description": "The original request's path, without its leading `/` (matched against the route map's paths segment by segment).",
                "schema": {"type": "string"}
            },
            original_query(),
        ]),
        responses(true),
    );
    let nginx = operation(
        "nginxCheck",
        "nginx auth_request: may the original request through?",
        "nginx's `auth_request` subrequest (a GET without a body; other methods are answered alike) with the original method and URI in `X-Original-Method` and `X-Original-URI`. Anything nginx cannot pass on (2xx, 401 and 403 aside, nginx answers 500) is a 403 here: a request that cannot fill its route, or one without those headers.",
        json!([
            header(
                "X-Original-Method",
                "The original request's method (`$request_method`)."
            ),
            header(
                "X-Original-URI",
                "The original request's path and query (`$request_uri`)."
            ),
        ]),
        responses(false),
    );
    let forward_auth = every_method(
        "forwardAuthCheck",
        "Traefik ForwardAuth, APISIX forward-auth: may the original request through?",
        "Called with the original headers plus `X-Forwarded-Method` and `X-Forwarded-Uri` (any method: Traefik's and APISIX's differ). Without those two headers the answer is a 403 naming them.",
        json!([
            header("X-Forwarded-Method", "The original request's method."),
            header("X-Forwarded-Uri", "The original request's path and query."),
            {
                "name": "X-Forwarded-Host", "in": "header", "required": false,
                "description": "The original request's host (read only by a route map template that names it).",
                "schema": {"type": "string"}
            },
        ]),
        responses(true),
    );
    vec![
        ("/ext/envoy/{path}", envoy),
        ("/ext/nginx", json!({"get": nginx})),
        ("/ext/forward-auth", forward_auth),
    ]
}

/// The original query string, passed through as the route map's
/// `{query.NAME}`.
fn original_query() -> Value {
    json!({
        "name": "query", "in": "query", "required": false,
        "style": "form", "explode": true,
        "description": "The original request's query string, passed through (route templates read it as `{query.NAME}`; it plays no part in matching).",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
    })
}

fn header(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "header", "required": true,
        "description": description,
        "schema": {"type": "string"}
    })
}

fn operation(
    id: &str,
    summary: &str,
    description: &str,
    parameters: Value,
    responses: Value,
) -> Value {
    json!({
        "operationId": id,
        "summary": summary,
        "description": description,
        "tags": ["gateway"],
        "security": [{}, {"gatewayUser": []}],
        "parameters": parameters,
        "responses": responses,
    })
}

/// One path item holding the same operation under every method, each with
/// its own operation id (`envoyCheckGet`, …).
fn every_method(
    id: &str,
    summary: &str,
    description: &str,
    parameters: Value,
    responses: Value,
) -> Value {
    let mut item = serde_json::Map::new();
    for method in METHODS {
        let mut name = method.to_owned();
        name[..1].make_ascii_uppercase();
        item.insert(
            method.to_owned(),
            operation(
                &format!("{id}{name}"),
                summary,
                description,
                parameters.clone(),
                responses.clone(),
            ),
        );
    }
    Value::Object(item)
}

/// A gateway answer with `status`'s meaning.
fn answer(description: &str, refusal: bool) -> Value {
    let mut r = json!({
        "description": description,
        "content": {"application/json": {"schema": schema_ref("GatewayAnswer")}}
    });
    if refusal {
        r["headers"] = json!({"X-Doorman-Reason": reason_header()});
    }
    r
}

fn reason_header() -> Value {
    json!({
        "description": "Why the request was refused (any text a header can carry; other bytes are percent-encoded).",
        "required": true,
        "schema": {"type": "string"}
    })
}

/// The answers of a gateway check; `bad_input` when a request that
/// cannot fill its route is a 400 (Envoy, forward-auth) rather than a 403
/// (nginx).
fn responses(bad_input: bool) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(
        "200".into(),
        answer(
            "Allowed (by policy, or no route matched and the route map says `unmatched: allow`); the route map's `upstream_headers` are set for the upstream",
            false,
        ),
    );
    if bad_input {
        all.insert(
            "400".into(),
            answer(
                "The request matched a route but cannot fill it (a missing query parameter, a Long that does not parse, a context the schema refuses)",
                true,
            ),
        );
    }
    let mut unauthenticated = answer("No credential, or one that does not verify", true);
    unauthenticated["headers"]["WWW-Authenticate"] = json!({
        "description": "`Bearer`",
        "required": true,
        "schema": {"type": "string"}
    });
    all.insert("401".into(), unauthenticated);
    let forbidden = if bad_input {
        "Denied: by policy (`reasons`), no route matched (`unmatched: deny`), no route map (`--routes` not given), or the proxy did not send the original request"
    } else {
        "Denied: by policy (`reasons`), no route matched (`unmatched: deny`), no route map (`--routes` not given), a request that cannot fill its route, or no X-Original-Method and X-Original-URI"
    };
    all.insert("403".into(), answer(forbidden, true));
    let mut not_ready = error("No snapshot is loaded yet");
    not_ready["headers"] = json!({"X-Doorman-Reason": reason_header()});
    all.insert("503".into(), not_ready);
    Value::Object(all)
}
