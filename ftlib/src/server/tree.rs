//! The requests of version 4 that only read or shape the tree: [`stat`] (what a name is,
//! with its digest if asked), [`list_dir`] (one directory, or everything beneath it,
//! streamed) and [`make_dir`].

use super::handlers::{Exchange, Failed, answered};
use crate::error::Error;
use crate::protocol::{EntryKind, Response};
use crate::store::Name;
use crate::transfer;

/// Answers `Described`: the entry of `name`, and the XXH3-128 of its bytes when `digest`
/// asks and it is a file (the digest the store kept, or the file read whole).
pub(super) fn stat(ex: &mut Exchange<'_>, name: &str, digest: bool) -> Result<u64, Failed> {
    let checked = Name::new(name)?;
    let entry = ex.ctx.store.stat(&checked)?;
    let digest = if digest && entry.kind == EntryKind::File {
        Some(ex.ctx.store.digest(&checked)?)
    } else {
        None
    };
    ex.conn.send(&Response::Described { entry, digest })?;
    Ok(0)
}

/// Streams the listing of `dir` (`""`: the top), recursive if asked.
pub(super) fn list_dir(ex: &mut Exchange<'_>, dir: &str, recursive: bool) -> Result<u64, Failed> {
    let checked = if dir.is_empty() {
        None
    } else {
        Some(Name::new(dir)?)
    };
    let entries = ex.ctx.store.list(checked.as_ref(), recursive)?;
    transfer::send_listing(ex.conn, entries, true, &mut ex.moved).map_err(answered)
}

/// Creates directory `name` (and its parents) unless it exists: answers `Made`.
pub(super) fn make_dir(ex: &mut Exchange<'_>, name: &str) -> Result<u64, Failed> {
    let checked = Name::new(name)?;
    if ex.ctx.config.read_only {
        return Err(Error::ReadOnly.into());
    }
    let created = ex.ctx.store.make_dir(&checked)?;
    ex.conn.send(&Response::Made { created })?;
    Ok(0)
}
