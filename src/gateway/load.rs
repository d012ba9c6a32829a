//! Reading a route map file and checking it against the schema.
//!
//! Every problem becomes a [`Diagnostic`] at the file, line and column of
//! the value at fault (serde-saphyr's spans), and the loader carries on past
//! the first so one run lists them all. Checked at load: the YAML's shape;
//! entity types exist; actions exist and apply to the principal's and the
//! resource's types; every `{param}` a template uses is defined (a path
//! parameter of its route; claims only with a JWT); context keys are
//! declared by the action's context, and each is read as the type the
//! schema declares; the JWKS parses into public keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cedar_policy::{EntityUid, Schema};
use cedar_policy_core::validator::ValidatorSchema;
use cedar_policy_core::validator::types::{EntityKind, Type};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::jwt::{JwtSettings, Verifier, parse_algorithm};
use super::path::PathTemplate;
use super::template::{EntityTemplate, Source, Template};
use super::{Authentication, ContextValue, Kind, Route, RouteMap, Unmatched, Upstream};
use crate::diag::Diagnostic;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    principal: PrincipalFile,
    #[serde(default)]
    unmatched: Option<Spanned<String>>,
    #[serde(default)]
    upstream_headers: BTreeMap<String, Spanned<String>>,
    routes: Vec<Spanned<RouteFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalFile {
    entity: Spanned<String>,
    #[serde(default)]
    jwt: Option<Spanned<JwtFile>>,
    #[serde(default)]
    trusted_header: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtFile {
    jwks: Spanned<String>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    issuer: OneOrMany,
    #[serde(default)]
    audience: OneOrMany,
    algorithms: Vec<Spanned<String>>,
    #[serde(default)]
    leeway_seconds: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::None => vec![],
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    method: Spanned<OneOrMany>,
    path: Spanned<String>,
    action: Spanned<String>,
    resource: Spanned<String>,
    #[serde(default)]
    context: BTreeMap<String, Spanned<Value>>,
}

/// Where a value is, for a diagnostic.
fn at<T>(file: &Path, s: &Spanned<T>, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(
        file,
        s.referenced.line() as usize,
        s.referenced.column() as usize,
        message,
    )
}

/// Reads the route map at `file` and checks it against `schema` (when
/// there is one). Returns the map and the bytes it read (the route map's
/// and the JWKS's, for the snapshot's revision), or every problem found.
pub fn load_route_map(
    file: &Path,
    schema: Option<&Schema>,
) -> Result<(RouteMap, Vec<u8>), Vec<Diagnostic>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![Diagnostic::new(file, 0, 0, format!("cannot read: {e}"))])?;
    let parsed: MapFile = serde_saphyr::from_str(&text)
        .map_err(|e| vec![crate::load::yaml_diagnostic(file, &text, &e)])?;
    let mut bytes = text.clone().into_bytes();
    let mut diags = Vec::new();
    let validator: Option<&ValidatorSchema> = schema.map(AsRef::as_ref);

    // ------------------------------------------------------------ principal
    let principal_spec = &parsed.principal.entity;
    let principal = match EntityTemplate::parse(&principal_spec.value) {
        Ok(t) => Some(t),
        Err(m) => {
            diags.push(at(file, principal_spec, format!("principal.entity: {m}")));
            None
        }
    };
    if let (Some(p), Some(v)) = (&principal, validator)
        && !knows_type(v, &p.type_name.to_string())
    {
        diags.push(at(
            file,
            principal_spec,
            format!(
                "principal.entity: `{}` is not an entity type in the schema",
                p.type_name
            ),
        ));
    }
    let mut jwks = None;
    let authentication = match (&parsed.principal.jwt, &parsed.principal.trusted_header) {
        (Some(_), Some(h)) => {
            diags.push(at(
                file,
                h,
                "principal: give `jwt` or `trusted_header`, not both",
            ));
            None
        }
        (None, None) => {
            diags.push(at(
                file,
                principal_spec,
                "principal: say where it comes from: `jwt` (a verified bearer token) or \
                 `trusted_header` (set by an authenticating proxy in front of doorman)",
            ));
            None
        }
        (None, Some(h)) => {
            let name = h.value.trim().to_ascii_lowercase();
            if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                diags.push(at(file, h, format!("`{}` is not a header name", h.value)));
            }
            Some(Authentication::TrustedHeader(name))
        }
        (Some(j), None) => match jwt_verifier(file, j, &mut diags, &mut bytes) {
            Some((v, path)) => {
                jwks = Some(path);
                Some(Authentication::Jwt(Box::new(v)))
            }
            None => None,
        },
    };
    let has_jwt = matches!(authentication, Some(Authentication::Jwt(_)));
    if let Some(p) = &principal {
        let check = p.id.check(|s| match s {
            Source::Claim(_) if !has_jwt => Err(format!("{{{}}}: claims need `jwt`", s.describe())),
            Source::Path(_) => Err(format!(
                "{{{}}}: the principal cannot read path parameters (each route has its own)",
                s.describe()
            )),
            _ => Ok(()),
        });
        if let Err(m) = check {
            diags.push(at(file, principal_spec, format!("principal.entity: {m}")));
        }
    }

    // ------------------------------------------------------------ the rest
    let unmatched = match parsed.unmatched.as_ref().map(|u| (u, u.value.as_str())) {
        None | Some((_, "deny")) => Unmatched::Deny,
        Some((_, "allow")) => Unmatched::Allow,
        Some((u, other)) => {
            diags.push(at(
                file,
                u,
                format!("unmatched: `{other}` is neither deny nor allow"),
            ));
            Unmatched::Deny
        }
    };
    let mut upstream = Vec::new();
    for (name, what) in &parsed.upstream_headers {
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            diags.push(at(
                file,
                what,
                format!("upstream_headers: `{name}` is not a header name"),
            ));
            continue;
        }
        let value = match what.value.as_str() {
            "principal" => Upstream::Principal,
            "action" => Upstream::Action,
            "resource" => Upstream::Resource,
            "policies" => Upstream::Policies,
            "revision" => Upstream::Revision,
            other => {
                diags.push(at(
                    file,
                    what,
                    format!(
                        "upstream_headers.{name}: `{other}` is not one of principal, action, \
                         resource, policies, revision"
                    ),
                ));
                continue;
            }
        };
        upstream.push((lower, value));
    }

    let mut routes = Vec::new();
    for (i, r) in parsed.routes.iter().enumerate() {
        let before = diags.len();
        let route = check_route(
            file,
            i,
            r,
            principal.as_ref(),
            validator,
            has_jwt,
            &mut diags,
        );
        if diags.len() == before
            && let Some(route) = route
        {
            routes.push(route);
        }
    }
    match (principal, authentication) {
        (Some(principal), Some(authentication)) if diags.is_empty() => Ok((
            RouteMap {
                file: file.to_owned(),
                jwks,
                authentication,
                principal,
                routes,
                unmatched,
                upstream,
            },
            bytes,
        )),
        _ => Err(diags),
    }
}

