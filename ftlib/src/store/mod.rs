//! Where files live: the small [`Store`] interface the server serves from (list, open at an
//! offset, create a [`PendingFile`] that is committed or discarded), its optional
//! capabilities (resumable partials, group commit, crash cleanup), and two backends:
//! [`DirStore`] on a local directory and [`MemStore`] in memory.
//!
//! Names are checked once, into a [`Name`], before they reach a store. The promises every
//! backend keeps are one shared test suite (`ftlib/tests/store_suite.rs`).

mod dir;
mod group;
mod kept;
mod memory;
mod name;
mod pending;
#[cfg(feature = "s3")]
mod s3;
mod temps;
mod walk;

use std::any::Any;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::IpAddr;

pub use dir::DirStore;
pub(crate) use dir::TreeDirs;
pub use kept::DIGEST_XATTR;
pub use memory::MemStore;
pub use name::{Name, PART_PREFIX, RESERVED_PREFIX, TEMP_PREFIX, validate_name};
pub use pending::{BUFFERED_MAX, DirUpload};
#[cfg(feature = "s3")]
pub use s3::{S3Config, S3Store};
pub use temps::PartialLimits;

use crate::error::Result;
use crate::protocol::{Attrs, DIGEST_LEN, Entry};
use crate::text::escape;

/// A file opened for download.
pub struct Source {
    /// The file's bytes from the offset it was opened at.
    pub reader: Box<dyn Read + Send>,
    /// The whole file's size when opened (not counting from the offset).
    pub size: u64,
    /// Its modification time, seconds since the Unix epoch.
    pub modified: i64,
    /// Nanoseconds within that second.
    pub nanos: u32,
    /// Whether it is executable.
    pub executable: bool,
    /// The file itself and the verified digest kept with it (of exactly the bytes it holds
    /// as opened), when the store has both ([`DirStore`] with the digest it sealed at the
    /// upload): the server may then send the bytes from the page cache straight to a plain
    /// socket (`sendfile`) instead of reading and hashing them, and over TLS read them
    /// without hashing. `None` otherwise.
    pub kept: Option<(std::fs::File, [u8; DIGEST_LEN])>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("size", &self.size)
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

/// Lets a store take back its own pending files from `Box<dyn PendingFile>` (trait upcasting
/// to `dyn Any` needs Rust 1.86; the workspace supports 1.85). Every [`PendingFile`] has it,
/// so backends write nothing for it.
///
/// Only pending files have it, not `Box<dyn PendingFile>` itself: were the box `AsAny`,
/// `boxed.as_any()` would describe the box, and a store would never recognise its own files.
pub trait AsAny {
    /// The value as `Any`, to downcast to its own type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;

    /// A reference as `Any`, to ask its type before taking it.
    fn as_any(&self) -> &dyn Any;

    /// A mutable reference as `Any`, to work on it as its own type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: PendingFile + Any> AsAny for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A file being written: invisible under its name until [`PendingFile::commit`]; dropping
/// it discards everything written.
pub trait PendingFile: Write + Send + AsAny {
    /// Makes the data durable, then publishes it under its name without replacing an
    /// existing file (unless the store created it to replace). Call only once the data
    /// was verified.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when the name was taken
    /// meanwhile (the file there is untouched); [`Error::Io`](crate::Error::Io).
    fn commit(self: Box<Self>) -> Result<()>;

    /// Keeps what was written, hidden, for a later resume. Only a file from
    /// [`Store::create_resumable`] of a store that keeps partials does; the default
    /// discards it.
    fn keep(self: Box<Self>) {}

    /// Closes operating-system handles while the file waits for a group commit, so waiting
    /// files hold no descriptors; nothing more may be written. The default does nothing.
    fn release(&mut self) {}

    /// Gives the file a modification time and execute bit, kept when it is committed. The
    /// default ignores them.
    fn set_attrs(&mut self, attrs: Attrs) {
        let _ = attrs;
    }

    /// Tells the file the XXH3-128 of the bytes written to it, verified end to end, so that
    /// a store that keeps digests ([`Store::digest`]) need not read the file for it. Call
    /// it only with the verified digest of exactly the bytes written. The default ignores
    /// it.
    fn set_digest(&mut self, digest: [u8; DIGEST_LEN]) {
        let _ = digest;
    }

