//! The `{...}` templates a route map fills from a request: entity ids
//! (`Member::"{claims.company}-{claims.sub}"`, `Inbox::"{inbox}"`) and
//! context values (`"{query.limit}"`).
//!
//! A template is parsed once, at load time, into literal text and named
//! sources, so that filling it per request is a few string copies. Which
//! sources exist is settled at load too ([`Template::check`]): a path
//! parameter the route's path does not define, or a claim without a JWT,
//! is a load error at the template's line, never a request-time surprise.

use std::borrow::Cow;

use serde_json::Value;

/// Where one `{...}` takes its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `{inbox}`: a parameter of the route's path template.
    Path(String),
    /// `{query.limit}`: a query-string parameter (the first, if repeated).
    Query(String),
    /// `{header.x-team}`: a request header (names are case-insensitive;
    /// kept lower-case).
    Header(String),
    /// `{claims.sub}`, `{claims.org.id}`: a claim of the verified token,
    /// dots stepping into objects.
    Claim(Vec<String>),
    /// `{request.time}`: doorman's clock when the request is checked, as
    /// RFC 3339 UTC (`2026-12-03T11:52:00Z`, a Cedar `datetime`).
    Time,
}

impl Source {
    fn parse(name: &str) -> Result<Source, String> {
        let name = name.trim();
        if name == "request.time" {
            return Ok(Source::Time);
        }
        let nonempty = |rest: &str, what: &str| {
            if rest.is_empty() {
                Err(format!("`{{{name}}}`: {what} needs a name after the dot"))
            } else {
                Ok(rest.to_owned())
            }
        };
        if let Some(rest) = name.strip_prefix("query.") {
            return Ok(Source::Query(nonempty(rest, "query")?));
        }
        if let Some(rest) = name.strip_prefix("header.") {
            return Ok(Source::Header(
                nonempty(rest, "header")?.to_ascii_lowercase(),
            ));
        }
        if let Some(rest) = name.strip_prefix("claims.") {
            let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("`{{{name}}}`: an empty claim name"));
            }
            return Ok(Source::Claim(path));
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "`{{{name}}}` is not a parameter: use {{name}} for a path parameter, \
                 {{query.NAME}}, {{header.NAME}} or {{claims.NAME}}"
            ));
        }
        Ok(Source::Path(name.to_owned()))
    }

    /// How the source is written, for messages (`query.limit`).
    pub fn describe(&self) -> String {
        match self {
            Source::Path(n) => n.clone(),
            Source::Query(n) => format!("query.{n}"),
            Source::Header(n) => format!("header.{n}"),
            Source::Claim(p) => format!("claims.{}", p.join(".")),
            Source::Time => "request.time".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Source),
}

/// Literal text with `{...}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a request offers to fill templates with.
pub trait Values {
    /// The value of `source`; `None` when the request does not carry it.
    fn value(&self, source: &Source) -> Option<Cow<'_, Value>>;
}

