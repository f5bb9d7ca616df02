//! How ftclient shows things: human-readable sizes, the columns of `list --long`, the JSON
//! object of a listed entry, and JSON lines made safe for a terminal.

use std::collections::HashMap;
use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, TimeZone};
use ftlib::text::{escape, terminal_safe_json};
use ftlib::{Entry, EntryKind};
use serde::Serialize;

/// `bytes` in binary units with at most one decimal: `512 B`, `1.5 KiB`, `23 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss is fine: one decimal is shown at most.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let mut text = if value < 9.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    };
    // 1023.6 KiB rounds to 1024: say 1.0 MiB instead.
    if text == "1024" && unit < UNITS.len() - 1 {
        text = "1.0".to_owned();
        unit += 1;
    }
    format!("{text} {}", UNITS[unit])
}

/// The name as listed: escaped if it holds control characters, `/` after a directory.
pub(crate) fn listed_name(entry: &Entry) -> String {
    let suffix = if entry.kind == EntryKind::Dir {
        "/"
    } else {
        ""
    };
    format!("{}{suffix}", escape(&entry.name))
}

/// `text` cut to at most `max` characters, ending in `…` when cut (for a progress bar's label).
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// `digest` as 32 lowercase hex digits.
pub(crate) fn hex(digest: &[u8; 16]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lines of `list --long`: kind, size, modification time (in `tz`), with `digests` the
/// XXH3-128 (`-` for a directory, `?` for a file whose digest could not be had), and name,
/// in aligned columns, sorted by name. Sizes are exact byte counts when `exact`.
pub(crate) fn long_listing<Tz>(
    entries: &mut [Entry],
    exact: bool,
    digests: Option<&HashMap<String, [u8; 16]>>,
    tz: &Tz,
) -> Vec<String>
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    entries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|entry| {
            let size = match entry.kind {
                EntryKind::Dir => "-".to_owned(),
                _ if exact => entry.size.to_string(),
                _ => human_size(entry.size),
            };
            let modified = DateTime::from_timestamp(entry.modified, 0).map_or_else(
                || "?".to_owned(),
                |t| t.with_timezone(tz).format("%Y-%m-%d %H:%M").to_string(),
            );
            let digest = match digests.map(|d| (entry.kind, d.get(&entry.name))) {
                None => String::new(),
                Some((EntryKind::File, Some(digest))) => hex(digest),
                Some((EntryKind::File, None)) => "?".to_owned(),
                Some(_) => "-".to_owned(),
            };
            [
                entry.kind.as_str().to_owned(),
                size,
                modified,
                digest,
                listed_name(entry),
            ]
        })
        .collect();
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (kind_w, size_w, time_w, digest_w) = (width(0), width(1), width(2), width(3));
    rows.iter()
        .map(|[kind, size, modified, digest, name]| {
            let line = format!("{kind:<kind_w$}  {size:>size_w$}  {modified:<time_w$}  ");
            if digests.is_some() {
                format!("{line}{digest:<digest_w$}  {name}")
            } else {
                format!("{line}{name}")
            }
        })
        .collect()
}

