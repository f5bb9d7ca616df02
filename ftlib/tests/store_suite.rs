//! The promises every storage backend keeps, written once and run against each backend
//! through ftlib's public API only. A backend joins with a fixture function (which says
//! whether it keeps partials) and one `store_suite!` line; each promise is then its own
//! test, named `<backend>::<promise>`. Names are not tried here: stores take only a
//! [`Name`], whose rules `ftlib/src/store/name.rs` tests.

use std::any::Any;
use std::io::{Read, Write};
use std::sync::Barrier;

use ft_testutil::names_with;
use ftlib::ErrorKind;
use ftlib::protocol::EntryKind;
use ftlib::store::{DirStore, MemStore, Name, PendingFile, RESERVED_PREFIX, Store};

/// A backend under test: a fresh, empty store, what it promises beyond the common ones, and
/// a look at what it keeps hidden.
struct Fixture {
    store: Box<dyn Store>,
    /// Whether a kept partial of a resumable upload is still there for the next attempt
    /// (false: the store starts every upload over, as `Store::create_resumable`'s default).
    keeps_partials: bool,
    /// The backend's own hidden files (temporaries, partials) that exist now; after every
    /// promise there must be none.
    leftovers: Box<dyn Fn() -> Vec<String>>,
    /// What must live as long as the store (a temporary directory).
    _guard: Box<dyn Any>,
}

impl Fixture {
    /// A backend that keeps nothing outside what its [`Store`] methods show.
    fn plain(store: impl Store + 'static) -> Fixture {
        Fixture {
            store: Box::new(store),
            keeps_partials: false,
            leftovers: Box::new(Vec::new),
            _guard: Box::new(()),
        }
    }

    fn assert_clean(&self) {
        assert_eq!(
            (self.leftovers)(),
            Vec::<String>::new(),
            "hidden files left"
        );
    }
}

fn dir_store() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_owned();
    Fixture {
        store: Box::new(DirStore::open(&root).expect("open")),
        keeps_partials: true,
        leftovers: Box::new(move || names_with(&root, RESERVED_PREFIX)),
        _guard: Box::new(dir),
    }
}

fn mem_store() -> Fixture {
    Fixture::plain(MemStore::new())
}

/// A fresh bucket on the test process's SeaweedFS; its hidden keys (stage markers) and
/// multipart uploads in progress are the leftovers.
#[cfg(feature = "s3")]
fn s3_store() -> Fixture {
    use ft_testutil::seaweed::Seaweed;
    use ftlib::store::{S3Config, S3Store};
    let seaweed = Seaweed::shared();
    let bucket = seaweed.bucket();
    let mut config = S3Config::from_url(&format!("s3://{bucket}/served")).expect("url");
    config.settings = seaweed.env();
    let store = S3Store::open(config).expect("open the bucket");
    Fixture {
        store: Box::new(store),
        keeps_partials: false,
        leftovers: Box::new(move || {
            let mut left = seaweed.uploads_in_progress(&bucket);
            left.extend(seaweed.hidden_keys(&bucket, "served/.ft-stage"));
            left.extend(seaweed.hidden_keys(&bucket, "served/.ft-claim"));
            left
        }),
        _guard: Box::new(()),
    }
}

