//! The digest a [`DirStore`](super::DirStore) keeps with each file over [`KEPT_FROM`]
//! bytes it stored: the verified XXH3-128 of the upload, in the extended attribute
//! [`DIGEST_XATTR`] next to the size and modification time the file had when it was
//! sealed, so that a digest is answered, and a download sent, without reading the file. It
//! is trusted only while the file's size and time are still those; otherwise, without it,
//! on a file system without extended attributes, or for a smaller file, the file is read.

use std::fs::File;
use std::io::{self, Read};

use xxhash_rust::xxh3::Xxh3;

use crate::protocol::DIGEST_LEN;
use crate::sys;
use crate::sys::at::{Stat, stat_file};

/// The extended attribute holding a stored file's digest (`user.` so that the server's
/// own user may write it).
pub const DIGEST_XATTR: &str = "user.ft.xxh3";

/// Files of at least this many bytes get a kept digest. A smaller one (an upload held in
/// memory: [`BUFFERED_MAX`](super::BUFFERED_MAX) or less) is read and hashed when its
/// digest is asked, which costs less than recording the attribute at every upload did:
/// about a twentieth of the server's CPU in a put of many small files.
pub(super) const KEPT_FROM: u64 = super::BUFFERED_MAX as u64 + 1;

/// The layout's version, its first byte: 1 = digest (16 bytes, as on the wire), size (u64
/// little-endian), modification time (i64 seconds, u32 nanoseconds, little-endian).
const LAYOUT: u8 = 1;

/// Bytes of the attribute's value.
const LEN: usize = 1 + DIGEST_LEN + 8 + 8 + 4;

/// Records `digest`, which must be the verified digest of exactly the bytes `file` holds,
/// with the file's size and time now: call it once the bytes and the time are final, before
/// the file is synced and published. Best effort: where it cannot be kept, digests are
/// computed instead.
pub(super) fn seal(file: &File, digest: &[u8; DIGEST_LEN]) {
    let Ok(stat) = stat_file(file) else {
        return;
    };
    // Refused (no extended attributes here, or no room): nothing is kept, nothing is wrong.
    let _ = sys::set_xattr(file, DIGEST_XATTR, &encode(digest, &stat));
}

/// The digest kept with `file`, if it has one and its size and time are still those it was
/// sealed with (`stat`, the file's own).
pub(super) fn kept_with(file: &File, stat: &Stat) -> Option<[u8; DIGEST_LEN]> {
    let mut value = [0u8; LEN];
    let len = sys::get_xattr(file, DIGEST_XATTR, &mut value)?;
    decode(value.get(..len)?, stat)
}

/// The XXH3-128 of the regular file `file`'s bytes: the digest kept with it when it can be
/// trusted, else read from the file.
///
/// # Errors
/// When the file cannot be read.
pub(super) fn digest_of(file: &mut File) -> io::Result<[u8; DIGEST_LEN]> {
    let stat = stat_file(file)?;
    if stat.size < KEPT_FROM {
        return hash_sized(file, stat.size);
    }
    if let Some(digest) = kept_with(file, &stat) {
        return Ok(digest);
    }
    hash_all(file)
}

/// The XXH3-128 of everything `reader` gives.
///
/// # Errors
/// When the reader fails.
pub(super) fn hash_all(reader: &mut dyn Read) -> io::Result<[u8; DIGEST_LEN]> {
    hash_sized(reader, u64::MAX)
}

