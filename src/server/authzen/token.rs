//! Page tokens: where a search stopped, bound to the request that asked.
//!
//! AuthZEN's `next_token` is opaque to the client, and a follow-up request
//! must be the first one again plus the token; a PDP should refuse one
//! that changed. A token here carries three things, hex-encoded:
//!
//! - a binding: the first 16 bytes of a SHA-256 over the endpoint and the
//!   request's `subject`, `action`, `resource` and `context`, keys sorted
//!   (so a client that reorders keys is not refused);
//! - the page size the search started with, so a follow-up may leave
//!   `page.limit` out (and is refused if it sends another one);
//! - the search's cursor: a place in the candidate order, not a snapshot
//!   revision, so pages keep working across a reload (entities changed in
//!   between may be missed or repeated, as the spec allows).
//!
//! The binding is an unkeyed hash: it tells a follow-up that repeats its
//! request from one that changed it (refused), and no more. Anyone can
//! build a token for any request and place, and that gains nothing: a
//! token only starts a search the client could ask for anyway, somewhere
//! in its candidate order, and whatever it says a page holds at least one
//! result and at most 1,000 and decides at most a budget of candidates
//! (`super::search`). Tokens are not a security boundary; nothing secret
//! is in one.

use std::num::NonZeroU32;

use sha2::{Digest, Sha256};

use crate::entity_json::Json;
use crate::search::Cursor;

const VERSION: u8 = 1;
const BINDING: usize = 16;

/// What a search request is, for binding tokens to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Binding([u8; BINDING]);

impl Binding {
    /// Over `endpoint` and `parts` (name, value if present).
    pub(super) fn of(endpoint: &str, parts: &[(&str, Option<&Json<'_>>)]) -> Binding {
        let mut h = Sha256::new();
        feed(&mut h, endpoint.as_bytes());
        for (name, value) in parts {
            feed(&mut h, name.as_bytes());
            match value {
                Some(v) => canonical(&mut h, v),
                None => h.update([0]),
            }
        }
        let digest = h.finalize();
        let mut out = [0; BINDING];
        out.copy_from_slice(&digest[..BINDING]);
        Binding(out)
    }
}

/// A page token's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) binding: Binding,
    /// At least 1: no page this server gives holds none.
    pub(super) limit: NonZeroU32,
    pub(super) cursor: Cursor,
}

impl Token {
    pub(super) fn encode(&self) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&self.binding.0);
        bytes.extend_from_slice(&self.limit.get().to_be_bytes());
        bytes.extend_from_slice(&self.cursor.to_bytes());
        hex::encode(bytes)
    }

    /// `None` for text no token of this server's version reads as (a page
    /// size of 0 included: no token was issued for one).
    pub(super) fn decode(text: &str) -> Option<Token> {
        let bytes = hex::decode(text).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < BINDING + 4 {
            return None;
        }
        let (binding, rest) = rest.split_at(BINDING);
        let (limit, cursor) = rest.split_at(4);
        Some(Token {
            binding: Binding(binding.try_into().ok()?),
            limit: NonZeroU32::new(u32::from_be_bytes(limit.try_into().ok()?))?,
            cursor: Cursor::from_bytes(cursor)?,
        })
    }
}

