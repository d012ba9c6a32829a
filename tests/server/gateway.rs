//! Gateway mode over the wire: the sample route map (routes/app.yaml) in
//! front of the bundled model, asked through Envoy's HTTP and gRPC
//! ext_authz, nginx's auth_request and Traefik's ForwardAuth.
//!
//! Keys are made per run with the openssl CLI (CI installs it): an RSA and
//! a P-256 key in the JWKS, and a second RSA key the JWKS does not hold.
//! No private key is committed anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorman::server::State;
use doorman::{Sources, ValidationMode};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::fixtures::{Question, questions, suite_files};
use crate::support::*;

pub const ISSUER: &str = "https://auth.example.test";
pub const AUDIENCE: &str = "doorman";

/// Keys made for one test run, and a route map that trusts two of them.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub rsa: EncodingKey,
    pub ec: EncodingKey,
    /// An RSA key the JWKS does not hold.
    pub stranger: EncodingKey,
    /// The RSA public key's PEM bytes (for the HS/RS confusion attack).
    pub rsa_public_pem: Vec<u8>,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (CI installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("a public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

impl Gateway {
    pub fn new() -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &path("rsa.pem"),
        ]);
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &path("stranger.pem"),
        ]);
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &path("ec.pem"),
        ]);
        openssl(&[
            "pkey",
            "-in",
            &path("rsa.pem"),
            "-pubout",
            "-out",
            &path("rsa.pub.pem"),
        ]);
        let read = |name: &str| std::fs::read(dir.path().join(name)).expect("key file");
        let rsa = EncodingKey::from_rsa_pem(&read("rsa.pem")).expect("RSA key");
        let stranger = EncodingKey::from_rsa_pem(&read("stranger.pem")).expect("RSA key");
        let ec = EncodingKey::from_ec_pem(&read("ec.pem")).expect("EC key");
        let jwks = JwkSet {
            keys: vec![
                jwk(&rsa, Algorithm::RS256, "rsa-1"),
                jwk(&ec, Algorithm::ES256, "ec-1"),
            ],
        };
        std::fs::write(
            dir.path().join("jwks.json"),
            serde_json::to_vec_pretty(&jwks).unwrap(),
        )
        .unwrap();
        // The sample route map, as shipped, over these keys.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(root.join("routes/app.yaml"), dir.path().join("app.yaml")).unwrap();
        for f in ["rsa.pem", "stranger.pem", "ec.pem"] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        Gateway {
            rsa_public_pem: read("rsa.pub.pem"),
            dir,
            rsa,
            ec,
            stranger,
        }
    }

    pub fn routes(&self) -> PathBuf {
        self.dir.path().join("app.yaml")
    }

    pub fn sources(&self) -> Sources {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Sources {
            policies: root.join("policies"),
            schema: Some(root.join("schema")),
            entities: vec![root.join("fixtures/entities")],
            databases: vec![],
            validation: ValidationMode::Strict,
            routes: Some(self.routes()),
        }
    }

    pub fn state(&self) -> State {
        let snapshot = doorman::load(&self.sources()).expect("the bundled model and routes load");
        State::with_snapshot(Default::default(), snapshot)
    }

    /// A token for seat `member` (`acme-ada`) signed with the RSA key.
    pub fn token(&self, member: &str) -> String {
        self.sign(Algorithm::RS256, "rsa-1", &self.rsa, claims(member, 0))
    }

    pub fn sign(&self, alg: Algorithm, kid: &str, key: &EncodingKey, claims: Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).expect("signs")
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims for `member` (`acme-ada`: company `acme`, sub `ada`), expiring
/// `exp_in` seconds from now (an hour when 0).
pub fn claims(member: &str, exp_in: i64) -> Value {
    let (company, sub) = member.split_once('-').expect("company-name");
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "company": company,
        "iat": now(), "exp": now() + if exp_in == 0 { 3600 } else { exp_in },
    })
}

fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The tokens every protocol must refuse with a 401, by name.
pub fn bad_tokens(g: &Gateway) -> Vec<(&'static str, String)> {
    let c = |f: &dyn Fn(&mut Value)| {
        let mut v = claims("acme-ada", 0);
        f(&mut v);
        v
    };
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#),
        b64(&serde_json::to_vec(&claims("acme-ada", 0)).unwrap())
    );
    vec![
        (
            "expired",
            g.sign(Algorithm::RS256, "rsa-1", &g.rsa, claims("acme-ada", -3600)),
        ),
        (
            "not yet valid",
            g.sign(
                Algorithm::RS256,
                "rsa-1",
                &g.rsa,
                c(&|v| v["nbf"] = json!(now() + 3600)),
            ),
        ),
        (
            "wrong signature",
            g.sign(
                Algorithm::RS256,
                "rsa-1",
                &g.stranger,
                claims("acme-ada", 0),
            ),
        ),
        (
            "unknown kid",
            g.sign(Algorithm::RS256, "rsa-9", &g.rsa, claims("acme-ada", 0)),
        ),
        (
            "wrong issuer",
            g.sign(
                Algorithm::RS256,
                "rsa-1",
                &g.rsa,
                c(&|v| v["iss"] = json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            g.sign(
                Algorithm::RS256,
                "rsa-1",
                &g.rsa,
                c(&|v| v["aud"] = json!("other")),
            ),
        ),
        (
            "no exp",
            g.sign(
                Algorithm::RS256,
                "rsa-1",
                &g.rsa,
                c(&|v| {
                    v.as_object_mut().unwrap().remove("exp");
                }),
            ),
        ),
        ("alg none", none),
        (
            "HS256 signed with the RSA public key",
            g.sign(
                Algorithm::HS256,
                "rsa-1",
                &EncodingKey::from_secret(&g.rsa_public_pem),
                claims("acme-ada", 0),
            ),
        ),
        (
            "ES256 token naming the RSA key",
            g.sign(Algorithm::ES256, "rsa-1", &g.ec, claims("acme-ada", 0)),
        ),
        ("garbage", "not.a.token".to_owned()),
    ]
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------- Envoy HTTP

#[tokio::test]
async fn envoy_http_allows_denies_and_refuses_as_envoy_expects() {
    let g = Gateway::new();
    let server = LibraryServer::start(g.state()).await;
    let mut c = server.connect().await;
    let ada = bearer(&g.token("acme-ada"));
    let gil = bearer(&g.token("globex-gil"));

    // Allowed: 200 with the upstream headers.
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-doorman-principal"),
        Some(r#"Member::"acme-ada""#)
    );
    assert!(
        r.header("x-doorman-policies")
            .is_some_and(|p| !p.is_empty())
    );
    assert_eq!(r.json()["decision"], "allow");

    // Any method is accepted, verbatim: ModifyInbox for PATCH.
    let r = c
        .send(
            "PATCH",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // A query string does not disturb matching.
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support?page=2",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Denied by policy (tenant isolation): 403, no upstream headers.
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &gil)],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["decision"], "deny");
    assert!(r.header("x-doorman-principal").is_none());

    // Unmatched: denied (the sample says `unmatched: deny`), and counted.
    let before = server
        .state
        .gateway_counters()
        .unmatched
        .load(std::sync::atomic::Ordering::Relaxed);
    let r = c
        .send(
            "GET",
            "/ext/envoy/nowhere",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-doorman-reason"),
        Some("no route matches the request")
    );
    let r = c
        .send(
            "POST",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "POST on an inbox has no route");
    let after = server
        .state
        .gateway_counters()
        .unmatched
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after - before, 2);

    // A route that cannot be filled: 400 naming the field, never a 5xx.
    let r = c
        .send(
            "POST",
            "/ext/envoy/companies/acme/invitations",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("x-doorman-reason")
            .unwrap()
            .contains("context.role"),
        "{:?}",
        r.header("x-doorman-reason")
    );
    let r = c
        .send(
            "POST",
            "/ext/envoy/companies/acme/invitations?role=agent",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);

    // Missing credential, and every bad token: 401 with a challenge.
    let r = c
        .send("GET", "/ext/envoy/inboxes/acme-support", &[], None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", "Basic YTpi")],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    for (name, token) in bad_tokens(&g) {
        let r = c
            .send(
                "GET",
                "/ext/envoy/inboxes/acme-support",
                &[("authorization", &bearer(&token))],
                None,
            )
            .await;
        assert_eq!(
            r.status,
            401,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{name}");
    }

    // `{request.time}`: the gateway's clock fills AcceptInvitation's
    // `now`; the pending invitation expired on 2026-11-29, so today it is
    // denied exactly as /v1 denies it with today's date, while /v1 with an
    // earlier `now` allows it.
    let nia = bearer(&g.token("acme-nia"));
    let r = c
        .send(
            "POST",
            "/ext/envoy/invitations/acme-inv-nia/accept",
            &[("authorization", &nia)],
            None,
        )
        .await;
    let today = doorman::gateway::template::rfc3339(now() as u64);
    let ask = |now: &str| {
        json!({"principal": "Member::\"acme-nia\"", "action": "AcceptInvitation",
                                 "resource": "Invitation::\"acme-inv-nia\"", "context": {"now": now}})
    };
    let v1_today = c.post("/v1/is_authorized", &ask(&today)).await.json();
    assert_eq!(r.json()["decision"], v1_today["decision"]);
    assert_eq!(r.json()["reasons"], v1_today["reasons"]);
    let earlier = c
        .post("/v1/is_authorized", &ask("2026-11-25T00:00:00Z"))
        .await
        .json();
    assert_eq!(earlier["decision"], "allow");
    assert_eq!(
        r.status,
        if today.as_str() < "2026-11-29" {
            200
        } else {
            403
        }
    );

    // ES256 from the JWKS works as well as RS256.
    let es = g.sign(Algorithm::ES256, "ec-1", &g.ec, claims("acme-ada", 0));
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &bearer(&es))],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn gateway_endpoints_without_a_route_map_or_snapshot_fail_closed() {
    // No --routes: a 403 that says why (never a 5xx that failure_mode_allow
    // would let through).
    let server =
        LibraryServer::start(State::with_snapshot(Default::default(), model_snapshot())).await;
    let mut c = server.connect().await;
    let r = c.send("GET", "/ext/envoy/inboxes/x", &[], None).await;
    assert_eq!(r.status, 403);
    assert!(r.header("x-doorman-reason").unwrap().contains("--routes"));
    // No snapshot yet: 503 (Envoy's own failure handling applies).
    let server = LibraryServer::start(State::new(Default::default())).await;
    let mut c = server.connect().await;
    let r = c.send("GET", "/ext/envoy/inboxes/x", &[], None).await;
    assert_eq!(r.status, 503);
}

