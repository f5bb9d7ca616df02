//! The rules no module of ftlib breaks (docs/ARCHITECTURE.md), checked on the source: which
//! modules each one's non-test code may name through `crate::`. The wire format and the
//! store know nothing of the network's users; the server and the client know nothing of
//! each other; `text` and `sys` are leaves. A rule broken fails here with the file and line.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of ftlib.
const MODULES: &[&str] = &[
    "accounts",
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
    "tls",
    "transfer",
    "trust",
];

/// What the server may use: the network side, and TLS.
const SERVER_SIDE: &[&str] = &[
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
    "tls",
    "accounts",
];

/// What the client may use: the network side, TLS, and what it trusts.
const CLIENT_SIDE: &[&str] = &[
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
    "tls",
    "trust",
];

/// Each module (a file, or a folder of files) and the modules it may use; itself is always
/// allowed.
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    // A server's accounts: the users file and the throttle; nothing of connections.
    ("accounts", &["protocol", "error", "sys", "text"]),
    ("sys", &[]),
    ("protocol", &["codec"]),
    ("codec", &["protocol", "error"]),
    ("error", &["protocol", "text", "tls"]),
    ("report", &["protocol", "error", "text"]),
    ("connection", &["protocol", "codec", "error"]),
    // `sys` for its page-aligned read buffers only.
    (
        "transfer",
        &["protocol", "connection", "error", "text", "sys"],
    ),
    ("handshake", &["protocol", "connection", "error"]),
    // TLS under the framing: knows connections and the greeting, nothing of what they carry.
    ("tls", &["protocol", "connection", "error"]),
    // What a client trusts: fingerprints and the known-hosts file.
    ("trust", &["error", "tls"]),
    ("store", &["protocol", "error", "text", "sys"]),
    ("pipeline", &["protocol", "error", "store"]),
    ("server", SERVER_SIDE),
    ("client", CLIENT_SIDE),
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

/// The code of a file without its unit tests (`#[cfg(test)]` then `mod tests`, to the end)
/// and without `//` comments, one entry per line.
fn non_test_code(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).expect("read source");
    let lines: Vec<&str> = text.lines().collect();
    let mut code = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod tests") {
            break;
        }
        code.push((i + 1, line.split("//").next().unwrap_or("").to_owned()));
    }
    code
}

/// The modules named as `crate::MODULE` in `code`, with the line each is on; a group
/// `crate::{a::X, b::{Y, Z}}` names `a` and `b`, also across lines.
fn named_modules_in(code: &[(usize, String)]) -> Vec<(usize, &'static str)> {
    let mut joined = String::new();
    let mut line_at = Vec::new();
    for (number, line) in code {
        line_at.push((joined.len(), *number));
        joined.push_str(line);
        joined.push('\n');
    }
    let line_of = |offset: usize| {
        line_at
            .iter()
            .take_while(|(start, _)| *start <= offset)
            .last()
            .map_or(0, |(_, n)| *n)
    };
    let mut found = Vec::new();
    for (at, _) in joined.match_indices("crate::") {
        let rest = &joined[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Each item of the group at depth 0 starts with a module name.
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                let boundary = match c {
                    '{' => {
                        depth += 1;
                        false
                    }
                    '}' if depth == 0 => true,
                    '}' => {
                        depth -= 1;
                        false
                    }
                    ',' => depth == 0,
                    _ => false,
                };
                if boundary {
                    if let Some(module) = module_at(&group[item_start..i]) {
                        found.push((line_of(at), module));
                    }
                    item_start = i + 1;
                    if c == '}' {
                        break;
                    }
                }
            }
        } else if let Some(module) = module_at(rest) {
            found.push((line_of(at), module));
        }
    }
    found
}

/// The module a path starts with, if it is one of ftlib's.
fn module_at(path: &str) -> Option<&'static str> {
    let path = path.trim_start();
    let end = path
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    MODULES.iter().copied().find(|m| *m == &path[..end])
}

/// The modules one line names.
fn named_modules(line: &str) -> Vec<&'static str> {
    named_modules_in(&[(1, line.to_owned())])
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn every_module_has_a_rule_and_a_source() {
    // And every module in the source is listed.
    for item in fs::read_dir(src()).expect("src") {
        let path = item.expect("entry").path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if stem != "lib" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            assert!(MODULES.contains(&stem), "{stem} is not in MODULES");
        }
    }
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
            for (number, used) in named_modules_in(&non_test_code(&file)) {
                if used != *module && !allowed.contains(&used) {
                    broken.push(format!("{}:{number}: {module} uses {used}", file.display()));
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
    assert_eq!(
        named_modules("use crate::{server::X, store::{Name, Store}, text::escape};"),
        ["server", "store", "text"]
    );
    let grouped = [
        (7, "use crate::{".to_owned()),
        (8, "    error::Error,".to_owned()),
        (9, "    client::Client,".to_owned()),
        (10, "};".to_owned()),
    ];
    assert_eq!(named_modules_in(&grouped), [(7, "error"), (7, "client")]);
    // A test-only item early in a file does not hide the rest of it.
    let connection = non_test_code(&src().join("connection.rs"));
    assert!(connection.len() > 300, "{} lines read", connection.len());
    let store = files_of("store");
    assert!(store.len() > 3, "{store:?}");
    let uses: usize = store
        .iter()
        .map(|f| named_modules_in(&non_test_code(f)).len())
        .sum();
    assert!(
        uses > 10,
        "the store's files name other modules {uses} times"
    );
}
