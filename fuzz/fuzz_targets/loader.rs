//! Every file the loaders read, as the loaders read them: the input is
//! written to a file in a scratch directory and loaded from there.
//!
//! The first byte chooses the kind (modulo 9):
//!
//! 0. a policy file, validated strictly against the bundled schema;
//! 1. a policy file, without a schema (validation off);
//! 2. a schema in Cedar's syntax (`*.cedarschema`), with the bundled
//!    policies validated against it;
//! 3. a schema in JSON (`*.cedarschema.json`), likewise;
//! 4. an entity file in JSON, read against the bundled schema;
//! 5. the same in YAML;
//! 6. a doorman test suite (`*.test.yaml`);
//! 7. a Cedar test file (`*.cedartest.json`);
//! 8. a gateway route map, checked against the bundled schema (beside a
//!    copy of the sample JWKS, which the sample route map names).
//!
//! Asserted, beyond not panicking: every diagnostic about the file lies
//! inside it: its line is one of the file's lines, its column (counted in
//! characters) at most one past that line's last character, so it names a
//! character boundary (or 0 for "the whole file" / "the whole line"); the
//! same holds for every loaded policy's position; every diagnostic
//! renders.

#![no_main]

use std::path::{Path, PathBuf};

use doorman::{Diagnostic, Sources, ValidationMode};
use doorman_fuzz::{bundled, check_diagnostic, root, scratch};
use libfuzzer_sys::fuzz_target;

/// Writes `text` to `name` in the scratch directory's `dir` (made on
/// first use; the route maps' beside a copy of the sample JWKS).
fn write(dir: &str, name: &str, text: &str) -> PathBuf {
    let dir = scratch().join(dir);
    if !dir.exists() {
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        std::fs::copy(root().join("routes/jwks.json"), dir.join("jwks.json")).expect("the JWKS");
    }
    let file = dir.join(name);
    std::fs::write(&file, text).expect("a scratch file");
    file
}

fn check_all(diags: &[Diagnostic], file: &Path, text: &str) {
    for d in diags {
        check_diagnostic(d, file, text);
    }
}

fn load(sources: &Sources, file: &Path, text: &str) {
    match doorman::load(sources) {
        Ok(snapshot) => {
            check_all(snapshot.warnings(), file, text);
            for p in snapshot.policies() {
                let d = Diagnostic::new(Path::new(&p.file), p.line, p.column, p.id.clone());
                check_diagnostic(&d, file, text);
            }
        }
        Err(e) => check_all(&e.diagnostics, file, text),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    // The loaders refuse bytes that are not UTF-8 before looking at them.
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let schema = || Some(root().join("schema"));
    match choice % 9 {
        0 | 1 => {
            let file = write("policies", "fuzz.cedar", text);
            let strict = choice % 9 == 0;
            let sources = Sources {
                policies: file.parent().expect("a directory").to_path_buf(),
                schema: if strict { schema() } else { None },
                entities: vec![],
                databases: vec![],
                validation: if strict {
                    ValidationMode::Strict
                } else {
                    ValidationMode::Off
                },
                routes: None,
            };
            load(&sources, &file, text);
        }
        2 | 3 => {
            let name = if choice % 9 == 2 {
                "fuzz.cedarschema"
            } else {
                "fuzz.cedarschema.json"
            };
            let file = write("schema", name, text);
            let sources = Sources {
                policies: root().join("policies"),
                schema: Some(file.clone()),
                entities: vec![],
                databases: vec![],
                validation: ValidationMode::Strict,
                routes: None,
            };
            load(&sources, &file, text);
        }
        4 | 5 => {
            let name = if choice % 9 == 4 {
                "fuzz.json"
            } else {
                "fuzz.yaml"
            };
            let file = write("entities", name, text);
            // The bundled snapshot's schema, parsed once, reads them.
            match bundled().with_entity_files(std::slice::from_ref(&file)) {
                Ok(_) => {}
                Err(e) => check_all(&e.diagnostics, &file, text),
            }
        }
        6 | 7 => {
            let name = if choice % 9 == 6 {
                "fuzz.test.yaml"
            } else {
                "fuzz.cedartest.json"
            };
            let file = write("suites", name, text);
            if let Err(diags) = doorman::testing::suite::read(&file) {
                check_all(&diags, &file, text);
            }
        }
        _ => {
            let file = write("routes", "app.yaml", text);
            if let Err(diags) = doorman::gateway::load_route_map(&file, bundled().schema()) {
                check_all(&diags, &file, text);
            }
        }
    }
});
