//! One decision as one JSON line (docs/decision-log.md): built on the
//! writer thread from the record the request path handed over, so the
//! request never pays for the JSON.

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use super::mask::Mask;
use super::{Entities, Record};
use crate::decide::{Decision, PolicyError};

/// What goes into a line besides the fixed fields.
#[derive(Debug, Clone, Default)]
pub struct Format {
    pub context: bool,
    pub entities: bool,
    pub masks: Vec<Mask>,
}

/// The line's fields, in the documented order.
#[derive(Serialize)]
struct Out<'a> {
    v: u8,
    time: String,
    request_id: &'a str,
    endpoint: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<u32>,
    principal: Value,
    action: Value,
    resource: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entities: Option<Value>,
    decision: Decision,
    reasons: &'a [String],
    errors: &'a [PolicyError],
    revision: &'a str,
    latency_us: u64,
}

/// `2026-12-03T10:00:00.123456Z`.
pub fn timestamp(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Format {
    /// The line for `record` (decided at `time`, `latency_us` after its
    /// request arrived), newline included.
    pub fn line(&self, record: Record, time: SystemTime, latency_us: u64) -> Vec<u8> {
        let Record {
            request_id,
            endpoint,
            item,
            query,
            answer,
            snapshot,
            entities,
            ..
        } = record;
        let mut out = Out {
            v: 1,
            time: timestamp(time),
            request_id: request_id.to_str().unwrap_or("-"),
            endpoint: endpoint.as_str(),
            item,
            principal: Value::String(query.principal.to_string()),
            action: Value::String(query.action.to_string()),
            resource: Value::String(query.resource.to_string()),
            context: self.context.then_some(query.context),
            entities: if self.entities {
                Some(entities.map_or(Value::Array(vec![]), Entities::into_json))
            } else {
                None
            },
            decision: answer.decision,
            reasons: &answer.reasons,
            errors: &answer.errors,
            revision: snapshot.revision(),
            latency_us,
        };
        for mask in &self.masks {
            mask.apply("principal", &mut out.principal);
            mask.apply("action", &mut out.action);
            mask.apply("resource", &mut out.resource);
            if let Some(c) = &mut out.context {
                mask.apply("context", c);
            }
            if let Some(e) = &mut out.entities {
                mask.apply("entities", e);
            }
        }
        let mut bytes = serde_json::to_vec(&out).unwrap_or_else(|e| {
            // Only a bug could get here (every field is plain JSON).
            format!("{{\"v\":1,\"error\":\"cannot serialize a decision: {e}\"}}").into_bytes()
        });
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_are_utc_with_microseconds() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_597_200_123_456);
        assert_eq!(timestamp(t), "2026-11-25T09:00:00.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    }
}
