//! The served directory: which names are allowed, listing, opening for read, and uploads
//! that become visible only when complete, verified and durable.
//!
//! [`Store`] is the interface the server uses, so another backend can replace [`DirStore`];
//! the client uses [`DirStore`] directly for its own directory, with the same promises.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::protocol::{Entry, EntryKind, MAX_NAME};
use crate::report::escape;
use crate::sys;

/// Names starting with this are ft's own (temporary files); never listed, served or accepted.
pub const RESERVED_PREFIX: &str = ".ft-";

/// Prefix of temporary upload files.
pub const TEMP_PREFIX: &str = ".ft-tmp-";

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

/// A file opened for download.
pub struct Source {
    /// The file's bytes.
    pub reader: Box<dyn Read + Send>,
    /// Its size when opened.
    pub size: u64,
    /// Its modification time, seconds since the Unix epoch.
    pub modified: i64,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

/// An upload in progress. Dropping it without [`Upload::commit`] discards everything written.
pub trait Upload: Write + Send {
    /// Makes the data durable and publishes it under its final name, never replacing an
    /// existing file (unless created to replace). Call only after the data was verified.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Where served files live.
pub trait Store: Send + Sync + fmt::Debug {
    /// The entries visible to clients, in no particular order, streamed.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    fn list(&self) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>>;

    /// Opens a file for download.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Io`].
    fn open(&self, name: &str) -> Result<Source>;

    /// Checks, before any data is sent, that `name` is valid and free.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`], [`Error::Io`].
    fn check_free(&self, name: &str) -> Result<()>;

    /// Starts an upload of `name`, expected to be `size` bytes.
    ///
    /// # Errors
    /// As [`Store::check_free`].
    fn create(&self, name: &str, size: u64) -> Result<Box<dyn Upload>>;

    /// Removes temporary files left by a crash; returns how many. Only one server may
    /// serve a directory, since this removes every temporary file in it.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    fn cleanup(&self) -> Result<usize>;
}

/// A [`Store`] on a local directory.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    counter: AtomicU64,
}

impl DirStore {
    /// Uses the existing directory `root`.
    ///
    /// # Errors
    /// [`Error::Io`] when `root` is missing or not a directory.
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let store = ftlib::store::DirStore::open(dir.path())?;
    /// assert_eq!(store.root(), dir.path());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(root: impl Into<PathBuf>) -> Result<DirStore> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::NotFound {
                "does not exist"
            } else {
                "cannot be read"
            };
            Error::io(format!("directory {} {what}", root.display()), e)
        })?;
        if !meta.is_dir() {
            return Err(Error::io(
                format!("{} is not a directory", root.display()),
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        Ok(DirStore {
            root,
            counter: AtomicU64::new(0),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Refuses early when the file system has less free space than `size`.
    ///
    /// # Errors
    /// [`Error::NoSpace`].
    pub fn check_space(&self, name: &str, size: u64) -> Result<()> {
        match sys::available_space(&self.root) {
            Some(available) if available < size => Err(Error::NoSpace {
                name: name.to_owned(),
                needed: size,
                available,
            }),
            _ => Ok(()),
        }
    }

    /// Starts writing `name`; with `replace`, publishing replaces an existing file atomically
    /// (the client's `--overwrite`), otherwise it never does.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::AlreadyExists`] (without `replace`), [`Error::Io`].
    pub fn create_file(&self, name: &str, replace: bool) -> Result<DirUpload> {
        if replace {
            validate_name(name)?;
            if fs::symlink_metadata(self.root.join(name)).is_ok_and(|m| !m.is_file()) {
                return Err(Error::AlreadyExists {
                    name: name.to_owned(),
                    where_: " and is not a regular file",
                });
            }
        } else {
            self.check_free(name)?;
        }
        let (tmp, file) = self.create_temp(name)?;
        Ok(DirUpload {
            file: Some(file),
            dst: self.root.join(name),
            dir: self.root.clone(),
            tmp,
            name: name.to_owned(),
            replace,
        })
    }

    fn create_temp(&self, name: &str) -> Result<(PathBuf, File)> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let tmp = self
                .root
                .join(format!("{TEMP_PREFIX}{}-{n}-{nanos:x}", std::process::id()));
            match sys::create_new(&tmp) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("creating a temporary file for {}", escape(name)),
                        e,
                    ));
                }
            }
        }
    }
}