/// One test per promise for the backend made by `$fixture`.
macro_rules! store_suite {
    ($fixture:ident) => {
        mod $fixture {
            use super::promises;

            fn run(promise: fn(&dyn ftlib::store::Store)) {
                run_on_fixture(|fixture| promise(fixture.store.as_ref()));
            }

            /// For a promise that depends on what the backend declares in its fixture.
            fn run_on_fixture(promise: impl FnOnce(&super::Fixture)) {
                let fixture = super::$fixture();
                promise(&fixture);
                fixture.assert_clean();
            }

            #[test]
            fn an_existing_name_is_refused_early() {
                run(promises::an_existing_name_is_refused_early);
            }

            #[test]
            fn a_commit_racing_a_committed_file_fails_and_the_first_stays() {
                run(promises::a_commit_racing_a_committed_file_fails_and_the_first_stays);
            }

            #[test]
            fn a_pending_file_is_invisible_until_committed() {
                run(promises::a_pending_file_is_invisible_until_committed);
            }

            #[test]
            fn a_dropped_pending_file_leaves_nothing_and_the_name_free() {
                run(promises::a_dropped_pending_file_leaves_nothing_and_the_name_free);
            }

            #[test]
            fn a_committed_file_lists_and_opens_with_exactly_its_bytes() {
                run(promises::a_committed_file_lists_and_opens_with_exactly_its_bytes);
            }

            #[test]
            fn open_at_an_offset_reads_from_there() {
                run(promises::open_at_an_offset_reads_from_there);
            }

            #[test]
            fn racing_creators_have_exactly_one_intact_winner() {
                run(promises::racing_creators_have_exactly_one_intact_winner);
            }

            #[test]
            fn group_commit_answers_in_order_and_the_first_of_a_name_wins() {
                run(promises::group_commit_answers_in_order_and_the_first_of_a_name_wins);
            }

            #[test]
            fn a_released_pending_file_still_commits_exactly() {
                run(promises::a_released_pending_file_still_commits_exactly);
            }

            #[test]
            fn a_resumed_upload_continues_only_its_own_bytes() {
                run_on_fixture(promises::a_resumed_upload_continues_only_its_own_bytes);
            }

            #[test]
            fn cleanup_never_removes_a_committed_or_pending_file() {
                run(promises::cleanup_never_removes_a_committed_or_pending_file);
            }

            #[test]
            fn a_digest_is_always_the_files_own() {
                run(promises::a_digest_is_always_the_files_own);
            }
        }
    };
}

store_suite!(dir_store);
store_suite!(mem_store);
#[cfg(feature = "s3")]
store_suite!(s3_store);

mod promises {
    use super::*;

    /// Sizes on both sides of what a backend may hold in memory (DirStore: 256 KiB).
    const SIZES: [usize; 5] = [0, 1, 4096, 70_000, 300_000];

