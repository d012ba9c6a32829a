//! `--decision-log-mask`: values replaced by `"***"` before a line is
//! written.
//!
//! A mask is a JSON pointer (RFC 6901: `/`-separated, `~1` for a `/` and
//! `~0` for a `~` inside a name) into the line, with one addition: a
//! segment `*` matches every element of a list and every member of an
//! object, so `/entities/*/attrs/email` reaches every request entity.
//! It must start at a field that carries request data: `/context`,
//! `/entities`, `/principal`, `/action` or `/resource` (masking the
//! decision or the revision would only hide doorman's own answer). A
//! pointer that reaches nothing in a line leaves it as it is; one that
//! ends on an object or list masks it whole.

use serde_json::Value;

/// The masked value.
pub const MASKED: &str = "***";

/// The fields of a line a mask may start at.
pub const MASKABLE: &[&str] = &["context", "entities", "principal", "action", "resource"];

/// One parsed `--decision-log-mask` pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// The line's field (one of [`MASKABLE`]).
    pub field: String,
    /// The path inside it; `None` for "any key or index" (`*`).
    pub path: Vec<Option<String>>,
}

impl Mask {
    /// Parses `/context/ssn`, naming what is wrong when it is not one.
    pub fn parse(text: &str) -> Result<Mask, String> {
        let rest = text.strip_prefix('/').ok_or_else(|| {
            format!("`{text}`: a mask is a JSON pointer and starts with `/`, like /context/ssn")
        })?;
        let mut segments = rest
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"));
        let field = segments.next().unwrap_or_default();
        if !MASKABLE.contains(&field.as_str()) {
            return Err(format!(
                "`{text}`: a mask starts at one of /{}",
                MASKABLE.join(", /")
            ));
        }
        let path = segments
            .map(|s| if s == "*" { None } else { Some(s) })
            .collect();
        Ok(Mask { field, path })
    }

    /// Masks what this pointer reaches in `value`, the line's `field`.
    pub fn apply(&self, field: &str, value: &mut Value) {
        if field == self.field {
            mask(value, &self.path);
        }
    }
}

fn mask(value: &mut Value, path: &[Option<String>]) {
    let Some((first, rest)) = path.split_first() else {
        *value = Value::String(MASKED.to_owned());
        return;
    };
    match (value, first) {
        (Value::Object(map), Some(key)) => {
            if let Some(v) = map.get_mut(key) {
                mask(v, rest);
            }
        }
        (Value::Object(map), None) => map.values_mut().for_each(|v| mask(v, rest)),
        (Value::Array(items), Some(index)) => {
            if let Some(v) = index.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                mask(v, rest);
            }
        }
        (Value::Array(items), None) => items.iter_mut().for_each(|v| mask(v, rest)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn masked(mask: &str, field: &str, mut value: Value) -> Value {
        Mask::parse(mask).unwrap().apply(field, &mut value);
        value
    }

    #[test]
    fn masks_what_the_pointer_reaches_and_nothing_else() {
        let context = json!({"ssn": "123", "a/b": 1, "n": {"ssn": 2}});
        assert_eq!(
            masked("/context/ssn", "context", context.clone()),
            json!({"ssn": "***", "a/b": 1, "n": {"ssn": 2}})
        );
        assert_eq!(
            masked("/context/a~1b", "context", context.clone()),
            json!({"ssn": "123", "a/b": "***", "n": {"ssn": 2}})
        );
        assert_eq!(
            masked("/context/missing", "context", context.clone()),
            context
        );
        assert_eq!(masked("/context", "context", context.clone()), json!("***"));
        assert_eq!(masked("/context/ssn", "entities", context.clone()), context);
    }

    #[test]
    fn a_star_reaches_every_element_and_member() {
        let entities = json!([
            {"uid": {"type": "User", "id": "a"}, "attrs": {"email": "a@x", "age": 3}},
            {"uid": {"type": "User", "id": "b"}, "attrs": {"age": 4}},
        ]);
        let out = masked("/entities/*/attrs/email", "entities", entities);
        assert_eq!(out[0]["attrs"], json!({"email": "***", "age": 3}));
        assert_eq!(out[1]["attrs"], json!({"age": 4}));
        let out = masked(
            "/context/*/ssn",
            "context",
            json!({"a": {"ssn": 1}, "b": 2}),
        );
        assert_eq!(out, json!({"a": {"ssn": "***"}, "b": 2}));
        let out = masked("/entities/1", "entities", json!([1, 2, 3]));
        assert_eq!(out, json!([1, "***", 3]));
    }

    #[test]
    fn bad_pointers_are_refused_with_the_reason() {
        assert!(
            Mask::parse("context/ssn")
                .unwrap_err()
                .contains("starts with `/`")
        );
        assert!(Mask::parse("/decision").unwrap_err().contains("/context"));
        assert_eq!(
            Mask::parse("/principal").unwrap(),
            Mask {
                field: "principal".into(),
                path: vec![]
            }
        );
    }
}
