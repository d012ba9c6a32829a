//! Bounding what an answer or a log line quotes from a request.
//!
//! Error messages name what was wrong, and often quote it: an entity id
//! that does not exist, a key given twice, Cedar's own evaluation error
//! with the value it could not use. The request's sender controls that
//! text, and a body may be megabytes long; an answer (or a log line) that
//! echoed it whole would let one request multiply its size into every
//! place the message goes. [`clip`] keeps the head of such text, on a
//! character boundary, and says how much it left out.

use std::borrow::Cow;

/// Most characters of request-controlled text an error message carries.
pub const MESSAGE_CHARS: usize = 1024;

/// Most characters of a field path (`requests[3].context.a`) an error
/// names: keys come from the request too.
pub const FIELD_CHARS: usize = 256;

/// `text` when it has at most `max` characters; else its first `max`
/// characters and a note of how many bytes were left out.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!(
            "{}… ({} more bytes)",
            &text[..end],
            text.len() - end
        )),
    }
}

/// [`clip`] for text already owned: no copy when it is short enough.
pub fn clip_owned(text: String, max: usize) -> String {
    match clip(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(short) => short,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert!(matches!(clip("abc", 3), Cow::Borrowed("abc")));
        assert_eq!(clip_owned("é".repeat(5), 5), "é".repeat(5));
    }

    #[test]
    fn long_text_keeps_its_head_on_a_character_boundary() {
        let text = "é".repeat(10);
        assert_eq!(clip(&text, 4), "éééé… (12 more bytes)");
        assert_eq!(clip_owned("x".repeat(2000), 3), "xxx… (1997 more bytes)");
    }
}
