//! Which names a store accepts: a relative path of one or more components separated by `/`,
//! each a plain path component safe on every platform and not one of ft's own hidden files,
//! within [`MAX_PATH`] bytes and [`MAX_DEPTH`] components. [`Name`] is a name that passed
//! these rules, checked once where it enters (a request, a command line) and trusted by
//! every store after.

use std::fmt;
use std::ops::Deref;
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::protocol::{MAX_DEPTH, MAX_NAME, MAX_PATH};

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

    /// Its components, from the top.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The directory part (`a/b` of `a/b/c`), `None` for a name of one component.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(parent, _)| parent)
    }

    /// The directories the name lies in, from the top (`a`, then `a/b`, of `a/b/c`).
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(end, _)| &self.0[..end])
    }

    /// The last component (`c` of `a/b/c`).
    pub fn leaf(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, leaf)| leaf)
    }

    /// The last component alone, as a name.
    pub fn leaf_name(&self) -> Name {
        Name(self.leaf().to_owned())
    }

    /// `child` (a relative path) inside this name.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when `child` is not a valid name or the whole is too long or
    /// too deep.
    pub fn join(&self, child: &str) -> Result<Name> {
        Name::new(&format!("{}/{child}", self.0))
    }

    /// How many components it has.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
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

/// Checks that `name` is a relative path of 1 to [`MAX_DEPTH`] components separated by `/`,
/// at most [`MAX_PATH`] bytes, each component a plain path component (no `.`, `..`, empty
/// component, backslash, control character, `.ft-` prefix, longer than [`MAX_NAME`]
/// bytes) that this platform can store as it is: on Windows also no `:`, device name
/// such as `CON`, trailing dot or space, or `< > " | ? *`.
///
/// # Errors
/// [`Error::InvalidName`] saying which rule the name broke.
///
/// # Examples
/// ```
/// use ftlib::store::validate_name;
/// assert!(validate_name("notes.pdf").is_ok());
/// assert!(validate_name("photos/2024/notes.pdf").is_ok());
/// assert!(validate_name("../etc/passwd").is_err());
/// assert!(validate_name("/etc/passwd").is_err());
/// assert!(validate_name("photos/").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > MAX_PATH {
        Some("longer than 4096 bytes")
    } else if name.starts_with('/') {
        Some("an absolute path (names are relative to the served directory)")
    } else if name.split('/').count() > MAX_DEPTH {
        Some("more than 64 directories deep")
    } else {
        name.split('/').find_map(component_reason)
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Why `name` is not a valid path component, if it is not.
fn component_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("has an empty component (a doubled or trailing /)")
    } else if name.len() > MAX_NAME {
        Some("a component is longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("has a . or .. component")
    } else if name.contains('\\') {
        Some("contains a backslash, a path separator on Windows")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.starts_with(RESERVED_PREFIX) {
        Some("names starting with .ft- are reserved for ft's temporary files")
    } else if !matches!(
        Path::new(name).components().collect::<Vec<_>>()[..],
        [Component::Normal(c)] if c == name
    ) {
        Some("not a plain path component")
    } else if cfg!(windows) {
        windows_reason(name)
    } else {
        None
    }
}

/// Names Windows reads as a drive or stream, maps to devices or silently alters. Elsewhere
/// these are ordinary names (`Foo::Bar.3pm.gz`, `12:30.jpg`), stored as they are.
fn windows_reason(name: &str) -> Option<&'static str> {
    const DEVICES: &[&str] = &[
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if name.contains(':') {
        Some("contains ':', a drive or stream separator on Windows")
    } else if DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem)) {
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
    fn ancestors_are_the_directories_from_the_top() {
        let name = |s: &str| Name::new(s).expect("valid");
        assert_eq!(name("a/b/c").ancestors().collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(name("top").ancestors().count(), 0);
    }

    #[test]
    fn invalid_names() {
        let long = "a".repeat(256);
        let too_long = format!("{}f", ("x".repeat(200) + "/").repeat(21));
        let too_deep = "d/".repeat(64) + "f";
        let rows: &[(&str, &str)] = &[
            ("", "empty"),
            (".", ". or .."),
            ("..", ". or .."),
            ("a/../b", ". or .."),
            ("a/./b", ". or .."),
            ("../etc/passwd", ". or .."),
            ("/abs", "absolute"),
            ("//abs", "absolute"),
            ("a/", "empty component"),
            ("a//b", "empty component"),
            ("..\\x", "backslash"),
            ("a\\b", "backslash"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("dir/a\nb", "control"),
            ("\x1b[31mred", "control"),
            ("tab\there", "control"),
            ("del\x7f", "control"),
            ("c1\u{85}", "control"),
            (".ft-tmp-1-2-3", "reserved"),
            (".ft-anything", "reserved"),
            ("sub/.ft-tmp-1", "reserved"),
            (&long, "255"),
            (&too_long, "4096"),
            (&too_deep, "64"),
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
            "a/b",
            "photos/2024/ünï cødé.jpg",
            ".git/config",
        ] {
            validate_name(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            let checked = Name::new(name).unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            assert_eq!(checked.as_str(), name);
            assert_eq!(&*checked, name);
            assert_eq!(checked.to_string(), name);
        }
    }

    /// `:` is a drive or stream separator only on Windows; elsewhere names such as Perl's
    /// man pages (`File::Copy.3perl.gz`) are stored as they are.
    #[test]
    fn colons_are_refused_only_on_windows() {
        for name in ["C:", "C:evil", "a/C:/b", "File::Copy.3perl.gz", "12:30.jpg"] {
            let got = validate_name(name);
            if cfg!(windows) {
                match got {
                    Err(Error::InvalidName { reason, .. }) => {
                        assert!(reason.contains("drive"), "{name:?}: {reason}");
                    }
                    other => panic!("{name:?} accepted on Windows: {other:?}"),
                }
            } else {
                got.unwrap_or_else(|e| panic!("{name:?} refused: {e}"));
            }
        }
    }
}
