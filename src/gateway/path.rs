//! Path templates (`/inboxes/{inbox}/messages`) and matching a request
//! path against them.
//!
//! A template is split into segments once; a segment is literal text or a
//! whole-segment `{name}`. Matching compares segment by segment without
//! allocating, and percent-decodes only the parameters it captures, so
//! `/inboxes/acme%20support` gives `inbox = "acme support"` while a literal
//! segment must be written as it is sent.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
}

/// The parameters one match captured, in template order.
pub type Params<'a> = Vec<(&'a str, Cow<'a, str>)>;

impl PathTemplate {
    pub fn parse(text: &str) -> Result<PathTemplate, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("`{text}`: a path template starts with `/`"))?;
        if text.contains('?') || text.contains('#') {
            return Err(format!(
                "`{text}`: a path template has no query string; read query parameters \
                 with {{query.NAME}}"
            ));
        }
        let mut segments = Vec::new();
        let mut seen = Vec::new();
        if !rest.is_empty() {
            for part in rest.split('/') {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    let valid = !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !valid {
                        return Err(format!("`{text}`: `{part}` is not a parameter name"));
                    }
                    if seen.contains(&name) {
                        return Err(format!("`{text}`: parameter `{name}` appears twice"));
                    }
                    seen.push(name);
                    segments.push(Segment::Param(name.to_owned()));
                } else if part.contains(['{', '}']) {
                    return Err(format!(
                        "`{text}`: `{part}`: a parameter must be a whole segment, like /{{inbox}}/"
                    ));
                } else {
                    segments.push(Segment::Literal(part.to_owned()));
                }
            }
        }
        Ok(PathTemplate { segments })
    }

    /// The parameter names the template defines.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(n) => Some(n.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Matches `path` (without its query string). A parameter matches one
    /// non-empty segment.
    pub fn matches<'a>(&'a self, path: &'a str) -> Option<Params<'a>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let mut params = Vec::new();
        if self.segments.is_empty() {
            return rest.is_empty().then_some(params);
        }
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => params.push((
                    name.as_str(),
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?,
                )),
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// The first value of query parameter `name` in `query` (form-decoded:
/// `+` is a space).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key).as_deref() == Some(name)).then(|| decode(value))?
    })
}

fn decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains(['+', '%']) {
        return Some(Cow::Borrowed(text));
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| Cow::Owned(s.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let t = PathTemplate::parse("/inboxes/{inbox}/messages").unwrap();
        let p = t.matches("/inboxes/acme%20support/messages").unwrap();
        assert_eq!(p, vec![("inbox", Cow::Borrowed("acme support"))]);
        assert!(t.matches("/inboxes/x/messages/").is_none());
        assert!(t.matches("/inboxes//messages").is_none());
        assert!(t.matches("/inboxes/x").is_none());
        assert!(t.matches("inboxes/x/messages").is_none());
        let root = PathTemplate::parse("/").unwrap();
        assert!(root.matches("/").is_some());
        assert!(root.matches("/x").is_none());
    }

    #[test]
    fn bad_templates() {
        for bad in ["inboxes", "/a/{b", "/a/x{b}", "/a/{b}/{b}", "/a?x=1", "/{}"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_params() {
        assert_eq!(
            query_param("a=1&role=agent&role=x", "role").as_deref(),
            Some("agent")
        );
        assert_eq!(query_param("q=a+b%21", "q").as_deref(), Some("a b!"));
        assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
        assert_eq!(query_param("a=1", "b"), None);
    }
}
