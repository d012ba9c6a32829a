//! Who may call what: bearer tokens for the operator's endpoints and,
//! optionally, for the decision endpoints.
//!
//! Every route has an [`Access`] class (chosen in `routes.rs`, where a new
//! route cannot be added without choosing one); the [`Guard`] turns a class
//! and a request's `Authorization` header into "go on" or a 401. The two
//! token lists are separate duties: an admin token opens `/v1/reload`,
//! `/v1/policies`, `/v1/status` (and `/metrics` with `--metrics-auth
//! admin`) but not the decision endpoints, and a decision token opens only
//! those, so a service that asks questions cannot reload policies and an
//! operator's token is not spread over every caller.
//!
//! Each list lives in an `ArcSwap`: a request takes it with one atomic load
//! and no lock, and the follower (one task per file) re-reads the file
//! every [`POLL`] on the blocking pool, publishing a new list only when it
//! parses. A file that becomes unreadable or invalid is logged and the last
//! good tokens stay in force; a rotation (or a Kubernetes secret's symlink
//! swap) is picked up within a poll, whatever the file system tells or does
//! not tell.

mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response};
use serde::Serialize;

pub use tokens::{MIN_LEN, TokenSet};

use super::error::{ApiError, Code};
use super::respond::{Body, refuse};

/// How often token files are re-read.
pub const POLL: Duration = Duration::from_secs(1);

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks, discovery documents.
    Open,
    /// A decision token, when `--auth-token-file` is set.
    Decision,
    /// An admin token, when `--admin-token-file` is set.
    Admin,
    /// As `--metrics-auth` says: anyone, or an admin token.
    Metrics,
}

/// `--metrics-auth`: who may scrape `/metrics`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    #[default]
    Open,
    Admin,
}

/// One token file and the tokens last read from it.
#[derive(Debug)]
pub struct Keys {
    path: PathBuf,
    tokens: ArcSwap<TokenSet>,
}

impl Keys {
    /// Reads `path` now. Blocking: call it before the runtime starts or on
    /// the blocking pool.
    pub fn load(path: &Path) -> Result<Arc<Keys>, String> {
        Ok(Arc::new(Keys {
            path: path.to_owned(),
            tokens: ArcSwap::from_pointee(TokenSet::read(path)?),
        }))
    }

    /// The tokens in force.
    pub fn tokens(&self) -> Arc<TokenSet> {
        self.tokens.load_full()
    }

    /// Re-reads the file every `every` until the process ends. A read that
    /// differs from the last one is parsed; good tokens replace the ones in
    /// force, bad ones are logged once and ignored.
    pub async fn follow(self: Arc<Self>, every: Duration) {
        let mut seen: Option<Result<Vec<u8>, String>> = None;
        loop {
            tokio::time::sleep(every).await;
            let path = self.path.clone();
            let read = tokio::task::spawn_blocking(move || {
                std::fs::read(&path).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            if seen.as_ref() == Some(&read) {
                continue;
            }
            seen = Some(read.clone());
            let parsed = read
                .map_err(|e| format!("{}: cannot read the token file: {e}", self.path.display()))
                .and_then(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|_| format!("{}: not UTF-8 text", self.path.display()))
                })
                .and_then(|text| TokenSet::parse(&self.path, &text));
            match parsed {
                Ok(set) if *self.tokens.load_full() == set => {}
                Ok(set) => {
                    tracing::info!(
                        file = %self.path.display(),
                        tokens = set.len(),
                        "token file reloaded"
                    );
                    self.tokens.store(Arc::new(set));
                }
                Err(e) => tracing::error!("{e}; the last good tokens stay in force"),
            }
        }
    }
}

/// The server's token lists; open everywhere when none is configured.
#[derive(Debug, Default, Clone)]
pub struct Guard {
    admin: Option<Arc<Keys>>,
    decision: Option<Arc<Keys>>,
    metrics: MetricsAuth,
}

impl Guard {
    /// No tokens anywhere: every route is open.
    pub fn open() -> Guard {
        Guard::default()
    }

    /// Reads the token files named (blocking). `--metrics-auth admin`
    /// without admin tokens would leave `/metrics` open while claiming
    /// otherwise, so it is an error.
    pub fn load(
        admin: Option<&Path>,
        decision: Option<&Path>,
        metrics: MetricsAuth,
    ) -> Result<Guard, String> {
        if metrics == MetricsAuth::Admin && admin.is_none() {
            return Err("--metrics-auth admin needs --admin-token-file".to_owned());
        }
        Ok(Guard {
            admin: admin.map(Keys::load).transpose()?,
            decision: decision.map(Keys::load).transpose()?,
            metrics,
        })
    }

    /// Follows every token file until the process ends.
    pub async fn follow(&self, every: Duration) {
        let admin = self.admin.clone().map(|k| k.follow(every));
        let decision = self.decision.clone().map(|k| k.follow(every));
        tokio::join!(
            async {
                if let Some(f) = admin {
                    f.await
                }
            },
            async {
                if let Some(f) = decision {
                    f.await
                }
            }
        );
    }

