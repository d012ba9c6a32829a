//! Bearer-token files: reading them and checking a presented token.
//!
//! A file holds one token a line; blank lines and lines starting with `#`
//! are skipped, so a file can say whose each token is. A line that cannot
//! be a token (whitespace inside, characters a header cannot carry, fewer
//! than [`MIN_LEN`] characters) is refused with its `file:line`, and so is a
//! file with no token at all: a guard with nothing to admit is a typo, not a
//! configuration.
//!
//! Only SHA-256 digests of the tokens are kept. A presented token is hashed
//! once and compared with every configured digest in constant time, with no
//! early exit, so neither the position of a match nor the length of a token
//! shows in the time an answer takes.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The shortest token accepted: shorter ones are guessable.
pub const MIN_LEN: usize = 16;

/// The tokens of one file, as digests. Never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

/// Never the digests: a token set may end up in a log line.
impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} tokens)", self.digests.len())
    }
}

impl TokenSet {
    /// Parses a token file's text; `path` names it in errors, which say
    /// `path:line: what is wrong` (never the token itself).
    pub fn parse(path: &Path, text: &str) -> Result<TokenSet, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let token = line.trim();
            if token.is_empty() || token.starts_with('#') {
                continue;
            }
            let at = format!("{}:{}", path.display(), i + 1);
            if token.chars().any(char::is_whitespace) {
                return Err(format!(
                    "{at}: a token cannot hold whitespace (one token a line)"
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{at}: a token must be printable ASCII (it travels in an HTTP header)"
                ));
            }
            if token.len() < MIN_LEN {
                return Err(format!(
                    "{at}: a token must have at least {MIN_LEN} characters, this one has {}",
                    token.len()
                ));
            }
            digests.push(digest(token.as_bytes()));
        }
        if digests.is_empty() {
            return Err(format!(
                "{}: no token (one a line; blank lines and # comments are skipped)",
                path.display()
            ));
        }
        Ok(TokenSet { digests })
    }

    /// Reads and parses a token file. Blocking: call it off the runtime.
    pub fn read(path: &Path) -> Result<TokenSet, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the token file: {e}", path.display()))?;
        TokenSet::parse(path, &text)
    }

    /// True when `presented` is one of the tokens. Takes the same time
    /// whichever token matches, or none.
    pub fn admits(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let mut found = Choice::from(0);
        for d in &self.digests {
            found |= d.ct_eq(&presented);
        }
        found.into()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Always false (a set is never empty); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TokenSet, String> {
        TokenSet::parse(Path::new("admin.tokens"), text)
    }

    #[test]
    fn tokens_are_one_a_line_with_comments_and_blank_lines_skipped() {
        let set =
            parse("# ops team\n\n  0123456789abcdef  \r\n# ci\nsecond-token-0123456789\n").unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.admits(b"0123456789abcdef"));
        assert!(set.admits(b"second-token-0123456789"));
        assert!(!set.admits(b"0123456789abcdeX"));
        assert!(!set.admits(b"0123456789abcdef "));
        assert!(!set.admits(b""));
        assert!(!set.admits(b"# ops team"));
    }

    #[test]
    fn bad_lines_are_named_by_file_and_line() {
        let e = parse("# x\n0123456789abcdef\nshort\n").unwrap_err();
        assert_eq!(
            e,
            "admin.tokens:3: a token must have at least 16 characters, this one has 5"
        );
        let e = parse("0123456789abcdef 0123456789abcdef\n").unwrap_err();
        assert!(
            e.starts_with("admin.tokens:1: a token cannot hold whitespace"),
            "{e}"
        );
        let e = parse("0123456789abcdefé\n").unwrap_err();
        assert!(
            e.starts_with("admin.tokens:1: a token must be printable ASCII"),
            "{e}"
        );
        // The token itself never appears in a message.
        assert!(!e.contains("0123456789abcdef"));
    }

    #[test]
    fn a_file_without_a_token_is_refused() {
        let e = parse("# nobody yet\n\n").unwrap_err();
        assert!(e.starts_with("admin.tokens: no token"), "{e}");
        assert!(parse("").is_err());
    }

    #[test]
    fn debug_output_never_shows_digests() {
        let set = parse("0123456789abcdef\n").unwrap();
        assert_eq!(format!("{set:?}"), "TokenSet(1 tokens)");
    }
}
