//! Bearer tokens: verified against a JWKS file, then cached.
//!
//! Keys come only from the JWKS, each with the algorithms its own `kty`
//! (and `crv`, and `alg` when the key names one) allows, intersected with
//! the route map's `algorithms`. A token picks its key by `kid`, and its
//! header's `alg` must be one that key allows: an HS256 token "signed" with
//! an RSA public key's bytes finds no HMAC key to check against, and
//! `alg: none` is not an algorithm at all. Symmetric (`oct`) keys are refused
//! at load time, as are HS algorithms in `algorithms`.
//!
//! Verifying an RS256 signature costs more than a Cedar decision, and a
//! client sends the same token on every request, so verified tokens are
//! kept in a small direct-mapped cache: a fixed array of slots, each an
//! `ArcSwapOption`, indexed by a hash of the token. A lookup is one atomic
//! load and a string compare (the whole token is kept, so a hash collision
//! is a miss, never a wrong hit); a new token overwrites its slot. No lock,
//! bounded memory, and an entry is only used while the token's own `exp`
//! and `nbf` (with the leeway) allow. The cache belongs to the route map,
//! so a reloaded JWKS starts empty.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Slots in the verified-token cache (a power of two).
const CACHE_SLOTS: usize = 4096;

/// The verified claims of a token.
pub type Claims = Arc<Map<String, Value>>;

/// Settings from the route map's `principal.jwt`.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Lower-case header name (`authorization`).
    pub header: String,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// Seconds of clock skew allowed for `exp` and `nbf`.
    pub leeway: u64,
}

struct Key {
    key: DecodingKey,
    /// What this key may verify: its family's algorithms, narrowed by the
    /// key's own `alg`, and by the route map's list.
    algorithms: Vec<Algorithm>,
}

/// Checks bearer tokens against one JWKS.
pub struct Verifier {
    settings: JwtSettings,
    keys: HashMap<String, Key>,
    /// The key used for tokens without a `kid`: only when the JWKS has
    /// exactly one key.
    only: Option<String>,
    validations: HashMap<Algorithm, Validation>,
    cache: Cache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.settings)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Parses an algorithm name from the route map; HS* and `none` are refused.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| format!("`{name}` is not a JWT signature algorithm"))?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(format!(
            "`{name}` is a shared-secret algorithm; only public-key algorithms \
             (RS*, PS*, ES*, EdDSA) verified against the JWKS are accepted"
        )),
        other => Ok(other),
    }
}

fn family(params: &AlgorithmParameters) -> Result<&'static [Algorithm], String> {
    use Algorithm::*;
    Ok(match params {
        AlgorithmParameters::RSA(_) => &[RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[ES256],
            EllipticCurve::P384 => &[ES384],
            _ => return Err("an unsupported elliptic curve".to_owned()),
        },
        AlgorithmParameters::OctetKeyPair(_) => &[EdDSA],
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric (`oct`) key; only public keys are accepted".to_owned());
        }
    })
}

