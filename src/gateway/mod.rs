//! Gateway mode: an HTTP request (method, path, query string, headers) →
//! a [`Query`], through a route map.
//!
//! A reverse proxy (Envoy, Istio, nginx, Traefik) asks doorman whether to
//! let a request through; it knows nothing about Cedar. The route map says
//! how to read the request: who the principal is (a verified JWT's claims,
//! or a header an authenticating proxy set), and for each method and path
//! template which action on which resource it is, with what context.
//!
//! This module is the library half, with no HTTP server types: the route
//! map's types and loader ([`load`], checked against the schema so that a
//! route naming an unknown action or type never loads), path matching
//! ([`path`]), templates ([`template`]) and token verification ([`jwt`]).
//! [`RouteMap::resolve`] turns one request into a [`Resolved`] query or a
//! [`Refusal`]; the server's adapters (`server::gateway`, one file per
//! protocol) translate their protocol to a [`Request`] and the outcome back,
//! and answer from the same decision path as `/v1/is_authorized`.
//!
//! The route map is part of the snapshot: it is loaded, validated and hot
//! reloaded with the policies, so a bad edit keeps the last good snapshot
//! and routes always agree with the schema they were checked against.

pub mod jwt;
pub mod load;
pub mod path;
pub mod template;

use std::borrow::Cow;
use std::path::PathBuf;

use cedar_policy::EntityUid;
use serde_json::Value;

use crate::decide::Query;
pub use load::load_route_map;
use path::{Params, PathTemplate};
use template::{EntityTemplate, Source, Template, Values};

/// What to do with a request no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    Deny,
    Allow,
}

/// How the principal is established.
#[derive(Debug)]
pub enum Authentication {
    /// A bearer token in a header, verified against the JWKS.
    Jwt(Box<jwt::Verifier>),
    /// A header an authenticating proxy in front sets (lower-case name);
    /// the route map must say so explicitly, since any client can send it.
    TrustedHeader(String),
}

/// How a context value is typed, from the schema's context declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A string parsed as a 64-bit integer.
    Long,
    /// `true` or `false`.
    Bool,
    String,
    /// An entity of this type, the value its id.
    Entity(String),
    /// An extension type (datetime, decimal, ipaddr): the string is handed
    /// to Cedar's schema-directed parser.
    Extension,
    /// Not declared (no schema): strings stay strings.
    Untyped,
}

/// One context entry of a route.
#[derive(Debug, Clone)]
pub enum ContextValue {
    /// A literal from the route map, used as is.
    Literal(Value),
    Template(Template, Kind),
}

/// One route: method(s) and path template → action, resource, context.
#[derive(Debug)]
pub struct Route {
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
    pub path: PathTemplate,
    pub action: EntityUid,
    pub resource: EntityTemplate,
    pub context: Vec<(String, ContextValue)>,
    /// Where the route is in the file (1-based), for logs.
    pub line: usize,
}

/// What an allowed request hands upstream, per header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Principal,
    Action,
    Resource,
    /// The determining policies, comma-separated.
    Policies,
    Revision,
}

/// A loaded, schema-checked route map.
#[derive(Debug)]
pub struct RouteMap {
    pub file: PathBuf,
    /// The JWKS file, when the principal comes from a JWT.
    pub jwks: Option<PathBuf>,
    pub authentication: Authentication,
    pub principal: EntityTemplate,
    pub routes: Vec<Route>,
    pub unmatched: Unmatched,
    /// Header name (lower-case) and what it carries.
    pub upstream: Vec<(String, Upstream)>,
}

/// A request as a gateway describes it.
pub struct Request<'a> {
    /// As sent (`GET`); compared case-sensitively, as HTTP methods are.
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a dyn Headers,
}

impl<'a> Request<'a> {
    /// Splits a request target (`/inboxes/x?limit=3`) into path and query.
    pub fn from_target(method: &'a str, target: &'a str, headers: &'a dyn Headers) -> Self {
        let target = target.split_once('#').map_or(target, |(t, _)| t);
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Request {
            method,
            path,
            query,
            headers,
        }
    }
}

/// Header lookup by lower-case name.
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

/// Why a request gets no question to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credential, or one that does not verify: 401.
    Unauthenticated { reason: String },
    /// No route matches the method and path.
    NoRoute,
    /// The request matched a route but cannot fill it (a missing query
    /// parameter, a Long that does not parse).
    BadRequest { field: String, message: String },
}

impl Refusal {
    /// One line for a response body or header.
    pub fn reason(&self) -> String {
        match self {
            Refusal::Unauthenticated { reason } => reason.clone(),
            Refusal::NoRoute => "no route matches the request".to_owned(),
            Refusal::BadRequest { field, message } => format!("{field}: {message}"),
        }
    }
}

/// A request read through the route map.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub query: Query,
    /// Index of the route that matched, in file order.
    pub route: usize,
}

