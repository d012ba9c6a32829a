//! Reading AuthZEN request bodies: the shapes of subjects, resources,
//! actions, contexts and pages, with every refusal naming its field.
//!
//! The body is read once into the entity reader's JSON tree ([`Json`]):
//! strings are borrowed from the body and objects are short lists, so the
//! usual evaluation builds no `serde_json::Value` (which hashes every key)
//! and there is no second, typed reader to keep in step with this one. The
//! walk over the tree is the only reader, so the wording of refusals and
//! the reading of good bodies cannot drift apart.
//!
//! Unlike doorman's own API, unknown fields are ignored: AuthZEN requires
//! receivers to ignore them (forward compatibility). A `null` reads as
//! absent, as the spec asks senders to omit nulls. An object with a
//! repeated key is refused: which of the two was meant is unclear.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::entity_json::{Fields, Json};
use crate::server::error::{ApiError, Code, join};

/// A path in the body, for errors: mostly static (`subject`), formatted
/// inside a batch (`evaluations[2].subject`).
pub(super) type Path = Cow<'static, str>;

/// A subject or a resource as sent.
#[derive(Debug, Clone)]
pub(super) struct Entity<'j> {
    pub(super) ty: &'j str,
    /// `None` only where the id is not needed (the searched entity).
    pub(super) id: Option<&'j str>,
    /// Present and non-empty.
    pub(super) properties: Option<&'j Fields<'j>>,
    pub(super) path: Path,
}

/// An action as sent.
#[derive(Debug, Clone)]
pub(super) struct Action<'j> {
    pub(super) name: &'j str,
    /// Present and non-empty.
    pub(super) properties: Option<&'j Fields<'j>>,
    pub(super) path: Path,
}

/// A context as sent (perhaps empty: an item's `{}` still replaces the
/// batch's default).
#[derive(Debug, Clone)]
pub(super) struct Context<'j> {
    pub(super) fields: &'j Fields<'j>,
    pub(super) path: Path,
}

/// Whether an entity's `id` is required (an input) or ignored (the
/// searched entity, whose `id` AuthZEN says to ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Id {
    Required,
    Ignored,
}

/// The body: a JSON object.
pub(super) fn body(bytes: &[u8]) -> Result<Json<'_>, ApiError> {
    let json: Json = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("the body is not JSON: {e}")))?;
    if let Some(repeated) = json.repeated_key() {
        return Err(ApiError::repeated_key(repeated));
    }
    if json.as_object().is_none() {
        return Err(ApiError::new(
            Code::InvalidField,
            format!("the body must be a JSON object, not {}", kind(&json)),
        ));
    }
    Ok(json)
}

/// `value` as an object, refused (as `path`) if it is not one or repeats
/// a key.
pub(super) fn object<'j>(value: &'j Json<'j>, path: &str) -> Result<&'j Fields<'j>, ApiError> {
    let Some(fields) = value.as_object() else {
        return Err(ApiError::at(
            Code::InvalidField,
            path,
            format!("must be a JSON object, not {}", kind(value)),
        ));
    };
    if fields.iter().is_none() {
        return Err(ApiError::at(
            Code::InvalidField,
            path,
            "repeats a key: give each key once",
        ));
    }
    Ok(fields)
}

/// Field `name` of `fields`; `null` reads as absent.
pub(super) fn get<'j>(fields: &'j Fields<'j>, name: &str) -> Option<&'j Json<'j>> {
    fields.get(name).filter(|v| !matches!(v, Json::Null))
}

/// A subject or a resource: `{"type", "id", "properties"?}`.
pub(super) fn entity<'j>(value: &'j Json<'j>, path: Path, id: Id) -> Result<Entity<'j>, ApiError> {
    let fields = object(value, &path)?;
    let ty = string(fields, "type", &path)?.ok_or_else(|| required(&path, "type"))?;
    let id = match id {
        Id::Required => Some(string(fields, "id", &path)?.ok_or_else(|| required(&path, "id"))?),
        // Ignored whatever it holds, as the spec says.
        Id::Ignored => None,
    };
    let properties = properties(fields, &path)?;
    Ok(Entity {
        ty,
        id,
        properties,
        path,
    })
}

/// An action: `{"name", "properties"?}`.
pub(super) fn action<'j>(value: &'j Json<'j>, path: Path) -> Result<Action<'j>, ApiError> {
    let fields = object(value, &path)?;
    let name = string(fields, "name", &path)?.ok_or_else(|| required(&path, "name"))?;
    let properties = properties(fields, &path)?;
    Ok(Action {
        name,
        properties,
        path,
    })
}