    /// The token list a class of route needs, if any.
    fn keys(&self, access: Access) -> Option<&Keys> {
        match access {
            Access::Open => None,
            Access::Decision => self.decision.as_deref(),
            Access::Admin => self.admin.as_deref(),
            Access::Metrics => match self.metrics {
                MetricsAuth::Open => None,
                MetricsAuth::Admin => self.admin.as_deref(),
            },
        }
    }

    /// Lets the request through, or answers it with a 401 (with
    /// `WWW-Authenticate`, and `error="invalid_token"` when a token was
    /// given but is not one of the list's).
    // The 401 is a whole response, built only on refusal.
    #[allow(clippy::result_large_err)]
    pub fn admit(&self, access: Access, headers: &HeaderMap) -> Result<(), Response<Body>> {
        let Some(keys) = self.keys(access) else {
            return Ok(());
        };
        match bearer(headers) {
            Some(token) if keys.tokens.load().admits(token) => Ok(()),
            Some(_) => Err(unauthorized(
                "the bearer token is not valid for this endpoint",
                true,
            )),
            None => Err(unauthorized(
                "this endpoint needs a bearer token (Authorization: Bearer TOKEN)",
                false,
            )),
        }
    }

    /// What `/v1/status` says about authentication (never the tokens).
    pub fn view(&self) -> AuthView {
        AuthView {
            admin: self.admin.is_some(),
            decision: self.decision.is_some(),
            metrics: self.metrics,
        }
    }
}

/// The `auth` part of `/v1/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuthView {
    /// Whether the admin endpoints need a token.
    pub admin: bool,
    /// Whether the decision endpoints need a token.
    pub decision: bool,
    /// Who may read `/metrics`: `open` or `admin`.
    pub metrics: MetricsAuth,
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in
/// any case); `None` when there is no such header.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    Some(rest.trim_ascii())
}

fn unauthorized(message: &str, invalid: bool) -> Response<Body> {
    let mut response = refuse(&ApiError::new(Code::Unauthorized, message));
    let challenge = if invalid {
        r#"Bearer realm="doorman", error="invalid_token""#
    } else {
        r#"Bearer realm="doorman""#
    };
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Arc<Keys> {
        Arc::new(Keys {
            path: PathBuf::from("t"),
            tokens: ArcSwap::from_pointee(TokenSet::parse(Path::new("t"), text).unwrap()),
        })
    }

    fn headers(authorization: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = authorization {
            h.insert(AUTHORIZATION, HeaderValue::from_static(a));
        }
        h
    }

    #[test]
    fn each_class_needs_its_own_list() {
        let guard = Guard {
            admin: Some(keys("admin-token-0123456789")),
            decision: Some(keys("decide-token-0123456789")),
            metrics: MetricsAuth::Open,
        };
        let admin = headers(Some("Bearer admin-token-0123456789"));
        let decide = headers(Some("bearer  decide-token-0123456789 "));
        assert!(guard.admit(Access::Admin, &admin).is_ok());
        assert!(guard.admit(Access::Admin, &decide).is_err());
        assert!(guard.admit(Access::Decision, &decide).is_ok());
        assert!(guard.admit(Access::Decision, &admin).is_err());
        assert!(guard.admit(Access::Open, &headers(None)).is_ok());
        assert!(guard.admit(Access::Metrics, &headers(None)).is_ok());
        let closed = Guard {
            metrics: MetricsAuth::Admin,
            ..guard
        };
        assert!(closed.admit(Access::Metrics, &headers(None)).is_err());
        assert!(closed.admit(Access::Metrics, &admin).is_ok());
    }

    #[test]
    fn refusals_say_whether_a_token_was_given() {
        let guard = Guard {
            admin: Some(keys("admin-token-0123456789")),
            ..Guard::open()
        };
        let challenge = |h| {
            let r = guard.admit(Access::Admin, &h).unwrap_err();
            assert_eq!(r.status(), 401);
            r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned()
        };
        assert_eq!(challenge(headers(None)), r#"Bearer realm="doorman""#);
        assert_eq!(
            challenge(headers(Some("Basic YWRtaW46YWRtaW4="))),
            r#"Bearer realm="doorman""#
        );
        assert_eq!(
            challenge(headers(Some("Bearer nope"))),
            r#"Bearer realm="doorman", error="invalid_token""#
        );
        assert_eq!(
            challenge(headers(Some("Bearer"))),
            r#"Bearer realm="doorman""#
        );
    }

    #[test]
    fn no_lists_means_every_route_is_open() {
        let guard = Guard::open();
        for access in [
            Access::Open,
            Access::Decision,
            Access::Admin,
            Access::Metrics,
        ] {
            assert!(guard.admit(access, &headers(None)).is_ok());
        }
        assert!(Guard::load(None, None, MetricsAuth::Admin).is_err());
    }
}
