//! The server killed (SIGKILL) in the middle of an upload, then restarted on the same
//! directory: no partial file under the final name, no temporary file, the name free; and a
//! resumable upload's partial survives the crash so the retry sends only the rest.

#![cfg(unix)]

mod util;

use std::fs;
use std::net::TcpStream;
use std::time::Duration;

use ftlib::connection::Connection;
use ftlib::protocol::{Body, Hello, How, Request, Response};
use util::{DEADLINE, ServerProcess, client, noise, partial_len, partials, temp_files, wait_until};

/// A raw connection past the handshake, to stop an upload half-way on purpose.
fn raw(server: &ServerProcess) -> Connection {
    let stream = TcpStream::connect(server.addr).expect("connect");
    let mut conn = Connection::tcp(stream, Duration::from_secs(10)).expect("conn");
    assert!(matches!(
        conn.recv_hello::<Response>(),
        Ok(Response::Hello(_))
    ));
    conn.send(&Request::Hello(Hello::ours())).expect("hello");
    conn
}

#[test]
fn a_server_killed_mid_upload_leaves_nothing_after_restart() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(root.path(), &["--plain"]);
    let body = noise(1 << 20, 3);
    let mut conn = raw(&server);
    conn.send(&Request::Put {
        name: "victim.bin".into(),
        size: body.len() as u64,
    })
    .expect("put");
    assert_eq!(
        conn.expect::<Response>("ready").expect("ready"),
        Response::Ready
    );
    conn.send(&Body::Chunk(&body[..256 * 1024])).expect("chunk");
    wait_until("the temporary file", || !temp_files(root.path()).is_empty());

    server.signal(libc::SIGKILL);
    server.wait_exit(DEADLINE);
    // The crash left its temporary file, and nothing under the final name.
    assert_eq!(temp_files(root.path()).len(), 1);
    assert!(!root.path().join("victim.bin").exists());

    let restarted = ServerProcess::start(root.path(), &["--plain"]);
    assert!(temp_files(root.path()).is_empty());
    let mut client = client(&restarted);
    assert!(client.list().expect("list").is_empty());
    client
        .put_reader(&body[..], body.len() as u64, "victim.bin", |_| {})
        .expect("the name is free");
    assert_eq!(
        fs::read(root.path().join("victim.bin")).expect("read"),
        body
    );
}

#[test]
fn a_resumable_upload_survives_a_server_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    let local = tempfile::tempdir().expect("tempdir");
    let body = noise(3 << 20, 3);
    let source = local.path().join("big.bin");
    fs::write(&source, &body).expect("write");
    // The tag ftlib's client sends for this file (v5), so that its resume below finds the
    // partial this raw upload leaves.
    let tag = ftlib::upload_tag(&fs::File::open(&source).expect("open")).expect("tag");

    let mut server = ServerProcess::start(root.path(), &["--plain"]);
    let mut conn = raw(&server);
    conn.send(&Request::Upload {
        name: "big.bin".into(),
        size: body.len() as u64,
        attrs: None,
        how: How::Tagged { tag },
    })
    .expect("put");
    assert_eq!(
        conn.expect::<Response>("ready").expect("ready"),
        Response::ReadyFrom { offset: 0 }
    );
    let sent = 1 << 20;
    for chunk in body[..sent].chunks(256 * 1024) {
        conn.send(&Body::Chunk(chunk)).expect("chunk");
    }
    let partial = || partials(root.path());
    wait_until("the partial to hold what was sent", || {
        partial_len(root.path()) == Some(sent as u64)
    });
    server.signal(libc::SIGKILL);
    server.wait_exit(DEADLINE);

    let restarted = ServerProcess::start(root.path(), &["--plain"]);
    assert_eq!(partial().len(), 1, "a young partial survives the restart");
    let mut client = client(&restarted);
    assert!(
        client.list().expect("list").is_empty(),
        "and is never listed"
    );
    let mut first = None;
    let moved = client
        .put_resumable(&source, "big.bin", |p| {
            first.get_or_insert(p.done);
        })
        .expect("resumed");
    assert_eq!(first, Some(sent as u64));
    assert_eq!(moved, (body.len() - sent) as u64);
    assert_eq!(fs::read(root.path().join("big.bin")).expect("read"), body);
    assert!(partial().is_empty());
}

