//! Diagnostics that point at a file, line and column.
//!
//! Everything that can be wrong with the files on disk (a policy that does not
//! parse, a policy the validator rejects, an entity that breaks the schema, a
//! YAML file that is not YAML) ends up as a [`Diagnostic`]. Cedar reports
//! errors as `miette` diagnostics with byte spans into the text it was given;
//! this module turns those spans into `file:line:column` and renders the
//! offending line the way `miette` does, so the security engineer reading the
//! output never has to count characters.

use std::fmt;
use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};
use serde::Serialize;

/// One problem found while loading files, located as precisely as the source
/// allows (line and column are 1-based; 0 means "the whole file").
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Diagnostic {
    /// The file the problem is in, as the user named it (relative paths stay relative).
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The ID of the policy the problem belongs to, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A one-line description.
    pub message: String,
    /// The full rendering (message, source excerpt, help), for terminals.
    #[serde(skip)]
    #[schema(ignore)]
    pub rendered: String,
}

impl Diagnostic {
    /// A diagnostic without a source excerpt.
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        let message = message.into();
        Diagnostic {
            file: file.display().to_string(),
            line,
            column,
            policy: None,
            rendered: message.clone(),
            message,
        }
    }

    /// Builds a diagnostic from a `miette` diagnostic whose labels are byte
    /// offsets into `source`, the full text of `file`.
    pub fn from_miette(file: &Path, source: &str, err: &dyn miette::Diagnostic) -> Self {
        let offset = err
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset());
        let (line, column) = offset.map_or((0, 0), |o| line_col(source, o));
        let mut message = err.to_string();
        if let Some(help) = err.help() {
            message.push_str(&format!(" (help: {help})"));
        }
        Diagnostic {
            file: file.display().to_string(),
            line,
            column,
            policy: None,
            rendered: render(file, source, err),
            message,
        }
    }

    pub fn with_policy(mut self, id: impl Into<String>) -> Self {
        self.policy = Some(id.into());
        self
    }

    /// `file:line:column` (or just `file` when the line is unknown).
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (0, _) => self.file.clone(),
            (l, 0) => format!("{}:{l}", self.file),
            (l, c) => format!("{}:{l}:{c}", self.file),
        }
    }
}

impl Diagnostic {
    /// The same rendering as `Display`, introduced as a warning: what the
    /// validator reports without refusing the policies.
    pub fn as_warning(&self) -> impl fmt::Display + '_ {
        Level(self, "warning")
    }
}

struct Level<'a>(&'a Diagnostic, &'static str);

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Level(self, "error").fmt(f)
    }
}

impl fmt::Display for Level<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Level(d, level) = self;
        d.write(f, level)
    }
}

