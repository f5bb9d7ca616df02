//! The rules no module of ftlib breaks (docs/ARCHITECTURE.md), checked on the source: which
//! modules each one's non-test code may name through `crate::`. The wire format and the
//! store know nothing of the network's users; the server and the client know nothing of
//! each other; `text` and `sys` are leaves. A rule broken fails here with the file and line.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of ftlib.
const MODULES: &[&str] = &[
    "client",
    "codec",
    "connection",
    "error",
    "handshake",
    "pipeline",
    "protocol",
    "report",
    "server",
    "store",
    "sys",
    "text",
    "transfer",
];

/// Each module (a file, or a folder of files) and the modules it may use; itself is always
/// allowed.
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("sys", &[]),
    ("protocol", &["codec"]),
    ("codec", &["protocol", "error"]),
    ("error", &["protocol", "text"]),
    ("report", &["protocol", "error", "text"]),
    ("connection", &["protocol", "codec", "error"]),
    ("transfer", &["protocol", "connection", "error", "text"]),
    ("handshake", &["protocol", "connection", "error"]),
    ("store", &["protocol", "error", "text", "sys"]),
    ("pipeline", &["protocol", "error", "store"]),
    (
        "server",
        &[
            "protocol",
            "codec",
            "connection",
            "handshake",
            "transfer",
            "store",
            "pipeline",
            "report",
            "error",
            "text",
        ],
    ),
    (
        "client",
        &[
            "protocol",
            "codec",
            "connection",
            "handshake",
            "transfer",
            "store",
            "pipeline",
            "report",
            "error",
            "text",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The source files of `module`: `src/module.rs` and everything under `src/module/`.
fn files_of(module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src().join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        for item in items {
            let path = item.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The code of a file before its unit tests, with `//` comments dropped.
fn non_test_code(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).expect("read source");
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or("").to_owned()))
        .collect()
}

/// The modules a line names as `crate::MODULE`.
fn named_modules(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter_map(|(at, _)| {
            let rest = &line[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            MODULES.iter().copied().find(|m| *m == &rest[..end])
        })
        .collect()
}

#[test]
fn every_module_has_a_rule_and_a_source() {
    for module in MODULES {
        assert!(
            ALLOWED.iter().any(|(m, _)| m == module),
            "no rule for {module}"
        );
        assert!(!files_of(module).is_empty(), "no source for {module}");
    }
}

#[test]
fn no_module_uses_what_its_rule_forbids() {
    let mut broken = Vec::new();
    for (module, allowed) in ALLOWED {
        for file in files_of(module) {
            for (number, line) in non_test_code(&file) {
                for used in named_modules(&line) {
                    if used != *module && !allowed.contains(&used) {
                        broken.push(format!("{}:{number}: {module} uses {used}", file.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "rules broken:\n{}", broken.join("\n"));
}

/// The check itself sees a forbidden use (so the test above cannot pass by seeing nothing).
#[test]
fn the_check_sees_uses() {
    assert_eq!(
        named_modules("use crate::server::Server; crate::store::Name"),
        ["server", "store"]
    );
    assert!(named_modules("use crate::servers::X;").is_empty());
    let store = files_of("store");
    assert!(store.len() > 3, "{store:?}");
    let uses: usize = store
        .iter()
        .flat_map(|f| non_test_code(f))
        .map(|(_, line)| named_modules(&line).len())
        .sum();
    assert!(
        uses > 10,
        "the store's files name other modules {uses} times"
    );
}
