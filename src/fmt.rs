//! `doorman fmt`: Cedar policy files in one canonical layout.
//!
//! The layout is `cedar-policy-formatter`'s, the same the `cedar format`
//! command produces, so files formatted here stay formatted for anyone who
//! uses Cedar's own tools. The formatter keeps comments and annotations and
//! refuses (rather than drops) anything it cannot place; such a file is
//! reported with the formatter's message and left untouched.
//!
//! Files are rewritten through a temporary file and a rename, so a running
//! `doorman serve --watch` never reads half a policy file.

use std::path::{Path, PathBuf};

use cedar_policy_formatter::{Config, policies_str_to_pretty};

use crate::diag::Diagnostic;
use crate::load::list_files;

/// What one run found.
#[derive(Debug, Default)]
pub struct FmtReport {
    /// Files whose text was not (with `check`) or is now (without) in the
    /// canonical layout.
    pub changed: Vec<PathBuf>,
    /// Files already formatted.
    pub unchanged: usize,
    /// Files that could not be read, parsed or written.
    pub errors: Vec<Diagnostic>,
}

/// The canonical layout of one file's text.
pub fn format_text(path: &Path, text: &str) -> Result<String, Diagnostic> {
    policies_str_to_pretty(text, &Config::default()).map_err(|e| {
        let mut d = Diagnostic::from_miette(path, text, e.as_ref());
        if d.message.is_empty() {
            d.message = e.to_string();
        }
        d
    })
}

/// Formats every `*.cedar` file under `paths` (files or directories); with
/// `check`, only reports the files that would change.
pub fn run(paths: &[PathBuf], check: bool) -> FmtReport {
    let mut report = FmtReport::default();
    for root in paths {
        let files = match list_files(root, |name| name.ends_with(".cedar")) {
            Ok(f) => f,
            Err(d) => {
                report.errors.push(d);
                continue;
            }
        };
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    report
                        .errors
                        .push(Diagnostic::new(&file, 0, 0, format!("cannot read: {e}")));
                    continue;
                }
            };
            let pretty = match format_text(&file, &text) {
                Ok(p) => p,
                Err(d) => {
                    report.errors.push(d);
                    continue;
                }
            };
            if pretty == text {
                report.unchanged += 1;
                continue;
            }
            if !check && let Err(e) = write_atomically(&file, &pretty) {
                report
                    .errors
                    .push(Diagnostic::new(&file, 0, 0, format!("cannot write: {e}")));
                continue;
            }
            report.changed.push(file);
        }
    }
    report
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // A hidden name: the policy loader and the watcher skip dot files.
    let tmp = path.with_file_name(format!(".{name}.doorman-fmt"));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_keeps_comments_and_annotations_and_is_idempotent() {
        let text = "// why\n@id(\"a\")\npermit(principal,action,resource) when { principal == resource }; // trailing\n";
        let once = format_text(Path::new("a.cedar"), text).unwrap();
        assert!(once.contains("// why") && once.contains("// trailing"));
        assert!(once.contains("@id(\"a\")"));
        assert_ne!(once, text);
        assert_eq!(format_text(Path::new("a.cedar"), &once).unwrap(), once);
    }
}