    pub fn name(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    /// Distinct bytes for each `seed`.
    pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    pub fn put(store: &dyn Store, file: &str, data: &[u8]) {
        let mut pending = store
            .create(&name(file), data.len() as u64)
            .expect("create");
        pending.write_all(data).expect("write");
        pending.commit().expect("commit");
    }

    /// The whole file as a reader gives it, and the size `open` announced.
    pub fn read(store: &dyn Store, file: &str) -> (Vec<u8>, u64) {
        let mut source = store.open(&name(file), 0).expect("open");
        let mut got = Vec::new();
        source.reader.read_to_end(&mut got).expect("read");
        (got, source.size)
    }

    /// `(name, kind, size)` of every listed entry, sorted.
    pub fn listing(store: &dyn Store) -> Vec<(String, EntryKind, u64)> {
        let mut entries: Vec<_> = store
            .list(None, false)
            .expect("list")
            .map(|e| e.expect("entry"))
            .map(|e| (e.name, e.kind, e.size))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    fn kind<T>(result: ftlib::Result<T>) -> Option<ErrorKind> {
        result.err().map(|e| e.kind())
    }

    pub fn an_existing_name_is_refused_early(store: &dyn Store) {
        put(store, "a", b"keep");
        assert_eq!(
            kind(store.create(&name("a"), 3)),
            Some(ErrorKind::AlreadyExists)
        );
        assert_eq!(
            kind(store.create_resumable(&name("a"), 3, "abcd")),
            Some(ErrorKind::AlreadyExists)
        );
        assert_eq!(read(store, "a"), (b"keep".to_vec(), 4));
    }

    pub fn a_commit_racing_a_committed_file_fails_and_the_first_stays(store: &dyn Store) {
        let mut first = store.create(&name("x"), 5).expect("create");
        let mut second = store.create(&name("x"), 6).expect("create");
        first.write_all(b"first").expect("write");
        second.write_all(b"second").expect("write");
        first.commit().expect("the first commit wins");
        assert_eq!(kind(second.commit()), Some(ErrorKind::AlreadyExists));
        assert_eq!(read(store, "x"), (b"first".to_vec(), 5));
        assert_eq!(listing(store), [("x".to_owned(), EntryKind::File, 5)]);
    }

    pub fn a_pending_file_is_invisible_until_committed(store: &dyn Store) {
        for (i, len) in SIZES.into_iter().enumerate() {
            let file = format!("f{i}");
            let data = bytes(len, 1);
            let mut pending = store.create(&name(&file), len as u64).expect("create");
            pending.write_all(&data).expect("write");
            pending.flush().expect("flush");
            assert!(
                !listing(store).iter().any(|e| e.0 == file),
                "{file} listed before its commit"
            );
            assert_eq!(
                kind(store.open(&name(&file), 0)),
                Some(ErrorKind::NotFound),
                "{file} opened before its commit"
            );
            pending.commit().expect("commit");
            assert_eq!(read(store, &file), (data, len as u64));
        }
    }

    pub fn a_dropped_pending_file_leaves_nothing_and_the_name_free(store: &dyn Store) {
        for len in SIZES {
            let mut pending = store.create(&name("gone"), len as u64).expect("create");
            pending.write_all(&bytes(len, 2)).expect("write");
            drop(pending);
            assert_eq!(listing(store), []);
            assert_eq!(
                kind(store.open(&name("gone"), 0)),
                Some(ErrorKind::NotFound)
            );
        }
        // Neither the data nor the name was kept: a new upload of it succeeds.
        put(store, "gone", b"back");
        assert_eq!(read(store, "gone"), (b"back".to_vec(), 4));
    }

    pub fn a_committed_file_lists_and_opens_with_exactly_its_bytes(store: &dyn Store) {
        let mut expected = Vec::new();
        for (i, len) in SIZES.into_iter().enumerate() {
            let file = format!("file {i}.bin");
            let data = bytes(len, i as u8);
            put(store, &file, &data);
            assert_eq!(read(store, &file), (data, len as u64));
            expected.push((file, EntryKind::File, len as u64));
        }
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(listing(store), expected);
    }

    pub fn open_at_an_offset_reads_from_there(store: &dyn Store) {
        let data = bytes(70_000, 3);
        put(store, "f", &data);
        for offset in [0, 1, 4096, 69_999, 70_000, 80_000] {
            let mut source = store.open(&name("f"), offset).expect("open");
            let mut got = Vec::new();
            source.reader.read_to_end(&mut got).expect("read");
            let from = usize::try_from(offset).expect("small").min(data.len());
            assert_eq!(source.size, 70_000, "offset {offset}");
            assert!(got == data[from..], "offset {offset}: wrong bytes");
        }
    }

    pub fn racing_creators_have_exactly_one_intact_winner(store: &dyn Store) {
        const RACERS: u8 = 8;
        const LEN: usize = 100_000;
        let start = Barrier::new(usize::from(RACERS));
        let results: Vec<Option<ErrorKind>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..RACERS)
                .map(|seed| {
                    let start = &start;
                    scope.spawn(move || {
                        let created = store.create(&name("prize"), LEN as u64);
                        start.wait();
                        let mut pending = created?;
                        pending
                            .write_all(&bytes(LEN, seed))
                            .map_err(|e| ftlib::Error::io("writing", e))?;
                        pending.commit()
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| kind(r.join().expect("racer panicked")))
                .collect()
        });
        let winners: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].is_none())
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(
            results
                .iter()
                .flatten()
                .all(|&k| k == ErrorKind::AlreadyExists),
            "{results:?}"
        );
        let winner = u8::try_from(winners[0]).expect("few racers");
        let (got, size) = read(store, "prize");
        assert_eq!(size, LEN as u64);
        assert!(
            got == bytes(LEN, winner),
            "the winner's bytes are not intact"
        );
        assert_eq!(listing(store).len(), 1);
    }

