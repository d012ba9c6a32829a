//! Gateway requests (method, path and query, headers, a bearer token)
//! through the sample route map, `routes/app.yaml`, in front of the
//! bundled model.
//!
//! The route map is loaded as shipped, beside a JWKS holding one P-256
//! key made for this process (no private key is kept anywhere), so the
//! target can sign tokens over fuzzed claims as well as send fuzzed token
//! text. The input is text, so that seeds are readable and mutations
//! stay meaningful:
//!
//! ```text
//! GET /inboxes/acme-support?x=1        the method and the request target
//! x-user-id: ada                       headers, one a line, to a blank line
//!
//! {"company": "acme", "sub": "ada", "exp": 3600}
//! ```
//!
//! After the blank line comes the credential: a JSON object is signed as
//! the claims of an ES256 token with this process's key (`iss`, `aud`
//! default to the map's; `exp` and `nbf`, when numbers, are seconds from
//! now; a `kid` key sets the token's `kid`), sent as `Bearer <token>`; any
//! other text is sent as the `Authorization` header as it is; nothing,
//! no credential.
//!
//! Asserted, beyond not panicking:
//! - a resolved request names the first route its method and path match;
//!   its query targets that route's action, a resource of the route's
//!   type (with the id the path gave, when the id is one path
//!   parameter), a principal of the route map's type, and every context
//!   key of the route; the decision path answers it (a refusal can only
//!   be about its context, everything else was checked at load) and the
//!   answer is consistent with the policies;
//! - `NoRoute` only when no route matches; a refusal of a matched request
//!   names the resource or a context key;
//! - a token signed over the issuer, audience and live `exp` the map asks
//!   for is never refused, and its claims fill the principal
//!   (`Member::"{company}-{sub}"`);
//! - the token cache answers as the full check does.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use doorman::Snapshot;
use doorman::gateway::template::Source;
use doorman::gateway::{Authentication, Headers, Refusal, Request, RouteMap};
use doorman_fuzz::{bundled_sources, check_answer, root, scratch};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "doorman";
const KID: &str = "fuzz-p256";

struct Setup {
    snapshot: Snapshot,
    key: EncodingKey,
}

/// A P-256 private key as PKCS#8 DER, its scalar from this process's
/// randomness (a scalar at or above the group order, chance 2^-32, fails
/// to load and the target says so).
fn p256_pkcs8() -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut scalar = Vec::with_capacity(32);
    for i in 0..4u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        scalar.extend_from_slice(&h.finish().to_be_bytes());
    }
    scalar[0] &= 0x7f;
    let mut der = vec![
        0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
        0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25,
        0x02, 0x01, 0x01, 0x04, 0x20,
    ];
    der.extend_from_slice(&scalar);
    der
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = EncodingKey::from_ec_der(&p256_pkcs8());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("a P-256 key");
        jwk.common.key_id = Some(KID.to_owned());
        let dir = scratch().join("gateway");
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        std::fs::write(
            dir.join("jwks.json"),
            serde_json::to_vec(&JwkSet { keys: vec![jwk] }).expect("JSON"),
        )
        .expect("the JWKS");
        let routes: PathBuf = dir.join("app.yaml");
        std::fs::copy(root().join("routes/app.yaml"), &routes).expect("the route map");
        let snapshot = doorman::load(&bundled_sources(Some(routes)))
            .expect("the bundled model and routes load");
        Setup { snapshot, key }
    })
}

fn map() -> &'static RouteMap {
    setup().snapshot.route_map().expect("loaded with routes")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The claims to sign, and whether the map must accept them: issuer and
/// audience the map's, `exp` at least a minute ahead, `nbf` (if any) a
/// minute behind, our `kid`, and `company` and `sub` that render.
struct Signed {
    token: String,
    acceptable: bool,
    principal: Option<String>,
}

