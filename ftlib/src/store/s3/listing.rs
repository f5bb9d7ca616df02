//! Blocking views of the bucket's streams: [`Listing`] turns a stream of keys into the
//! entries of a directory (its files, and a directory entry for each key prefix), and
//! [`Body`] reads an object's bytes as they arrive. Both hold one page or one chunk at a
//! time, whatever the bucket's size.

use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectMeta;
use object_store::path::Path;

use super::http::{block_on, storage_error};
use crate::error::Result;
use crate::protocol::{Entry, EntryKind};
use crate::store::name::{RESERVED_PREFIX, validate_name};

/// The entries beneath a prefix, from the bucket's stream of keys.
///
/// S3 has no directories: `a/b/c` makes `a` and `a/b` directories. Every key beneath one
/// prefix comes in one run (the engine lists in key order, or directory by directory), so
/// remembering the directories of the last key is enough to name each directory once.
pub(super) struct Listing {
    keys: BoxStream<'static, object_store::Result<ObjectMeta>>,
    /// How many leading components of each key are the listed directory's.
    skip: usize,
    recursive: bool,
    /// The directory components of the last key listed (relative), for which entries were
    /// given already.
    open_dirs: Vec<String>,
    /// Entries found but not yet given (the directories a key makes, then the key).
    ready: std::collections::VecDeque<Entry>,
    bucket: String,
    done: bool,
}

impl Listing {
    pub(super) fn new(
        keys: BoxStream<'static, object_store::Result<ObjectMeta>>,
        prefix: Option<Path>,
        recursive: bool,
        bucket: String,
    ) -> Listing {
        Listing {
            keys,
            skip: prefix.map_or(0, |p| p.parts().count()),
            recursive,
            open_dirs: Vec::new(),
            ready: std::collections::VecDeque::new(),
            bucket,
            done: false,
        }
    }

    /// Queues the entries `meta`'s key makes visible.
    fn take(&mut self, meta: &ObjectMeta) {
        let parts: Vec<String> = meta
            .location
            .parts()
            .skip(self.skip)
            .map(|p| p.as_ref().to_owned())
            .collect();
        let Some((leaf, dirs)) = parts.split_last() else {
            return;
        };
        // A key whose directories ft could not name (hidden, or another tool's key that is
        // no valid name) is not shown at all.
        if dirs.iter().any(|d| !visible(d)) {
            return;
        }
        let dirs = if self.recursive {
            dirs
        } else {
            &dirs[..dirs.len().min(1)]
        };
        let same = self
            .open_dirs
            .iter()
            .zip(dirs)
            .take_while(|(a, b)| a == b)
            .count();
        self.open_dirs.truncate(same);
        for dir in &dirs[same..] {
            self.open_dirs.push(dir.clone());
            self.ready.push_back(Entry {
                name: self.open_dirs.join("/"),
                kind: EntryKind::Dir,
                size: 0,
                // S3 keeps no time for a prefix: that of the key that shows it.
                modified: meta.last_modified.timestamp(),
                executable: false,
            });
        }
        let is_own_file = self.recursive || parts.len() == 1;
        if is_own_file && visible(leaf) {
            self.ready.push_back(Entry {
                name: parts.join("/"),
                kind: EntryKind::File,
                size: meta.size,
                modified: meta.last_modified.timestamp(),
                executable: false,
            });
        }
    }
}

/// Whether a key component may be shown as a name (hidden markers and staging, and
/// components no ft name could have, are not).
fn visible(component: &str) -> bool {
    !component.starts_with(RESERVED_PREFIX) && validate_name(component).is_ok()
}

impl Iterator for Listing {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            if let Some(entry) = self.ready.pop_front() {
                return Some(Ok(entry));
            }
            if self.done {
                return None;
            }
            match block_on(self.keys.next()) {
                None => self.done = true,
                Some(Ok(meta)) => self.take(&meta),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(storage_error(&self.bucket, "listing it", e)));
                }
            }
        }
    }
}

/// An object's bytes as a blocking reader, each wait for more bounded by `timeout`.
pub(super) struct Body {
    chunks: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
    timeout: Duration,
    name: String,
    bucket: String,
}

impl Body {
    pub(super) fn new(
        chunks: BoxStream<'static, object_store::Result<Bytes>>,
        timeout: Duration,
        name: String,
        bucket: String,
    ) -> Body {
        Body {
            chunks,
            current: Bytes::new(),
            timeout,
            name,
            bucket,
        }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            let (timeout, chunks) = (self.timeout, &mut self.chunks);
            // The timer is made inside the runtime, which drives it.
            let next = block_on(async move { tokio::time::timeout(timeout, chunks.next()).await });
            match next {
                Err(_) => {
                    return Err(io::Error::other(crate::error::Error::Storage {
                        bucket: self.bucket.clone(),
                        doing: format!("reading {}", self.name),
                        failure: crate::error::StorageFailure::Failed,
                        detail: format!("no bytes came for {} s", self.timeout.as_secs()),
                    }));
                }
                Ok(None) => return Ok(0),
                Ok(Some(Ok(chunk))) => self.current = chunk,
                Ok(Some(Err(e))) => {
                    let doing = format!("reading {}", self.name);
                    return Err(io::Error::other(storage_error(&self.bucket, &doing, e)));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
