//! Directories by handle: [`DirFd`] is an open directory, and every call here names a file
//! relative to one. A name is one component, opened without following a symbolic link, so a
//! link or a swapped directory planted inside the served root can never lead a read, a
//! write or a listing outside it; the one exception, [`DirFd::open_file_beneath`], opens a
//! whole path from the root's handle with the kernel's guarantee of the same.
//!
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` resolves a whole path in one call, but
//! Linux only (5.6 and later): downloads use it there, with the walk as the fallback. One
//! `openat(O_NOFOLLOW | O_DIRECTORY)` per component gives the same guarantee on every Unix
//! (names here never hold `..`: [`crate::store::Name`] refuses it).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
#[cfg(not(unix))]
use std::path::PathBuf;

#[cfg(unix)]
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
#[cfg(unix)]
use rustix::io::Errno;

/// Set once an unnamed file could be linked through /proc and not by its handle
/// ([`DirFd::link_unnamed`]): the kernel does not let this process link by handle.
#[cfg(target_os = "linux")]
static LINK_THROUGH_PROC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How [`DirFd::open_file`] opens: never through a link at the name, and without waiting
/// for a writer if it is a FIFO ([`regular_for_reading`] then refuses it).
#[cfg(unix)]
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// The file `fd` opened with [`READ_FLAGS`], if it is a regular file, back in blocking
/// mode.
#[cfg(unix)]
fn regular_for_reading(fd: rustix::fd::OwnedFd) -> io::Result<File> {
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    super::clear_nonblocking(&file)?;
    Ok(file)
}

/// What a name in a directory is, not following a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// A device, socket, FIFO.
    Other,
}

/// The attributes ft reads of a name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    /// Seconds since the Unix epoch, and nanoseconds.
    pub(crate) modified: (i64, u32),
    /// Any execute bit set.
    pub(crate) executable: bool,
}

/// An open directory.
#[derive(Debug)]
pub(crate) struct DirFd {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    #[cfg(not(unix))]
    path: PathBuf,
}

/// Why [`DirFd::child`] did not open a directory.
#[derive(Debug)]
pub(crate) enum ChildError {
    /// Nothing has that name.
    Missing,
    /// A symbolic link has it (never followed).
    Symlink,
    /// A file (or anything but a directory) has it.
    NotADir,
    Io(io::Error),
}

impl DirFd {
    /// Opens the directory at `path` (the served root or the client's directory: the
    /// operator's choice, so a link there is followed).
    pub(crate) fn open(path: &Path) -> io::Result<DirFd> {
        #[cfg(unix)]
        {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
            Ok(DirFd { fd })
        }
        #[cfg(not(unix))]
        {
            if !std::fs::metadata(path)?.is_dir() {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            Ok(DirFd {
                path: path.to_owned(),
            })
        }
    }

    /// Opens the subdirectory `name`, never through a symbolic link.
    pub(crate) fn child(&self, name: &str) -> Result<DirFd, ChildError> {
        #[cfg(unix)]
        {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => Ok(DirFd { fd }),
                Err(Errno::NOENT) => Err(ChildError::Missing),
                Err(e) if e == Errno::NOTDIR || e == Errno::LOOP => match self.stat(name) {
                    Ok(stat) if stat.kind == Kind::Symlink => Err(ChildError::Symlink),
                    Ok(_) => Err(ChildError::NotADir),
                    Err(e) => Err(ChildError::Io(e)),
                },
                Err(e) => Err(ChildError::Io(e.into())),
            }
        }
        #[cfg(not(unix))]
        {
            match self.stat(name) {
                Ok(stat) if stat.kind == Kind::Dir => Ok(DirFd {
                    path: self.path.join(name),
                }),
                Ok(stat) if stat.kind == Kind::Symlink => Err(ChildError::Symlink),
                Ok(_) => Err(ChildError::NotADir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ChildError::Missing),
                Err(e) => Err(ChildError::Io(e)),
            }
        }
    }

    /// Creates the subdirectory `name` (mode 0755 less the umask); `Ok(false)` when
    /// something already has the name.
    pub(crate) fn make_dir(&self, name: &str) -> io::Result<bool> {
        #[cfg(unix)]
        let made = rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755))
            .map_err(io::Error::from);
        #[cfg(not(unix))]
        let made = std::fs::create_dir(self.path.join(name));
        match made {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fails when this process may not create entries in the directory: no write or
    /// search permission, or a file system mounted read-only (`faccessat`, with the real
    /// ids, which a server does not change).
    pub(crate) fn may_create(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use rustix::fs::Access;
            match rustix::fs::accessat(
                &self.fd,
                ".",
                Access::WRITE_OK | Access::EXEC_OK,
                AtFlags::empty(),
            ) {
                Err(e) if matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS) => Err(e.into()),
                _ => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            Ok(())
        }
    }

    /// What `name` is, not following a symbolic link.
    pub(crate) fn stat(&self, name: &str) -> io::Result<Stat> {
        #[cfg(unix)]
        {
            let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(stat_of(&st))
        }
        #[cfg(not(unix))]
        {
            let meta = std::fs::symlink_metadata(self.path.join(name))?;
            Ok(stat_of_meta(&meta))
        }
    }

    /// Opens the regular file `name` for reading, never through a symbolic link (nor
    /// hanging on a FIFO).
    pub(crate) fn open_file(&self, name: &str) -> io::Result<File> {
        #[cfg(unix)]
        {
            let fd = rustix::fs::openat(&self.fd, name, READ_FLAGS, Mode::empty())?;
            regular_for_reading(fd)
        }
        #[cfg(not(unix))]
        {
            let path = self.path.join(name);
            if !std::fs::symlink_metadata(&path)?.is_file() {
                return Err(not_regular());
            }
            File::open(path)
        }
    }

    /// [`DirFd::open_file`] of `path` below this directory (components separated by `/`,
    /// never `..`) in one call, where the kernel has `openat2` (Linux 5.6): resolved
    /// beneath this directory and through no symbolic link at all, which is what a walk
    /// one component at a time with `O_NOFOLLOW` guarantees too. `None` when it cannot be
    /// opened so (missing, a link on the way, not a regular file, a kernel without
    /// `openat2`): the caller walks, which also tells why.
    #[cfg(target_os = "linux")]
    pub(crate) fn open_file_beneath(&self, path: &str) -> Option<File> {
        use rustix::fs::ResolveFlags;
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let fd = rustix::fs::openat2(&self.fd, path, READ_FLAGS, Mode::empty(), resolve).ok()?;
        regular_for_reading(fd).ok()
    }

    /// The names in the directory (not `.` and `..`), streamed; a name that is not valid
    /// Unicode comes as it is, for the caller to skip.
    pub(crate) fn names(&self) -> io::Result<Names> {
        #[cfg(unix)]
        {
            Ok(Names(rustix::fs::Dir::read_from(&self.fd)?))
        }
        #[cfg(not(unix))]
        {
            Ok(Names(std::fs::read_dir(&self.path)?))
        }
    }

    /// Makes the directory's entries durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            rustix::fs::fsync(&self.fd)?;
        }
        Ok(())
    }

    /// Moves the file at `tmp` to `name` here, only if nothing has that name; fails with
    /// [`io::ErrorKind::AlreadyExists`] otherwise. Atomic, like
    /// [`super::publish_noreplace`].
    pub(crate) fn publish_noreplace(&self, tmp: &Path, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            move_noreplace(CWD, tmp, self.fd.as_fd(), name)
        }
        #[cfg(not(unix))]
        {
            std::fs::hard_link(tmp, self.path.join(name))?;
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
    }

    /// [`DirFd::publish_noreplace`]'s fallback alone, where renaming cannot refuse an
    /// existing name: `link`, then the temporary name dropped (for its test).
    #[cfg(test)]
    pub(crate) fn publish_by_link(&self, tmp: &Path, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            move_by_link(CWD, tmp, self.fd.as_fd(), name)
        }
        #[cfg(not(unix))]
        {
            std::fs::hard_link(tmp, self.path.join(name))?;
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
    }

    /// Moves the file at `tmp` to `name` here, atomically replacing a file there.
    pub(crate) fn publish_replace(&self, tmp: &Path, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            rustix::fs::renameat(CWD, tmp, &self.fd, name)?;
            Ok(())
        }
        #[cfg(not(unix))]
        {
            std::fs::rename(tmp, self.path.join(name))
        }
    }

    /// Creates the new file `name` here for writing, failing if anything has that name
    /// (a symbolic link included).
    pub(crate) fn create_new(&self, name: &str) -> io::Result<File> {
        #[cfg(unix)]
        {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o644))?;
            Ok(File::from(fd))
        }
        #[cfg(not(unix))]
        {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.path.join(name))
        }
    }

    /// Renames `from` to `to`, both here, only if nothing has the name `to`; fails with
    /// [`io::ErrorKind::AlreadyExists`] otherwise. Where renaming cannot refuse an existing
    /// name, `to` is linked, then `from` removed.
    pub(crate) fn rename_here_noreplace(&self, from: &str, to: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            move_noreplace(self.fd.as_fd(), Path::new(from), self.fd.as_fd(), to)
        }
        #[cfg(not(unix))]
        {
            std::fs::hard_link(self.path.join(from), self.path.join(to))?;
            let _ = self.remove_file(from);
            Ok(())
        }
    }

    /// Removes the file `name` here.
    pub(crate) fn remove_file(&self, name: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?;
            Ok(())
        }
        #[cfg(not(unix))]
        {
            std::fs::remove_file(self.path.join(name))
        }
    }

    /// Renames `from` to `to`, both here, replacing a file at `to`.
    pub(crate) fn rename_here(&self, from: &str, to: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            rustix::fs::renameat(&self.fd, from, &self.fd, to)?;
            Ok(())
        }
        #[cfg(not(unix))]
        {
            std::fs::rename(self.path.join(from), self.path.join(to))
        }
    }

    /// Gives the unnamed `file` ([`super::create_unnamed`]) the name `name` here, only if
    /// nothing has it.
    pub(crate) fn link_unnamed(&self, file: &File, name: &str) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::sync::atomic::Ordering;
            // By the handle itself where the kernel lets the process: it then looks nothing
            // up, where the path through /proc costs a lookup of /proc/self/fd/N each time
            // (about 7 % of a server's CPU when many small files go into one
            // directory). Older kernels let only a process with CAP_DAC_READ_SEARCH do it
            // (this machine's 6.18 lets an unprivileged one link a file it opened itself);
            // one that refuses says ENOENT, and the link goes through /proc, from then on
            // directly.
            if !LINK_THROUGH_PROC.load(Ordering::Relaxed) {
                match self.link_by_handle(file, name) {
                    // No capability, or the directory is gone: /proc tells which.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    done => return done,
                }
            }
            self.link_through_proc(file, name)?;
            LINK_THROUGH_PROC.store(true, Ordering::Relaxed);
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, name);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    /// [`DirFd::link_unnamed`] by the file's handle (`linkat(AT_EMPTY_PATH)`).
    #[cfg(target_os = "linux")]
    pub(crate) fn link_by_handle(&self, file: &File, name: &str) -> io::Result<()> {
        rustix::fs::linkat(file, "", &self.fd, name, AtFlags::EMPTY_PATH)?;
        Ok(())
    }

    /// [`DirFd::link_unnamed`] through `/proc/self/fd`, which any process may.
    #[cfg(target_os = "linux")]
    pub(crate) fn link_through_proc(&self, file: &File, name: &str) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let from = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, from.as_str(), &self.fd, name, AtFlags::SYMLINK_FOLLOW)?;
        Ok(())
    }

    /// Creates an unnamed regular file in this directory (Linux `O_TMPFILE`), as
    /// [`super::create_unnamed`] does by path: its inode is allocated near the directory
    /// it will be linked into, as a file created there would be.
    pub(crate) fn create_unnamed(&self) -> io::Result<Option<File>> {
        #[cfg(target_os = "linux")]
        {
            // Readable too: a file that cannot be linked is read back (`DirUpload::publish`).
            let flags = OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC;
            match rustix::fs::openat(&self.fd, ".", flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => Ok(Some(File::from(fd))),
                Err(e) if e == Errno::OPNOTSUPP || e == Errno::ISDIR || e == Errno::INVAL => {
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(None)
        }
    }

    /// Writes every dirty file and directory of this directory's file system to disk, and
    /// says whether a write failed since this handle was opened (or unseen before); see
    /// [`syncfs_reports_errors`].
    pub(crate) fn sync_fs(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            rustix::fs::syncfs(&self.fd)?;
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    /// The device (file system) this directory is on, to tell whether another is on the
    /// same one; `None` when that cannot be told, and off Unix.
    pub(crate) fn device(&self) -> Option<u64> {
        #[cfg(unix)]
        {
            #[allow(clippy::unnecessary_cast)]
            rustix::fs::fstat(&self.fd).ok().map(|st| st.st_dev as u64)
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Whether `self` and `other` are the same directory.
    pub(crate) fn same_as(&self, other: &DirFd) -> bool {
        #[cfg(unix)]
        {
            match (rustix::fs::fstat(&self.fd), rustix::fs::fstat(&other.fd)) {
                (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
                _ => false,
            }
        }
        #[cfg(not(unix))]
        {
            self.path == other.path
        }
    }
}

/// The names of a directory, from [`DirFd::names`].
pub(crate) struct Names(
    #[cfg(unix)] rustix::fs::Dir,
    #[cfg(not(unix))] std::fs::ReadDir,
);

impl Iterator for Names {
    type Item = io::Result<OsString>;

    fn next(&mut self) -> Option<io::Result<OsString>> {
        loop {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt;
                let entry = match self.0.next()? {
                    Ok(entry) => entry,
                    Err(e) => return Some(Err(e.into())),
                };
                let name = entry.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                return Some(Ok(std::ffi::OsStr::from_bytes(name).to_owned()));
            }
            #[cfg(not(unix))]
            {
                return Some(self.0.next()?.map(|e| e.file_name()));
            }
        }
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Names")
    }
}

/// Moves `from` (relative to `from_dir`) to `to` in `to_dir`, only if nothing has that name
/// (fails with [`io::ErrorKind::AlreadyExists`] otherwise): `renameat2(RENAME_NOREPLACE)`
/// on Linux; where renaming cannot refuse an existing name, `link` (which never replaces
/// one), then `from` is removed (a leftover temporary file is swept at the next start).
#[cfg(unix)]
fn move_noreplace(
    from_dir: std::os::fd::BorrowedFd<'_>,
    from: &Path,
    to_dir: std::os::fd::BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{RenameFlags, renameat_with};
        match renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) if e == Errno::INVAL || e == Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
    }
    move_by_link(from_dir, from, to_dir, to)
}

/// [`move_noreplace`] where renaming cannot refuse an existing name.
#[cfg(unix)]
fn move_by_link(
    from_dir: std::os::fd::BorrowedFd<'_>,
    from: &Path,
    to_dir: std::os::fd::BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    rustix::fs::linkat(from_dir, from, to_dir, to, AtFlags::empty())?;
    let _ = rustix::fs::unlinkat(from_dir, from, AtFlags::empty());
    Ok(())
}

/// Sets the modification time of `file` (seconds, nanoseconds since the epoch; the access
/// time is left alone) and, with `executable`, an execute bit wherever a read bit is.
pub(crate) fn set_attrs(
    file: &File,
    modified: Option<(i64, u32)>,
    executable: bool,
) -> io::Result<()> {
    #[cfg(unix)]
    {
        if let Some((secs, nanos)) = modified {
            use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
            let times = Timestamps {
                last_access: Timespec {
                    tv_sec: 0,
                    tv_nsec: UTIME_OMIT,
                },
                last_modification: Timespec {
                    tv_sec: secs,
                    tv_nsec: i64::from(nanos.min(999_999_999)) as _,
                },
            };
            rustix::fs::futimens(file, &times)?;
        }
        if executable {
            let mode = rustix::fs::fstat(file)?.st_mode & 0o777;
            let with_x = mode | ((mode & 0o444) >> 2);
            if with_x != mode {
                rustix::fs::fchmod(file, Mode::from_raw_mode(with_x as _))?;
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        if let Some((secs, nanos)) = modified {
            let time = if secs >= 0 {
                std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, nanos)
            } else {
                std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
            };
            file.set_modified(time)?;
        }
        let _ = executable;
        Ok(())
    }
}

/// The attributes of an open file.
pub(crate) fn stat_file(file: &File) -> io::Result<Stat> {
    #[cfg(unix)]
    {
        Ok(stat_of(&rustix::fs::fstat(file)?))
    }
    #[cfg(not(unix))]
    {
        Ok(stat_of_meta(&file.metadata()?))
    }
}

#[cfg(unix)]
fn stat_of(st: &rustix::fs::Stat) -> Stat {
    let kind = match FileType::from_raw_mode(st.st_mode as _) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    };
    Stat {
        kind,
        size: u64::try_from(st.st_size).unwrap_or(0),
        #[allow(clippy::unnecessary_cast)]
        modified: (
            st.st_mtime as i64,
            u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        ),
        executable: st.st_mode & 0o111 != 0,
    }
}

#[cfg(not(unix))]
fn stat_of_meta(meta: &std::fs::Metadata) -> Stat {
    let kind = if meta.file_type().is_symlink() {
        Kind::Symlink
    } else if meta.is_dir() {
        Kind::Dir
    } else if meta.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    let modified = match meta
        .modified()
        .map(|t| t.duration_since(std::time::UNIX_EPOCH))
    {
        Ok(Ok(d)) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        _ => (0, 0),
    };
    Stat {
        kind,
        size: meta.len(),
        modified,
        executable: false,
    }
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (symbolic links are not followed)",
    )
}

/// Whether [`DirFd::sync_fs`] can stand for many `fsync` calls: Linux 5.17 or later, where
/// `syncfs` reports every error a sync met. Since 5.8 it reports errors writing files'
/// data back; only since 5.17 also the file system's own ("vfs: make syncfs return errors
/// from ->sync_fs"), such as a failed ext4 journal commit — which is what makes new names
/// durable. Before that, a name could be lost with `syncfs` saying all went well.
pub(crate) fn syncfs_reports_errors() -> bool {
    if !cfg!(target_os = "linux") {
        return false;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    release_at_least(&release, (5, 17))
}

/// Whether the kernel release `release` (`6.1.0-18-amd64`) is `least` (major, minor) or
/// later; an unreadable one is not.
fn release_at_least(release: &str, least: (u32, u32)) -> bool {
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    (major, minor) >= least
}

#[cfg(all(test, unix))]
mod tests {
    use std::fs;

    use super::*;

    /// One `syncfs` stands for many `fsync`s only from Linux 5.17, where it reports the
    /// file system's own errors too (a failed journal commit, which loses names).
    #[test]
    fn syncfs_stands_for_fsyncs_only_where_it_reports_every_error() {
        for (release, reports) in [
            ("5.8.0", false),
            ("5.16.20-generic", false),
            ("5.17.0", true),
            ("5.15.0-1050-azure", false),
            ("6.1.0-18-amd64", true),
            ("6.18.44-fc-v1045", true),
            ("4.19.0", false),
            ("10.0", true),
            ("", false),
            ("garbage", false),
        ] {
            assert_eq!(release_at_least(release, (5, 17)), reports, "{release}");
        }
    }

    /// Each way a component can fail to be a directory, told apart; nothing is followed.
    #[test]
    fn children_are_opened_only_when_they_are_real_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("file"), b"x").expect("write");
        fs::write(outside.path().join("secret"), b"s").expect("write");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        let at = DirFd::open(dir.path()).expect("open");
        assert!(at.child("sub").is_ok());
        assert!(matches!(at.child("link"), Err(ChildError::Symlink)));
        assert!(matches!(at.child("file"), Err(ChildError::NotADir)));
        assert!(matches!(at.child("none"), Err(ChildError::Missing)));
        assert!(at.open_file("link").is_err());
        assert_eq!(at.stat("link").expect("stat").kind, Kind::Symlink);
        // A file opened through a directory handle, and a name published into it.
        let sub = at.child("sub").expect("sub");
        assert!(sub.make_dir("deeper").expect("mkdir"));
        assert!(!sub.make_dir("deeper").expect("exists"));
        let tmp = dir.path().join("tmp");
        fs::write(&tmp, b"new").expect("write");
        sub.publish_noreplace(&tmp, "f").expect("publish");
        assert_eq!(fs::read(dir.path().join("sub/f")).expect("read"), b"new");
        let names: Vec<_> = sub
            .names()
            .expect("names")
            .map(|n| n.expect("name"))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(fs::read(outside.path().join("secret")).expect("read"), b"s");
    }

    /// A modification time to the nanosecond, and execute bits where read bits are.
    #[test]
    fn attributes_are_set_on_an_open_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"x").expect("write");
        let file = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        set_attrs(&file, Some((1_000_000_000, 123_456_789)), true).expect("attrs");
        let stat = stat_file(&file).expect("stat");
        assert_eq!(stat.modified, (1_000_000_000, 123_456_789));
        assert!(stat.executable);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode & 0o111, (mode & 0o444) >> 2, "{mode:o}");
        set_attrs(&file, Some((-86_400, 0)), false).expect("before 1970");
        assert_eq!(stat_file(&file).expect("stat").modified, (-86_400, 0));
    }
}