// ---------------------------------------------------------------- Traefik and nginx shapes

#[tokio::test]
async fn forward_auth_and_nginx_read_the_original_request_from_headers() {
    let g = Gateway::new();
    let server = LibraryServer::start(g.state()).await;
    let mut c = server.connect().await;
    let ada = bearer(&g.token("acme-ada"));

    // Traefik: GET with X-Forwarded-*; the method that counts is the
    // forwarded one.
    let fwd = |method: &'static str, uri: &'static str| {
        vec![
            ("x-forwarded-method", method),
            ("x-forwarded-uri", uri),
            ("x-forwarded-host", "app.example.test"),
            ("x-forwarded-proto", "https"),
        ]
    };
    let mut h = fwd("GET", "/inboxes/acme-support");
    h.push(("authorization", &ada));
    let r = c.send("GET", "/ext/forward-auth", &h, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-doorman-principal"),
        Some(r#"Member::"acme-ada""#)
    );
    let mut h = fwd("DELETE", "/inboxes/acme-support");
    h.push(("authorization", &ada));
    let r = c.send("GET", "/ext/forward-auth", &h, None).await;
    assert_eq!(r.status, 200, "ada is an admin: RemoveInbox");
    let mut h = fwd("GET", "/calls/acme-ivy-call-1/recording");
    let mia = bearer(&g.token("acme-mia"));
    h.push(("authorization", &mia));
    let r = c.send("POST", "/ext/forward-auth", &h, None).await;
    assert_eq!(r.status, 403);
    let r = c
        .send(
            "GET",
            "/ext/forward-auth",
            &fwd("GET", "/inboxes/acme-support"),
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .send(
            "GET",
            "/ext/forward-auth",
            &[("authorization", ada.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, 403, "no X-Forwarded-Method/Uri");

    // nginx: GET with X-Original-Method/URI; bad input is a 403, since
    // nginx turns anything but 2xx/401/403 into a 500.
    let orig = |method: &'static str, uri: &'static str, auth: &str| {
        vec![
            ("x-original-method", method),
            ("x-original-uri", uri),
            ("authorization", auth),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect::<Vec<_>>()
    };
    for (method, uri, auth, status) in [
        ("GET", "/inboxes/acme-support", ada.as_str(), 200),
        ("PUT", "/companies/acme/billing", ada.as_str(), 200),
        ("PUT", "/companies/acme/billing", mia.as_str(), 403),
        ("POST", "/companies/acme/invitations", ada.as_str(), 403),
        ("GET", "/inboxes/acme-support", "Bearer nope", 401),
        ("GET", "/nowhere", ada.as_str(), 403),
    ] {
        let h = orig(method, uri, auth);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c.send("GET", "/ext/nginx", &h, None).await;
        assert_eq!(
            r.status,
            status,
            "{method} {uri}: {:?}",
            r.header("x-doorman-reason")
        );
    }
    let r = c
        .send(
            "GET",
            "/ext/nginx",
            &[("authorization", ada.as_str())],
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("x-doorman-reason")
            .unwrap()
            .contains("X-Original-URI")
    );
}

// ---------------------------------------------------------------- gRPC

mod grpc {
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::{
        AttributeContext, CheckRequest, attribute_context,
    };

    use super::*;

    fn check(method: &str, path: &str, auth: Option<&str>) -> CheckRequest {
        let mut headers = std::collections::HashMap::new();
        headers.insert(":authority".to_owned(), "app.example.test".to_owned());
        if let Some(a) = auth {
            headers.insert("authorization".to_owned(), a.to_owned());
        }
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(attribute_context::Request {
                    http: Some(attribute_context::HttpRequest {
                        method: method.to_owned(),
                        path: path.to_owned(),
                        headers,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[tokio::test]
    async fn envoy_grpc_check_answers_over_the_wire() {
        let g = Gateway::new();
        let state = Arc::new(g.state());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(doorman::server::gateway::grpc::serve(
            listener,
            state,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        let mut client = AuthorizationClient::connect(format!("http://{address}"))
            .await
            .expect("connects");
        let ada = bearer(&g.token("acme-ada"));
        let gil = bearer(&g.token("globex-gil"));

        let allow = client
            .check(check("GET", "/inboxes/acme-support?x=1", Some(&ada)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(allow.status.as_ref().unwrap().code, 0);
        let Some(
            envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::OkResponse(ok),
        ) = allow.http_response
        else {
            panic!("no ok_response: {allow:?}");
        };
        let headers: BTreeMap<String, String> = ok
            .headers
            .iter()
            .map(|h| {
                let h = h.header.as_ref().unwrap();
                (h.key.clone(), h.value.clone())
            })
            .collect();
        assert_eq!(
            headers.get("x-doorman-principal").map(String::as_str),
            Some(r#"Member::"acme-ada""#)
        );

        let denied = |response: envoy_types::pb::envoy::service::auth::v3::CheckResponse| {
            let code = response.status.as_ref().unwrap().code;
            match response.http_response {
                Some(envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse::DeniedResponse(d)) => {
                    (code, d.status.unwrap().code, d.body)
                }
                other => panic!("not denied: {other:?}"),
            }
        };
        let (code, http, body) = denied(
            client
                .check(check("GET", "/inboxes/acme-support", Some(&gil)))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!((code, http), (tonic::Code::PermissionDenied as i32, 403));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["decision"],
            "deny"
        );
        let (code, http, _) = denied(
            client
                .check(check("GET", "/inboxes/acme-support", None))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!((code, http), (tonic::Code::Unauthenticated as i32, 401));
        for (name, token) in bad_tokens(&g) {
            let (code, http, _) = denied(
                client
                    .check(check("GET", "/inboxes/acme-support", Some(&bearer(&token))))
                    .await
                    .unwrap()
                    .into_inner(),
            );
            assert_eq!(
                (code, http),
                (tonic::Code::Unauthenticated as i32, 401),
                "{name}"
            );
        }
        let (code, http, _) = denied(
            client
                .check(check("GET", "/nowhere", Some(&ada)))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!((code, http), (tonic::Code::PermissionDenied as i32, 403));
        let (code, http, _) = denied(
            client
                .check(check("POST", "/companies/acme/invitations", Some(&ada)))
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!((code, http), (tonic::Code::InvalidArgument as i32, 400));
        let (code, http, _) = denied(
            client
                .check(CheckRequest::default())
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!((code, http), (tonic::Code::InvalidArgument as i32, 400));

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("stops")
            .unwrap();
    }
}

// ---------------------------------------------------------------- the fixtures

/// One route of the sample map, as written.
struct SampleRoute {
    method: String,
    path: String,
    action: String,
    resource_type: String,
    param: String,
    /// Context keys the route fills from the query string.
    query_context: Vec<String>,
    /// The route fills context a question cannot set (the clock).
    own_context: bool,
}

fn sample_routes() -> Vec<SampleRoute> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("routes/app.yaml")).unwrap())
            .unwrap();
    doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let method = match &r["method"] {
                Value::String(m) => m.clone(),
                Value::Array(ms) => ms[0].as_str().unwrap().to_owned(),
                other => panic!("method {other}"),
            };
            let resource = r["resource"].as_str().unwrap();
            let (ty, id) = resource.split_once("::").unwrap();
            let param = id
                .trim_matches('"')
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_owned();
            // Only keys read from the query string: a question's context
            // can be sent that way (`now` comes from doorman's clock).
            let query_context: Vec<String> = r["context"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v.as_str().is_some_and(|t| t.starts_with("{query.")))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            let own_context = r["context"]
                .as_object()
                .is_some_and(|m| m.len() > query_context.len());
            SampleRoute {
                own_context,
                method,
                path: r["path"].as_str().unwrap().to_owned(),
                action: r["action"].as_str().unwrap().to_owned(),
                resource_type: ty.to_owned(),
                param,
                query_context,
            }
        })
        .collect()
}

fn encode(s: &str) -> String {
    percent_encoding_lite(s)
}

fn percent_encoding_lite(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request a question becomes through the sample map, if it maps.
fn as_request(q: &Question, routes: &[SampleRoute]) -> Option<(String, String, String)> {
    let principal = doorman::decide::parse_uid(&q.principal).ok()?;
    if principal.type_name().to_string() != "Member" || !principal.id().unescaped().contains('-') {
        return None;
    }
    let action = doorman::decide::parse_action(&q.action).ok()?;
    let resource = doorman::decide::parse_uid(&q.resource).ok()?;
    let context = q.context.as_object()?;
    let route = routes.iter().find(|r| {
        !r.own_context
            && r.action == action.id().unescaped()
            && r.resource_type == resource.type_name().to_string()
            && context.keys().all(|k| r.query_context.contains(k))
            && r.query_context.iter().all(|k| context.contains_key(k))
    })?;
    let mut target = route.path.replace(
        &format!("{{{}}}", route.param),
        &encode(resource.id().unescaped()),
    );
    let mut sep = '?';
    for (k, v) in context {
        target.push(sep);
        sep = '&';
        target.push_str(&format!("{k}={}", encode(v.as_str()?)));
    }
    Some((
        route.method.clone(),
        target,
        principal.id().unescaped().to_owned(),
    ))
}

#[tokio::test]
async fn every_routable_fixture_question_agrees_with_v1_is_authorized() {
    let g = Gateway::new();
    let routes = sample_routes();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Only suites over the bundled world (the sample map's entities).
    let mut asked = 0;
    let mut skipped = 0;
    let server = LibraryServer::start(g.state()).await;
    let mut c = server.connect().await;
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for suite in suite_files(&root.join("fixtures")) {
        let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(&suite).unwrap()).unwrap();
        if doc["entities"].as_array().is_some_and(|e| {
            e.iter().any(|f| {
                !f.as_str()
                    .unwrap_or_default()
                    .contains("entities/world.yaml")
                    && f.as_str() != Some("entities")
            })
        }) {
            continue;
        }
        for q in questions(&suite, &doc) {
            let Some((method, target, member)) = as_request(&q, &routes) else {
                skipped += 1;
                continue;
            };
            let token = tokens
                .entry(member.clone())
                .or_insert_with(|| g.token(&member))
                .clone();
            let v1 = c
                .post(
                    "/v1/is_authorized",
                    &json!({"principal": q.principal, "action": q.action, "resource": q.resource, "context": q.context}),
                )
                .await;
            let gw = c
                .send(
                    &method,
                    &format!("/ext/envoy{target}"),
                    &[("authorization", &bearer(&token))],
                    None,
                )
                .await;
            let label = format!("{} ({method} {target} as {member})", q.label);
            if v1.status != 200 {
                assert_eq!(
                    gw.status,
                    400,
                    "{label}: v1 said {} {}",
                    v1.status,
                    String::from_utf8_lossy(&v1.body)
                );
                continue;
            }
            let v1 = v1.json();
            let body = gw.json();
            assert_eq!(body["decision"], v1["decision"], "{label}");
            assert_eq!(body["reasons"], v1["reasons"], "{label}");
            assert_eq!(
                gw.status,
                if v1["decision"] == "allow" { 200 } else { 403 },
                "{label}"
            );
            asked += 1;
        }
    }
    eprintln!("{asked} fixture questions asked through the route map, {skipped} without a route");
    assert!(asked >= 100, "only {asked} questions mapped onto routes");
}

// ---------------------------------------------------------------- loading and reloading

#[test]
fn route_map_errors_point_at_file_line_and_column() {
    let g = Gateway::new();
    let write = |text: &str| {
        std::fs::write(g.routes(), text).unwrap();
        doorman::load(&g.sources())
            .err()
            .expect("does not load")
            .diagnostics
    };
    let head = "principal:\n  entity: 'Member::\"{claims.company}-{claims.sub}\"'\n  jwt: {jwks: jwks.json, issuer: i, audience: a, algorithms: [RS256]}\nroutes:\n";
    let d = write(&format!(
        "{head}  - {{method: GET, path: '/a/{{x}}', action: Nope, resource: 'Inbox::\"{{x}}\"'}}\n"
    ));
    assert_eq!((d[0].line, d[0].column), (5, 43), "{d:?}");
    assert!(d[0].message.contains("not an action"), "{d:?}");
    let d = write(&format!(
        "{head}  - {{method: GET, path: '/a/{{x}}', action: ViewInbox, resource: 'Inbx::\"{{x}}\"'}}\n"
    ));
    assert_eq!(d[0].line, 5);
    assert!(
        d[0].message.contains("`Inbx` is not an entity type"),
        "{d:?}"
    );
    let d = write(&format!(
        "{head}  - {{method: GET, path: '/a/{{x}}', action: ViewInbox, resource: 'Inbox::\"{{y}}\"'}}\n"
    ));
    assert!(d[0].message.contains("{y} is not a parameter"), "{d:?}");
    let d = write(&format!(
        "{head}  - {{method: GET, path: '/a/{{x}}', action: ViewInbox, resource: 'Company::\"{{x}}\"'}}\n"
    ));
    assert!(
        d[0].message
            .contains("does not apply to resources of type `Company`"),
        "{d:?}"
    );
    let d = write(&format!(
        "{head}  - {{method: GET, path: /a/{{x}}, action: ViewInbox}}\n"
    ));
    assert_eq!(d[0].line, 5, "{d:?}");
    assert!(d[0].file.ends_with("app.yaml"));
    let d = write(&format!(
        "{}  - {{method: GET, path: '/a/{{x}}', action: ViewInbox, resource: 'Inbox::\"{{x}}\"'}}\n",
        head.replace("[RS256]", "[HS256]")
    ));
    assert_eq!(d[0].line, 3);
    assert!(d[0].message.contains("shared-secret"), "{d:?}");
}

#[tokio::test]
async fn a_bad_route_map_edit_keeps_the_last_good_snapshot() {
    let g = Gateway::new();
    let state = State::with_reloader(
        Default::default(),
        doorman::reload::Reloader::new(g.sources()),
        "off",
    );
    let server = LibraryServer::start(state).await;
    assert_eq!(server.state.reload().await.unwrap().as_str(), "reloaded");
    let mut c = server.connect().await;
    let ada = bearer(&g.token("acme-ada"));
    assert_eq!(
        ask(&mut c, &ada, "/ext/envoy/inboxes/acme-support").await,
        200
    );
    let good = std::fs::read_to_string(g.routes()).unwrap();
    // A broken edit: the old map keeps answering.
    std::fs::write(
        g.routes(),
        good.replace("action: ViewInbox", "action: ViewInboxx"),
    )
    .unwrap();
    assert_eq!(server.state.reload().await.unwrap().as_str(), "failed");
    assert_eq!(
        ask(&mut c, &ada, "/ext/envoy/inboxes/acme-support").await,
        200
    );
    // A good edit (a new route) is picked up.
    std::fs::write(g.routes(), format!("{good}\n  - {{method: GET, path: '/mailboxes/{{inbox}}', action: ViewInbox, resource: 'Inbox::\"{{inbox}}\"'}}\n")).unwrap();
    assert_eq!(server.state.reload().await.unwrap().as_str(), "reloaded");
    assert_eq!(
        ask(&mut c, &ada, "/ext/envoy/mailboxes/acme-support").await,
        200
    );
    // A JWKS change is a change too: without the RSA key, its tokens fail.
    let jwks_path = g.dir.path().join("jwks.json");
    let mut jwks: JwkSet = serde_json::from_slice(&std::fs::read(&jwks_path).unwrap()).unwrap();
    jwks.keys
        .retain(|k| k.common.key_id.as_deref() != Some("rsa-1"));
    std::fs::write(&jwks_path, serde_json::to_vec(&jwks).unwrap()).unwrap();
    assert_eq!(server.state.reload().await.unwrap().as_str(), "reloaded");
    assert_eq!(
        ask(&mut c, &ada, "/ext/envoy/inboxes/acme-support").await,
        401
    );
}

async fn ask(c: &mut Conn<tokio::net::TcpStream>, auth: &str, path: &str) -> u16 {
    c.send("GET", path, &[("authorization", auth)], None)
        .await
        .status
}

#[test]
fn doorman_check_reports_route_map_errors() {
    let g = Gateway::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(g.routes())
        .unwrap()
        .replace("action: RemoveInbox", "action: RemoveInboxes");
    std::fs::write(g.routes(), &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("RemoveInboxes"))
        .unwrap()
        + 1;
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .current_dir(root)
        .args(["check", "--routes"])
        .arg(g.routes())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("app.yaml:{line}:")), "{stdout}");
    assert!(stdout.contains("RemoveInboxes"), "{stdout}");
    // The bundled sample checks clean.
    let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
        .current_dir(root)
        .args(["check", "--routes", "routes/app.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn the_binary_serves_the_sample_route_map_over_http_and_grpc_and_stops_on_sigterm() {
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

    let g = Gateway::new();
    let mut args = load_flags(&g.sources());
    args.extend(
        [
            "--routes",
            g.routes().to_str().unwrap(),
            "--grpc-listen",
            "127.0.0.1:0",
            "--watch",
            "off",
            "--shutdown-timeout",
            "2s",
        ]
        .map(String::from),
    );
    let log_dir = tempfile::tempdir().unwrap();
    let decisions = log_dir.path().join("decisions.jsonl");
    args.extend(["--decision-log".to_owned(), decisions.display().to_string()]);
    let mut server = Process::start_with(&args);
    let log = server.log();
    let grpc_line = log
        .lines()
        .find(|l| l.contains("listening for ext_authz gRPC"))
        .unwrap_or_else(|| panic!("no gRPC start line:\n{log}"));
    let grpc = field(grpc_line, "address").expect("address=");
    let mut c = server.connect().await;
    let ada = bearer(&g.token("acme-ada"));
    let r = c
        .send(
            "GET",
            "/ext/envoy/inboxes/acme-support",
            &[("authorization", &ada)],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let mut client = AuthorizationClient::connect(format!("http://{grpc}"))
        .await
        .expect("gRPC connects");
    let mut headers = std::collections::HashMap::new();
    headers.insert("authorization".to_owned(), ada.clone());
    let request = envoy_types::pb::envoy::service::auth::v3::CheckRequest {
        attributes: Some(envoy_types::pb::envoy::service::auth::v3::AttributeContext {
            request: Some(envoy_types::pb::envoy::service::auth::v3::attribute_context::Request {
                http: Some(envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: "/inboxes/acme-support".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let answer = client.check(request).await.unwrap().into_inner();
    assert_eq!(answer.status.unwrap().code, 0);
    // Both checks are counted, by protocol and by outcome.
    let scraped = crate::observe::scrape(&mut c).await;
    for endpoint in ["gateway.envoy", "gateway.envoy_grpc"] {
        assert_eq!(
            scraped.value(
                "doorman_decisions_total",
                &[("endpoint", endpoint), ("decision", "allow")]
            ),
            1.0,
            "{endpoint}"
        );
    }
    assert_eq!(
        scraped.value("doorman_gateway_checks_total", &[("outcome", "allowed")]),
        2.0
    );
    drop(client);
    drop(c);
    server.signal("TERM");
    assert!(
        server.wait(Duration::from_secs(15)).success(),
        "{}",
        server.log()
    );
    // And logged, one line each, flushed at shutdown.
    let text = std::fs::read_to_string(&decisions).expect("the decision log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let endpoints: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["endpoint"].as_str())
        .collect();
    assert_eq!(endpoints, ["gateway.envoy", "gateway.envoy_grpc"], "{text}");
    for line in &lines {
        assert_eq!(line["principal"], r#"Member::"acme-ada""#);
        assert_eq!(line["decision"], "allow");
    }
}
