//! Two real `ftserver` processes in front of one bucket of a real SeaweedFS (started by the
//! tests): what goes in through one comes out of the other; racing uploads through both have
//! exactly one winner; a large multipart file arrives whole; a server killed mid-upload
//! leaves nothing visible and its staged parts are aborted by the other; and the faults of
//! the engine (unreachable, wrong credentials, missing bucket, frozen) are clear errors.
#![cfg(feature = "s3")]

mod util;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ft_testutil::seaweed::Seaweed;
use ftlib::protocol::EntryKind;
use ftlib::{Client, DirStore, ErrorKind};
use util::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `ftserver 0 --plain --store URL EXTRA…` against `seaweed`.
fn serve(seaweed: &Seaweed, url: &str, extra: &[&str]) -> ft_testutil::ServerProcess {
    let mut args = vec!["--plain", "--store", url];
    args.extend_from_slice(extra);
    ft_testutil::ServerProcess::start_with(ftserver(), LOCALHOST, &args, &seaweed.env())
}

fn connect(server: &ft_testutil::ServerProcess) -> Client {
    let mut config = pinned(server);
    config.timeout = DEADLINE;
    Client::connect(server.addr, config).expect("connect to ftserver")
}

fn put(server: &ft_testutil::ServerProcess, name: &str, data: &[u8]) -> ftlib::Result<u64> {
    connect(server).put_reader(data, data.len() as u64, name, |_| {})
}

/// The file `name` downloaded through `server`.
fn get(server: &ft_testutil::ServerProcess, name: &str) -> ftlib::Result<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(dir.path()).expect("open");
    connect(server).get(name, &store, false, |_| {})?;
    Ok(std::fs::read(dir.path().join(name)).expect("the downloaded file"))
}