fn key_algorithm(alg: &KeyAlgorithm) -> Option<Algorithm> {
    use KeyAlgorithm as K;
    Some(match alg {
        K::ES256 => Algorithm::ES256,
        K::ES384 => Algorithm::ES384,
        K::RS256 => Algorithm::RS256,
        K::RS384 => Algorithm::RS384,
        K::RS512 => Algorithm::RS512,
        K::PS256 => Algorithm::PS256,
        K::PS384 => Algorithm::PS384,
        K::PS512 => Algorithm::PS512,
        K::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Why a token was refused: the `reason` of a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl Verifier {
    /// Builds a verifier from a JWKS document's text. Errors name the key
    /// (by index and `kid`) at fault.
    pub fn new(settings: JwtSettings, jwks_text: &str) -> Result<Verifier, String> {
        let set: JwkSet = serde_json::from_str(jwks_text)
            .map_err(|e| format!("not a JWKS document (line {}): {e}", e.line()))?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or_else(|| format!("keys[{i}] has no `kid`"))?;
            let at = |m: String| format!("keys[{i}] (kid `{kid}`): {m}");
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                return Err(at(
                    "an encryption key (`use: enc`), not a signing key".to_owned()
                ));
            }
            let mut algorithms = family(&jwk.algorithm).map_err(at)?.to_vec();
            if let Some(alg) = &jwk.common.key_algorithm {
                let own = key_algorithm(alg)
                    .ok_or_else(|| at(format!("`alg` {alg:?} is not a signature algorithm")))?;
                if !algorithms.contains(&own) {
                    return Err(at(format!("`alg` {own:?} does not fit the key type")));
                }
                algorithms = vec![own];
            }
            algorithms.retain(|a| settings.algorithms.contains(a));
            let key = DecodingKey::from_jwk(jwk).map_err(|e| at(e.to_string()))?;
            if keys.insert(kid.clone(), Key { key, algorithms }).is_some() {
                return Err(format!("keys[{i}]: kid `{kid}` appears twice"));
            }
        }
        if keys.is_empty() {
            return Err("the JWKS has no keys".to_owned());
        }
        let only = (keys.len() == 1)
            .then(|| keys.keys().next().cloned())
            .flatten();
        let validations = settings
            .algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = settings.leeway;
                v.validate_nbf = true;
                v.set_required_spec_claims(&["exp"]);
                if settings.issuers.is_empty() {
                    v.iss = None;
                } else {
                    v.set_issuer(&settings.issuers);
                }
                if settings.audiences.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&settings.audiences);
                }
                (*alg, v)
            })
            .collect();
        Ok(Verifier {
            settings,
            keys,
            only,
            validations,
            cache: Cache::new(),
        })
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// The claims of `token` (without its `Bearer ` prefix), from the cache
    /// or verified now.
    pub fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        if let Some(claims) = self.cache.get(token, now(), self.settings.leeway) {
            return Ok(claims);
        }
        let claims = self.verify_uncached(token)?;
        let seconds = |name: &str| claims.get(name).and_then(Value::as_u64);
        let (exp, nbf) = (seconds("exp").unwrap_or(0), seconds("nbf").unwrap_or(0));
        self.cache.put(token, claims.clone(), exp, nbf);
        Ok(claims)
    }

    /// [`Verifier::verify`] without the cache: the full check, every time
    /// (what a cache miss costs; the benchmark measures it).
    pub fn verify_uncached(&self, token: &str) -> Result<Claims, Rejected> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejected(format!("malformed token: {e}")))?;
        let kid = match header.kid.as_deref() {
            Some(kid) => kid,
            None => self
                .only
                .as_deref()
                .ok_or_else(|| Rejected("the token names no key (`kid`)".to_owned()))?,
        };
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| Rejected(format!("unknown key id `{kid}`")))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(Rejected(format!(
                "algorithm {:?} is not accepted for key `{kid}`",
                header.alg
            )));
        }
        let validation = self
            .validations
            .get(&header.alg)
            .ok_or_else(|| Rejected(format!("algorithm {:?} is not accepted", header.alg)))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| Rejected(reason(&e)))?;
        Ok(Arc::new(data.claims))
    }
}

fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".to_owned(),
        K::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        K::InvalidIssuer => "the token's issuer is not accepted".to_owned(),
        K::InvalidAudience => "the token's audience is not accepted".to_owned(),
        K::InvalidSignature => "the token's signature does not verify".to_owned(),
        K::InvalidAlgorithm => "the token's algorithm does not fit its key".to_owned(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        _ => format!("invalid token: {e}"),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Cached {
    token: Box<str>,
    claims: Claims,
    exp: u64,
    nbf: u64,
}

struct Cache {
    slots: Box<[ArcSwapOption<Cached>]>,
    hasher: foldhash::quality::RandomState,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            slots: (0..CACHE_SLOTS).map(|_| ArcSwapOption::empty()).collect(),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn slot(&self, token: &str) -> &ArcSwapOption<Cached> {
        let hash = self.hasher.hash_one(token) as usize;
        &self.slots[hash & (CACHE_SLOTS - 1)]
    }

    fn get(&self, token: &str, now: u64, leeway: u64) -> Option<Claims> {
        let guard = self.slot(token).load();
        let hit = guard.as_ref()?;
        // Same bounds as jsonwebtoken's own checks: exp < now - leeway is
        // expired, nbf > now + leeway is not valid yet.
        (&*hit.token == token
            && hit.exp >= now.saturating_sub(leeway)
            && hit.nbf <= now.saturating_add(leeway))
        .then(|| hit.claims.clone())
    }

    fn put(&self, token: &str, claims: Claims, exp: u64, nbf: u64) {
        self.slot(token).store(Some(Arc::new(Cached {
            token: token.into(),
            claims,
            exp,
            nbf,
        })));
    }
}
