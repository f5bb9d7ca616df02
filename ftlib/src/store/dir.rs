//! [`DirStore`], the [`Store`] on a local directory: opening the root, listing what clients
//! may see, opening files for reading without following symlinks, early refusals (taken
//! names, free space), and creating uploads; the client uses its inherent methods for its
//! own directory (`--overwrite`, resumable partials).

use std::fs;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::UNIX_EPOCH;

use super::name::{Name, RESERVED_PREFIX};
use super::pending::{BUFFERED_MAX, DirUpload};
use super::temps::{PartialLimits, Partials, Temps, remove_orphans};
use super::{PendingFile, Resumable, Source, Store, group};
use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{Entry, EntryKind};
use crate::sys;
use crate::text::escape;

/// A [`Store`] on a local directory.
///
/// Uploads are written to hidden files (or held in memory while small, see
/// [`BUFFERED_MAX`]), made durable, then published without replacing and the directory
/// synced; a group of them is committed by several threads at once.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    pub(super) temps: Arc<Temps>,
    partials: Arc<Partials>,
    /// Commit helper threads running now (at most [`group::COMMIT_HELPERS`]).
    pub(super) helpers: AtomicUsize,
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
            temps: Arc::new(Temps::new(root.clone())),
            partials: Arc::new(Partials::new(root.clone())),
            root,
            helpers: AtomicUsize::new(0),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Sets how long and how much is kept of abandoned partials.
    pub fn set_partial_limits(&self, limits: PartialLimits) {
        self.partials.set_limits(limits);
    }

    /// Opens (creating if needed) the partial `key` for `name`, for a resumable transfer:
    /// the upload, positioned after the bytes it already holds, and how many those are.
    /// With `replace`, publishing may replace an existing `name` (the client's
    /// `--overwrite`). A partial in use by another transfer is refused.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::Io`].
    pub(crate) fn open_partial(
        &self,
        key: &str,
        name: &Name,
        replace: bool,
    ) -> Result<(DirUpload, u64)> {
        // The key becomes part of a file name: only hex digits (ft's keys are digests), so
        // no key from any caller can name another path.
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Protocol(format!(
                "a resumable upload's key must be 1 to 64 hex digits, not {}",
                escape(key)
            )));
        }
        self.check_target(name, replace)?;
        let Some(lock) = self.partials.lock(key) else {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::InUse,
            });
        };
        let context = || format!("opening the partial file of {}", escape(name));
        let mut file = sys::open_partial(lock.path()).map_err(|e| Error::io(context(), e))?;
        let offset = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(context(), e))?;
        Ok((
            DirUpload::partial(&self.temps, name, replace, lock, file),
            offset,
        ))
    }

    /// Refuses early when the file system has less free space than `size`.
    ///
    /// # Errors
    /// [`Error::NoSpace`].
    pub(crate) fn check_space(&self, name: &Name, size: u64) -> Result<()> {
        match sys::available_space(&self.root) {
            Some(available) if available < size => Err(Error::NoSpace {
                name: name.to_string(),
                needed: size,
                available,
            }),
            _ => Ok(()),
        }
    }

    /// Starts writing `name`; with `replace`, publishing replaces an existing file atomically
    /// (the client's `--overwrite`), otherwise it never does. Nothing is created on disk
    /// until more than [`BUFFERED_MAX`] bytes are written or the upload is synced.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] (without `replace`; with it, when `name` is not a regular
    /// file), [`Error::Io`] when the name cannot be checked.
    pub fn create_file(&self, name: &Name, replace: bool) -> Result<DirUpload> {
        self.check_target(name, replace)?;
        Ok(DirUpload::in_memory(&self.temps, name, replace, 0))
    }

    /// Removes temporary files whose creating process is gone (a crash or a kill), and
    /// partials beyond the age and size limits; returns how many temporary files went.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read.
    pub fn cleanup(&self) -> Result<usize> {
        self.partials.prune();
        remove_orphans(&self.root).map_err(|e| Error::io("reading the directory", e))
    }

    /// Whether publishing `name` may go ahead: free, or (with `replace`) a regular file.
    fn check_target(&self, name: &Name, replace: bool) -> Result<()> {
        if !replace {
            return self.check_free(name);
        }
        if fs::symlink_metadata(self.root.join(name.as_str())).is_ok_and(|m| !m.is_file()) {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::NotAFile,
            });
        }
        Ok(())
    }

    /// Refuses a name anything holds: a file, a directory, a symlink (not followed).
    fn check_free(&self, name: &Name) -> Result<()> {
        match fs::symlink_metadata(self.root.join(name.as_str())) {
            Ok(_) => Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::Exists,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("checking {}", escape(name)), e)),
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

    fn open(&self, name: &Name, offset: u64) -> Result<Source> {
        let path = self.root.join(name.as_str());
        let mut file = sys::open_read_nofollow(&path).map_err(|e| {
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                Error::NotFound {
                    name: name.to_string(),
                    why: Missing::Symlink,
                }
            } else if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound {
                    name: name.to_string(),
                    why: Missing::Absent,
                }
            } else {
                Error::io(format!("opening {}", escape(name)), e)
            }
        })?;
        let reading = |e| Error::io(format!("reading {}", escape(name)), e);
        let meta = file.metadata().map_err(reading)?;
        if !meta.is_file() {
            return Err(Error::NotFound {
                name: name.to_string(),
                why: Missing::NotRegular,
            });
        }
        if offset > 0 {
            file.seek(SeekFrom::Start(offset)).map_err(reading)?;
        }
        Ok(Source {
            reader: Box::new(file),
            size: meta.len(),
            modified: unix_seconds(&meta),
        })
    }

    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>> {
        self.check_free(name)?;
        self.check_space(name, size)?;
        let expected = usize::try_from(size).unwrap_or(usize::MAX);
        let mut upload = DirUpload::in_memory(&self.temps, name, false, expected);
        if expected > BUFFERED_MAX {
            // Too big for memory: create its file now, so a failure shows before the body.
            upload.spill().map_err(|e| {
                Error::io(format!("creating a temporary file for {}", escape(name)), e)
            })?;
        }
        Ok(Box::new(upload))
    }

    fn create_resumable(&self, name: &Name, size: u64, key: &str) -> Result<Resumable> {
        let (mut upload, mut offset) = self.open_partial(key, name, false)?;
        if offset > size {
            // Cannot be a prefix of this file: start over.
            upload.restart()?;
            offset = 0;
        }
        if let Err(e) = self.check_space(name, size - offset) {
            // Still resumable once there is room.
            upload.keep();
            return Err(e);
        }
        let existing = upload.existing()?;
        Ok(Resumable {
            upload: Box::new(upload),
            offset,
            existing,
        })
    }

    fn commit_group(&self, files: Vec<Box<dyn PendingFile>>) -> Vec<Result<()>> {
        group::commit_group(files, &self.temps, &self.helpers)
    }

    fn cleanup(&self) -> Result<usize> {
        DirStore::cleanup(self)
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::store::test_util::name;

    #[test]
    fn racing_commits_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let mut first = store.create_file(&name("x"), false).expect("create");
        let mut second = store.create_file(&name("x"), false).expect("create");
        first.write_all(b"first").expect("write");
        second.write_all(b"second").expect("write");
        second.commit().expect("second wins");
        assert!(matches!(first.commit(), Err(Error::AlreadyExists { .. })));
        assert_eq!(fs::read(dir.path().join("x")).expect("read"), b"second");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    /// Without `replace` an existing name is refused before any data; with it (the client's
    /// `--overwrite`) a regular file is replaced whole, and anything else is refused.
    #[test]
    fn existing_names_are_refused_and_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), b"keep").expect("write");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let store = DirStore::open(dir.path()).expect("open");
        assert!(matches!(
            store.create_file(&name("a"), false),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            store.create_file(&name("sub"), true),
            Err(Error::AlreadyExists {
                why: Taken::NotAFile,
                ..
            })
        ));
        let mut up = store
            .create_file(&name("a"), true)
            .expect("replace allowed");
        up.write_all(b"new").expect("write");
        up.commit().expect("commit");
        assert_eq!(fs::read(dir.path().join("a")).expect("read"), b"new");
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
        assert!(matches!(
            store.open(&name("link"), 0),
            Err(Error::NotFound {
                why: Missing::Symlink,
                ..
            })
        ));
        assert!(matches!(
            store.open(&name("sub"), 0),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.create(&name("link"), 1),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(fs::read(outside.path().join("secret")).expect("read"), b"s");
    }

    /// A resumed download reads from its offset; past the end there is nothing to read.
    #[test]
    fn open_at_an_offset_reads_from_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("f"), b"0123456789").expect("write");
        let store = DirStore::open(dir.path()).expect("open");
        for (offset, rest) in [
            (0, &b"0123456789"[..]),
            (4, b"456789"),
            (10, b""),
            (20, b""),
        ] {
            let mut source = store.open(&name("f"), offset).expect("open");
            let mut got = Vec::new();
            source.reader.read_to_end(&mut got).expect("read");
            assert_eq!((source.size, &got[..]), (10, rest), "offset {offset}");
        }
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

    /// A partial's key is part of a file name: anything but hex digits is refused.
    #[test]
    fn partial_keys_are_hex_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        for key in ["", "../x", "ab/cd", ".ft-tmp-1", "zz", &"a".repeat(65)] {
            let refused = store.create_resumable(&name("f"), 10, key);
            assert!(
                matches!(refused, Err(Error::Protocol(_))),
                "{key:?}: {refused:?}"
            );
        }
        assert!(store.create_resumable(&name("f"), 10, "0123abcdef").is_ok());
        assert!(dir.path().read_dir().expect("ls").all(|e| {
            let name = e.expect("entry").file_name();
            name.to_string_lossy().starts_with(".ft-part-")
        }));
    }
}