    pub fn group_commit_answers_in_order_and_the_first_of_a_name_wins(store: &dyn Store) {
        let names = ["a", "b", "a", "old", "c", "b"];
        let mut files: Vec<Box<dyn PendingFile>> = Vec::new();
        for (k, n) in names.iter().enumerate() {
            let mut pending = store.create(&name(n), 2).expect("create");
            pending
                .write_all(format!("{n}{k}").as_bytes())
                .expect("write");
            files.push(pending);
        }
        // Taken after its pending file was made: that one's commit in the group must fail.
        put(store, "old", b"old");
        let results: Vec<Option<ErrorKind>> =
            store.commit_group(files).into_iter().map(kind).collect();
        let taken = Some(ErrorKind::AlreadyExists);
        assert_eq!(results, [None, None, taken, taken, None, taken]);
        for (file, data) in [("a", "a0"), ("b", "b1"), ("c", "c4"), ("old", "old")] {
            let (got, _) = read(store, file);
            assert_eq!(String::from_utf8_lossy(&got), data, "{file}");
        }
        assert_eq!(listing(store).len(), 4);
    }

    /// `digest` answers the XXH3-128 of the bytes, whether the file was told its digest
    /// (alone, or in a group, released while it waited) or not; a missing name or a
    /// directory is `not-found`.
    pub fn a_digest_is_always_the_files_own(store: &dyn Store) {
        for (i, len) in SIZES.into_iter().enumerate() {
            let data = bytes(len, 9);
            let told = format!("told{i}");
            let mut pending = store.create(&name(&told), len as u64).expect("create");
            pending.write_all(&data).expect("write");
            pending.set_digest(ft_testutil::digest(&data));
            pending.commit().expect("commit");
            put(store, &format!("untold{i}"), &data);
            let grouped = format!("grouped{i}");
            let mut pending = store.create(&name(&grouped), len as u64).expect("create");
            pending.write_all(&data).expect("write");
            pending.set_digest(ft_testutil::digest(&data));
            pending.release();
            let results = store.commit_group(vec![pending]);
            assert!(results.iter().all(Result::is_ok), "{grouped}");
            for file in [told, format!("untold{i}"), grouped] {
                let got = store.digest(&name(&file)).expect("digest");
                assert_eq!(got, ft_testutil::digest(&data), "{file}");
            }
        }
        assert_eq!(
            kind(store.digest(&name("absent"))),
            Some(ErrorKind::NotFound)
        );
    }

    pub fn a_released_pending_file_still_commits_exactly(store: &dyn Store) {
        for (i, len) in SIZES.into_iter().enumerate() {
            let file = format!("r{i}");
            let data = bytes(len, 5);
            let mut pending = store.create(&name(&file), len as u64).expect("create");
            pending.write_all(&data).expect("write");
            pending.release();
            pending.commit().expect("commit");
            assert_eq!(read(store, &file), (data, len as u64));
        }
    }

    /// Kept bytes are only ever continued by the upload they came from (same name, same
    /// key): another key starts from nothing, never spliced onto them.
    pub fn a_resumed_upload_continues_only_its_own_bytes(fixture: &Fixture) {
        let store = fixture.store.as_ref();
        // Keys are hex digits, as ft's digests are.
        let (key_a, key_b) = ("aaaa", "bbbb");
        let data = bytes(300_000, 6);
        let size = data.len() as u64;
        let first = store
            .create_resumable(&name("big"), size, key_a)
            .expect("create");
        assert_eq!(first.offset, 0, "a new key holds nothing");
        let mut upload = first.upload;
        upload.write_all(&data[..100_000]).expect("write");
        upload.keep();
        assert_eq!(listing(store), [], "a kept partial is listed");
        assert_eq!(kind(store.open(&name("big"), 0)), Some(ErrorKind::NotFound));

        // Another source of the same name gets nothing of it.
        let mut other = store
            .create_resumable(&name("big"), size, key_b)
            .expect("another key");
        assert_eq!(other.offset, 0, "another key resumed the kept bytes");
        let mut held = Vec::new();
        other.existing.read_to_end(&mut held).expect("read");
        assert!(held.is_empty(), "another key sees the kept bytes");
        drop(other);

        // The same source continues after exactly its kept bytes, where the store keeps them.
        let mut resumed = store
            .create_resumable(&name("big"), size, key_a)
            .expect("resume");
        let kept = if fixture.keeps_partials { 100_000 } else { 0 };
        assert_eq!(resumed.offset, kept as u64, "resumed at the wrong offset");
        let mut held = Vec::new();
        resumed.existing.read_to_end(&mut held).expect("read");
        assert!(held == data[..kept], "the kept bytes differ");
        resumed.upload.write_all(&data[kept..]).expect("write");
        resumed.upload.commit().expect("commit");
        assert_eq!(read(store, "big"), (data, size));
    }