fn jwt_verifier(
    file: &Path,
    j: &Spanned<JwtFile>,
    diags: &mut Vec<Diagnostic>,
    bytes: &mut Vec<u8>,
) -> Option<(Verifier, PathBuf)> {
    let mut algorithms = Vec::new();
    for a in &j.value.algorithms {
        match parse_algorithm(&a.value) {
            Ok(alg) => algorithms.push(alg),
            Err(m) => diags.push(at(file, a, format!("principal.jwt.algorithms: {m}"))),
        }
    }
    if j.value.algorithms.is_empty() {
        diags.push(at(
            file,
            j,
            "principal.jwt.algorithms: name at least one (e.g. [RS256])",
        ));
    }
    let header = j
        .value
        .header
        .as_deref()
        .unwrap_or("authorization")
        .to_ascii_lowercase();
    // The JWKS path is relative to the route map's own directory.
    let jwks_path = file
        .parent()
        .unwrap_or(Path::new(""))
        .join(&j.value.jwks.value);
    let text = match std::fs::read_to_string(&jwks_path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(at(
                file,
                &j.value.jwks,
                format!(
                    "principal.jwt.jwks: cannot read {}: {e}",
                    jwks_path.display()
                ),
            ));
            return None;
        }
    };
    bytes.extend_from_slice(b"\0jwks\0");
    bytes.extend_from_slice(text.as_bytes());
    let settings = JwtSettings {
        header,
        issuers: j.value.issuer.to_vec(),
        audiences: j.value.audience.to_vec(),
        algorithms,
        leeway: j.value.leeway_seconds.unwrap_or(30),
    };
    if settings.issuers.is_empty() || settings.audiences.is_empty() {
        diags.push(at(
            file,
            j,
            "principal.jwt: `issuer` and `audience` are required (a token for another \
             service must not be accepted here)",
        ));
    }
    match Verifier::new(settings, &text) {
        Ok(v) => Some((v, jwks_path)),
        Err(m) => {
            diags.push(Diagnostic::new(&jwks_path, 0, 0, m));
            None
        }
    }
}