/// A context: an object.
pub(super) fn context<'j>(value: &'j Json<'j>, path: Path) -> Result<Context<'j>, ApiError> {
    let fields = object(value, &path)?;
    Ok(Context { fields, path })
}

/// A string field; `None` when absent.
pub(super) fn string<'j>(
    fields: &'j Fields<'j>,
    name: &str,
    path: &str,
) -> Result<Option<&'j str>, ApiError> {
    match get(fields, name) {
        None => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.as_ref())),
        Some(other) => Err(ApiError::at(
            Code::InvalidField,
            join(path, name),
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

/// `properties`, if present and not empty.
fn properties<'j>(fields: &'j Fields<'j>, path: &str) -> Result<Option<&'j Fields<'j>>, ApiError> {
    match get(fields, "properties") {
        None => Ok(None),
        Some(value) => {
            let props = object(value, &join(path, "properties"))?;
            Ok((props.len() > 0).then_some(props))
        }
    }
}

/// The `Value` of an object's fields (for Cedar, which reads contexts and
/// entities as `serde_json` values).
pub(super) fn to_map(fields: &Fields<'_>) -> Map<String, Value> {
    fields
        .iter()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_owned(), v.to_value()))
        .collect()
}

pub(super) fn required(path: &str, name: &str) -> ApiError {
    ApiError::at(Code::InvalidField, join(path, name), "is required")
}

/// What a JSON value is, for messages.
pub(super) fn kind(value: &Json<'_>) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Int(_) | Json::Num(_) => "a number",
        Json::Str(_) => "a string",
        Json::Arr(_) => "a list",
        Json::Obj(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<impl std::fmt::Debug, ApiError>) -> String {
        r.expect_err("refused").field.unwrap_or_default()
    }

    #[test]
    fn entities_and_actions_are_read_with_their_paths() {
        let json = body(
            br#"{"s": {"type": "user", "id": "a\"b", "properties": {"x": 1}, "extra": 2},
                              "t": {"type": "user", "properties": {}},
                              "a": {"name": "read", "properties": null}}"#,
        )
        .unwrap();
        let top = object(&json, "").unwrap();
        let s = entity(get(top, "s").unwrap(), "s".into(), Id::Required).unwrap();
        assert_eq!((s.ty, s.id), ("user", Some("a\"b")));
        assert_eq!(to_map(s.properties.unwrap())["x"], 1);
        let t = entity(get(top, "t").unwrap(), "t".into(), Id::Ignored).unwrap();
        assert!(t.id.is_none() && t.properties.is_none());
        let a = action(get(top, "a").unwrap(), "a".into()).unwrap();
        assert_eq!(a.name, "read");
        assert!(a.properties.is_none());
    }

    #[test]
    fn refusals_name_the_field() {
        let read = |text: &str, id: Id| {
            let json = body(text.as_bytes())?;
            let top = object(&json, "")?;
            entity(
                get(top, "subject").unwrap(),
                "evaluations[2].subject".into(),
                id,
            )
            .map(|_| ())
        };
        assert_eq!(
            field_of(read(r#"{"subject": {"id": "a"}}"#, Id::Required)),
            "evaluations[2].subject.type"
        );
        assert_eq!(
            field_of(read(r#"{"subject": {"type": "user"}}"#, Id::Required)),
            "evaluations[2].subject.id"
        );
        assert!(read(r#"{"subject": {"type": "user"}}"#, Id::Ignored).is_ok());
        assert_eq!(
            field_of(read(r#"{"subject": {"type": 5, "id": "a"}}"#, Id::Required)),
            "evaluations[2].subject.type"
        );
        assert_eq!(
            field_of(read(r#"{"subject": "alice"}"#, Id::Required)),
            "evaluations[2].subject"
        );
        assert_eq!(
            field_of(read(
                r#"{"subject": {"type": "u", "id": "a", "properties": []}}"#,
                Id::Required
            )),
            "evaluations[2].subject.properties"
        );
        // A repeated key is refused by the body's reader, from the top.
        let repeated = read(
            r#"{"subject": {"type": "u", "type": "v", "id": "a"}}"#,
            Id::Required,
        )
        .expect_err("refused");
        assert_eq!(
            (repeated.code, repeated.field.as_deref()),
            (Code::InvalidJson, Some("subject"))
        );
        assert_eq!(body(b"[]").unwrap_err().code, Code::InvalidField);
        assert_eq!(body(b"{").unwrap_err().code, Code::InvalidJson);
        assert_eq!(body(b"").unwrap_err().code, Code::InvalidJson);
    }
}