/// One entry of `list --json`, with the file's digest if given, without a newline.
pub(crate) fn entry_json(entry: &Entry, digest: Option<&[u8; 16]>) -> String {
    #[derive(Serialize)]
    struct Json<'a> {
        name: &'a str,
        kind: &'static str,
        size: u64,
        modified: Option<String>,
        modified_unix: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    }
    let json = Json {
        name: &entry.name,
        kind: entry.kind.as_str(),
        size: entry.size,
        modified: DateTime::from_timestamp(entry.modified, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        modified_unix: entry.modified,
        digest: digest.map(hex),
    };
    // Serialising strings and integers cannot fail.
    terminal_safe_json(&serde_json::to_string(&json).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry(name: &str, kind: EntryKind, size: u64, modified: i64) -> Entry {
        Entry {
            name: name.to_owned(),
            kind,
            size,
            modified,
            executable: false,
        }
    }

    #[test]
    fn human_sizes() {
        let rows: &[(u64, &str)] = &[
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * 1024 - 1, "10 KiB"),
            (10 * 1024, "10 KiB"),
            (123 * 1024 + 400, "123 KiB"),
            (1024 * 1024 - 1, "1.0 MiB"),
            (1024 * 1024, "1.0 MiB"),
            (5 * 1024 * 1024 * 1024 + 1, "5.0 GiB"),
            (1 << 40, "1.0 TiB"),
            (1 << 50, "1.0 PiB"),
            (u64::MAX, "16 EiB"),
        ];
        for &(bytes, want) in rows {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn shorten_cuts_on_characters() {
        assert_eq!(shorten("short.txt", 20), "short.txt");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }

    #[test]
    fn long_listing_aligns_sorts_and_escapes() {
        let mut entries = vec![
            entry("zeta.bin", EntryKind::File, 5 * 1024 * 1024, 1_000_000_000),
            entry("sub", EntryKind::Dir, 0, 0),
            entry("a\x1bb", EntryKind::File, 7, 86_400),
            entry("other", EntryKind::Other, 1536, -1),
        ];
        let lines = long_listing(&mut entries, false, None, &Utc);
        assert_eq!(
            lines,
            [
                "file       7 B  1970-01-02 00:00  \"a\\u{1b}b\"",
                "other  1.5 KiB  1969-12-31 23:59  other",
                "dir          -  1970-01-01 00:00  sub/",
                "file   5.0 MiB  2001-09-09 01:46  zeta.bin",
            ]
        );
        let exact = long_listing(&mut entries, true, None, &Utc);
        assert_eq!(exact[3], "file   5242880  2001-09-09 01:46  zeta.bin");
        assert_eq!(exact[2], "dir          -  1970-01-01 00:00  sub/");
        assert!(long_listing(&mut [], false, None, &Utc).is_empty());
    }

    #[test]
    fn long_listing_survives_an_impossible_time() {
        let mut entries = vec![entry("x", EntryKind::File, 1, i64::MAX)];
        assert_eq!(
            long_listing(&mut entries, true, None, &Utc),
            ["file  1  ?  x"]
        );
    }

    #[test]
    fn entry_json_fields() {
        let json: serde_json::Value = serde_json::from_str(&entry_json(
            &entry("a\u{9b}b", EntryKind::File, 42, 1_000_000_000),
            None,
        ))
        .expect("valid JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "a\u{9b}b",
                "kind": "file",
                "size": 42,
                "modified": "2001-09-09T01:46:40Z",
                "modified_unix": 1_000_000_000,
            })
        );
        let odd = entry_json(&entry("d", EntryKind::Dir, 0, i64::MIN), None);
        assert!(odd.contains("\"modified\":null"), "{odd}");
        let with = entry_json(&entry("f", EntryKind::File, 0, 0), Some(&[0xa5; 16]));
        let json: serde_json::Value = serde_json::from_str(&with).expect("valid JSON");
        assert_eq!(json["digest"], "a5".repeat(16));
    }

    /// With digests, a column before the name: the file's, `?` for a file without one,
    /// `-` for a directory; the other columns as without.
    #[test]
    fn long_listing_with_digests() {
        let mut entries = vec![
            entry("b.bin", EntryKind::File, 7, 0),
            entry("sub", EntryKind::Dir, 0, 0),
            entry("a.txt", EntryKind::File, 1, 0),
        ];
        let digests = HashMap::from([("b.bin".to_owned(), [0x0f; 16])]);
        let lines = long_listing(&mut entries, true, Some(&digests), &Utc);
        let b = "0f".repeat(16);
        assert_eq!(
            lines,
            [
                format!("file  1  1970-01-01 00:00  {:<32}  a.txt", "?"),
                format!("file  7  1970-01-01 00:00  {b}  b.bin"),
                format!("dir   -  1970-01-01 00:00  {:<32}  sub/", "-"),
            ]
        );
    }
}