/// [`hash_all`] of a reader expected to give about `size` bytes, through a buffer no
/// larger than that needs (a small file's digest is asked of thousands at a time).
fn hash_sized(reader: &mut dyn Read, size: u64) -> io::Result<[u8; DIGEST_LEN]> {
    // Not `transfer::hash_all`: the store stays below the transfer layer (the architecture
    // test's rules), and these few lines are the whole of it.
    const MOST: usize = 256 * 1024;
    let len = usize::try_from(size.saturating_add(1)).map_or(MOST, |len| len.clamp(4096, MOST));
    let mut hasher = Xxh3::new();
    let mut buf = crate::sys::PageAligned::zeroed(len);
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest128().to_be_bytes()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn encode(digest: &[u8; DIGEST_LEN], stat: &Stat) -> [u8; LEN] {
    let mut value = [0u8; LEN];
    value[0] = LAYOUT;
    value[1..17].copy_from_slice(digest);
    value[17..25].copy_from_slice(&stat.size.to_le_bytes());
    value[25..33].copy_from_slice(&stat.modified.0.to_le_bytes());
    value[33..37].copy_from_slice(&stat.modified.1.to_le_bytes());
    value
}

/// The digest in `value` when it has this layout and was sealed at exactly the size and
/// time of `stat`.
fn decode(value: &[u8], stat: &Stat) -> Option<[u8; DIGEST_LEN]> {
    let value: &[u8; LEN] = value.try_into().ok()?;
    if value[0] != LAYOUT || *value != encode(value[1..17].try_into().ok()?, stat) {
        return None;
    }
    value[1..17].try_into().ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::sys::at::Kind;

    fn stat(size: u64, modified: (i64, u32)) -> Stat {
        Stat {
            kind: Kind::File,
            size,
            modified,
            executable: false,
        }
    }

    /// A value is trusted only with its layout, length, size and time all matching.
    #[test]
    fn a_kept_digest_is_trusted_only_for_the_same_size_and_time() {
        let digest = [7u8; DIGEST_LEN];
        let sealed = stat(10, (1_700_000_000, 5));
        let value = encode(&digest, &sealed);
        assert_eq!(decode(&value, &sealed), Some(digest));
        let rows: &[(&str, Stat)] = &[
            ("size", stat(11, (1_700_000_000, 5))),
            ("seconds", stat(10, (1_700_000_001, 5))),
            ("nanoseconds", stat(10, (1_700_000_000, 6))),
        ];
        for (what, other) in rows {
            assert_eq!(decode(&value, other), None, "another {what}");
        }
        let mut other_layout = value;
        other_layout[0] = 2;
        assert_eq!(decode(&other_layout, &sealed), None, "another layout");
        assert_eq!(decode(&value[..LEN - 1], &sealed), None, "too short");
        assert_eq!(decode(&[], &sealed), None, "empty");
    }

    /// On a file system with extended attributes (the test's temporary directory may not
    /// have them), a sealed file of [`KEPT_FROM`] bytes or more answers the kept digest;
    /// once written to, its own. A smaller one is always read.
    #[test]
    fn a_sealed_file_answers_its_kept_digest_until_it_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes: Vec<u8> = (0..KEPT_FROM).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("f");
        let mut file = File::create(&path).expect("create");
        file.write_all(&bytes).expect("write");
        let real = hash_all(&mut &bytes[..]).expect("hash");
        // A digest that is not the file's shows that the kept one is used.
        let marked = [0xAB; DIGEST_LEN];
        seal(&file, &marked);
        let mut reading = File::open(&path).expect("open");
        let answered = digest_of(&mut reading).expect("digest");
        if sys::get_xattr(&reading, DIGEST_XATTR, &mut [0u8; LEN]).is_none() {
            assert_eq!(answered, real, "no extended attributes here: read");
            return;
        }
        assert_eq!(answered, marked);
        // One byte less, sealed the same way: read.
        let small = dir.path().join("small");
        let mut file_small = File::create(&small).expect("create");
        file_small
            .write_all(&bytes[..bytes.len() - 1])
            .expect("write");
        seal(&file_small, &marked);
        let mut reading = File::open(&small).expect("open");
        assert_eq!(
            digest_of(&mut reading).expect("digest"),
            hash_all(&mut &bytes[..bytes.len() - 1]).expect("hash")
        );
        // Same size, another time: the kept digest no longer counts.
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("set time");
        let mut reading = File::open(&path).expect("open");
        assert_eq!(digest_of(&mut reading).expect("digest"), real);
    }
}