    pub fn cleanup_never_removes_a_committed_or_pending_file(store: &dyn Store) {
        put(store, "stays", b"here");
        let data = bytes(300_000, 7);
        let mut pending = store.create(&name("pending"), 300_000).expect("create");
        pending.write_all(&data).expect("write");
        store.cleanup().expect("cleanup");
        pending.commit().expect("a pending file survives a cleanup");
        assert_eq!(read(store, "stays"), (b"here".to_vec(), 4));
        assert_eq!(read(store, "pending"), (data, 300_000));
    }
}

/// The promises of directory trees (issue 10), one test each per backend, named
/// `<backend>_trees::<promise>`.
macro_rules! tree_suite {
    ($module:ident, $fixture:ident) => {
        mod $module {
            use super::tree_promises;

            fn run(promise: fn(&dyn ftlib::store::Store)) {
                let fixture = super::$fixture();
                promise(fixture.store.as_ref());
                fixture.assert_clean();
            }

            #[test]
            fn a_nested_name_makes_its_parents_and_lists_relative_to_its_directory() {
                run(tree_promises::a_nested_name_makes_its_parents_and_lists_relative_to_its_directory);
            }

            #[test]
            fn make_dir_says_whether_it_made_the_directory() {
                run(tree_promises::make_dir_says_whether_it_made_the_directory);
            }

            #[test]
            fn a_file_never_replaces_a_directory_nor_a_directory_a_file_early() {
                run(tree_promises::a_file_never_replaces_a_directory_nor_a_directory_a_file_early);
            }

            #[test]
            fn a_directory_made_before_a_commit_keeps_its_name() {
                run(tree_promises::a_directory_made_before_a_commit_keeps_its_name);
            }

            #[test]
            fn a_file_committed_where_a_pending_file_needs_a_directory_wins_alone() {
                run(tree_promises::a_file_committed_where_a_pending_file_needs_a_directory_wins_alone);
            }

            #[test]
            fn stat_describes_files_and_directories() {
                run(tree_promises::stat_describes_files_and_directories);
            }

            #[test]
            fn attributes_given_to_a_file_are_kept() {
                run(tree_promises::attributes_given_to_a_file_are_kept);
            }

            #[test]
            fn a_dropped_pending_file_in_new_directories_leaves_nothing() {
                run(tree_promises::a_dropped_pending_file_in_new_directories_leaves_nothing);
            }
        }
    };
}

tree_suite!(dir_store_trees, dir_store);
tree_suite!(mem_store_trees, mem_store);
#[cfg(feature = "s3")]
tree_suite!(s3_store_trees, s3_store);

mod tree_promises {
    use std::io::Read;

    use ftlib::protocol::Attrs;

    use super::promises::{bytes, name, put, read};
    use super::*;

    fn kind<T>(result: ftlib::Result<T>) -> Option<ErrorKind> {
        result.err().map(|e| e.kind())
    }

