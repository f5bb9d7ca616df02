//! Every operating-system-specific file call, behind `cfg`, each with a portable fallback
//! that keeps the same promise: open without following a symlink, publish a finished file
//! without replacing an existing one, and make a directory entry durable.
//!
//! Unix calls go through `rustix`, whose safe wrappers replace hand-written `unsafe` and
//! `libc` here.

pub(crate) mod at;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

#[cfg(unix)]
use rustix::fs::OFlags;
#[cfg(unix)]
use rustix::io::Errno;

/// Opens `path` with `options` without following a symlink in its last component: a symlink
/// there fails (ELOOP on Unix; checked on the handle elsewhere), and so does anything but a
/// regular file when `regular_only`.
fn open_nofollow(path: &Path, options: &mut OpenOptions, regular_only: bool) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO planted in the directory must not hang the open.
        options
            .custom_flags(custom_flags(OFlags::NOFOLLOW | OFlags::NONBLOCK))
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
pub(crate) fn open_read_nofollow(path: &Path) -> io::Result<File> {
    open_nofollow(path, OpenOptions::new().read(true), false)
}

/// Opens the partial file at `path` for reading and writing, creating it if missing, never
/// through a symlink; anything but a regular file there is refused.
pub(crate) fn open_partial(path: &Path) -> io::Result<File> {
    open_nofollow(
        path,
        OpenOptions::new().read(true).write(true).create(true),
        true,
    )
}

/// Opens the existing regular file at `path` for writing (to sync it), never through a
/// symlink.
pub(crate) fn open_write_existing(path: &Path) -> io::Result<File> {
    open_nofollow(path, OpenOptions::new().write(true), true)
}

/// `flags` as `OpenOptionsExt::custom_flags` takes them: the same bits, as a C `int`.
#[cfg(unix)]
fn custom_flags(flags: OFlags) -> i32 {
    flags.bits() as i32
}

/// Regular files ignore O_NONBLOCK, but clear it so reads behave as usual.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    rustix::fs::fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
    Ok(())
}

/// Whether `e` says a rename was refused because it would cross file systems (`EXDEV`).
pub(crate) fn is_cross_device(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        Errno::from_io_error(e) == Some(Errno::XDEV)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Whether `e` says the system ran out of something (descriptors, space, quota, memory)
/// rather than refusing the operation itself.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        Errno::from_io_error(e).is_some_and(|errno| {
            [
                Errno::MFILE,
                Errno::NFILE,
                Errno::NOSPC,
                Errno::DQUOT,
                Errno::NOMEM,
            ]
            .contains(&errno)
        })
    }
    #[cfg(not(unix))]
    {
        e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::OutOfMemory
    }
}

/// Whether [`at::DirFd::create_unnamed`] can work here at all: Linux, with `/proc` mounted (linking an
/// unnamed file goes through `/proc/self/fd` where the kernel refuses to link it by its handle).
pub(crate) fn unnamed_files_possible() -> bool {
    cfg!(target_os = "linux") && Path::new("/proc/self/fd").is_dir()
}

/// Moves `tmp` to `dst`, atomically replacing whatever is at `dst`.
pub(crate) fn publish_replace(tmp: &Path, dst: &Path) -> io::Result<()> {
    fs::rename(tmp, dst)
}

/// Makes the directory's entries durable (a new or renamed name survives a crash).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
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

