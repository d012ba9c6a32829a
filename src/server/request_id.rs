//! `X-Request-ID`: every answer of every endpoint carries one.
//!
//! A client's identifier is kept when it is one a log line can hold
//! safely: 1 to [`MAX_LEN`] visible ASCII characters, no spaces (no
//! control characters to forge log lines with, nothing a JSON line has to
//! escape at length). Anything else (too long, spaces, non-ASCII) is
//! replaced by a made-up one rather than refused: an identifier is a
//! tracing aid, and a request must not fail for the sake of one. The id
//! goes into the debug request line and the decision log, so one answer can
//! be found in the client's logs, the sidecar's and the decision log alike.
//!
//! One place for every protocol: AuthZEN's spec asks for the echo, and
//! doorman's own API and the operator's endpoints give the same.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// The header, read on requests and written on every answer.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client identifier kept.
pub const MAX_LEN: usize = 128;

/// Who a request is and when it came: what its decisions are logged with.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: HeaderValue,
    pub at: Instant,
}

/// The request's identifier: the client's when it is acceptable, else a
/// new one.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&HEADER) {
        Some(v) if acceptable(v.as_bytes()) => v.clone(),
        _ => generate(),
    }
}

/// 1 to [`MAX_LEN`] bytes of visible ASCII (`!` to `~`).
pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// A new identifier: unique in this process (a counter) and across
/// restarts (a per-process random prefix), shaped like a UUID.
pub fn generate() -> HeaderValue {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PREFIX: OnceLock<u64> = OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.finish()
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: the prefix's 64 bits, then
    // the counter's 64, in hex (written by hand: this runs per request).
    let mut text = [b'-'; 36];
    let mut digits = (0..36).filter(|i| ![8, 13, 18, 23].contains(i));
    let bits = (u128::from(prefix) << 64) | u128::from(n);
    for shift in (0..32).rev() {
        let nibble = ((bits >> (shift * 4)) & 0xf) as usize;
        if let Some(i) = digits.next() {
            text[i] = b"0123456789abcdef"[nibble];
        }
    }
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_request_ids_differ_and_look_like_uuids() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(acceptable(a.as_bytes()));
        let text = a.to_str().unwrap();
        let groups: Vec<usize> = text.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{text}");
        assert!(text.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        // The counter is the last 16 hex digits (other tests may take some).
        let (x, y) = (&text[19..], &b.to_str().unwrap()[19..]);
        let (x, y) = (x.replace('-', ""), y.replace('-', ""));
        let (x, y) = (u64::from_str_radix(&x, 16), u64::from_str_radix(&y, 16));
        assert!(x.unwrap() < y.unwrap(), "the counter goes up");
    }

    #[test]
    fn only_bounded_visible_ascii_ids_are_kept() {
        assert!(acceptable(b"bfe9eb29-ab87"));
        assert!(acceptable(&[b'a'; MAX_LEN]));
        assert!(!acceptable(&[b'a'; MAX_LEN + 1]));
        assert!(!acceptable(b""));
        assert!(!acceptable(b"two words"));
        assert!(!acceptable(b"tab\there"));
        assert!(!acceptable("caf\u{e9}".as_bytes()));
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("req-1"));
        assert_eq!(of(&headers), "req-1");
        headers.insert(HEADER, HeaderValue::from_static("has space"));
        assert_ne!(of(&headers), "has space");
        assert_eq!(of(&HeaderMap::new()).len(), 36);
    }
}
