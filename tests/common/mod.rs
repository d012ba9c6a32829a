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
