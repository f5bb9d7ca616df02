//! The local side of an upload: where a command-line path is read from and the name it
//! gets on the server ([`local_source`]), and opening that file ([`open_local`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::error::{Error, Missing, Result};
use crate::protocol::Attrs;
use crate::store::Name;

/// Where an upload of the command-line path `file` reads from, and its name on the server
/// (the last component). A plain name is looked up in `dir` first, then in the working
/// directory (and reported as `dir`'s when it is in neither); a path with directories is
/// used as given.
///
/// # Errors
/// [`Error::InvalidName`] when `file` does not end in a file name, the name is not UTF-8,
/// or it is not a valid name on the server. The file itself is not opened.
///
/// # Examples
/// ```
/// use std::path::Path;
///
/// use ftlib::local_source;
///
/// let (path, name) = local_source(Path::new("/tmp/notes.pdf"), Path::new("client_data"))?;
/// assert_eq!(path, Path::new("/tmp/notes.pdf"));
/// assert_eq!(name.as_str(), "notes.pdf");
/// # Ok::<(), ftlib::Error>(())
/// ```
pub fn local_source(file: &Path, dir: &Path) -> Result<(PathBuf, Name)> {
    // An empty base leaves `file` as it is: relative to the working directory.
    resolve(file, dir, Path::new(""))
}

/// [`local_source`] with the working directory `cwd`, so it can be tested without changing
/// the process's own.
fn resolve(file: &Path, dir: &Path, cwd: &Path) -> Result<(PathBuf, Name)> {
    let invalid = |reason| Error::InvalidName {
        name: file.display().to_string(),
        reason,
    };
    let name = file
        .file_name()
        .ok_or_else(|| invalid("the path does not end in a file name"))?
        .to_str()
        .ok_or_else(|| invalid("the name is not valid UTF-8"))?;
    let name = Name::new(name)?;
    let in_dir = dir.join(file);
    let path = if file.components().count() > 1 || (!in_dir.exists() && cwd.join(file).exists()) {
        file.to_path_buf()
    } else {
        in_dir
    };
    Ok((path, name))
}