/// A length-prefixed byte string, so that no two inputs feed alike.
fn feed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// A JSON value with object keys sorted, in one walk over the borrowed
/// tree (each value is fed once, whatever its depth).
fn canonical(h: &mut Sha256, value: &Json<'_>) {
    match value {
        Json::Null => h.update([1]),
        Json::Bool(b) => h.update([2, u8::from(*b)]),
        Json::Int(n) => {
            h.update([3]);
            h.update(n.to_be_bytes());
        }
        Json::Num(n) => {
            h.update([4]);
            feed(h, n.to_string().as_bytes());
        }
        Json::Str(s) => {
            h.update([5]);
            feed(h, s.as_bytes());
        }
        Json::Arr(items) => {
            h.update([6]);
            h.update((items.len() as u64).to_be_bytes());
            items.iter().for_each(|v| canonical(h, v));
        }
        Json::Obj(fields) => match fields.iter() {
            Some(fields) => {
                let mut fields: Vec<(&str, &Json<'_>)> = fields.collect();
                fields.sort_unstable_by_key(|(k, _)| *k);
                h.update([7]);
                h.update((fields.len() as u64).to_be_bytes());
                for (k, v) in fields {
                    feed(h, k.as_bytes());
                    canonical(h, v);
                }
            }
            // A repeated key (which only a nested object can have: the
            // reader refuses one in the parts it reads): as serde_json
            // reads it, the last one kept. The copy has no repeats, so
            // this subtree is copied once, not again at each level.
            None => {
                let copy = value.to_value();
                canonical(h, &Json::of(&copy));
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_refuse_what_they_are_not() {
        let cursor = Cursor::from_bytes(&[1, 0, 0, 0, 9, b'a']).unwrap();
        let token = Token {
            binding: Binding::of(
                "subject",
                &[("subject", Some(&json(r#"{"type": "user"}"#)))],
            ),
            limit: NonZeroU32::new(25).unwrap(),
            cursor,
        };
        let text = token.encode();
        assert_eq!(Token::decode(&text), Some(token));
        // The same token with a page size of 0.
        let zero = format!("{}00000000{}", &text[..34], &text[42..]);
        assert_eq!(text[34..42], *"00000019");
        for bad in [
            "",
            "zz",
            "00",
            &text[..text.len() - 6],
            &format!("02{}", &text[2..]),
            &zero,
        ] {
            assert_eq!(Token::decode(bad), None, "{bad}");
        }
    }

    /// A body nested as deep as the JSON reader allows, with many fields
    /// at every level, costs about what the same fields side by side cost:
    /// each object is read once, not once per object around it.
    #[test]
    fn binding_a_deep_body_costs_what_a_flat_one_does() {
        const DEPTH: usize = 120;
        const WIDTH: usize = 600;
        let fields = |level: usize| -> String {
            (0..WIDTH)
                .map(|i| format!(r#""k{level}-{i}": {i}"#))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut deep = String::from("{}");
        for level in 0..DEPTH {
            deep = format!(r#"{{{}, "inner": {deep}}}"#, fields(level));
        }
        let flat = format!(
            "{{{}}}",
            (0..DEPTH).map(fields).collect::<Vec<_>>().join(", ")
        );
        let time = |text: &str| {
            let value = json(text);
            let started = std::time::Instant::now();
            let binding = Binding::of("subject", &[("context", Some(&value))]);
            (started.elapsed(), binding)
        };
        let (flat_time, _) = time(&flat);
        let (deep_time, a) = time(&deep);
        assert!(
            deep_time < flat_time * 5 + std::time::Duration::from_millis(100),
            "deep {deep_time:?}, flat {flat_time:?}"
        );
        // Still the same value for the same body, keys in another order.
        let reordered = deep.replacen(r#"{"k119-0": 0, "#, r#"{"#, 1).replacen(
            r#""inner""#,
            r#""k119-0": 0, "inner""#,
            1,
        );
        assert_ne!(reordered, deep);
        assert_eq!(a, time(&reordered).1);
    }

    #[test]
    fn the_binding_sees_every_change_but_not_key_order() {
        let subject = json(r#"{"type": "user", "properties": {"a": 1, "b": [true, "x"]}}"#);
        let reordered = json(r#"{"properties": {"b": [true, "x"], "a": 1}, "type": "user"}"#);
        let changed = json(r#"{"type": "user", "properties": {"a": 2, "b": [true, "x"]}}"#);
        let of = |s: &Json, ep: &str| Binding::of(ep, &[("subject", Some(s)), ("context", None)]);
        assert_eq!(of(&subject, "subject"), of(&reordered, "subject"));
        assert_ne!(of(&subject, "subject"), of(&changed, "subject"));
        assert_ne!(of(&subject, "subject"), of(&subject, "resource"));
        // A repeated key inside: the last one counts, as Cedar reads it.
        let repeated =
            json(r#"{"type": "user", "properties": {"a": 1, "b": {"x": 0, "x": [true, "x"]}}}"#);
        let last = json(r#"{"type": "user", "properties": {"a": 1, "b": {"x": [true, "x"]}}}"#);
        assert_eq!(of(&repeated, "subject"), of(&last, "subject"));
        assert_ne!(of(&repeated, "subject"), of(&subject, "subject"));
        assert_ne!(
            Binding::of("subject", &[("subject", None), ("context", Some(&subject))]),
            Binding::of("subject", &[("subject", Some(&subject)), ("context", None)]),
        );
    }
}
