//! What a directory holds, by name: everything, ft's temporary files, or kept partials.
//! Names are sorted, and one that is not UTF-8 fails the test rather than go unseen.

use std::fs;
use std::path::Path;

use ftlib::store::{PART_PREFIX, TEMP_PREFIX};

/// The names in `dir` that start with `prefix`, sorted.
pub fn names_with(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .unwrap_or_else(|name| panic!("a name that is not UTF-8: {name:?}"))
        })
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Every name in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    names_with(dir, "")
}

/// Names of ft temporary files (`.ft-tmp-…`) in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    names_with(dir, TEMP_PREFIX)
}

/// Names of kept partials of resumable transfers (`.ft-part-…`) in `dir`.
pub fn partials(dir: &Path) -> Vec<String> {
    names_with(dir, PART_PREFIX)
}

/// How many bytes the first kept partial in `dir` holds, if there is one.
pub fn partial_len(dir: &Path) -> Option<u64> {
    first_len(dir, PART_PREFIX)
}

/// How many bytes the first ft temporary file in `dir` holds, if there is one.
pub fn temp_len(dir: &Path) -> Option<u64> {
    first_len(dir, TEMP_PREFIX)
}

/// The length of the first file in `dir` (by name) whose name starts with `prefix`.
fn first_len(dir: &Path, prefix: &str) -> Option<u64> {
    names_with(dir, prefix)
        .first()
        .and_then(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|meta| meta.len())
}
