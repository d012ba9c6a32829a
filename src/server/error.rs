//! The sidecar's error answers: one type, one wire shape, one place that
//! maps each kind of mistake to its HTTP status.
//!
//! Gateways branch on `code`, people read `message`, so every code is a
//! stable, documented string and every message names the field at fault
//! (`requests[3].principal`). The same [`ApiError`] is the whole response for
//! a bad request and one entry of a batch for a bad item, which is why it
//! carries a status but does not build the response itself.

use hyper::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::clip::{FIELD_CHARS, MESSAGE_CHARS, clip, clip_owned};
use crate::entity_json::Repeated;
pub(crate) use crate::entity_json::field_step;

/// What kind of mistake; the `code` string of an error answer.
///
/// The schema's names are the variants' in snake_case, which is what
/// [`Code::as_str`] says (a test holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Code {
    /// The body is not JSON.
    InvalidJson,
    /// An AuthZEN request without `Content-Type: application/json`.
    InvalidContentType,
    /// A field is missing, has the wrong type, or holds an unparsable
    /// entity reference.
    InvalidField,
    /// The schema rejects the principal, action, resource or context.
    InvalidRequest,
    /// The request-scoped entities do not parse or break the schema.
    InvalidEntities,
    BatchTooLarge,
    BodyTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// No bearer token, or not one of the endpoint's (`--admin-token-file`,
    /// `--auth-token-file`).
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    /// No snapshot is active yet (or the server is shutting down).
    NotReady,
    /// A bug in doorman, never a consequence of the input.
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidJson => "invalid_json",
            Code::InvalidContentType => "invalid_content_type",
            Code::InvalidField => "invalid_field",
            Code::InvalidRequest => "invalid_request",
            Code::InvalidEntities => "invalid_entities",
            Code::BatchTooLarge => "batch_too_large",
            Code::BodyTooLarge => "body_too_large",
            Code::RequestTimeout => "request_timeout",
            Code::Unauthorized => "unauthorized",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::NotReady => "not_ready",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidJson
            | Code::InvalidContentType
            | Code::InvalidField
            | Code::InvalidRequest
            | Code::InvalidEntities
            | Code::BatchTooLarge => StatusCode::BAD_REQUEST,
            Code::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One refused request (or batch item).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: Code,
    /// The path of the offending field (`requests[3].context`), when one is
    /// at fault; the message starts with it too.
    pub field: Option<String>,
    pub message: String,
}

impl ApiError {
    /// An error about no field in particular.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            field: None,
            message: clip_owned(message.into(), MESSAGE_CHARS),
        }
    }

    /// An error about `field`; the message is prefixed with the field's path
    /// so a person reading only the message still learns where to look.
    ///
    /// Both are bounded ([`crate::clip`]): they may quote the request.
    pub fn at(code: Code, field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = clip_owned(field.into(), FIELD_CHARS);
        let message = message.to_string();
        ApiError {
            code,
            message: format!("{field}: {}", clip(&message, MESSAGE_CHARS)),
            field: Some(field),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// A request body that gives one key twice in an object.
    pub(crate) fn repeated_key(r: Repeated) -> Self {
        let message = format!("repeats the key \"{}\": give each key once", r.key);
        if r.path.is_empty() {
            ApiError::new(Code::InvalidJson, format!("the body {message}"))
        } else {
            ApiError::at(Code::InvalidJson, r.path, message)
        }
    }

    /// A batch over `--max-batch`: `n` `items` in `field`, `max` allowed.
    pub fn batch_too_large(field: &str, items: &str, n: usize, max: usize) -> Self {
        ApiError::at(
            Code::BatchTooLarge,
            field,
            format!("{n} {items} in one batch; the limit is {max}"),
        )
    }

    /// The same error, placed inside `path` (`requests[3]`): the field
    /// becomes `requests[3].principal`, or `requests[3]` if it had none.
    pub fn within(self, path: &str) -> Self {
        match self.field {
            Some(field) => {
                // The message starts with the field (see `at`); keep the rest.
                let rest = self
                    .message
                    .strip_prefix(field.as_str())
                    .and_then(|m| m.strip_prefix(": "))
                    .unwrap_or(&self.message);
                ApiError::at(self.code, join(path, &field), rest)
            }
            None => ApiError::at(self.code, path, self.message),
        }
    }

    /// The wire form: `{"error": {"code": …, "message": …, "field": …}}`.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody { error: self.into() }
    }
}

/// `field` inside `path` (`requests[2]` + `principal`): how every error
/// names the part of a request at fault. A key from the request goes
/// through [`field_step`] first, so that any key names one field
/// (`[""]`, `context["a.b"]`).
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else if field.starts_with('[') {
        format!("{path}{field}")
    } else {
        format!("{path}.{field}")
    }
}

/// What a JSON value is, for messages: "must be a string, not a number".
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A refusal on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    pub code: Code,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl<'a> From<&'a ApiError> for ErrorDetail<'a> {
    fn from(e: &'a ApiError) -> Self {
        ErrorDetail {
            code: e.code,
            message: &e.message,
            field: e.field.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_the_field_in_the_message() {
        let e = ApiError::at(Code::InvalidField, "requests[3].principal", "must be set");
        assert_eq!(e.message, "requests[3].principal: must be set");
        let json = serde_json::to_value(e.body()).unwrap();
        assert_eq!(json["error"]["code"], "invalid_field");
        assert_eq!(json["error"]["field"], "requests[3].principal");
    }

    #[test]
    fn errors_placed_within_a_batch_item_keep_their_message() {
        let e =
            ApiError::at(Code::InvalidRequest, "principal", "no such type").within("requests[2]");
        assert_eq!(e.field.as_deref(), Some("requests[2].principal"));
        assert_eq!(e.message, "requests[2].principal: no such type");
    }

    #[test]
    fn errors_without_a_field_leave_it_out() {
        let e = ApiError::new(Code::NotFound, "no such path");
        let json = serde_json::to_value(e.body()).unwrap();
        assert!(json["error"].get("field").is_none());
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
    }
}
