//! [`MemStore`], a complete [`Store`] in memory: the reference for what a backend must do
//! with nothing else in the way, and a store for embedders' tests (serve it, then look at
//! what arrived through a clone).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::name::Name;
use super::{PendingFile, Source, Store};
use crate::error::{Error, Missing, Result, Taken};
use crate::protocol::{Entry, EntryKind};

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
    /// Most bytes all committed files may hold together, if limited.
    capacity: Option<u64>,
}

/// A committed file: its bytes (shared with the readers that have it open) and when it
/// was committed, seconds since the Unix epoch.
#[derive(Debug)]
struct MemFile {
    bytes: Arc<[u8]>,
    modified: i64,
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
                capacity: Some(bytes),
            }),
        }
    }
}

impl Store for MemStore {
    fn list(&self) -> Result<Box<dyn Iterator<Item = Result<Entry>> + Send + '_>> {
        // A snapshot, so the lock is not held while the listing is sent.
        let entries: Vec<Entry> = self
            .shared
            .files()
            .iter()
            .map(|(name, file)| Entry {
                name: name.clone(),
                kind: EntryKind::File,
                size: file.bytes.len() as u64,
                modified: file.modified,
            })
            .collect();
        Ok(Box::new(entries.into_iter().map(Ok)))
    }

    fn open(&self, name: &Name, offset: u64) -> Result<Source> {
        let files = self.shared.files();
        let Some(file) = files.get(name.as_str()) else {
            return Err(Error::NotFound {
                name: name.to_string(),
                why: Missing::Absent,
            });
        };
        let mut reader = io::Cursor::new(Arc::clone(&file.bytes));
        reader.set_position(offset);
        Ok(Source {
            reader: Box::new(reader),
            size: file.bytes.len() as u64,
            modified: file.modified,
        })
    }

    fn create(&self, name: &Name, size: u64) -> Result<Box<dyn PendingFile>> {
        let files = self.shared.files();
        if files.contains_key(name.as_str()) {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::Exists,
            });
        }
        self.shared.check_space(&files, name, size)?;
        Ok(Box::new(MemPending {
            shared: Arc::clone(&self.shared),
            name: name.clone(),
            bytes: Vec::new(),
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
        } = *self;
        let mut files = shared.files();
        // Checked and inserted under one lock: of racing commits exactly one wins.
        if files.contains_key(name.as_str()) {
            return Err(Error::AlreadyExists {
                name: name.to_string(),
                why: Taken::Raced,
            });
        }
        shared.check_space(&files, &name, bytes.len() as u64)?;
        files.insert(
            name.to_string(),
            MemFile {
                bytes: bytes.into(),
                modified: now(),
            },
        );
        Ok(())
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
            .list()
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