    /// Names the client address the upload comes from, so that a store keeping partials
    /// can bound them per client ([`PartialLimits::max_per_peer`]): a partial kept
    /// ([`PendingFile::keep`]) counts as that client's. The default ignores it.
    fn set_peer(&mut self, peer: IpAddr) {
        let _ = peer;
    }
}

/// A resumable upload: where the rest goes, how many bytes are already held from an
/// earlier attempt, and a reader over those bytes (to hash them).
pub struct Resumable {
    /// Where the rest goes.
    pub upload: Box<dyn PendingFile>,
    /// Bytes already held from an earlier attempt.
    pub offset: u64,
    /// Those bytes, to hash them.
    pub existing: Box<dyn Read + Send>,
}

impl fmt::Debug for Resumable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resumable")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// Where served files live.
///
/// The promises, checked for every backend by `ftlib/tests/store_suite.rs`: a file is
/// invisible until committed; a commit never replaces an existing file, so of racing
/// creators of one name exactly one wins, intact; a dropped pending file leaves nothing and
/// the name free; a committed file lists and opens with exactly its bytes.
pub trait Store: Send + Sync + fmt::Debug {
    /// The entries visible to clients in directory `dir` (`None`: the top), named relative
    /// to it, in no particular order, streamed; with `recursive`, everything beneath it too
    /// (a directory's entry comes before what it holds). Memory stays bounded whatever the
    /// tree's size.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when `dir` is not a directory (a
    /// symbolic link never is); [`Error::Io`](crate::Error::Io) when the entries cannot be
    /// read.
    fn list(
        &self,
        dir: Option<&Name>,
        recursive: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>>;

    /// What `name` is: a file or a directory, its size, time and execute bit (the entry's
    /// name is the whole `name`).
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when nothing visible has that name.
    fn stat(&self, name: &Name) -> Result<Entry>;

    /// Creates the directory `name` and any missing parent; `Ok(false)` when it already
    /// existed.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists) when a file (or anything but a
    /// directory) has that name or a parent's; [`Error::Io`](crate::Error::Io).
    fn make_dir(&self, name: &Name) -> Result<bool>;

    /// Opens `name` for reading from byte `offset` on (for a resumed download; past the end,
    /// the reader is empty). [`Source::size`] is the whole file's.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when there is no such file (or not a
    /// regular one); [`Error::Io`](crate::Error::Io).
    fn open(&self, name: &Name, offset: u64) -> Result<Source>;

    /// The XXH3-128 of file `name`'s bytes (big-endian, as on the wire). A store may answer
    /// a digest it kept when the file was committed ([`PendingFile::set_digest`]), but only
    /// one it knows still describes the file; the default reads the file whole.
    ///
    /// # Errors
    /// As [`Store::open`]; [`Error::Io`](crate::Error::Io) when reading fails.
    fn digest(&self, name: &Name) -> Result<[u8; DIGEST_LEN]> {
        let mut source = self.open(name, 0)?;
        kept::hash_all(&mut source.reader)
            .map_err(|e| crate::error::Error::io(format!("reading {}", escape(name)), e))
    }

    /// Starts writing `name`, expected to be `size` bytes. Refuses early, before any data:
    /// an existing name, and (where the store can tell) a size beyond the free space.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`](crate::Error::AlreadyExists),
    /// [`Error::NoSpace`](crate::Error::NoSpace), [`Error::Io`](crate::Error::Io).
    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>>;

    /// Starts or continues a resumable upload of `name`; `key` identifies the source (same
    /// key, same bytes), so kept bytes are only ever continued with the file they came from.
    ///
    /// The default keeps no partials: a fresh [`Store::create`] at offset 0.
    ///
    /// # Errors
    /// As [`Store::create`], and [`Error::AlreadyExists`](crate::Error::AlreadyExists)
    /// while another upload uses `key`.
    fn create_resumable(&self, name: &Name, size: u64, key: &str) -> Result<Resumable> {
        let _ = key;
        Ok(Resumable {
            upload: self.create(name, size)?,
            offset: 0,
            existing: Box::new(io::empty()),
        })
    }

    /// Commits several verified files, with the promise of [`PendingFile::commit`] for each;
    /// a store may do it with fewer waits for the disk. Of two files of one name, the first
    /// wins (of two created to replace, such as the client's `--overwrite`, the last one's
    /// bytes stay). One result per file, in order.
    ///
    /// The default commits each in turn.
    fn commit_group(&self, files: Vec<Box<dyn PendingFile>>) -> Vec<Result<()>> {
        files.into_iter().map(PendingFile::commit).collect()
    }

    /// How many bytes an upload of `size` bytes holds in memory while it waits for its
    /// group commit (until [`Store::write_ahead`] moves them): what a receiver counts to
    /// bound the memory its waiting uploads take (`pipeline::GROUP_BYTES`).
    ///
    /// The default: all of them.
    fn held_in_memory(&self, size: u64) -> u64 {
        size
    }

    /// Does what it can of a later [`Store::commit_group_in_turn`] of `files` now, while
    /// the group before is being committed (a [`DirStore`] writes them out, so that the
    /// writing overlaps the other group's waits for the disk). `taken_before(path)` says
    /// whether a group before, still being committed, may publish a file at `path` (a
    /// directory's path, compared without case): such a directory is not created ahead of
    /// its turn, as the earlier file must win the name. Failures are kept in the files
    /// and reported by their commit. Returns how many of the bytes the files held in
    /// memory it moved out (to disk), so that the caller may receive more meanwhile.
    ///
    /// The default does nothing, and returns 0.
    fn write_ahead(
        &self,
        files: &mut [&mut dyn PendingFile],
        taken_before: &dyn Fn(&str) -> bool,
    ) -> u64 {
        let _ = (files, taken_before);
        0
    }

    /// As [`Store::commit_group`], for one of a sequence of groups committed by several
    /// threads in request order: `wait_turn` returns once the group before has published
    /// its files; `published` is called once this group has published its own (the
    /// group after may then publish), before they are all known durable. So the first
    /// upload of a name still wins it, while a group's waits for the disk may overlap the
    /// next one's (a [`DirStore`] makes one group's names and the next group's bytes
    /// durable with one sync).
    ///
    /// The default commits the whole group in its turn.
    fn commit_group_in_turn(
        &self,
        files: Vec<Box<dyn PendingFile>>,
        wait_turn: &dyn Fn(),
        published: &dyn Fn(),
    ) -> Vec<Result<()>> {
        wait_turn();
        let results = self.commit_group(files);
        published();
        results
    }

    /// Removes what a crash left behind (temporary files whose creating process is gone)
    /// and what a store keeps only for a while (partials beyond their limits); returns how
    /// many temporary files went.
    ///
    /// The default has nothing to clean.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the store cannot be read.
    fn cleanup(&self) -> Result<usize> {
        Ok(0)
    }
}

/// Helpers for the unit tests of the store's files.
#[cfg(test)]
pub(crate) mod test_util {
    /// The one copy, in ft-testutil (what `pending.rs` and `group.rs` import from here).
    pub(crate) use ft_testutil::temp_files;

