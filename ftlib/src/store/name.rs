//! Which file names a store accepts: one plain path component, safe on every platform and
//! not one of ft's own hidden files. [`Name`] is a name that passed these rules, checked
//! once where it enters (a request, a command line) and trusted by every store after.

use std::fmt;
use std::ops::Deref;
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::protocol::MAX_NAME;

/// Names starting with this are ft's own (temporary files); never listed, served or accepted.
pub const RESERVED_PREFIX: &str = ".ft-";

/// Prefix of temporary upload files.
pub const TEMP_PREFIX: &str = ".ft-tmp-";

/// Prefix of partial files kept for a resumable transfer.
pub const PART_PREFIX: &str = ".ft-part-";

/// A file name that passed [`validate_name`]: what every [`Store`](super::Store) method
/// takes, so no store can be handed a name nobody checked.
///
/// It derefs to `str`; [`Display`](fmt::Display) writes it raw, so escape it before it
/// reaches a terminal ([`crate::text::escape`]).
///
/// # Examples
/// ```
/// use ftlib::store::Name;
/// let name = Name::new("notes.pdf")?;
/// assert_eq!(name.as_str(), "notes.pdf");
/// assert!(name.ends_with(".pdf"));
/// assert!(Name::new("../etc/passwd").is_err());
/// # Ok::<(), ftlib::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Checks `name` against the rules of [`validate_name`].
    ///
    /// # Errors
    /// [`Error::InvalidName`] saying which rule the name broke.
    pub fn new(name: &str) -> Result<Name> {
        validate_name(name)?;
        Ok(Name(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    /// The name as it is, unescaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `name` is one plain path component that is safe on every platform.
///
/// # Errors
/// [`Error::InvalidName`] saying which rule the name broke.
///
/// # Examples
/// ```
/// use ftlib::store::validate_name;
/// assert!(validate_name("notes.pdf").is_ok());
/// assert!(validate_name("../etc/passwd").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > MAX_NAME {
        Some("longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("refers to a directory")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.contains(':') {
        Some("contains ':', a drive or stream separator on Windows")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.starts_with(RESERVED_PREFIX) {
        Some("names starting with .ft- are reserved for ft's temporary files")
    } else if !matches!(
        Path::new(name).components().collect::<Vec<_>>()[..],
        [Component::Normal(c)] if c == name
    ) {
        Some("not one plain path component")
    } else if cfg!(windows) {
        windows_reason(name)
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Names Windows maps to devices or silently alters.
fn windows_reason(name: &str) -> Option<&'static str> {
    const DEVICES: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem)) {
        Some("a reserved device name on Windows")
    } else if name.ends_with(['.', ' ']) || name.contains(['<', '>', '"', '|', '?', '*']) {
        Some("not a valid file name on Windows")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per bad name; [`Name::new`] refuses each for the same reason.
    #[test]
    fn invalid_names() {
        let long = "a".repeat(256);
        let rows: &[(&str, &str)] = &[
            ("", "empty"),
            (".", "directory"),
            ("..", "directory"),
            ("a/b", "separator"),
            ("/abs", "separator"),
            ("a/../b", "separator"),
            ("..\\x", "separator"),
            ("C:", "drive"),
            ("C:evil", "drive"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("\x1b[31mred", "control"),
            ("tab\there", "control"),
            ("del\x7f", "control"),
            ("c1\u{85}", "control"),
            (".ft-tmp-1-2-3", "reserved"),
            (".ft-anything", "reserved"),
            (&long, "255"),
        ];
        for (name, reason) in rows {
            match validate_name(name) {
                Err(Error::InvalidName { reason: got, .. }) => {
                    assert!(got.contains(reason), "{name:?}: {got}");
                }
                other => panic!("{name:?} accepted: {other:?}"),
            }
            match Name::new(name) {
                Err(Error::InvalidName { name: got, .. }) => assert_eq!(got, *name),
                other => panic!("{name:?} accepted as a Name: {other:?}"),
            }
        }
    }

    #[test]
    fn valid_names() {
        let longest = "é".repeat(127) + "a";
        for name in [
            "a",
            "notes.pdf",
            ".hidden",
            "with space",
            "ünïcødé",
            "...",
            &longest,
        ] {
            validate_name(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            let checked = Name::new(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            assert_eq!(checked.as_str(), name);
            assert_eq!(&*checked, name);
            assert_eq!(checked.to_string(), name);
        }
    }
}