/// The values one request offers to templates.
struct Offered<'r, 'a> {
    request: &'r Request<'a>,
    params: &'r Params<'r>,
    claims: Option<&'r jwt::Claims>,
}

impl Values for Offered<'_, '_> {
    fn value(&self, source: &Source) -> Option<Cow<'_, Value>> {
        let text = |s: &str| Cow::Owned(Value::String(s.to_owned()));
        match source {
            Source::Path(name) => self
                .params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| text(v)),
            Source::Query(name) => path::query_param(self.request.query?, name).map(|v| text(&v)),
            Source::Header(name) => self.request.headers.header(name).map(text),
            Source::Claim(steps) => {
                let mut value: &Value = self.claims?.get(&steps[0])?;
                for step in &steps[1..] {
                    value = value.get(step)?;
                }
                Some(Cow::Borrowed(value))
            }
            Source::Time => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Some(Cow::Owned(Value::String(template::rfc3339(now))))
            }
        }
    }
}

impl RouteMap {
    /// The route `request` matches (first in file order) and its
    /// parameters.
    pub fn route<'r>(&'r self, request: &Request<'r>) -> Option<(usize, &'r Route, Params<'r>)> {
        self.routes.iter().enumerate().find_map(|(i, route)| {
            if !route.methods.is_empty() && !route.methods.iter().any(|m| m == request.method) {
                return None;
            }
            route.path.matches(request.path).map(|p| (i, route, p))
        })
    }

    /// Reads `request` into a query: route, then credential, then the
    /// templates. An unmatched request is refused before its credential is
    /// looked at (the adapter then applies `unmatched`).
    pub fn resolve(&self, request: &Request<'_>) -> Result<Resolved, Refusal> {
        let (index, route, params) = self.route(request).ok_or(Refusal::NoRoute)?;
        let claims = match &self.authentication {
            Authentication::Jwt(verifier) => Some(bearer(verifier, request)?),
            Authentication::TrustedHeader(name) => match request.headers.header(name) {
                Some(v) if !v.trim().is_empty() => None,
                _ => {
                    return Err(Refusal::Unauthenticated {
                        reason: format!("no `{name}` header"),
                    });
                }
            },
        };
        let offered = Offered {
            request,
            params: &params,
            claims: claims.as_ref(),
        };
        let principal = self
            .principal
            .render(&offered)
            .map_err(|m| Refusal::Unauthenticated {
                reason: format!("principal: {}: {}", m.source, m.message),
            })?;
        let resource = route
            .resource
            .render(&offered)
            .map_err(|m| bad(format!("resource ({})", m.source), m.message))?;
        let mut context = serde_json::Map::new();
        for (key, value) in &route.context {
            let value = match value {
                ContextValue::Literal(v) => v.clone(),
                ContextValue::Template(t, kind) => typed(t, kind, &offered)
                    .map_err(|message| bad(format!("context.{key}"), message))?,
            };
            context.insert(key.clone(), value);
        }
        Ok(Resolved {
            query: Query {
                principal,
                action: route.action.clone(),
                resource,
                context: Value::Object(context),
            },
            route: index,
        })
    }
}

fn bad(field: String, message: String) -> Refusal {
    Refusal::BadRequest { field, message }
}

fn bearer(verifier: &jwt::Verifier, request: &Request<'_>) -> Result<jwt::Claims, Refusal> {
    let header = &verifier.settings().header;
    let unauthenticated = |reason: String| Refusal::Unauthenticated { reason };
    let value = request
        .headers
        .header(header)
        .ok_or_else(|| unauthenticated(format!("no `{header}` header")))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated(format!("`{header}` is not `Bearer <token>`")))?;
    verifier.verify(token).map_err(|r| unauthenticated(r.0))
}

/// A context value read as the schema declares it.
fn typed(template: &Template, kind: &Kind, values: &dyn Values) -> Result<Value, String> {
    // A lone placeholder keeps a claim's own JSON type.
    if let Some(source) = template.single()
        && let Some(v) = values.value(source)
    {
        match (kind, v.as_ref()) {
            (Kind::Long, Value::Number(n)) if n.is_i64() => return Ok(v.into_owned()),
            (Kind::Bool, Value::Bool(_)) => return Ok(v.into_owned()),
            (Kind::Untyped, Value::Number(_) | Value::Bool(_)) => return Ok(v.into_owned()),
            _ => {}
        }
    }
    let text = template
        .render(values)
        .map_err(|m| format!("{}: {}", m.source, m.message))?;
    Ok(match kind {
        Kind::Long => Value::from(
            text.trim()
                .parse::<i64>()
                .map_err(|_| format!("`{text}` is not an integer (the schema declares a Long)"))?,
        ),
        Kind::Bool => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => {
                return Err(format!(
                    "`{text}` is not true or false (the schema declares a Bool)"
                ));
            }
        },
        Kind::Entity(ty) => serde_json::json!({"__entity": {"type": ty, "id": text}}),
        Kind::String | Kind::Extension | Kind::Untyped => Value::String(text),
    })
}