/// A plain upload (`Client::put_many`, as `ftclient put` sends it) of a file of at least
/// `RESUME_FROM` bytes is resumable without being asked: the server killed mid-upload and
/// restarted, the same plain upload again sends only what the partial does not hold.
#[test]
fn a_plain_upload_of_a_large_file_survives_a_server_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    let local = tempfile::tempdir().expect("tempdir");
    let size = usize::try_from(ftlib::RESUME_FROM).expect("fits") + (8 << 20);
    let body = noise(size, 9);
    let source = local.path().join("big.bin");
    fs::write(&source, &body).expect("write");
    let files = [(source, "big.bin".to_owned())];

    let mut server = ServerProcess::start(root.path(), &["--plain"]);
    let mut first = None;
    client(&server).put_many(
        &files,
        |_, p| {
            // Killed once the server has written a good part of it.
            if p.done >= 4 << 20 && first.is_none() {
                wait_until("the partial to fill", || {
                    partial_len(root.path()).is_some_and(|len| len >= 2 << 20)
                });
                server.signal(libc::SIGKILL);
                first = Some(p.done);
            }
        },
        |_, result| {
            assert!(result.is_err(), "the upload was cut: {result:?}");
        },
    );
    assert!(first.is_some(), "the server was killed mid-upload");
    server.wait_exit(DEADLINE);
    assert!(!root.path().join("big.bin").exists());

    let restarted = ServerProcess::start(root.path(), &["--plain"]);
    let kept = partial_len(root.path()).unwrap_or(0);
    assert!(kept >= 2 << 20, "the partial survived: {kept}");
    let mut moved = None;
    client(&restarted).put_many(
        &files,
        |_, _| {},
        |_, result| {
            moved = Some(result.expect("resumed"));
        },
    );
    assert_eq!(moved, Some(size as u64 - kept), "only the rest moved");
    assert_eq!(fs::read(root.path().join("big.bin")).expect("read"), body);
    assert!(partials(root.path()).is_empty());
}

/// The other way: a plain download (`Client::get_many`, as `ftclient get` fetches) of a
/// file of at least `RESUME_FROM` bytes goes into a hidden partial from its first byte; the
/// server killed mid-download and restarted, the same plain download continues it and
/// moves only the rest.
#[test]
fn a_plain_download_of_a_large_file_survives_a_server_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    let local = tempfile::tempdir().expect("tempdir");
    let size = usize::try_from(ftlib::RESUME_FROM).expect("fits") + (8 << 20);
    let body = noise(size, 11);
    fs::write(root.path().join("big.bin"), &body).expect("write");
    let here = ftlib::store::DirStore::open(local.path()).expect("dir");
    let names = ["big.bin".to_owned()];

    let mut server = ServerProcess::start(root.path(), &["--plain"]);
    let mut killed = false;
    client(&server).get_many(
        &names,
        &here,
        false,
        |_, p| {
            if p.done >= 4 << 20 && !killed {
                server.signal(libc::SIGKILL);
                killed = true;
            }
        },
        |_, result| {
            assert!(result.is_err(), "the download was cut: {result:?}");
        },
    );
    assert!(killed, "the server was killed mid-download");
    server.wait_exit(DEADLINE);
    assert!(!local.path().join("big.bin").exists());
    let kept = partial_len(local.path()).unwrap_or(0);
    assert!(kept >= 4 << 20, "the client kept what it received: {kept}");

    let restarted = ServerProcess::start(root.path(), &["--plain"]);
    let mut moved = None;
    client(&restarted).get_many(
        &names,
        &here,
        false,
        |_, _| {},
        |_, result| {
            moved = Some(result.expect("continued"));
        },
    );
    assert_eq!(moved, Some(size as u64 - kept), "only the rest moved");
    assert_eq!(fs::read(local.path().join("big.bin")).expect("read"), body);
    assert!(partials(local.path()).is_empty());
}
