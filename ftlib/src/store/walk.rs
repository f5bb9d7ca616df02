//! [`Walk`], the listing of a [`DirStore`](super::DirStore) directory, flat or recursive,
//! streamed in bounded memory: a stack of open directories, one per level (at most
//! [`MAX_DEPTH`]), each read as it goes, entries named relative to the directory listed.

use std::sync::Arc;

use super::dir::{entry_of, visible};
use crate::error::{Error, Result};
use crate::protocol::{Entry, MAX_DEPTH, MAX_PATH};
use crate::sys::at::{ChildError, DirFd, Kind, Names};
use crate::text::escape;

/// One directory being read: its handle, its names, and its path relative to the listed
/// directory (`""` for the listed directory itself).
struct Level {
    dir: Arc<DirFd>,
    names: Names,
    prefix: String,
}

/// The entries of a directory, and with `recursive` of everything beneath it, each
/// directory's entry before its contents. Never follows a symbolic link: subdirectories are
/// opened by handle, one component at a time. Names that are not UTF-8, ft's own files,
/// symbolic links and special files are left out, as are directories deeper than a name
/// can reach ([`MAX_DEPTH`], [`MAX_PATH`] counting `base_depth` components above). A
/// subdirectory that cannot be read is listed, the walk goes on past it, and once all the
/// rest is listed the walk ends with an error naming it: a listing that left something out
/// never ends as if complete.
pub(super) struct Walk {
    stack: Vec<Level>,
    recursive: bool,
    base_depth: usize,
    /// The listed directory's own name and the `/` after it (empty for the top).
    base: String,
    unreadable: Unreadable,
}

/// What a walk could not read (a subdirectory, the rest of a directory, an entry's
/// attributes): the first few by path from the top, how many in all, and the first error.
#[derive(Default)]
struct Unreadable {
    names: Vec<String>,
    count: usize,
    first: Option<std::io::Error>,
}

/// Paths that could not be read named in the error; the others are counted.
const UNREADABLE_NAMED: usize = 3;

impl Unreadable {
    fn note(&mut self, name: String, e: std::io::Error) {
        self.count += 1;
        if self.names.len() < UNREADABLE_NAMED {
            self.names.push(name);
        }
        self.first.get_or_insert(e);
    }

    /// The error that ends the walk, once, if anything could not be read.
    fn take(&mut self) -> Option<Error> {
        let first = self.first.take()?;
        let names: Vec<String> = self.names.iter().map(|n| escape(n)).collect();
        let more = match self.count - self.names.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        // The count first: a message is cut at MESSAGE_MAX bytes on the wire, and paths
        // can be long.
        let what = format!(
            "{} left out of the listing, unreadable (everything else is listed): {}{more}",
            self.count,
            names.join(", ")
        );
        Some(Error::io(what, first))
    }
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("levels", &self.stack.len())
            .finish()
    }
}

impl Walk {
    /// Starts listing `dir`, which is `base_depth` components below the top, at `base`
    /// (its name and a `/`; empty for the top).
    pub(super) fn new(
        dir: Arc<DirFd>,
        base_depth: usize,
        base: String,
        recursive: bool,
    ) -> std::io::Result<Walk> {
        let names = dir.names()?;
        Ok(Walk {
            stack: vec![Level {
                dir,
                names,
                prefix: String::new(),
            }],
            recursive,
            base_depth,
            base,
            unreadable: Unreadable::default(),
        })
    }

    /// The next entry of the deepest open level, or `None` when that level is done.
    fn next_here(&mut self) -> Option<Result<Entry>> {
        let depth = self.stack.len();
        let level = self.stack.last_mut()?;
        loop {
            let name = match level.names.next()? {
                Ok(name) => name,
                // The rest of this directory cannot be read: noted, and the walk goes on
                // with its parent.
                Err(e) => {
                    self.unreadable.note(from_top(&self.base, &level.prefix), e);
                    return None;
                }
            };
            let Ok(name) = name.into_string() else {
                continue;
            };
            if !visible(&name) {
                continue;
            }
            let path = if level.prefix.is_empty() {
                name
            } else {
                format!("{}/{name}", level.prefix)
            };
            let leaf = path.rsplit('/').next().unwrap_or(&path);
            let stat = match level.dir.stat(leaf) {
                Ok(stat) => stat,
                // Gone since it was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                // Named but not described (a directory that may be read, not searched):
                // noted, and the walk goes on.
                Err(e) => {
                    self.unreadable.note(from_top(&self.base, &path), e);
                    continue;
                }
            };
            if !matches!(stat.kind, Kind::File | Kind::Dir) {
                continue;
            }
            // Only what a client can name again (from the top) is listed.
            if self.base.len() + path.len() > MAX_PATH {
                continue;
            }
            if stat.kind == Kind::Dir
                && self.recursive
                && self.base_depth + depth < MAX_DEPTH
                && self.base.len() + path.len() + 2 <= MAX_PATH
            {
                // Entered after this entry is handed out (so a directory comes first).
                let entered = match level.dir.child(leaf) {
                    Ok(dir) => dir.names().map(|names| Level {
                        dir: Arc::new(dir),
                        names,
                        prefix: path.clone(),
                    }),
                    Err(ChildError::Io(e)) => Err(e),
                    // Gone, or swapped for a link or a file, since it was read: not a
                    // directory of the tree any more.
                    Err(_) => return Some(Ok(entry_of(path, &stat))),
                };
                match entered {
                    Ok(child) => self.stack.push(child),
                    Err(e) => self.unreadable.note(from_top(&self.base, &path), e),
                }
            }
            return Some(Ok(entry_of(path, &stat)));
        }
    }
}

impl Iterator for Walk {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while !self.stack.is_empty() {
            match self.next_here() {
                Some(entry) => return Some(entry),
                None => {
                    self.stack.pop();
                }
            }
        }
        self.unreadable.take().map(Err)
    }
}

/// `rel` (below the listed directory) named from the top, as the error shows it: `.` for
/// the served directory itself.
fn from_top(base: &str, rel: &str) -> String {
    let path = format!("{base}{rel}");
    match path.trim_end_matches('/') {
        "" => ".".to_owned(),
        path => path.to_owned(),
    }
}