/// The name a report shows for the command-line path `file`: its last component, or the
/// whole path when it has none (such as `..`).
pub(super) fn remote_name(file: &Path) -> String {
    file.file_name()
        .unwrap_or(file.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Where a download of the server name `name` lands in the local directory: its last
/// component (`photos/a.jpg` as `a.jpg`, a tree `docs/2024` as `2024/...`).
pub(super) fn local_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The attributes of a local file that travel with it.
pub(super) fn local_attrs(file: &File) -> Option<Attrs> {
    let meta = file.metadata().ok()?;
    let (modified, nanos) = match meta.modified().ok()?.duration_since(UNIX_EPOCH) {
        Ok(after) => (i64::try_from(after.as_secs()).ok()?, after.subsec_nanos()),
        // Before 1970: whole seconds, rounded down.
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).ok()?;
            match before.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    #[cfg(unix)]
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    };
    #[cfg(not(unix))]
    let executable = false;
    Some(Attrs {
        modified,
        nanos,
        executable,
    })
}

/// A local file to upload: its path, and whether a symbolic link there is followed (for a
/// path given on the command line) or refused (for a file found in a tree, which may have
/// been swapped for a link since it was walked).
#[derive(Debug, Clone)]
pub(super) struct Local {
    pub(super) path: PathBuf,
    pub(super) follow: bool,
}

impl Local {
    /// A file named on the command line: a link there is followed, as `cp` would.
    pub(super) fn named(path: impl Into<PathBuf>) -> Local {
        Local {
            path: path.into(),
            follow: true,
        }
    }
}

/// Opens a local file to upload: the file and its size.
pub(super) fn open_local(local: &Local) -> Result<(File, u64)> {
    let path = local.path.as_path();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Without blocking: opening a FIFO for reading would wait for a writer, forever,
        // before it could be refused as not a regular file (no effect on a regular file).
        let mut flags = rustix::fs::OFlags::NONBLOCK;
        if !local.follow {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        // Written as rustix's constants: no libc dependency for two flags.
        options.custom_flags(flags.bits() as i32);
    }
    let file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            name: path.display().to_string(),
            why: Missing::Local,
        },
        _ => Error::io(format!("opening {}", path.display()), e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(Error::NotFound {
            name: path.display().to_string(),
            why: Missing::NotRegular,
        });
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    #[cfg(unix)]
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// One row per way a command-line path is read: (path, where it is read from, name on
    /// the server), in a tree with `dir/` (`--dir`) and `cwd/` (the working directory).
    #[test]
    fn paths_resolve_dir_first_then_the_working_directory() {
        let base = tempfile::tempdir().expect("tempdir");
        let (dir, cwd) = (base.path().join("dir"), base.path().join("cwd"));
        for root in [&dir, &cwd] {
            fs::create_dir_all(root.join("sub")).expect("mkdir");
            fs::write(root.join("both.txt"), b"x").expect("write");
            fs::write(root.join("sub").join("rel.txt"), b"x").expect("write");
        }
        fs::write(cwd.join("cwd-only.txt"), b"x").expect("write");
        fs::write(dir.join("dir-only.txt"), b"x").expect("write");
        let absolute = base.path().join("abs.bin");
        let rows: Vec<(PathBuf, PathBuf, &str)> = vec![
            ("both.txt".into(), dir.join("both.txt"), "both.txt"),
            (
                "dir-only.txt".into(),
                dir.join("dir-only.txt"),
                "dir-only.txt",
            ),
            ("cwd-only.txt".into(), "cwd-only.txt".into(), "cwd-only.txt"),
            // In neither: `dir`'s path, so the error names where a plain name is looked first.
            ("nowhere.txt".into(), dir.join("nowhere.txt"), "nowhere.txt"),
            // Directories in the path: as given, even though `dir` has the same path.
            ("sub/rel.txt".into(), "sub/rel.txt".into(), "rel.txt"),
            ("./both.txt".into(), "./both.txt".into(), "both.txt"),
            ("../x/y.txt".into(), "../x/y.txt".into(), "y.txt"),
            (absolute.clone(), absolute, "abs.bin"),
        ];
        for (file, path, name) in rows {
            let (got_path, got_name) =
                resolve(&file, &dir, &cwd).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(
                (got_path.as_path(), got_name.as_str()),
                (path.as_path(), name),
                "{}",
                file.display()
            );
        }
    }

    /// Paths whose last component cannot be a name on the server, refused before anything
    /// is opened.
    #[test]
    fn paths_without_a_valid_name_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Non-UTF-8 names are added on Unix only.
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut rows: Vec<PathBuf> = vec![
            "..".into(),
            "/".into(),
            "sub/..".into(),
            ".ft-tmp-1-2-3".into(),
            "tab\there".into(),
        ];
        #[cfg(unix)]
        rows.push(std::ffi::OsStr::from_bytes(b"bad\xff").into());
        for file in rows {
            match resolve(&file, dir.path(), dir.path()) {
                Err(Error::InvalidName { .. }) => {}
                other => panic!("{}: {other:?}", file.display()),
            }
        }
    }

    #[test]
    fn report_names_are_the_last_component_or_the_whole_path() {
        for (file, name) in [
            ("a/b/c.txt", "c.txt"),
            ("c.txt", "c.txt"),
            ("..", ".."),
            ("/", "/"),
        ] {
            assert_eq!(remote_name(Path::new(file)), name, "{file}");
        }
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, b"12345").expect("write");
        let (_, size) = open_local(&Local::named(&file)).expect("open");
        assert_eq!(size, 5);
        assert!(matches!(
            open_local(&Local::named(dir.path().join("missing"))),
            Err(Error::NotFound {
                why: Missing::Local,
                ..
            })
        ));
        assert!(matches!(
            open_local(&Local::named(dir.path())),
            Err(Error::NotFound {
                why: Missing::NotRegular,
                ..
            })
        ));
    }
}

#[cfg(all(test, unix))]
mod link_tests {
    use std::fs;

    use super::*;

    /// A file named on the command line may be a link (followed); one found in a tree,
    /// swapped for a link since the walk, is refused.
    #[test]
    fn links_are_followed_only_for_named_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("secret"), b"s").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("secret"), &link).expect("symlink");
        assert!(open_local(&Local::named(&link)).is_ok());
        let in_tree = Local {
            path: link,
            follow: false,
        };
        assert!(open_local(&in_tree).is_err());
    }
}
