//! Helpers shared by the integration test crates (each `tests/*.rs` is its
//! own crate, so they include this module by path).

use std::fs;
use std::path::Path;

/// Copies the directory tree `from` to `to`, so a test can break a model
/// without touching the shared one.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A private, writable copy of a test model (its `policies/`, `schema/`
/// and `entities/`) in a temp dir, removed when dropped. Test crates add
/// their own ways to run against it in `impl` blocks of their own.
pub struct ModelCopy {
    _dir: tempfile::TempDir,
    pub root: std::path::PathBuf,
}

impl ModelCopy {
    pub fn new(model: &Path) -> ModelCopy {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("model");
        copy_dir(model, &root);
        ModelCopy { _dir: dir, root }
    }

    pub fn path(&self, rel: &str) -> std::path::PathBuf {
        self.root.join(rel)
    }

    /// Writes `text` to `rel`, creating directories as needed.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    pub fn sources(&self) -> doorman::Sources {
        doorman::Sources {
            policies: self.path("policies"),
            schema: Some(self.path("schema")),
            entities: vec![self.path("entities")],
            databases: vec![],
            validation: doorman::ValidationMode::Strict,
            routes: None,
        }
    }
}