fn sign(mut claims: serde_json::Map<String, Value>) -> Signed {
    let kid = match claims.remove("kid") {
        Some(Value::String(k)) => k,
        _ => KID.to_owned(),
    };
    claims.entry("iss").or_insert_with(|| json!(ISSUER));
    claims.entry("aud").or_insert_with(|| json!(AUDIENCE));
    let mut live = false;
    let mut started = true;
    for name in ["exp", "nbf"] {
        if let Some(rel) = claims.get(name).and_then(Value::as_i64) {
            let at = now().saturating_add(rel);
            claims.insert(name.to_owned(), json!(at));
            match name {
                "exp" => live = rel >= 60,
                _ => started = rel <= -60,
            }
        } else if name == "nbf" && claims.contains_key(name) {
            started = false;
        }
    }
    let audience = match &claims["aud"] {
        Value::String(a) => a == AUDIENCE,
        Value::Array(list) => list.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    let scalar = |name: &str| match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let principal = scalar("company")
        .zip(scalar("sub"))
        .map(|(c, s)| format!("{c}-{s}"));
    let acceptable =
        claims["iss"] == ISSUER && audience && live && started && kid == KID && principal.is_some();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    let token = jsonwebtoken::encode(&header, &claims, &setup().key).expect("signs");
    Signed {
        token,
        acceptable,
        principal,
    }
}

struct Sent(Vec<(String, String)>);

impl Headers for Sent {
    fn header(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn check(text: &str) {
    let setup = setup();
    let map = map();
    let (head, credential) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let credential = credential.trim_end_matches('\n');
    let signed = match serde_json::from_str::<Value>(credential) {
        Ok(Value::Object(claims)) => Some(sign(claims)),
        _ => None,
    };
    match &signed {
        Some(s) => headers.insert(0, ("authorization".into(), format!("Bearer {}", s.token))),
        None if !credential.is_empty() => {
            headers.insert(0, ("authorization".into(), credential.to_owned()))
        }
        None => {}
    }
    let sent = Sent(headers);
    let request = Request::from_target(method, target, &sent);

    let Authentication::Jwt(verifier) = &map.authentication else {
        panic!("the sample route map takes a JWT");
    };
    if let Some(Signed { token, .. }) = &signed {
        let first = verifier.verify(token);
        let cached = verifier.verify(token);
        let full = verifier.verify_uncached(token);
        assert_eq!(first, full, "the first check differs from the full one");
        assert_eq!(
            cached, full,
            "the cache answers otherwise than the full check"
        );
    }

    let matched = map.route(&request).map(|(i, _, _)| i);
    match map.resolve(&request) {
        Ok(resolved) => {
            assert_eq!(
                Some(resolved.route),
                matched,
                "not the first matching route"
            );
            let route = &map.routes[resolved.route];
            let q = &resolved.query;
            assert!(route.methods.is_empty() || route.methods.iter().any(|m| m == method));
            assert_eq!(q.action, route.action, "another action than the route's");
            assert_eq!(q.resource.type_name(), &route.resource.type_name);
            assert_eq!(q.principal.type_name(), &map.principal.type_name);
            if let Some(Source::Path(name)) = route.resource.id.single() {
                let params = route.path.matches(request.path).expect("the route matched");
                let value = params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_ref());
                assert_eq!(
                    Some(q.resource.id().unescaped()),
                    value,
                    "another resource id"
                );
            }
            let context = q.context.as_object().expect("a context object");
            let keys: Vec<&String> = context.keys().collect();
            let mut want: Vec<&String> = route.context.iter().map(|(k, _)| k).collect();
            want.sort();
            assert_eq!(keys, want, "the route's context, not all of it");
            if let Some(Signed {
                acceptable: true,
                principal: Some(principal),
                ..
            }) = &signed
            {
                assert_eq!(q.principal.id().unescaped(), principal, "another principal");
            }
            match setup.snapshot.decide(q) {
                Ok(answer) => check_answer(&setup.snapshot, &answer),
                Err(e) => assert_eq!(e.field, "context", "a checked route refused: {e}"),
            }
        }
        Err(Refusal::NoRoute) => assert_eq!(matched, None, "a matching route, yet NoRoute"),
        Err(Refusal::Unauthenticated { reason }) => {
            assert!(matched.is_some(), "unauthenticated before routing");
            if signed.as_ref().is_some_and(|s| s.acceptable) {
                panic!("a good token refused: {reason}");
            }
        }
        Err(Refusal::BadRequest { field, message }) => {
            assert!(matched.is_some(), "a bad request before routing");
            assert!(
                field.starts_with("resource") || field.starts_with("context."),
                "{field}: {message}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
});