/// `(name, kind, size)` of everything, recursively, through `server`, sorted.
fn listing(server: &ft_testutil::ServerProcess) -> Vec<(String, EntryKind, u64)> {
    let mut entries = Vec::new();
    connect(server)
        .list_dir_each("", true, |e| entries.push((e.name, e.kind, e.size)))
        .expect("list");
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn what_goes_in_through_one_server_comes_out_of_the_other() {
    let seaweed = Seaweed::shared();
    let url = format!("s3://{}/team", seaweed.bucket());
    let (a, b) = (serve(seaweed, &url, &[]), serve(seaweed, &url, &[]));
    let small = noise(3_000, 1);
    put(&a, "notes.txt", &small).expect("put through a");
    put(&a, "deep/er/file.bin", &noise(70_000, 2)).expect("nested put through a");
    assert_eq!(get(&b, "notes.txt").expect("get through b"), small);
    assert_eq!(
        get(&b, "deep/er/file.bin").expect("nested get through b"),
        noise(70_000, 2)
    );
    assert_eq!(
        listing(&b),
        [
            ("deep".to_owned(), EntryKind::Dir, 0),
            ("deep/er".to_owned(), EntryKind::Dir, 0),
            ("deep/er/file.bin".to_owned(), EntryKind::File, 70_000),
            ("notes.txt".to_owned(), EntryKind::File, 3_000),
        ]
    );
    // Never overwritten, whichever server is asked.
    let again = put(&b, "notes.txt", b"other").expect_err("an existing name");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    assert_eq!(get(&a, "notes.txt").expect("get"), small);
    // Nothing outside the prefix is reached: another prefix of the bucket is another store.
    let other = serve(seaweed, &url.replace("/team", "/other"), &[]);
    assert_eq!(listing(&other), []);
    assert_eq!(
        get(&other, "notes.txt").expect_err("not there").kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn racing_uploads_through_two_servers_have_exactly_one_intact_winner() {
    let seaweed = Seaweed::shared();
    let url = format!("s3://{}", seaweed.bucket());
    let servers = [serve(seaweed, &url, &[]), serve(seaweed, &url, &[])];
    let configs = Arc::new([
        (servers[0].addr, pinned(&servers[0])),
        (servers[1].addr, pinned(&servers[1])),
    ]);
    // Small files (one conditional PutObject) and multipart ones (conditional completion).
    // Several multipart rounds, then mixed ones: SeaweedFS's own conditional completion lets
    // two racers win in about one round of five, and a put racing a completion too (see
    // ftlib/src/store/s3/stage.rs, `claim`).
    let multipart = 8 * 1024 * 1024 + 1_000;
    for (round, size) in [
        (0u64, 40_000usize),
        (1, multipart),
        (2, multipart),
        (3, multipart),
    ]
    .into_iter()
    .chain((4..8).map(|r| (r, multipart)))
    {
        let name = format!("race-{round}");
        let racers = 4;
        let barrier = Arc::new(Barrier::new(racers));
        let handles: Vec<_> = (0..racers)
            .map(|i| {
                let (configs, barrier, name) =
                    (Arc::clone(&configs), Arc::clone(&barrier), name.clone());
                thread::spawn(move || {
                    // From round 4 on, small and multipart racers for one name.
                    let size = if round >= 4 && i % 2 == 0 {
                        40_000
                    } else {
                        size
                    };
                    let data = noise(size, round * 10 + i as u64);
                    let (addr, config) = configs[i % 2].clone();
                    let mut client = Client::connect(addr, config).expect("connect");
                    barrier.wait();
                    let result = client.put_reader(&data[..], data.len() as u64, &name, |_| {});
                    (data, result.map_err(|e| e.kind()))
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("racer"))
            .collect();
        let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "{size} bytes: {results:?}",
            results = results.iter().map(|(_, r)| *r).collect::<Vec<_>>()
        );
        for (_, result) in &results {
            if let Err(kind) = result {
                assert_eq!(*kind, ErrorKind::AlreadyExists);
            }
        }
        let stored = get(&servers[1], &name).expect("the winner");
        assert!(
            stored == winners[0].0,
            "the stored bytes are the winner's, whole"
        );
    }
    assert_eq!(seaweed.uploads_in_progress(&url[5..]), Vec::<String>::new());
    assert_eq!(
        seaweed.hidden_keys(&url[5..], ".ft-claim"),
        Vec::<String>::new()
    );
}

#[test]
fn a_large_file_goes_up_in_parts_and_arrives_whole() {
    let seaweed = Seaweed::shared();
    let bucket = seaweed.bucket();
    let url = format!("s3://{bucket}/big");
    let (a, b) = (serve(seaweed, &url, &[]), serve(seaweed, &url, &[]));
    // Three full parts and a short last one.
    let data = noise(3 * 8 * 1024 * 1024 + 12_345, 7);
    put(&a, "large.bin", &data).expect("put");
    assert!(get(&b, "large.bin").expect("get") == data, "the same bytes");
    let mut client = connect(&b);
    let entry = client.stat("large.bin", false).expect("stat").0;
    assert_eq!(entry.size, data.len() as u64);
    assert_eq!(seaweed.uploads_in_progress(&bucket), Vec::<String>::new());
    assert_eq!(
        seaweed.hidden_keys(&bucket, "big/.ft-stage"),
        Vec::<String>::new()
    );
}

#[test]
fn a_server_killed_mid_upload_leaves_nothing_visible_and_its_parts_are_aborted() {
    let seaweed = Seaweed::shared();
    let bucket = seaweed.bucket();
    let url = format!("s3://{bucket}");
    let expiry = ["--staged-expiry", "2"];
    let mut a = serve(seaweed, &url, &expiry);
    let b = serve(seaweed, &url, &expiry);
    let addr = a.addr;
    let config = pinned(&a);
    // A client that sends the first parts, then stalls: its upload is staged, not complete.
    let sender = thread::spawn(move || {
        let mut client = Client::connect(addr, config).expect("connect");
        let size = 64 * 1024 * 1024u64;
        let data = noise(20 * 1024 * 1024, 3);
        let stalling = std::io::Read::chain(&data[..], Stalled);
        client.put_reader(stalling, size, "cut.bin", |_| {})
    });
    wait_until("a staged upload", || {
        !seaweed.hidden_keys(&bucket, ".ft-stage").is_empty()
    });
    wait_until("its parts", || {
        !seaweed.uploads_in_progress(&bucket).is_empty()
    });
    a.kill();
    let _ = sender.join();
    assert_eq!(listing(&b), [], "nothing visible");
    assert_eq!(
        get(&b, "cut.bin").expect_err("not there").kind(),
        ErrorKind::NotFound
    );
    // The other server's sweep finds the stale marker and aborts the upload.
    let started = Instant::now();
    while !(seaweed.uploads_in_progress(&bucket).is_empty()
        && seaweed.hidden_keys(&bucket, ".ft-stage").is_empty())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "staged parts still there: {:?}",
            seaweed.uploads_in_progress(&bucket)
        );
        thread::sleep(Duration::from_millis(200));
    }
    // And the name is free.
    put(&b, "cut.bin", b"whole").expect("put after the sweep");
}

/// A reader that never ends: a client stuck in the middle of its upload.
struct Stalled;

impl std::io::Read for Stalled {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        thread::sleep(Duration::from_secs(60));
        Err(std::io::Error::other("stalled"))
    }
}

/// `ftserver --store URL` with `env`, expected to fail at start: its stderr.
fn refused_start(url: &str, env: &[(String, String)]) -> String {
    let mut command = std::process::Command::new(ftserver());
    let home = tempfile::tempdir().expect("home");
    isolate(&mut command, home.path());
    command
        .args(["0", "--plain", "--bind", "127.0.0.1", "--store", url])
        .args(["--store-timeout", "3"])
        .envs(env.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let out = ft_testutil::run(command);
    assert_ne!(out.code, Some(0), "it must not start: {}", out.stdout);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    assert!(!out.stdout.contains("up and running"), "{}", out.stdout);
    out.stderr
}

#[test]
fn a_bucket_that_cannot_be_used_is_a_clear_error_at_start() {
    let seaweed = Seaweed::shared();
    let bucket = seaweed.bucket();
    let with = |key: &str, value: &str| {
        let mut env = seaweed.env();
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), value.to_owned()));
        env
    };
    let unreachable = refused_start(
        &format!("s3://{bucket}"),
        &with("AWS_ENDPOINT", "http://127.0.0.1:9"),
    );
    assert!(
        unreachable.contains(&format!("cannot serve s3://{bucket}"))
            && unreachable.contains(&format!("bucket {bucket}")),
        "{unreachable}"
    );
    let denied = refused_start(
        &format!("s3://{bucket}"),
        &with("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    );
    assert!(
        denied.contains("refused the credentials") && denied.contains(&format!("bucket {bucket}")),
        "{denied}"
    );
    let missing = refused_start("s3://no-such-bucket-here", &seaweed.env());
    assert!(
        missing.contains("the bucket does not exist")
            && missing.contains("bucket no-such-bucket-here"),
        "{missing}"
    );
    let bad = refused_start("s3://Bad_Name", &seaweed.env());
    assert!(bad.contains("is not a bucket"), "{bad}");
}

#[test]
fn an_unresponsive_engine_fails_the_transfer_in_bounded_time_and_the_server_recovers() {
    let seaweed = Seaweed::start();
    let bucket = seaweed.bucket();
    let url = format!("s3://{bucket}");
    // A fresh engine makes its first volumes on the first write: not with a short timeout.
    put(&serve(&seaweed, &url, &[]), "before.txt", b"kept").expect("put");
    let server = serve(&seaweed, &url, &["--store-timeout", "3"]);
    seaweed.freeze(true);
    let started = Instant::now();
    let failed = put(&server, "during.txt", &noise(100_000, 4)).expect_err("engine frozen");
    let took = started.elapsed();
    let listed = connect(&server)
        .list_dir_each("", false, |_| {})
        .map(|_| ());
    seaweed.freeze(false);
    assert!(
        matches!(failed.kind(), ErrorKind::Storage | ErrorKind::Io),
        "{failed}"
    );
    assert!(failed.to_string().contains(&bucket), "{failed}");
    assert!(took < Duration::from_secs(25), "failed only after {took:?}");
    assert!(
        listed.is_err(),
        "a listing while frozen fails too, in bounded time"
    );
    // Once the engine answers again, so does the server, and nothing half-made is there.
    let mut names: Vec<_> = listing(&server).into_iter().map(|e| e.0).collect();
    names.sort();
    assert_eq!(names, ["before.txt"]);
    put(&server, "during.txt", b"now").expect("put after the engine is back");
}

#[test]
fn options_only_a_directory_uses_are_said_to_have_no_effect_with_a_bucket() {
    let mut command = std::process::Command::new(ftserver());
    let home = tempfile::tempdir().expect("home");
    isolate(&mut command, home.path());
    command
        .args([
            "0",
            "--plain",
            "--bind",
            "127.0.0.1",
            "--store",
            "s3://some-bucket",
        ])
        .args(["--partial-max-count", "5", "--store-timeout", "2"])
        .env("AWS_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s");
    let out = ft_testutil::run(command);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains("--partial-max-count has no effect with --store"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--partial-max-age"), "{}", out.stderr);
}
