//! What the fuzz targets share: the bundled model, loaded once per
//! process, and the checks every answer and every refusal must pass.
//!
//! Each target (`fuzz_targets/*.rs`) asserts more than "did not crash":
//! these checks are the invariants that hold for any input, so a failing
//! one is a finding as much as a panic is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use doorman::server::{ApiError, Code};
use doorman::{Answer, Decision, Diagnostic, Snapshot, Sources, ValidationMode};

/// The repository root (the bundled model lives there).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("fuzz/ is inside the repository")
            .to_path_buf()
    })
}

/// The bundled model's sources: `policies/`, `schema/`,
/// `fixtures/entities/`, strict validation.
pub fn bundled_sources(routes: Option<PathBuf>) -> Sources {
    Sources {
        policies: root().join("policies"),
        schema: Some(root().join("schema")),
        entities: vec![root().join("fixtures/entities")],
        databases: vec![],
        validation: ValidationMode::Strict,
        routes,
    }
}

/// The bundled model, loaded once per process.
pub fn bundled() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| doorman::load(&bundled_sources(None)).expect("the bundled model loads"))
}

/// The same model answered through per-request views only (no whole
/// Cedar `Entities`), as a store fed by a database or larger than
/// `WHOLE_STORE_LIMIT` is.
pub fn bundled_views() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        doorman::load(&bundled_sources(None))
            .expect("the bundled model loads")
            .with_views_only()
    })
}

/// A directory of this process's own for files the loaders read,
/// removed and made again at each start.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("doorman-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

/// An answer that is consistent with the snapshot's policies: an allow is
/// determined by permits (at least one), a deny by forbids or by nothing
/// (the default deny); reasons and errors name loaded policies, each once,
/// in load order.
pub fn check_answer(snapshot: &Snapshot, answer: &Answer) {
    let index = |id: &str| {
        snapshot
            .policies()
            .iter()
            .position(|p| p.id == id)
            .unwrap_or_else(|| panic!("`{id}` is not a loaded policy: {answer:?}"))
    };
    let reasons: Vec<usize> = answer.reasons.iter().map(|r| index(r)).collect();
    assert!(
        reasons.windows(2).all(|w| w[0] < w[1]),
        "reasons not in load order or repeated: {answer:?}"
    );
    let want = match answer.decision {
        Decision::Allow => {
            assert!(!reasons.is_empty(), "an allow without reasons: {answer:?}");
            "permit"
        }
        Decision::Deny => "forbid",
    };
    for i in reasons {
        assert_eq!(
            snapshot.policies()[i].effect,
            want,
            "a {} determined by `{}`: {answer:?}",
            answer.decision,
            snapshot.policies()[i].id
        );
    }
    let errors: Vec<usize> = answer.errors.iter().map(|e| index(&e.policy)).collect();
    assert!(
        errors.windows(2).all(|w| w[0] <= w[1]),
        "errors not in load order: {answer:?}"
    );
}

/// A refusal of a request body: never an internal error; a refusal about
/// a field names it (`field`) and its message starts with that path; a
/// refusal without a field is about the body as a whole. `within` is the
/// path every field must start with (`requests[3]` for a batch item, or
/// empty).
pub fn check_refusal(e: &ApiError, within: &str) {
    assert!(
        matches!(
            e.code,
            Code::InvalidJson
                | Code::InvalidField
                | Code::InvalidRequest
                | Code::InvalidEntities
                | Code::BatchTooLarge
        ),
        "a request body refused with {:?}: {e}",
        e.code
    );
    assert_eq!(e.status().as_u16(), 400, "{e}");
    match &e.field {
        Some(field) => {
            assert!(!field.is_empty(), "an empty field path: {e:?}");
            assert!(
                e.message.starts_with(&format!("{field}: ")),
                "the message does not start with its field: {e:?}"
            );
            assert!(
                field.starts_with(within),
                "field `{field}` is not within `{within}`: {e:?}"
            );
        }
        None => {
            assert!(within.is_empty(), "an item's refusal names no field: {e:?}");
            match e.code {
                Code::InvalidJson => {}
                Code::InvalidField => assert!(
                    e.message.starts_with("the body "),
                    "a field refusal without a field: {e:?}"
                ),
                _ => panic!("a {:?} refusal names no field: {e:?}", e.code),
            }
        }
    }
}

/// A diagnostic about `file`, whose text is `text`, points inside it: a
/// line of the text (or 0, "the whole file") and a column within that
/// line counted in characters (at most one past its last character; 0
/// when the line alone is known). A diagnostic about another file is held
/// to the same rule against that file's text on disk. Rendering it must
/// not panic either.
pub fn check_diagnostic(d: &Diagnostic, file: &Path, text: &str) {
    let _ = d.to_string();
    if d.file != file.display().to_string() {
        // Another file (a bundled policy the fuzzed schema rejects): held
        // to the same rule, against its text on disk.
        if let Ok(other) = std::fs::read_to_string(&d.file) {
            check_diagnostic(d, Path::new(&d.file), &other);
        }
        return;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    if d.line == 0 {
        assert_eq!(d.column, 0, "a column without a line: {d:?}");
        return;
    }
    assert!(
        d.line <= lines.len(),
        "line {} of a {}-line file: {d:?}\n{text:?}",
        d.line,
        lines.len()
    );
    let line = lines[d.line - 1];
    let chars = line.chars().count();
    assert!(
        d.column <= chars + 1,
        "column {} on line {} of {} characters: {d:?}\n{line:?}",
        d.column,
        d.line,
        chars
    );
}
