//! [`Walk`], the listing of a [`DirStore`](super::DirStore) directory, flat or recursive,
//! streamed in bounded memory: a stack of open directories, one per level (at most
//! [`MAX_DEPTH`]), each read as it goes, entries named relative to the directory listed.

use std::sync::Arc;

use super::dir::{entry_of, visible};
use crate::error::{Error, Result};
use crate::protocol::{Entry, MAX_DEPTH, MAX_PATH};
use crate::sys::at::{DirFd, Kind, Names};
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
/// can reach ([`MAX_DEPTH`], [`MAX_PATH`] counting `base_depth` components above).
pub(super) struct Walk {
    stack: Vec<Level>,
    recursive: bool,
    base_depth: usize,
    /// Bytes of the listed directory's own name and the `/` after it (0 for the top).
    base_len: usize,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("levels", &self.stack.len())
            .finish()
    }
}

impl Walk {
    /// Starts listing `dir`, which is `base_depth` components and `base_len` bytes (its
    /// name and a `/`; 0 for the top) below the top.
    pub(super) fn new(
        dir: Arc<DirFd>,
        base_depth: usize,
        base_len: usize,
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
            base_len,
        })
    }

    /// The next entry of the deepest open level, or `None` when that level is done.
    fn next_here(&mut self) -> Option<Result<Entry>> {
        let depth = self.stack.len();
        let level = self.stack.last_mut()?;
        loop {
            let name = match level.names.next()? {
                Ok(name) => name,
                Err(e) => {
                    let what = format!("reading directory {}", escape(&level.prefix));
                    return Some(Err(Error::io(what, e)));
                }
            };
            let Ok(name) = name.into_string() else {
                continue;
            };
            if !visible(&name) {
                continue;
            }
            let stat = match level.dir.stat(&name) {
                Ok(stat) => stat,
                // Gone since it was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let what = format!("reading {}", escape(&name));
                    return Some(Err(Error::io(what, e)));
                }
            };
            if !matches!(stat.kind, Kind::File | Kind::Dir) {
                continue;
            }
            let path = if level.prefix.is_empty() {
                name
            } else {
                format!("{}/{name}", level.prefix)
            };
            // Only what a client can name again (from the top) is listed.
            if self.base_len + path.len() > MAX_PATH {
                continue;
            }
            if stat.kind == Kind::Dir
                && self.recursive
                && self.base_depth + depth < MAX_DEPTH
                && self.base_len + path.len() + 2 <= MAX_PATH
            {
                // Entered after this entry is handed out (so a directory comes first).
                let leaf = path.rsplit('/').next().unwrap_or(&path).to_owned();
                let child = level.dir.child(&leaf).ok().and_then(|dir| {
                    let names = dir.names().ok()?;
                    Some(Level {
                        dir: Arc::new(dir),
                        names,
                        prefix: path.clone(),
                    })
                });
                let entry = entry_of(path, &stat);
                if let Some(child) = child {
                    self.stack.push(child);
                }
                return Some(Ok(entry));
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
        None
    }
}