impl Diagnostic {
    fn write(&self, f: &mut fmt::Formatter<'_>, level: &str) -> fmt::Result {
        write!(f, "{level}: {}", self.location())?;
        if let Some(id) = &self.policy {
            write!(f, " (policy {id})")?;
        }
        write!(f, ": {}", self.message)?;
        if self.rendered != self.message && !self.rendered.is_empty() {
            write!(f, "\n{}", self.rendered.trim_end())?;
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset (columns count characters).
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The character column of a position serde_json reports as `line` and
/// `byte_column` (both 1-based; serde_json counts the column in bytes, so
/// on a line with multi-byte characters before the error its column would
/// point past the character, or past the end of the line). 0 stays 0: the
/// line alone is known.
pub fn char_column(source: &str, line: usize, byte_column: usize) -> usize {
    let Some(text) = line.checked_sub(1).and_then(|l| source.split('\n').nth(l)) else {
        return 0;
    };
    if byte_column == 0 {
        return 0;
    }
    let before = floor_char_boundary(text, (byte_column - 1).min(text.len()));
    text[..before].chars().count() + 1
}

/// `message` without serde_json's ` at line L column C`, for a diagnostic
/// that gives the position itself (in characters, see [`char_column`]).
pub fn without_json_position(message: &str, line: usize, byte_column: usize) -> String {
    message.replace(&format!(" at line {line} column {byte_column}"), "")
}

/// [`line_col`] for increasing offsets into one text, counting each byte
/// once: a file of thousands of policies would otherwise be rescanned from
/// its start for every policy (quadratic; 3.2 s for 10,000 policies).
#[derive(Debug, Default)]
pub struct LineCursor {
    offset: usize,
    /// 0-based line of `offset`, and where that line starts.
    line: usize,
    line_start: usize,
}

impl LineCursor {
    pub fn at(&mut self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        if offset < self.offset {
            return line_col(text, offset);
        }
        for (i, byte) in text.as_bytes()[self.offset..offset].iter().enumerate() {
            if *byte == b'\n' {
                self.line += 1;
                self.line_start = self.offset + i + 1;
            }
        }
        self.offset = offset;
        let column = text[self.line_start..offset].chars().count() + 1;
        (self.line + 1, column)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders `err` against `source`, named `file`, without colours so that the
/// output is the same in a terminal, a CI log and a JSON field.
fn render(file: &Path, source: &str, err: &dyn miette::Diagnostic) -> String {
    let wrapped = Sourced {
        inner: err,
        source: CharColumns {
            name: file.display().to_string(),
            text: source.to_string(),
        },
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    if handler.render_report(&mut out, &wrapped).is_err() {
        return err.to_string();
    }
    out
}

/// Presents a Cedar diagnostic with the file's text and name attached, so the
/// renderer can show the offending line under the file name.
struct Sourced<'a> {
    inner: &'a dyn miette::Diagnostic,
    source: CharColumns,
}

/// A named file's text whose columns count characters, as [`line_col`]
/// does and editors do. miette's own count is in bytes, which put the
/// excerpt's `[file:line:column]` header after the summary line's column
/// on any line with a multi-byte character before the error.
struct CharColumns {
    name: String,
    text: String,
}

impl miette::SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        // miette reports a column only for a span read without context
        // lines (the header's); it is 0 otherwise, and stays so.
        let column = if inner.column() == 0 {
            0
        } else {
            line_col(&self.text, span.offset()).1 - 1
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl fmt::Debug for Sourced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}

impl fmt::Display for Sourced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for Sourced<'_> {}

impl miette::Diagnostic for Sourced<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.code()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner.help()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        // A span past the end of the text would make the renderer give up;
        // drop such labels rather than lose the whole report.
        let len = self.source.text.len();
        let labels: Vec<_> = self
            .inner
            .labels()?
            .filter(|l| l.offset() + l.len() <= len)
            .collect();
        Some(Box::new(labels.into_iter()))
    }
}

/// An error with its causes and help: Cedar's entity errors say only
/// "does not conform to the schema" at the top and the reason below.
pub(crate) fn error_chain(e: &(dyn miette::Diagnostic + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    if let Some(help) = e.help() {
        out.push_str(&format!(" (help: {help})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "ab\ncdé\nf";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        assert_eq!(line_col(src, 7), (2, 4));
        assert_eq!(line_col(src, 8), (3, 1));
        // The end of the text is just past its last character.
        assert_eq!(line_col(src, 9), (3, 2));
    }

    /// The summary's column and the excerpt's header count the same way
    /// (characters) on a line with multi-byte characters before the error.
    #[test]
    fn the_excerpt_header_counts_columns_as_the_summary_does() {
        let text = "permit(principal, action, resource);\n\n// 😀 é\npermit(principal, action, resource) when { \"😀😀\" == 1 + };\n";
        let err = text
            .parse::<cedar_policy::PolicySet>()
            .expect_err("does not parse");
        let d = Diagnostic::from_miette(Path::new("a.cedar"), text, &err);
        assert_eq!(d.line, 4, "{d}");
        let header = format!("[a.cedar:{}:{}]", d.line, d.column);
        assert!(d.rendered.contains(&header), "{header} in\n{}", d.rendered);
        let line = text.lines().nth(3).unwrap();
        let column = line.find("};").unwrap();
        assert_eq!(d.column, line[..column].chars().count() + 1, "{d}");
    }

    #[test]
    fn serde_json_byte_columns_become_character_columns() {
        let text = "[\n  {\"éé\": x}\n]";
        let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        assert_eq!((e.line(), e.column()), (2, 12));
        let x = text.lines().nth(1).unwrap().find('x').unwrap();
        assert_eq!(
            char_column(text, 2, 12),
            text.lines().nth(1).unwrap()[..x].chars().count() + 1
        );
        assert_eq!(char_column(text, 2, 12), 10);
        assert_eq!(char_column(text, 1, 1), 1);
        // Unknown stays unknown; a line that is not there is unknown too.
        assert_eq!(char_column(text, 2, 0), 0);
        assert_eq!(char_column(text, 0, 5), 0);
        assert_eq!(char_column(text, 9, 5), 0);
        // A column past the end of the line stops just after it.
        assert_eq!(char_column(text, 3, 40), 2);
        assert_eq!(
            without_json_position(&e.to_string(), e.line(), e.column()),
            "expected value"
        );
    }

    #[test]
    fn line_cursor_agrees_with_line_col() {
        let src = "ab\ncdé\nf\n\nxyz";
        let mut cursor = LineCursor::default();
        for offset in [0, 1, 3, 5, 7, 8, 9, 10, 12, 14] {
            assert_eq!(cursor.at(src, offset), line_col(src, offset), "{offset}");
        }
        // Going back still answers right.
        assert_eq!(cursor.at(src, 4), line_col(src, 4));
    }
}
