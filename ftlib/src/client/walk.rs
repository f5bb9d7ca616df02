//! [`LocalTree`], the walk of a local directory tree to upload: streamed in bounded memory
//! (one open directory per level, never the whole tree collected), never following a
//! symbolic link, each item named as it will be on the server.

use std::fs::{self, ReadDir};
use std::path::PathBuf;

use crate::protocol::{MAX_DEPTH, MAX_PATH};
use crate::store::Name;

/// One thing found in a local tree.
#[derive(Debug)]
pub(super) enum Found {
    /// A regular file to upload as `name`.
    File {
        path: PathBuf,
        name: String,
        size: u64,
    },
    /// A directory with nothing to upload inside: created on the server as `name`.
    EmptyDir { name: String },
    /// Something not uploaded, and why: skipped by design (a symbolic link, a special
    /// file), or a failure (`failed`: a name the server cannot hold, a directory that
    /// cannot be read).
    Skipped {
        name: String,
        reason: &'static str,
        failed: Option<Failed>,
    },
    /// A directory (or an entry of one) that could not be read, at `path`: a failure.
    Unreadable {
        name: String,
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Why something of a local tree could not be uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// Its name cannot be a name on the server.
    Name,
}

/// One directory being read.
struct Level {
    entries: ReadDir,
    path: PathBuf,
    name: String,
    /// Whether anything inside was uploaded or created (else it is an empty directory).
    filled: bool,
}

/// The walk of one tree: its root directory at `path` goes to the server as `name`.
pub(super) struct LocalTree {
    stack: Vec<Level>,
}

impl LocalTree {
    /// Starts walking the directory at `path`, to be uploaded as `name`.
    pub(super) fn new(path: PathBuf, name: String) -> std::io::Result<LocalTree> {
        let entries = fs::read_dir(&path)?;
        Ok(LocalTree {
            stack: vec![Level {
                entries,
                path,
                name,
                filled: false,
            }],
        })
    }
}

impl Iterator for LocalTree {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        loop {
            let level = self.stack.last_mut()?;
            let Some(item) = level.entries.next() else {
                let done = self.stack.pop()?;
                if !done.filled {
                    return Some(Found::EmptyDir { name: done.name });
                }
                continue;
            };
            let (entry, leaf, kind) =
                match item.and_then(|e| Ok((e.file_name(), e.file_type()?, e))) {
                    Ok((leaf, kind, entry)) => (entry, leaf, kind),
                    Err(error) => {
                        return Some(Found::Unreadable {
                            name: level.name.clone(),
                            path: level.path.clone(),
                            error,
                        });
                    }
                };
            let path = level.path.join(&leaf);
            let Some(leaf) = leaf.to_str() else {
                let name = format!("{}/{}", level.name, leaf.to_string_lossy());
                return Some(Found::Skipped {
                    name,
                    reason: "the name is not valid UTF-8",
                    failed: Some(Failed::Name),
                });
            };
            let name = format!("{}/{leaf}", level.name);
            if kind.is_symlink() {
                return Some(Found::Skipped {
                    name,
                    reason: "a symbolic link (not followed)",
                    failed: None,
                });
            }
            if let Err(refused) = Name::new(&name) {
                let reason = match refused {
                    _ if name.len() > MAX_PATH || name.split('/').count() > MAX_DEPTH => {
                        "the path is too long or too deep for the server"
                    }
                    // What is wrong with it: a backslash, a control character, `.ft-`.
                    crate::Error::InvalidName { reason, .. } => reason,
                    _ => "not a valid name on the server",
                };
                return Some(Found::Skipped {
                    name,
                    reason,
                    failed: Some(Failed::Name),
                });
            }
            if kind.is_dir() {
                match fs::read_dir(&path) {
                    Ok(entries) => {
                        level.filled = true;
                        self.stack.push(Level {
                            entries,
                            path,
                            name,
                            filled: false,
                        });
                    }
                    Err(error) => return Some(Found::Unreadable { name, path, error }),
                }
                continue;
            }
            if !kind.is_file() {
                return Some(Found::Skipped {
                    name,
                    reason: "not a regular file",
                    failed: None,
                });
            }
            level.filled = true;
            // Asked relative to the open directory, not by its path from the top.
            let size = entry.metadata().map_or(0, |m| m.len());
            return Some(Found::File { path, name, size });
        }
    }
}