/// Raises this process's soft limit on open files towards its hard limit, to at most
/// `want`, and returns the soft limit in force then (`None` where it cannot be told). Many
/// systems start processes with a soft limit of 1024 and a far higher hard one, which
/// exists to be raised by programs that need more (as Go's runtime does at start).
pub fn raise_open_files_limit(want: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        let hard = limit.maximum.unwrap_or(u64::MAX);
        let soft = limit.current?;
        let target = want.min(hard);
        if target > soft {
            limit.current = Some(target);
            if setrlimit(Resource::Nofile, limit).is_ok() {
                return Some(target);
            }
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    {
        let _ = want;
        None
    }
}

/// The glibc tunable, in `GLIBC_TUNABLES`, above which size `memcpy` copies with
/// `rep movsb`; [`avoid_slow_memory_copies`] sets it out of reach.
pub const REP_MOVSB_TUNABLE: &str = "glibc.cpu.x86_rep_movsb_threshold";

/// Set in the environment of the program [`avoid_slow_memory_copies`] starts over, so that it
/// never starts over twice; set by hand (to anything), it keeps glibc's own choice.
pub const GLIBC_TUNED: &str = "FT_GLIBC_TUNED";

/// Starts this program over, once, with glibc told not to copy memory with `rep movsb`, on
/// the machines where that instruction can be very slow: x86-64 processors of AMD, under
/// glibc. Called first thing by ftserver and ftclient; not by the library, which does not
/// own its process.
///
/// Why: glibc copies blocks of a few KiB and more with `rep movsb`, and on AMD Zen that runs
/// 25 to 30 times slower when the destination lies 1 to 31 bytes past the source modulo
/// 4 KiB. rustls copies every TLS record once on each side (into a new buffer to encrypt it,
/// out of its buffer once decrypted), and where the allocator places those buffers decides,
/// for a whole connection, whether every copy is slow: it was, in the measured runs, for most
/// encrypted uploads and some downloads, costing a quarter to a third of the process's CPU
/// (docs/PERFORMANCE.md, "Slow copies"). No setting can be changed once glibc has started,
/// so the program is executed again (the file `/proc/self/exe` points to, so the process
/// keeps its name; same process, arguments and standard streams) with `GLIBC_TUNABLES`
/// extended by [`REP_MOVSB_TUNABLE`]; glibc then copies with vector instructions, at full
/// speed whatever the alignment.
///
/// Returns, doing nothing, elsewhere; when `GLIBC_TUNABLES` names the tunable already; when
/// [`GLIBC_TUNED`] is set (by the first start, or by hand to opt out); when the program was
/// started through the dynamic loader (`ld-linux-x86-64.so.2 ./ftserver …`: executing
/// `/proc/self/exe` would run the loader); and when executing fails (the program simply goes
/// on as it is). Must be called before any thread starts or anything is written.
pub fn avoid_slow_memory_copies() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
        if tunables.to_string_lossy().contains(REP_MOVSB_TUNABLE)
            || std::env::var_os(GLIBC_TUNED).is_some()
            || !cpu_vendor_is("AuthenticAMD")
        {
            return;
        }
        let Some(exe) = this_program() else {
            return;
        };
        // 1 GiB: beyond any copy ft makes, so `rep movsb` is never used (glibc still copies
        // blocks past its non-temporal threshold with non-temporal stores).
        let mut extended = tunables;
        if !extended.is_empty() {
            extended.push(":");
        }
        extended.push(format!("{REP_MOVSB_TUNABLE}=1073741824"));
        let mut args = std::env::args_os();
        let Some(name) = args.next() else {
            return;
        };
        let args: Vec<_> = args.collect();
        // By its path first, not `/proc/self/exe`: the kernel names the process after the
        // file it executes, and `exe` would hide ftserver from `pgrep`, `pkill` and `top`.
        // Only while the path still holds this very file (not one put there since); else,
        // or if that fails, through `/proc/self/exe`, which still reaches it. `exec`
        // returns only on failure.
        let same_file = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            match (fs::metadata(a), fs::metadata(b)) {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                _ => false,
            }
        };
        let by_path = same_file(&exe, Path::new("/proc/self/exe")).then_some(exe);
        for program in by_path.into_iter().chain(["/proc/self/exe".into()]) {
            let _ = std::process::Command::new(program)
                .arg0(&name)
                .args(&args)
                .env("GLIBC_TUNABLES", &extended)
                .env(GLIBC_TUNED, "1")
                .exec();
        }
    }
}

/// The path of the program's file, `/proc/self/exe`'s target, if it is the file this code
/// was loaded from, as `/proc/self/maps` says: not so when the program was started through
/// the dynamic loader.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn this_program() -> Option<std::path::PathBuf> {
    let exe = fs::read_link("/proc/self/exe").ok()?;
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    let here = this_program as fn() -> Option<std::path::PathBuf> as usize;
    // Lines are `START-END PERMS OFFSET DEV INODE PATH`; only the path holds a '/'.
    let loaded_from_it = maps.lines().any(|line| {
        let range = line
            .split_once(' ')
            .and_then(|(range, _)| range.split_once('-'))
            .and_then(|(start, end)| {
                Some(usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?)
            });
        range.is_some_and(|range| range.contains(&here))
            && line
                .find('/')
                .is_some_and(|at| Path::new(&line[at..]) == exe)
    });
    loaded_from_it.then_some(exe)
}

/// Whether /proc/cpuinfo names `vendor` as the processor's maker.
#[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
fn cpu_vendor_is(vendor: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let Ok(file) = File::open("/proc/cpuinfo") else {
        return false;
    };
    // The first processor's lines come first; its vendor is a few lines in.
    BufReader::new(file)
        .lines()
        .take(16)
        .map_while(Result::ok)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "vendor_id").then(|| value.trim() == vendor)
        })
        .unwrap_or(false)
}