impl Store for DirStore {
    fn list(&self) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        let dir = fs::read_dir(&self.root).map_err(|e| Error::io("reading the directory", e))?;
        Ok(Box::new(
            dir.filter_map(|item| list_entry(item).transpose()),
        ))
    }

    fn open(&self, name: &str) -> Result<Source> {
        validate_name(name)?;
        let path = self.root.join(name);
        let file = sys::open_read_nofollow(&path).map_err(|e| {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                Error::NotFound {
                    name: name.to_owned(),
                    detail: " (symbolic links are not served)",
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound {
                    name: name.to_owned(),
                    detail: "",
                }
            } else {
                Error::io(format!("opening {}", escape(name)), e)
            }
        })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", escape(name)), e))?;
        if !meta.is_file() {
            return Err(Error::NotFound {
                name: name.to_owned(),
                detail: " (not a regular file)",
            });
        }
        Ok(Source {
            reader: Box::new(file),
            size: meta.len(),
            modified: unix_seconds(&meta),
        })
    }

    fn check_free(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        match fs::symlink_metadata(self.root.join(name)) {
            Ok(_) => Err(Error::AlreadyExists {
                name: name.to_owned(),
                where_: "",
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("checking {}", escape(name)), e)),
        }
    }

    fn create(&self, name: &str, size: u64) -> Result<Box<dyn Upload>> {
        self.check_free(name)?;
        self.check_space(name, size)?;
        Ok(Box::new(self.create_file(name, false)?))
    }

    fn cleanup(&self) -> Result<usize> {
        let dir = fs::read_dir(&self.root).map_err(|e| Error::io("reading the directory", e))?;
        let mut removed = 0;
        for item in dir.flatten() {
            let is_temp = item
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX));
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if is_temp && !is_dir && fs::remove_file(item.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Turns one directory item into a visible entry, or `None` for what clients never see:
/// ft's own files, symlinks, special files, names that are not UTF-8, vanished entries.
fn list_entry(item: io::Result<fs::DirEntry>) -> Result<Option<Entry>> {
    let item = item.map_err(|e| Error::io("reading the directory", e))?;
    let Ok(name) = item.file_name().into_string() else {
        return Ok(None);
    };
    if name.starts_with(RESERVED_PREFIX) {
        return Ok(None);
    }
    // DirEntry::metadata does not follow symlinks.
    let meta = match item.metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", escape(&name)), e)),
    };
    let kind = if meta.is_file() {
        EntryKind::File
    } else if meta.is_dir() {
        EntryKind::Dir
    } else {
        return Ok(None);
    };
    Ok(Some(Entry {
        name,
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        modified: unix_seconds(&meta),
    }))
}

fn unix_seconds(meta: &fs::Metadata) -> i64 {
    match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(after)) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Ok(Err(before)) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        Err(_) => 0,
    }
}

/// An upload into a [`DirStore`]: a hidden temporary file until committed.
#[derive(Debug)]
pub struct DirUpload {
    file: Option<File>,
    tmp: PathBuf,
    dst: PathBuf,
    dir: PathBuf,
    name: String,
    replace: bool,
}

impl DirUpload {
    /// Syncs and publishes the file; see [`Upload::commit`].
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the name was taken meanwhile; [`Error::Io`].
    pub fn commit(mut self) -> Result<()> {
        let name = escape(&self.name);
        if let Some(file) = self.file.take() {
            file.sync_all()
                .map_err(|e| Error::io(format!("syncing {name}"), e))?;
        }
        let published = if self.replace {
            sys::publish_replace(&self.tmp, &self.dst)
        } else {
            sys::publish_noreplace(&self.tmp, &self.dst)
        };
        published.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                name: self.name.clone(),
                where_: " (another upload finished first)",
            },
            _ => Error::io(format!("publishing {name}"), e),
        })?;
        // Published: from here on the name is the file's, whatever happens.
        self.tmp = PathBuf::new();
        sys::sync_dir(&self.dir)
            .map_err(|e| Error::io(format!("syncing the directory of {name}"), e))
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("upload already committed"))
    }
}

impl Write for DirUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

impl Upload for DirUpload {
    fn commit(self: Box<Self>) -> Result<()> {
        DirUpload::commit(*self)
    }
}

impl Drop for DirUpload {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per bad name.
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
        }
    }

    fn temp_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read_dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[test]
    fn upload_is_invisible_until_commit_and_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut up = store.create_file("a.txt", false).expect("create");
        up.write_all(b"hello").expect("write");
        assert!(!dir.path().join("a.txt").exists());
        assert_eq!(store.list().expect("list").count(), 0, "temp file listed");
        assert_eq!(temp_files(dir.path()).len(), 1);
        drop(up);
        assert!(temp_files(dir.path()).is_empty());
        assert!(!dir.path().join("a.txt").exists());

        let mut up = store.create_file("a.txt", false).expect("create");
        up.write_all(b"hello").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a.txt")).expect("read"), b"hello");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn racing_commits_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut first = store.create_file("x", false).expect("create");
        let mut second = store.create_file("x", false).expect("create");
        first.write_all(b"first").expect("write");
        second.write_all(b"second").expect("write");
        second.commit().expect("second wins");
        assert!(matches!(first.commit(), Err(Error::AlreadyExists { .. })));
        assert_eq!(fs::read(dir.path().join("x")).expect("read"), b"second");
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn existing_names_are_refused_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), b"keep").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        assert!(matches!(
            store.create_file("a", false),
            Err(Error::AlreadyExists { .. })
        ));
        let mut up = store.create_file("a", true).expect("replace allowed");
        up.write_all(b"new").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"new");
    }

    #[test]
    fn cleanup_removes_only_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(".ft-tmp-99-0-0"), b"stale").expect("write");
        fs::write(dir.path().join("keep"), b"k").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        assert_eq!(store.cleanup().expect("cleanup"), 1);
        assert!(dir.path().join("keep").exists());
        assert!(temp_files(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn listing_and_open_skip_symlinks_and_specials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).expect("symlink");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("file"), b"123").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        let mut entries: Vec<_> = store
            .list()
            .expect("list")
            .map(|e| e.expect("entry"))
            .map(|e| (e.name, e.kind, e.size))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            entries,
            vec![
                ("file".to_owned(), EntryKind::File, 3),
                ("sub".to_owned(), EntryKind::Dir, 0)
            ]
        );
        assert!(matches!(store.open("link"), Err(Error::NotFound { .. })));
        assert!(matches!(store.open("sub"), Err(Error::NotFound { .. })));
        assert!(matches!(
            store.check_free("link"),
            Err(Error::AlreadyExists { .. })
        ));
    }

    #[test]
    fn missing_root_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = DirStore::open(dir.path().join("nope")).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
        fs::write(dir.path().join("f"), b"").expect("write");
        let err = DirStore::open(dir.path().join("f")).expect_err("a file");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
