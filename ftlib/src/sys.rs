//! Every operating-system-specific file call, behind `cfg`, each with a portable fallback
//! that keeps the same promise: open without following a symlink, publish a finished file
//! without replacing an existing one, and make a directory entry durable.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` with `options` without following a symlink in its last component: a symlink
/// there fails (ELOOP on Unix; checked on the handle elsewhere), and so does anything but a
/// regular file when `regular_only`.
fn open_nofollow(path: &Path, options: &mut OpenOptions, regular_only: bool) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO planted in the directory must not hang the open.
        options
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .mode(0o644);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open the link itself, never its target.
        options.custom_flags(0x0020_0000);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_symlink() || (regular_only && !kind.is_file()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (symbolic links are not followed)",
        ));
    }
    #[cfg(unix)]
    clear_nonblocking(&file)?;
    Ok(file)
}

/// Opens `path` for reading without following a symlink in its last component.
pub fn open_read_nofollow(path: &Path) -> io::Result<File> {
    open_nofollow(path, OpenOptions::new().read(true), false)
}

/// Opens the partial file at `path` for reading and writing, creating it if missing, never
/// through a symlink; anything but a regular file there is refused.
pub fn open_partial(path: &Path) -> io::Result<File> {
    open_nofollow(
        path,
        OpenOptions::new().read(true).write(true).create(true),
        true,
    )
}

/// Opens the existing regular file at `path` for writing (to sync it), never through a
/// symlink.
pub fn open_write_existing(path: &Path) -> io::Result<File> {
    open_nofollow(path, OpenOptions::new().write(true), true)
}

/// Regular files ignore O_NONBLOCK, but clear it so reads behave as usual.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Moves the finished file `tmp` to `dst` only if nothing exists at `dst`; fails with
/// [`io::ErrorKind::AlreadyExists`] otherwise. Atomic: a racing publisher of the same name
/// either wins whole or gets `AlreadyExists`.
pub fn publish_noreplace(tmp: &Path, dst: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    match rename_noreplace(tmp, dst) {
        Ok(()) => return Ok(()),
        // The file system does not support RENAME_NOREPLACE: fall back to link + unlink.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {}
        Err(e) => return Err(e),
    }
    // link() never replaces an existing name; then drop the temporary name.
    fs::hard_link(tmp, dst)?;
    if let Err(e) = fs::remove_file(tmp) {
        // The data is published; a leftover temporary name is swept at the next start.
        let _ = e;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn rename_noreplace(tmp: &Path, dst: &Path) -> io::Result<()> {
    let (from, to) = (c_path(tmp)?, c_path(dst)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `e` says the system ran out of something (descriptors, space, quota, memory)
/// rather than refusing the operation itself.
pub fn is_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOSPC | libc::EDQUOT | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::OutOfMemory
    }
}

/// Whether [`create_unnamed`] can work here at all: Linux, with `/proc` mounted (linking an
/// unnamed file goes through `/proc/self/fd`).
pub fn unnamed_files_possible() -> bool {
    cfg!(target_os = "linux") && Path::new("/proc/self/fd").is_dir()
}

/// Creates an unnamed regular file in `dir` for writing (Linux `O_TMPFILE`): nobody can see
/// or open it, it vanishes if the process dies, and [`link_unnamed`] gives it a name.
/// `Ok(None)` where the platform or the file system cannot.
///
/// Unlike creating a name, this does not lock the directory, so several threads can create
/// files in one directory at once.
pub fn create_unnamed(dir: &Path) -> io::Result<Option<File>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = OpenOptions::new();
        options
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o644);
        match options.open(dir) {
            Ok(file) => Ok(Some(file)),
            // Not supported by this file system (EOPNOTSUPP), or a kernel older than 3.11
            // that reads O_TMPFILE as O_DIRECTORY (EISDIR) or rejects it (EINVAL).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// Gives the unnamed `file` (from [`create_unnamed`]) the name `dst`, only if nothing exists
/// there; fails with [`io::ErrorKind::AlreadyExists`] otherwise. Atomic, like
/// [`publish_noreplace`], and never follows a symlink at `dst`.
pub fn link_unnamed(file: &File, dst: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let from = c_path(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))?;
        let to = c_path(dst)?;
        // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, dst);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(target_os = "linux")]
fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Moves `tmp` to `dst`, atomically replacing whatever is at `dst`.
pub fn publish_replace(tmp: &Path, dst: &Path) -> io::Result<()> {
    fs::rename(tmp, dst)
}

/// Makes the directory's entries durable (a new or renamed name survives a crash).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory for flushing without extra flags; NTFS journals
        // metadata, and the file itself was synced before it was published.
        let _ = dir;
        Ok(())
    }
}

/// Bytes available to an unprivileged writer on the file system holding `dir`, where the
/// platform can tell.
pub fn available_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a valid NUL-terminated string and `stat` points to writable
        // memory of the right type; it is read only after statvfs reports success.
        let stat = unsafe {
            if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
                return None;
            }
            stat.assume_init()
        };
        #[allow(clippy::useless_conversion)] // the field types differ between platforms
        Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Whether process `pid` may still be running. Errs on the side of "alive" (another
/// user's process, or a platform that cannot tell).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Creates a new file at `path` for writing; fails if anything (a symlink included) is there.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_never_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tmp, dst) = (dir.path().join("t"), dir.path().join("d"));
        fs::write(&dst, b"old").expect("write");
        fs::write(&tmp, b"new").expect("write");
        let err = publish_noreplace(&tmp, &dst).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&dst).expect("read"), b"old");
        fs::remove_file(&dst).expect("rm");
        publish_noreplace(&tmp, &dst).expect("publish");
        assert_eq!(fs::read(&dst).expect("read"), b"new");
        assert!(!tmp.exists());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unnamed_files_are_invisible_until_linked_and_never_replace() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        if !unnamed_files_possible() {
            eprintln!("SKIPPED: /proc is not mounted");
            return;
        }
        let Some(mut file) = create_unnamed(dir.path()).expect("O_TMPFILE") else {
            eprintln!("SKIPPED: this file system has no O_TMPFILE");
            return;
        };
        file.write_all(b"new").expect("write");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
        let (dst, taken) = (dir.path().join("d"), dir.path().join("taken"));
        fs::write(&taken, b"old").expect("write");
        let err = link_unnamed(&file, &taken).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).expect("read"), b"old");
        // A symlink at the name is a name: refused, its target untouched.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&taken, &link).expect("symlink");
        let err = link_unnamed(&file, &link).expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).expect("read"), b"old");
        link_unnamed(&file, &dst).expect("link");
        assert_eq!(fs::read(&dst).expect("read"), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::write(&outside, b"secret").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        assert!(open_read_nofollow(&link).is_err());
        assert!(create_new(&link).is_err());
        assert_eq!(fs::read(&outside).expect("read"), b"secret");
    }
}