    /// `(name, kind, size)` of every entry `list(dir, recursive)` gives, sorted.
    fn listed(
        store: &dyn Store,
        dir: Option<&str>,
        recursive: bool,
    ) -> Vec<(String, EntryKind, u64)> {
        let dir = dir.map(name);
        let mut entries: Vec<_> = store
            .list(dir.as_ref(), recursive)
            .expect("list")
            .map(|e| e.expect("entry"))
            .map(|e| (e.name, e.kind, e.size))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    fn row(name: &str, kind: EntryKind, size: u64) -> (String, EntryKind, u64) {
        (name.to_owned(), kind, size)
    }

    use EntryKind::{Dir, File};

    pub fn a_nested_name_makes_its_parents_and_lists_relative_to_its_directory(store: &dyn Store) {
        put(store, "a/b/c", b"abc");
        put(store, "top", b"t");
        assert_eq!(read(store, "a/b/c"), (b"abc".to_vec(), 3));
        assert_eq!(
            listed(store, None, false),
            [row("a", Dir, 0), row("top", File, 1)]
        );
        assert_eq!(
            listed(store, Some("a"), true),
            [row("b", Dir, 0), row("b/c", File, 3)]
        );
        assert_eq!(listed(store, Some("a"), false), [row("b", Dir, 0)]);
        assert_eq!(listed(store, Some("a/b"), true), [row("c", File, 3)]);
        assert_eq!(
            listed(store, None, true),
            [
                row("a", Dir, 0),
                row("a/b", Dir, 0),
                row("a/b/c", File, 3),
                row("top", File, 1)
            ]
        );
        // Only directories list and only files open.
        assert_eq!(
            kind(store.list(Some(&name("a/b/c")), false)),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            kind(store.list(Some(&name("top")), true)),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            kind(store.list(Some(&name("missing")), true)),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(kind(store.open(&name("a"), 0)), Some(ErrorKind::NotFound));
        assert_eq!(kind(store.open(&name("a/b"), 0)), Some(ErrorKind::NotFound));
    }

    pub fn make_dir_says_whether_it_made_the_directory(store: &dyn Store) {
        assert!(store.make_dir(&name("x/y/z")).expect("make x/y/z"), "made");
        for dir in ["x/y/z", "x/y", "x"] {
            assert!(
                !store.make_dir(&name(dir)).expect("make again"),
                "{dir} existed"
            );
        }
        // Empty directories are listed.
        assert_eq!(
            listed(store, None, true),
            [row("x", Dir, 0), row("x/y", Dir, 0), row("x/y/z", Dir, 0)]
        );
        assert_eq!(listed(store, Some("x/y/z"), true), []);
        put(store, "x/y/z/f", b"f");
        assert!(!store.make_dir(&name("x/y/z")).expect("make again"));
        assert_eq!(read(store, "x/y/z/f"), (b"f".to_vec(), 1));
    }

    pub fn a_file_never_replaces_a_directory_nor_a_directory_a_file_early(store: &dyn Store) {
        put(store, "f", b"file");
        assert!(store.make_dir(&name("d")).expect("mkdir"));
        put(store, "d/inner", b"inner");
        let taken = Some(ErrorKind::AlreadyExists);
        for file in ["d", "f/x", "f/x/y"] {
            assert_eq!(kind(store.create(&name(file), 1)), taken, "create {file}");
            assert_eq!(
                kind(store.create_resumable(&name(file), 1, "abcd")),
                taken,
                "create_resumable {file}"
            );
        }
        for dir in ["f", "f/x", "d/inner", "d/inner/x"] {
            assert_eq!(kind(store.make_dir(&name(dir))), taken, "make_dir {dir}");
        }
        assert_eq!(read(store, "f"), (b"file".to_vec(), 4));
        assert_eq!(read(store, "d/inner"), (b"inner".to_vec(), 5));
        assert_eq!(
            listed(store, None, true),
            [row("d", Dir, 0), row("d/inner", File, 5), row("f", File, 4)]
        );
    }

    pub fn a_directory_made_before_a_commit_keeps_its_name(store: &dyn Store) {
        // Sizes on both sides of what a backend may hold in memory.
        for len in [0, 4, 300_000] {
            let dir = format!("p{len}");
            let mut pending = store.create(&name(&dir), len as u64).expect("create");
            pending.write_all(&bytes(len, 9)).expect("write");
            assert!(store.make_dir(&name(&dir)).expect("mkdir while pending"));
            assert_eq!(
                kind(pending.commit()),
                Some(ErrorKind::AlreadyExists),
                "{len} bytes"
            );
            assert_eq!(store.stat(&name(&dir)).expect("stat").kind, Dir);
            assert_eq!(listed(store, Some(&dir), true), []);
        }
    }

    pub fn a_file_committed_where_a_pending_file_needs_a_directory_wins_alone(store: &dyn Store) {
        let mut pending = store.create(&name("s/t"), 5).expect("create s/t");
        pending.write_all(b"inner").expect("write");
        // A file `s` now, either refused (the store made the directory already) or
        // committed, in which case `s/t` cannot be.
        let file = store.create(&name("s"), 4).and_then(|mut file| {
            file.write_all(b"file")
                .map_err(|e| ftlib::Error::io("writing", e))?;
            file.commit()
        });
        let nested = pending.commit();
        match (kind(file), kind(nested)) {
            (Some(ErrorKind::AlreadyExists), None) => {
                assert_eq!(store.stat(&name("s")).expect("stat").kind, Dir);
                assert_eq!(read(store, "s/t"), (b"inner".to_vec(), 5));
            }
            (None, Some(ErrorKind::AlreadyExists)) => {
                assert_eq!(read(store, "s"), (b"file".to_vec(), 4));
                assert_eq!(kind(store.stat(&name("s/t"))), Some(ErrorKind::NotFound));
            }
            other => panic!("s and s/t: {other:?}"),
        }
    }

    pub fn stat_describes_files_and_directories(store: &dyn Store) {
        put(store, "dir/file", &bytes(1000, 4));
        let file = store.stat(&name("dir/file")).expect("stat file");
        assert_eq!(
            (file.name.as_str(), file.kind, file.size, file.executable),
            ("dir/file", File, 1000, false)
        );
        let dir = store.stat(&name("dir")).expect("stat dir");
        assert_eq!(
            (dir.name.as_str(), dir.kind, dir.size, dir.executable),
            ("dir", Dir, 0, false)
        );
        for missing in ["nothing", "dir/nothing", "dir/file/below"] {
            assert_eq!(
                kind(store.stat(&name(missing))),
                Some(ErrorKind::NotFound),
                "{missing}"
            );
        }
    }

    pub fn attributes_given_to_a_file_are_kept(store: &dyn Store) {
        let attrs = Attrs {
            modified: 1_000_000_000,
            nanos: 123_456_789,
            executable: true,
        };
        for (file, len) in [("tools/small", 3), ("tools/large", 300_000)] {
            let data = bytes(len, 5);
            let mut pending = store.create(&name(file), len as u64).expect("create");
            pending.set_attrs(attrs);
            pending.write_all(&data).expect("write");
            pending.commit().expect("commit");
            let entry = store.stat(&name(file)).expect("stat");
            assert_eq!(
                (entry.modified, entry.executable),
                (attrs.modified, true),
                "{file}"
            );
            let mut source = store.open(&name(file), 0).expect("open");
            assert_eq!(
                (source.modified, source.nanos, source.executable),
                (attrs.modified, attrs.nanos, true),
                "{file}"
            );
            let mut got = Vec::new();
            source.reader.read_to_end(&mut got).expect("read");
            assert!(got == data, "{file}: other bytes");
        }
        put(store, "tools/plain", b"p");
        assert!(!store.stat(&name("tools/plain")).expect("stat").executable);
    }

    pub fn a_dropped_pending_file_in_new_directories_leaves_nothing(store: &dyn Store) {
        for len in [1, 300_000] {
            let mut pending = store
                .create(&name("new/dirs/f"), len as u64)
                .expect("create");
            pending.write_all(&bytes(len, 6)).expect("write");
            drop(pending);
            assert_eq!(listed(store, None, true), [], "{len} bytes");
        }
    }
}
