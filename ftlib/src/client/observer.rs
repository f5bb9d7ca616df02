//! [`Observer`]: what a [`Session`] tells its caller while files move —
//! totals, progress, listed entries and digests, first contact with a server, and one
//! report per item.

use super::Progress;
#[cfg(doc)]
use super::Session;
use crate::error::Error;
use crate::protocol::{DIGEST_LEN, Entry};
use crate::report::Report;
use crate::trust::FirstContact;

/// What a [`Session`] tells its caller while files move. Items are numbered by their place
/// in the command (0 for a listing).
pub trait Observer {
    /// `count` items are about to move, their sizes unknown: called once by
    /// [`Session::get`], before connecting.
    fn start(&mut self, count: usize) {
        let _ = count;
    }

    /// Files of known sizes are about to move: `files` files of `bytes` bytes in all.
    /// Called once by [`Session::put`] (and the other uploads of named files),
    /// [`Session::put_tree`] and [`Session::get_tree`], before the first item, instead of
    /// [`Observer::start`]; the default calls [`Observer::start`].
    fn totals(&mut self, files: usize, bytes: u64) {
        let _ = bytes;
        self.start(files);
    }

    /// Whether [`Observer::totals`] is worth a walk of its own: [`Session::put_tree`] walks
    /// the local trees once more, before sending anything, to count their files and bytes
    /// only when this says so (the default). Say `false` when nothing shows the totals, so
    /// that the first file goes out sooner; [`Observer::totals`] is then called with zeros.
    fn wants_totals(&self) -> bool {
        true
    }

    /// Item `item`, named `name` on the server, moved: called often, first when its size is
    /// known.
    fn progress(&mut self, item: usize, name: &str, progress: Progress) {
        let _ = (item, name, progress);
    }

    /// One entry of a [`Session::list`], in the server's order, before its report.
    fn entry(&mut self, entry: Entry) {
        let _ = entry;
    }

    /// The XXH3-128 of the file `name` (as its entry named it) of a
    /// [`Session::list_dir_digests`], or why it could not be had: called for each file
    /// after all the entries, in their order, before the report.
    fn digest(&mut self, name: &str, digest: std::result::Result<[u8; DIGEST_LEN], &Error>) {
        let _ = (name, digest);
    }

    /// The server was met for the first time and its fingerprint recorded in the
    /// known-hosts file: say so, so that a person can compare it with the server's.
    fn first_contact(&mut self, contact: &FirstContact) {
        let _ = contact;
    }

    /// Item `item` is done: its report, and the error (to say what to do) when it failed.
    /// Called once per item, in command order except for files retried on a new connection
    /// and files found already at the destination (reported once compared, after the
    /// others of their batch: skipped when the bytes are the same).
    fn finished(&mut self, item: usize, report: Report, error: Option<&Error>);
}