    use super::Name;

    /// A name the tests know to be valid.
    pub(crate) fn name(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    /// A temporary directory to serve with a 16 MiB tmpfs mounted at its `m`: another file
    /// system inside the root, unmounted before the directory goes. `None`, after saying
    /// SKIPPED, where this process may not mount (not root).
    #[cfg(target_os = "linux")]
    pub(crate) fn root_with_tmpfs() -> Option<RootWithTmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("m");
        std::fs::create_dir(&mount).expect("mkdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(&mount)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(RootWithTmpfs {
            _unmount: Unmount(mount.clone()),
            mount,
            dir,
        })
    }

    /// What [`root_with_tmpfs`] made. Fields drop in order: unmounted first.
    #[cfg(target_os = "linux")]
    #[derive(Debug)]
    pub(crate) struct RootWithTmpfs {
        _unmount: Unmount,
        /// Where the tmpfs is mounted: `m` in the root.
        pub(crate) mount: std::path::PathBuf,
        dir: tempfile::TempDir,
    }

    #[cfg(target_os = "linux")]
    impl RootWithTmpfs {
        /// The root.
        pub(crate) fn path(&self) -> &std::path::Path {
            self.dir.path()
        }
    }

    /// Unmounts the tmpfs of a [`RootWithTmpfs`].
    #[cfg(target_os = "linux")]
    #[derive(Debug)]
    struct Unmount(std::path::PathBuf);

    #[cfg(target_os = "linux")]
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With [`AsAny`] in scope, a boxed pending file still answers for what it holds, not
    /// for the box (which is `Any` too), so a store recognises its own files.
    #[test]
    fn a_boxed_pending_file_is_seen_as_what_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirStore::open(dir.path()).expect("open");
        let name = Name::new("a").expect("name");
        let boxed: Box<dyn PendingFile> = store.create(&name, 1).expect("create");
        assert!(boxed.as_any().is::<DirUpload>());
        assert!(boxed.into_any().downcast::<DirUpload>().is_ok());
    }
}