/// A zeroed buffer of `len` bytes for reading files into, starting on a 4 KiB boundary
/// when it is large.
///
/// Why: the kernel copies file pages into a reader's buffer with `rep movsb` too (the trap
/// [`avoid_slow_memory_copies`] avoids in glibc, which no tunable reaches in the kernel),
/// and on this machine's AMD EPYC that ran about three times slower when the buffer began 1
/// to 31 bytes past a 4 KiB boundary, as the pages start on one: reading 1 GiB from tmpfs in
/// 256 KiB reads took 0.60–0.74 s into a buffer 8, 16 or 31 bytes past, 0.20–0.23 s at 0, 32,
/// 64 or 256 past (a scratch C program, docs/PERFORMANCE.md). glibc hands out a large block
/// 16 bytes past a page boundary (after its header), so every large read buffer of ft was
/// slow. Written by hand (ten lines): aligning with the allocator needs `unsafe`, and no
/// crate in our set does it; a few KiB more than asked for, skipped, needs neither.
pub(crate) struct PageAligned {
    /// The bytes before `start` are skipped; the buffer runs from there to the end.
    storage: Vec<u8>,
    start: usize,
}

impl PageAligned {
    /// Where pages start and end.
    const PAGE: usize = 4096;

    /// Below this many bytes a buffer is not aligned: glibc places it in its heap, 16 bytes
    /// past a page boundary only by chance (1 in 256), and the copy is short; the spare page
    /// would have to be zeroed for every small file.
    const FROM: usize = 64 * 1024;

    /// `len` zero bytes, from a page boundary on if there are [`Self::FROM`] or more.
    pub(crate) fn zeroed(len: usize) -> PageAligned {
        if len < Self::FROM {
            return PageAligned {
                storage: vec![0u8; len],
                start: 0,
            };
        }
        let mut storage = vec![0u8; len + Self::PAGE - 1];
        // `align_offset` may give up (usize::MAX): the buffer is then only slower.
        let start = storage.as_ptr().align_offset(Self::PAGE);
        let start = if start < Self::PAGE { start } else { 0 };
        storage.truncate(start + len);
        PageAligned { storage, start }
    }
}

impl std::ops::Deref for PageAligned {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.storage[self.start..]
    }
}

impl std::ops::DerefMut for PageAligned {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..]
    }
}

