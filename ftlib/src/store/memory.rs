//! [`MemStore`], a complete [`Store`] in memory: the reference for what a backend must do
//! with nothing else in the way, and a store for embedders' tests (serve it, then look at
//! what arrived through a clone).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::name::Name;
use super::{PendingFile, Source, Store};
use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{Attrs, Entry, EntryKind};

/// A [`Store`] that keeps its files in memory; clones share them.
///
/// It keeps every promise of the trait: a file is invisible until committed, a commit never
/// replaces (of racing commits of one name exactly one wins), a dropped pending file leaves
/// nothing. It keeps no partials (resumable uploads start over: the default
/// [`Store::create_resumable`]), commits a group one file at a time, and has nothing to
/// clean up. With [`MemStore::with_capacity`] it refuses what would not fit, early at
/// `create` and again at commit, as a full disk would.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use ftlib::store::{MemStore, Name, Store};
///
/// let store = MemStore::new();
/// let name = Name::new("hello.txt")?;
/// let mut file = store.create(&name, 5)?;
/// file.write_all(b"hello")?;
/// assert!(store.open(&name, 0).is_err(), "invisible until committed");
/// file.commit()?;
///
/// let mut text = String::new();
/// store.open(&name, 1)?.reader.read_to_string(&mut text)?;
/// assert_eq!(text, "ello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    files: Mutex<BTreeMap<String, MemFile>>,
    /// Directories made by [`Store::make_dir`] (others exist because names lie beneath).
    dirs: Mutex<BTreeSet<String>>,
    /// Most bytes all committed files may hold together, if limited.
    capacity: Option<u64>,
}

/// A committed file: its bytes (shared with the readers that have it open) and when it
/// was committed, seconds since the Unix epoch.
#[derive(Debug)]
struct MemFile {
    bytes: Arc<[u8]>,
    modified: i64,
    nanos: u32,
    executable: bool,
}

impl Shared {
    fn files(&self) -> MutexGuard<'_, BTreeMap<String, MemFile>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses `size` more bytes beyond the capacity.
    fn check_space(&self, files: &BTreeMap<String, MemFile>, name: &Name, size: u64) -> Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        let used: u64 = files.values().map(|f| f.bytes.len() as u64).sum();
        let available = capacity.saturating_sub(used);
        if size > available {
            return Err(Error::NoSpace {
                name: name.to_string(),
                needed: size,
                available,
            });
        }
        Ok(())
    }
}

impl MemStore {
    /// An empty store without a size limit.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// An empty store whose files may hold at most `bytes` together.
    pub fn with_capacity(bytes: u64) -> MemStore {
        MemStore {
            shared: Arc::new(Shared {
                files: Mutex::default(),
                dirs: Mutex::default(),
                capacity: Some(bytes),
            }),
        }
    }
}