fn knows_type(schema: &ValidatorSchema, name: &str) -> bool {
    schema.entity_types().any(|t| t.name().to_string() == name)
}

fn check_route(
    file: &Path,
    i: usize,
    r: &Spanned<RouteFile>,
    principal: Option<&EntityTemplate>,
    schema: Option<&ValidatorSchema>,
    has_jwt: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Route> {
    let r = &r.value;
    let field = |name: &str| format!("routes[{i}].{name}");
    let mut methods = r.method.value.to_vec();
    if methods.iter().any(|m| m == "*") {
        methods.clear();
    } else if methods.is_empty() {
        diags.push(at(
            file,
            &r.method,
            format!("{}: name a method, or `*`", field("method")),
        ));
    } else if let Some(m) = methods
        .iter()
        .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
    {
        diags.push(at(
            file,
            &r.method,
            format!(
                "{}: `{m}` is not an upper-case HTTP method",
                field("method")
            ),
        ));
    }
    let path = match PathTemplate::parse(&r.path.value) {
        Ok(p) => Some(p),
        Err(m) => {
            diags.push(at(file, &r.path, format!("{}: {m}", field("path"))));
            None
        }
    };
    let defined = |s: &Source| -> Result<(), String> {
        match s {
            Source::Path(name) => match &path {
                Some(p) if p.params().any(|n| n == name) => Ok(()),
                Some(_) => Err(format!(
                    "{{{name}}} is not a parameter of the path `{}`",
                    r.path.value
                )),
                None => Ok(()),
            },
            Source::Claim(_) if !has_jwt => {
                Err(format!("{{{}}}: claims need `principal.jwt`", s.describe()))
            }
            _ => Ok(()),
        }
    };
    let action = match crate::uid::parse_action(&r.action.value) {
        Ok(a) => Some(a),
        Err(m) => {
            diags.push(at(file, &r.action, format!("{}: {m}", field("action"))));
            None
        }
    };
    let resource = match EntityTemplate::parse(&r.resource.value) {
        Ok(t) => {
            if let Err(m) = t.id.check(defined) {
                diags.push(at(file, &r.resource, format!("{}: {m}", field("resource"))));
            }
            Some(t)
        }
        Err(m) => {
            diags.push(at(file, &r.resource, format!("{}: {m}", field("resource"))));
            None
        }
    };
    // The schema: the action applies to these principal and resource types.
    let mut declared: Option<Type> = None;
    if let (Some(schema), Some(action)) = (schema, &action) {
        let core: &cedar_policy_core::ast::EntityUID = action.as_ref();
        match schema.get_action_id(core) {
            None => diags.push(at(
                file,
                &r.action,
                format!(
                    "{}: `{action}` is not an action in the schema",
                    field("action")
                ),
            )),
            Some(a) => {
                let principals: Vec<String> =
                    a.applies_to_principals().map(|t| t.to_string()).collect();
                let resources: Vec<String> =
                    a.applies_to_resources().map(|t| t.to_string()).collect();
                if let Some(p) = principal
                    && !principals.contains(&p.type_name.to_string())
                {
                    diags.push(at(
                        file,
                        &r.action,
                        format!(
                            "{}: `{action}` does not apply to principals of type `{}` \
                             (it applies to: {})",
                            field("action"),
                            p.type_name,
                            list(&principals)
                        ),
                    ));
                }
                if let Some(t) = &resource {
                    let ty = t.type_name.to_string();
                    if !knows_type(schema, &ty) {
                        diags.push(at(
                            file,
                            &r.resource,
                            format!(
                                "{}: `{ty}` is not an entity type in the schema",
                                field("resource")
                            ),
                        ));
                    } else if !resources.contains(&ty) {
                        diags.push(at(
                            file,
                            &r.resource,
                            format!(
                                "{}: `{action}` does not apply to resources of type `{ty}` \
                                 (it applies to: {})",
                                field("resource"),
                                list(&resources)
                            ),
                        ));
                    }
                }
                declared = a.context_type().cloned();
            }
        }
    }
    let mut context = Vec::new();
    for (key, value) in &r.context {
        let name = format!("{}.{key}", field("context"));
        let kind = match (&declared, schema) {
            (_, None) => Kind::Untyped,
            (Some(Type::Record { attrs, .. }), Some(_)) => match attrs.get_attr(key) {
                Some(a) => match kind_of(&a.attr_type) {
                    Ok(k) => k,
                    Err(m) => {
                        diags.push(at(file, value, format!("{name}: {m}")));
                        continue;
                    }
                },
                None => {
                    diags.push(at(
                        file,
                        value,
                        format!("{name}: the action's context declares no `{key}`"),
                    ));
                    continue;
                }
            },
            (_, Some(_)) => {
                diags.push(at(
                    file,
                    value,
                    format!("{name}: the action declares no context"),
                ));
                continue;
            }
        };
        let entry = match &value.value {
            Value::String(text) => match Template::parse(text) {
                Ok(t) => {
                    if let Err(m) = t.check(defined) {
                        diags.push(at(file, value, format!("{name}: {m}")));
                        continue;
                    }
                    ContextValue::Template(t, kind)
                }
                Err(m) => {
                    diags.push(at(file, value, format!("{name}: {m}")));
                    continue;
                }
            },
            other @ (Value::Bool(_) | Value::Number(_)) => ContextValue::Literal(other.clone()),
            _ => {
                diags.push(at(
                    file,
                    value,
                    format!("{name}: a context value is a string template, a number or a boolean"),
                ));
                continue;
            }
        };
        context.push((key.clone(), entry));
    }
    // Required context attributes the route does not fill would make every
    // request an invalid one: say so now.
    if let Some(Type::Record { attrs, .. }) = &declared {
        for (key, a) in attrs.iter() {
            if a.is_required && !r.context.contains_key(key.as_str()) {
                diags.push(at(
                    file,
                    &r.action,
                    format!(
                        "{}: the action's context requires `{key}`; add it under context",
                        field("action")
                    ),
                ));
            }
        }
    }
    let (Some(path), Some(action), Some(resource)) = (path, action, resource) else {
        return None;
    };
    Some(Route {
        methods,
        path,
        action: EntityUid::clone(&action),
        resource,
        context,
        line: r.path.referenced.line() as usize,
    })
}

fn kind_of(ty: &Type) -> Result<Kind, String> {
    Ok(match ty {
        Type::Long => Kind::Long,
        Type::Bool(_) => Kind::Bool,
        Type::String => Kind::String,
        Type::ExtensionType { .. } => Kind::Extension,
        Type::Entity(EntityKind::Entity(lub)) => match lub.get_single_entity() {
            Some(t) => Kind::Entity(t.to_string()),
            None => return Err("an entity of several types cannot be filled from a route".into()),
        },
        other => {
            return Err(format!(
                "a value of type {other} cannot be filled from a route (only Long, Bool, \
                 String, entities and extension types)"
            ));
        }
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing: it is an action group".to_owned()
    } else {
        names.join(", ")
    }
}

/// The files a route map reads (itself and its JWKS), for the file watcher
/// and the reload's settle check; the JWKS path is read from the file as it
/// is now (a route map that does not parse watches only itself).
pub fn files_of(route_map: &Path) -> Vec<PathBuf> {
    let mut files = vec![route_map.to_owned()];
    #[derive(Deserialize)]
    struct Peek {
        principal: Option<PeekPrincipal>,
    }
    #[derive(Deserialize)]
    struct PeekPrincipal {
        jwt: Option<PeekJwt>,
    }
    #[derive(Deserialize)]
    struct PeekJwt {
        jwks: Option<String>,
    }
    if let Ok(text) = std::fs::read_to_string(route_map)
        && let Ok(peek) = serde_saphyr::from_str::<Peek>(&text)
        && let Some(jwks) = peek.principal.and_then(|p| p.jwt).and_then(|j| j.jwks)
    {
        files.push(route_map.parent().unwrap_or(Path::new("")).join(jwks));
    }
    files
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::*;
    use crate::gateway::{Headers, Refusal, Request};

    const SCHEMA: &str = r#"
        entity User;
        entity Doc;
        action read appliesTo { principal: User, resource: Doc,
                                context: { limit: Long, draft: Bool, owner: User, note?: String } };
    "#;

    struct H(Vec<(&'static str, &'static str)>);
    impl Headers for H {
        fn header(&self, name: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        }
    }

    fn map(text: &str) -> Result<RouteMap, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routes.yaml");
        std::fs::write(&file, text).unwrap();
        let schema = Schema::from_str(SCHEMA).unwrap();
        load_route_map(&file, Some(&schema)).map(|(m, _)| m)
    }

    const TRUSTED: &str = r#"
principal:
  entity: 'User::"{header.x-user-id}"'
  trusted_header: X-User-Id
routes:
  - method: GET
    path: /docs/{doc}
    action: read
    resource: 'Doc::"{doc}"'
    context:
      limit: '{query.limit}'
      draft: '{query.draft}'
      owner: '{header.x-owner}'
      note: 'doc {doc} by {header.x-user-id}'
"#;

    #[test]
    fn context_values_are_typed_by_the_schema() {
        let m = map(TRUSTED).expect("loads");
        let h = H(vec![("x-user-id", "u1"), ("x-owner", "u2")]);
        let r = m
            .resolve(&Request::from_target(
                "GET",
                "/docs/d1?limit=12&draft=true",
                &h,
            ))
            .expect("resolves");
        assert_eq!(r.query.principal.to_string(), r#"User::"u1""#);
        assert_eq!(
            r.query.context,
            json!({"limit": 12, "draft": true, "owner": {"__entity": {"type": "User", "id": "u2"}},
                   "note": "doc d1 by u1"})
        );
        for (target, field) in [
            ("/docs/d1?limit=12x&draft=true", "context.limit"),
            ("/docs/d1?limit=1&draft=yes", "context.draft"),
            ("/docs/d1?draft=true", "context.limit"),
        ] {
            match m.resolve(&Request::from_target("GET", target, &h)) {
                Err(Refusal::BadRequest { field: f, .. }) => assert_eq!(f, field, "{target}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_trusted_header_must_be_present() {
        let m = map(TRUSTED).expect("loads");
        let none = H(vec![("x-owner", "u2")]);
        let r = m.resolve(&Request::from_target(
            "GET",
            "/docs/d1?limit=1&draft=false",
            &none,
        ));
        assert!(matches!(r, Err(Refusal::Unauthenticated { .. })), "{r:?}");
        let r = m.resolve(&Request::from_target("POST", "/docs/d1", &none));
        assert_eq!(r.unwrap_err(), Refusal::NoRoute);
    }

    #[test]
    fn load_errors_name_the_line() {
        let d = map(&TRUSTED.replace("      draft: '{query.draft}'\n", "")).unwrap_err();
        assert!(d[0].message.contains("requires `draft`"), "{d:?}");
        let d = map(&TRUSTED.replace("{header.x-owner}", "{claims.owner}")).unwrap_err();
        assert!(d[0].message.contains("claims need"), "{d:?}");
        assert_eq!(d[0].line, 13);
        let d = map("principal: [").unwrap_err();
        assert_eq!(d[0].line, 1, "{d:?}");
        let d = map(&TRUSTED
            .replace("unmatched", "x")
            .replace("routes:", "unmatched: maybe\nroutes:"))
        .unwrap_err();
        assert!(d[0].message.contains("neither deny nor allow"), "{d:?}");
        assert_eq!(d[0].line, 5);
    }
}