/// This process's soft limit on open files, where it can be told.
pub(crate) fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Bytes available to an unprivileged writer on the file system holding `dir`, where the
/// platform can tell.
pub(crate) fn available_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Whether process `pid` may still be running. Errs on the side of "alive" (another
/// user's process, or a platform that cannot tell).
pub(crate) fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // 0 would ask about our own process group.
        let Some(pid) = rustix::process::Pid::from_raw(pid) else {
            return true;
        };
        // Signal 0 only checks that the process exists; nothing is sent.
        rustix::process::test_kill_process(pid) != Err(Errno::SRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Creates a new file at `path` for writing; fails if anything (a symlink included) is there.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    options.open(path)
}

/// Sets the extended attribute `name` of the open `file` to `value`. Fails with
/// [`io::ErrorKind::Unsupported`] where the system has no extended attributes (the file
/// system's own refusal comes back as its error).
pub(crate) fn set_xattr(file: &File, name: &str, value: &[u8]) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        rustix::fs::fsetxattr(file, name, value, rustix::fs::XattrFlags::empty())?;
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    {
        let _ = (file, name, value);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Reads the extended attribute `name` of the open `file` into `buf`: its length, or `None`
/// when the file has none of that name, it does not fit `buf`, or the system or file
/// system has no extended attributes.
pub(crate) fn get_xattr(file: &File, name: &str, buf: &mut [u8]) -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        rustix::fs::fgetxattr(file, name, buf).ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    {
        let _ = (file, name, buf);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_buffers_start_on_a_page_and_hold_their_length() {
        for len in [0, 1, 4096, PageAligned::FROM, 256 * 1024 + 3] {
            let mut buf = PageAligned::zeroed(len);
            assert_eq!(buf.len(), len);
            if len >= PageAligned::FROM {
                assert_eq!(buf.as_ptr() as usize % PageAligned::PAGE, 0, "{len}");
            }
            assert!(buf.iter().all(|&b| b == 0));
            buf.fill(7);
            assert!(buf.iter().all(|&b| b == 7));
        }
    }

    /// Both ways of publishing, renameat2's and the link + unlink fallback's.
    #[test]
    fn publish_never_replaces() {
        for fallback in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let at = at::DirFd::open(dir.path()).expect("open");
            let (tmp, dst) = (dir.path().join("t"), dir.path().join("d"));
            fs::write(&dst, b"old").expect("write");
            fs::write(&tmp, b"new").expect("write");
            let publish = |tmp: &Path| {
                if fallback {
                    at.publish_by_link(tmp, "d")
                } else {
                    at.publish_noreplace(tmp, "d")
                }
            };
            let err = publish(&tmp).expect_err("must refuse");
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&dst).expect("read"), b"old");
            fs::remove_file(&dst).expect("rm");
            publish(&tmp).expect("publish");
            assert_eq!(fs::read(&dst).expect("read"), b"new");
            assert!(!tmp.exists());
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unnamed_files_are_invisible_until_linked_and_never_replace() {
        if !unnamed_files_possible() {
            eprintln!("SKIPPED: /proc is not mounted");
            return;
        }
        // Each way the store links one: whichever the kernel lets it, by the handle where
        // this kernel lets this process, and through /proc.
        unnamed_file_linked(at::DirFd::link_unnamed);
        unnamed_file_linked(at::DirFd::link_through_proc);
        let dir = tempfile::tempdir().expect("tempdir");
        let at = at::DirFd::open(dir.path()).expect("open");
        let Some(file) = at.create_unnamed().expect("O_TMPFILE") else {
            return;
        };
        match at.link_by_handle(&file, "f") {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: this kernel does not let this process link by handle");
                return;
            }
            Err(e) => panic!("link by handle: {e}"),
        }
        unnamed_file_linked(at::DirFd::link_by_handle);
    }

    /// Links through `link`: invisible until linked, never over an existing name or link.
    #[cfg(target_os = "linux")]
    fn unnamed_file_linked(link_as: fn(&at::DirFd, &fs::File, &str) -> io::Result<()>) {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let at = at::DirFd::open(dir.path()).expect("open");
        let Some(mut file) = at.create_unnamed().expect("O_TMPFILE") else {
            eprintln!("SKIPPED: this file system has no O_TMPFILE");
            return;
        };
        file.write_all(b"new").expect("write");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
        let (dst, taken) = (dir.path().join("d"), dir.path().join("taken"));
        fs::write(&taken, b"old").expect("write");
        let err = link_as(&at, &file, "taken").expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).expect("read"), b"old");
        // A symlink at the name is a name: refused, its target untouched.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&taken, &link).expect("symlink");
        let err = link_as(&at, &file, "link").expect_err("must refuse");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&taken).expect("read"), b"old");
        link_as(&at, &file, "d").expect("link");
        assert_eq!(fs::read(&dst).expect("read"), b"new");
    }

    /// A FIFO planted where a file is expected neither hangs the open nor is taken for a
    /// file to write; a file opened for reading is left in blocking mode.
    #[cfg(target_os = "linux")]
    #[test]
    fn fifos_do_not_hang_and_reads_block_as_usual() {
        use rustix::fs::{CWD, Mode, mkfifoat};
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        mkfifoat(CWD, &fifo, Mode::from_raw_mode(0o644)).expect("mkfifo");
        assert!(open_partial(&fifo).is_err(), "a FIFO taken for a partial");
        assert!(
            open_write_existing(&fifo).is_err(),
            "a FIFO taken for a file"
        );
        let file = dir.path().join("file");
        fs::write(&file, b"x").expect("write");
        let opened = open_read_nofollow(&file).expect("open");
        let flags = rustix::fs::fcntl_getfl(&opened).expect("flags");
        assert!(!flags.contains(OFlags::NONBLOCK));
    }

    #[test]
    fn process_liveness_errs_on_the_side_of_alive() {
        assert!(process_alive(std::process::id()));
        // Not a single process: never judged dead.
        assert!(process_alive(0));
        #[cfg(unix)]
        {
            // Above Linux's largest pid, and beyond any pid at all.
            assert!(!process_alive(4_194_305));
            assert!(!process_alive(u32::MAX));
        }
    }

    #[cfg(unix)]
    #[test]
    fn free_space_is_known_and_exhaustion_told_from_refusal() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(available_space(dir.path()).is_some_and(|n| n > 0));
        for (errno, exhausted) in [
            (Errno::MFILE, true),
            (Errno::NFILE, true),
            (Errno::NOSPC, true),
            (Errno::DQUOT, true),
            (Errno::NOMEM, true),
            (Errno::ACCESS, false),
            (Errno::OPNOTSUPP, false),
        ] {
            let e = io::Error::from_raw_os_error(errno.raw_os_error());
            assert_eq!(is_exhaustion(&e), exhausted, "{e}");
        }
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