impl Shared {
    fn dirs(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What `path` is among `files` and explicit `dirs` (a directory is also any path some
/// name lies beneath).
fn kind_of(
    files: &BTreeMap<String, MemFile>,
    dirs: &BTreeSet<String>,
    path: &str,
) -> Option<EntryKind> {
    if files.contains_key(path) {
        return Some(EntryKind::File);
    }
    let below = format!("{path}/");
    let under = |key: Option<&String>| key.is_some_and(|k| k.starts_with(&below));
    if dirs.contains(path)
        || under(files.range(below.clone()..).next().map(|(k, _)| k))
        || under(dirs.range(below.clone()..).next())
    {
        return Some(EntryKind::Dir);
    }
    None
}

/// Refuses `name` where it or a parent is taken the wrong way: a parent that is a file, or
/// the name itself held by anything.
fn check_free(
    files: &BTreeMap<String, MemFile>,
    dirs: &BTreeSet<String>,
    name: &Name,
    why_file: Taken,
) -> Result<()> {
    let mut parent = name.parent();
    while let Some(p) = parent {
        if files.contains_key(p) {
            return Err(Error::AlreadyExists {
                name: p.to_owned(),
                why: Taken::NotADirectory,
            });
        }
        parent = p.rsplit_once('/').map(|(p, _)| p);
    }
    match kind_of(files, dirs, name) {
        None => Ok(()),
        Some(EntryKind::Dir) => Err(Error::AlreadyExists {
            name: name.to_string(),
            why: Taken::Directory,
        }),
        Some(_) => Err(Error::AlreadyExists {
            name: name.to_string(),
            why: why_file,
        }),
    }
}

impl Store for MemStore {
    fn list(
        &self,
        dir: Option<&Name>,
        recursive: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        // A snapshot, so the lock is not held while the listing is sent.
        let files = self.shared.files();
        let dirs = self.shared.dirs();
        let prefix = match dir {
            None => String::new(),
            Some(dir) if kind_of(&files, &dirs, dir) == Some(EntryKind::Dir) => format!("{dir}/"),
            Some(dir) => {
                return Err(Error::NotFound {
                    name: dir.to_string(),
                    why: if files.contains_key(dir.as_str()) {
                        Missing::NotADirectory
                    } else {
                        Missing::Absent
                    },
                });
            }
        };
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let add_dirs = |rel: &str, entries: &mut BTreeMap<String, Entry>| {
            // Every directory above a name, within the listed one (only the first with
            // `recursive` off).
            let mut at = 0;
            while let Some(slash) = rel[at..].find('/') {
                let d = &rel[..at + slash];
                entries.entry(d.to_owned()).or_insert_with(|| Entry {
                    name: d.to_owned(),
                    kind: EntryKind::Dir,
                    size: 0,
                    modified: 0,
                    executable: false,
                });
                if !recursive {
                    break;
                }
                at += slash + 1;
            }
        };
        for (name, file) in files.range(prefix.clone()..) {
            let Some(rel) = name.strip_prefix(&prefix) else {
                break;
            };
            add_dirs(rel, &mut entries);
            if recursive || !rel.contains('/') {
                entries.insert(
                    rel.to_owned(),
                    Entry {
                        name: rel.to_owned(),
                        kind: EntryKind::File,
                        size: file.bytes.len() as u64,
                        modified: file.modified,
                        executable: file.executable,
                    },
                );
            }
        }
        for d in dirs.range(prefix.clone()..) {
            let Some(rel) = d.strip_prefix(&prefix) else {
                break;
            };
            add_dirs(&format!("{rel}/"), &mut entries);
        }
        Ok(Box::new(entries.into_values().map(Ok)))
    }

    fn stat(&self, name: &Name) -> Result<Entry> {
        let files = self.shared.files();
        if let Some(file) = files.get(name.as_str()) {
            return Ok(Entry {
                name: name.to_string(),
                kind: EntryKind::File,
                size: file.bytes.len() as u64,
                modified: file.modified,
                executable: file.executable,
            });
        }
        match kind_of(&files, &self.shared.dirs(), name) {
            Some(kind) => Ok(Entry {
                name: name.to_string(),
                kind,
                size: 0,
                modified: 0,
                executable: false,
            }),
            None => Err(Error::NotFound {
                name: name.to_string(),
                why: Missing::Absent,
            }),
        }
    }

    fn make_dir(&self, name: &Name) -> Result<bool> {
        let files = self.shared.files();
        let mut dirs = self.shared.dirs();
        match check_free(&files, &dirs, name, Taken::NotADirectory) {
            Ok(()) => Ok(dirs.insert(name.to_string())),
            Err(Error::AlreadyExists {
                why: Taken::Directory,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn open(&self, name: &Name, offset: u64) -> Result<Source> {
        let files = self.shared.files();
        let Some(file) = files.get(name.as_str()) else {
            let dir = kind_of(&files, &self.shared.dirs(), name).is_some();
            return Err(Error::NotFound {
                name: name.to_string(),
                why: if dir {
                    Missing::NotRegular
                } else {
                    Missing::Absent
                },
            });
        };
        let mut reader = io::Cursor::new(Arc::clone(&file.bytes));
        reader.set_position(offset);
        Ok(Source {
            kept: None,
            reader: Box::new(reader),
            size: file.bytes.len() as u64,
            modified: file.modified,
            nanos: file.nanos,
            executable: file.executable,
        })
    }

    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>> {
        let files = self.shared.files();
        check_free(&files, &self.shared.dirs(), name, Taken::Exists)?;
        self.shared.check_space(&files, name, size)?;
        Ok(Box::new(MemPending {
            shared: Arc::clone(&self.shared),
            name: name.clone(),
            bytes: Vec::new(),
            attrs: None,
        }))
    }
}

/// A file being written into a [`MemStore`]: bytes held apart from the store's files until
/// committed; dropping it frees them.
#[derive(Debug)]
struct MemPending {
    shared: Arc<Shared>,
    name: Name,
    bytes: Vec<u8>,
    attrs: Option<Attrs>,
}

impl Write for MemPending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PendingFile for MemPending {
    fn commit(self: Box<Self>) -> Result<()> {
        let MemPending {
            shared,
            name,
            bytes,
            attrs,
        } = *self;
        let mut files = shared.files();
        // Checked and inserted under one lock: of racing commits exactly one wins.
        check_free(&files, &shared.dirs(), &name, Taken::Raced)?;
        shared.check_space(&files, &name, bytes.len() as u64)?;
        files.insert(
            name.to_string(),
            MemFile {
                bytes: bytes.into(),
                modified: attrs.map_or_else(now, |a| a.modified),
                nanos: attrs.map_or(0, |a| a.nanos),
                executable: attrs.is_some_and(|a| a.executable),
            },
        );
        Ok(())
    }

    fn set_attrs(&mut self, attrs: Attrs) {
        self.attrs = Some(attrs);
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_util::name;

    /// A store with a capacity refuses early what cannot fit, and again at commit what
    /// no longer fits; refused files leave nothing and the room they did not take.
    #[test]
    fn capacity_is_enforced_early_and_at_commit() {
        let store = MemStore::with_capacity(10);
        assert!(matches!(
            store.create(&name("big"), 11),
            Err(Error::NoSpace {
                needed: 11,
                available: 10,
                ..
            })
        ));
        let mut first = store.create(&name("a"), 6).expect("fits");
        let mut second = store.create(&name("b"), 6).expect("fits, for now");
        first.write_all(b"aaaaaa").expect("write");
        second.write_all(b"bbbbbb").expect("write");
        first.commit().expect("commit");
        assert!(matches!(
            second.commit(),
            Err(Error::NoSpace { available: 4, .. })
        ));
        let names: Vec<String> = store
            .list(None, false)
            .expect("list")
            .map(|e| e.expect("entry").name)
            .collect();
        assert_eq!(names, ["a"]);
    }

    /// Clones share the files: what a server stores through one, a test sees through another.
    #[test]
    fn clones_share_their_files() {
        let store = MemStore::new();
        let seen = store.clone();
        let mut file = store.create(&name("x"), 1).expect("create");
        file.write_all(b"x").expect("write");
        file.commit().expect("commit");
        assert_eq!(seen.open(&name("x"), 0).expect("open").size, 1);
    }
}