impl Template {
    /// Parses `text`; `{` and `}` only ever open and close a placeholder.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!("`{text}`: a `}}` without its `{{`"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}`: a `{{` without its `}}`"))?;
            let name = &after[..close];
            if name.contains('{') {
                return Err(format!("`{text}`: placeholders cannot nest"));
            }
            parts.push(Part::Var(Source::parse(name)?));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The sources the template reads.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(s) => Some(s),
            Part::Text(_) => None,
        })
    }

    /// The template is exactly one placeholder (`"{query.limit}"`): its
    /// value keeps its JSON type (a numeric claim stays a number).
    pub fn single(&self) -> Option<&Source> {
        match self.parts.as_slice() {
            [Part::Var(s)] => Some(s),
            _ => None,
        }
    }

    /// The first source `defined` refuses, as a message.
    pub fn check(&self, defined: impl Fn(&Source) -> Result<(), String>) -> Result<(), String> {
        self.sources().try_for_each(defined)
    }

    /// The template filled in as text. A missing value, or one that is not
    /// a string, number or boolean, is an error naming its source.
    pub fn render(&self, values: &dyn Values) -> Result<String, Missing> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(source) => {
                    let value = values
                        .value(source)
                        .ok_or_else(|| Missing::absent(source))?;
                    match value.as_ref() {
                        Value::String(s) => out.push_str(s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        _ => return Err(Missing::not_scalar(source)),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A placeholder the request could not fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The source as written (`claims.company`, `query.limit`).
    pub source: String,
    pub message: String,
    /// True when the value came (or should have come) from the token.
    pub from_claims: bool,
}

impl Missing {
    fn absent(source: &Source) -> Missing {
        let what = match source {
            Source::Path(_) => "the path parameter is empty",
            Source::Query(_) => "the query parameter is missing",
            Source::Header(_) => "the header is missing",
            Source::Claim(_) => "the token has no such claim",
            Source::Time => "no clock",
        };
        Missing {
            source: source.describe(),
            message: what.to_owned(),
            from_claims: matches!(source, Source::Claim(_)),
        }
    }

    fn not_scalar(source: &Source) -> Missing {
        Missing {
            source: source.describe(),
            message: "not a string, number or boolean".to_owned(),
            from_claims: matches!(source, Source::Claim(_)),
        }
    }
}

/// An entity reference with a templated id: `Inbox::"{inbox}"`.
#[derive(Debug, Clone)]
pub struct EntityTemplate {
    pub type_name: cedar_policy::EntityTypeName,
    pub id: Template,
}

impl EntityTemplate {
    pub fn parse(text: &str) -> Result<EntityTemplate, String> {
        let text = text.trim();
        let shape = || format!("`{text}` is not an entity template like Inbox::\"{{inbox}}\"");
        let (ty, quoted) = text.split_once("::\"").ok_or_else(shape)?;
        let id = quoted.strip_suffix('"').ok_or_else(shape)?;
        if id.contains('"') || id.contains('\\') {
            return Err(format!(
                "`{text}`: the id may not contain quotes or backslashes"
            ));
        }
        let type_name = crate::uid::entity_type(ty)
            .map_err(|e| format!("`{ty}` is not an entity type name: {e}"))?;
        Ok(EntityTemplate {
            type_name,
            id: Template::parse(id)?,
        })
    }

    pub fn render(&self, values: &dyn Values) -> Result<cedar_policy::EntityUid, Missing> {
        let id = self.id.render(values)?;
        Ok(cedar_policy::EntityUid::from_type_name_and_id(
            self.type_name.clone(),
            cedar_policy::EntityId::new(id),
        ))
    }
}

/// `secs` since the Unix epoch as RFC 3339 UTC, to the second (chrono,
/// as the decision log and the status endpoint write their times).
pub fn rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Values for Fixed {
        fn value(&self, source: &Source) -> Option<Cow<'_, Value>> {
            match source {
                Source::Path(n) if n == "inbox" => Some(Cow::Owned(Value::from("acme-support"))),
                Source::Claim(p) if p == &["n"] => Some(Cow::Owned(Value::from(7))),
                Source::Claim(p) if p == &["obj"] => Some(Cow::Owned(serde_json::json!({}))),
                _ => None,
            }
        }
    }

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("x-{inbox}-{claims.n}").unwrap();
        assert_eq!(t.render(&Fixed).unwrap(), "x-acme-support-7");
        assert!(t.single().is_none());
        let t = Template::parse("{query.limit}").unwrap();
        assert_eq!(t.single(), Some(&Source::Query("limit".into())));
        let missing = t.render(&Fixed).unwrap_err();
        assert_eq!(missing.source, "query.limit");
        let obj = Template::parse("{claims.obj}").unwrap().render(&Fixed);
        assert!(obj.unwrap_err().message.contains("not a string"));
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_297_520), "2026-12-03T11:32:00Z");
        assert_eq!(
            Template::parse("{request.time}").unwrap().single(),
            Some(&Source::Time)
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "{",
            "}",
            "{a{b}}",
            "{}",
            "{query.}",
            "{claims.a..b}",
            "{a b}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(
            Template::parse("{header.X-Team}").unwrap().single(),
            Some(&Source::Header("x-team".into()))
        );
    }

    #[test]
    fn entity_templates() {
        let e = EntityTemplate::parse("Inbox::\"{inbox}\"").unwrap();
        assert_eq!(
            e.render(&Fixed).unwrap().to_string(),
            "Inbox::\"acme-support\""
        );
        assert!(EntityTemplate::parse("Inbox::{inbox}").is_err());
        assert!(EntityTemplate::parse("In box::\"{inbox}\"").is_err());
        assert!(EntityTemplate::parse("Inbox::\"a\"b\"").is_err());
    }
}
