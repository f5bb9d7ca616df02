//! The server against peers that lie, stall or speak garbage, and the client against
//! servers that are not ft. Every case must end in a clear error, never a panic, never a
//! file outside the served directory, never a partial file.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{RawPeer, TestServer, assert_no_temp_files, quick_config, raw_exchange};
use ft_testutil::{digest, noise};
use ftlib::codec;
use ftlib::protocol::{Body, ErrorKind, Hello, How, MAGIC, MAX_FRAME, Request, Response};
use ftlib::{Client, Error, ServerConfig};

fn expect_error(response: Response, kind: ErrorKind) -> String {
    match response {
        Response::Error { kind: got, message } if got == kind => message,
        other => panic!("expected {kind} error, got {other:?}"),
    }
}

/// One row per hostile name or path: refused as invalid by every request that takes a
/// name (put, get, and v4's upload, stat, directory listing and mkdir), and the connection
/// stays usable.
#[test]
fn hostile_names_are_refused_and_touch_nothing() {
    let outer = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::TempDir::new_in(outer.path()).expect("tempdir");
    let server = TestServer::serving(dir, ServerConfig::default());
    let long = "x".repeat(256);
    let long_path = ("d".repeat(200) + "/").repeat(21) + "f";
    let deep = "d/".repeat(64) + "f";
    let names = [
        "",
        ".",
        "..",
        "../escape",
        "a/../b",
        "a/./b",
        "/abs",
        "//abs",
        "a/",
        "a//b",
        "sub/../../escape",
        "..\\escape",
        "a\\b",
        "C:\\x",
        "nul\0byte",
        "new\nline",
        "sub/new\nline",
        "\x1b[2Jclear",
        "bell\x07",
        ".ft-tmp-1-2-3",
        "sub/.ft-part-abc",
        long.as_str(),
        long_path.as_str(),
        deep.as_str(),
    ];
    let mut peer = RawPeer::connect(server.addr);
    for name in names {
        peer.send(&Request::Put {
            name: name.into(),
            size: 3,
        });
        expect_error(peer.recv(), ErrorKind::InvalidName);
        peer.send(&Request::Get { name: name.into() });
        expect_error(peer.recv(), ErrorKind::InvalidName);
        peer.send(&Request::Upload {
            name: name.into(),
            size: 3,
            attrs: None,
            how: How::Wait,
        });
        expect_error(peer.recv(), ErrorKind::InvalidName);
        peer.send(&Request::Stat {
            name: name.into(),
            digest: true,
        });
        expect_error(peer.recv(), ErrorKind::InvalidName);
        peer.send(&Request::MakeDir { name: name.into() });
        expect_error(peer.recv(), ErrorKind::InvalidName);
        if !name.is_empty() {
            peer.send(&Request::ListDir {
                dir: name.into(),
                recursive: true,
            });
            expect_error(peer.recv(), ErrorKind::InvalidName);
        }
    }
    // Nothing appeared beside or above the served directory.
    let beside: Vec<_> = fs::read_dir(outer.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
    assert_eq!(fs::read_dir(server.root()).expect("read").count(), 0);
    peer.send(&Request::List);
    assert!(matches!(peer.recv(), Response::ListEnd { count: 0 }));
}

/// One row per malformed input after the handshake: the server answers a protocol error
/// (or just closes) and keeps serving everyone else.
#[test]
fn malformed_frames_end_only_that_connection() {
    let server = TestServer::start();
    let mut hello = Vec::new();
    codec::encode_frame(&Request::Hello(Hello::ours()), &mut hello).expect("encode");
    let frame = |payload: &[u8]| {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    };
    let mut chunk_first = Vec::new();
    codec::encode_frame(&Body::Chunk(b"data before any request"), &mut chunk_first)
        .expect("encode");
    let rows: Vec<(&str, Vec<u8>, bool)> = vec![
        ("length bomb", u32::MAX.to_be_bytes().to_vec(), true),
        (
            "just over the limit",
            ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec(),
            true,
        ),
        ("unknown request tag", frame(&[99]), true),
        ("empty payload", frame(&[]), true),
        ("trailing bytes", frame(&[3, 0]), true),
        ("invalid utf-8 name", frame(&[2, 2, 0xff, 0xfe]), true),
        (
            "string length bomb",
            frame(&[2, 253, 0, 0, 0, 0, 0, 0, 0, 1]),
            true,
        ),
        ("second hello", hello[..].to_vec(), true),
        ("chunk before a request", chunk_first, true),
        ("random bytes", noise(300, 5), true),
        // Cut short inside a frame: nobody is left to answer, the server only closes.
        (
            "truncated frame",
            {
                let mut f = 100u32.to_be_bytes().to_vec();
                f.extend_from_slice(b"only a few bytes");
                f
            },
            false,
        ),
        ("truncated header", vec![0, 0], false),
    ];
    for (what, bad, answered) in rows {
        let mut sent = hello.clone();
        sent.extend_from_slice(&bad);
        let started = Instant::now();
        let answer = raw_exchange(server.addr, &sent);
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: slow");
        if answered {
            let (response, used) = codec::decode_frame::<Response>(&answer, MAX_FRAME)
                .expect(what)
                .unwrap_or_else(|| panic!("{what}: no complete answer: {answer:?}"));
            assert_eq!(used, answer.len(), "{what}: more than one answer");
            expect_error(response, ErrorKind::Protocol);
        } else {
            assert!(answer.is_empty(), "{what}: unexpected answer {answer:?}");
        }
        // Everyone else is still served.
        server.client().list().expect(what);
    }
    let reports = server.wait_reports(12);
    assert!(
        reports
            .iter()
            .filter(|r| r
                .failure
                .as_ref()
                .is_some_and(|f| f.kind == ErrorKind::Protocol))
            .count()
            >= 10,
        "each malformed connection is reported: {reports:?}"
    );
}

#[test]
fn a_body_longer_than_declared_is_refused() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    peer.send(&Request::Put {
        name: "long".into(),
        size: 4,
    });
    assert_eq!(peer.recv(), Response::Ready);
    peer.send(&Body::Chunk(b"12345678"));
    expect_error(peer.recv(), ErrorKind::Protocol);
    assert!(peer.closed_by_server());
    assert!(!server.root().join("long").exists());
    assert_no_temp_files(server.root());
}

/// Lies that keep the connection in step: the server refuses the file and goes on.
#[test]
fn short_bodies_bad_digests_and_aborts_publish_nothing() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    let cases: Vec<(&str, Vec<Body<'static>>, ErrorKind)> = vec![
        (
            "short",
            vec![
                Body::Chunk(b"123"),
                Body::End {
                    digest: digest(b"123"),
                },
            ],
            ErrorKind::SizeMismatch,
        ),
        (
            "bad-digest",
            vec![
                Body::Chunk(b"12345678"),
                Body::End {
                    digest: digest(b"12345679"),
                },
            ],
            ErrorKind::ChecksumMismatch,
        ),
        (
            "aborted",
            vec![
                Body::Chunk(b"1234"),
                Body::Abort {
                    kind: ErrorKind::Io,
                    message: "disk went away".into(),
                },
            ],
            ErrorKind::Io,
        ),
    ];
    for (name, frames, kind) in cases {
        peer.send(&Request::Put {
            name: name.into(),
            size: 8,
        });
        assert_eq!(peer.recv(), Response::Ready, "{name}");
        for frame in &frames {
            peer.send(frame);
        }
        expect_error(peer.recv(), kind);
        assert!(!server.root().join(name).exists(), "{name} published");
    }
    assert_no_temp_files(server.root());
    // A correct body on the same connection still works.
    peer.send(&Request::Put {
        name: "good".into(),
        size: 8,
    });
    assert_eq!(peer.recv(), Response::Ready);
    peer.send(&Body::Chunk(b"12345678"));
    peer.send(&Body::End {
        digest: digest(b"12345678"),
    });
    assert_eq!(peer.recv(), Response::Stored { size: 8 });
    assert_eq!(
        fs::read(server.root().join("good")).expect("read"),
        b"12345678"
    );
}

#[test]
fn an_empty_chunk_is_a_protocol_error() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    peer.send(&Request::Put {
        name: "e".into(),
        size: 1,
    });
    assert_eq!(peer.recv(), Response::Ready);
    peer.send(&Body::Chunk(b""));
    expect_error(peer.recv(), ErrorKind::Protocol);
    assert_no_temp_files(server.root());
}

#[test]
fn an_upload_in_progress_is_never_visible() {
    let server = TestServer::start();
    let mut peer = RawPeer::connect(server.addr);
    peer.send(&Request::Put {
        name: "growing".into(),
        size: 6,
    });
    assert_eq!(peer.recv(), Response::Ready);
    peer.send(&Body::Chunk(b"abc"));
    let mut other = server.client();
    assert!(other.list().expect("list").is_empty());
    let mut sink = Vec::new();
    let err = other
        .get_into("growing", &mut sink, |_| {})
        .expect_err("not yet");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    peer.send(&Body::Chunk(b"def"));
    peer.send(&Body::End {
        digest: digest(b"abcdef"),
    });
    assert_eq!(peer.recv(), Response::Stored { size: 6 });
    other
        .get_into("growing", &mut sink, |_| {})
        .expect("now visible");
    assert_eq!(sink, b"abcdef");
}

#[test]
fn silent_and_stalled_clients_time_out_and_leave_nothing() {
    let mut config = ServerConfig::default();
    config.idle_timeout = Duration::from_millis(500);
    let server = TestServer::with_config(config);

    // Says nothing at all after connecting.
    let started = Instant::now();
    let mut silent = RawPeer::connect_silent(server.addr);
    assert!(matches!(
        silent.conn.recv_hello::<Response>(),
        Ok(Response::Hello(_))
    ));
    assert!(silent.closed_by_server());
    assert!(started.elapsed() < Duration::from_secs(5));

    // Stalls in the middle of an upload.
    let mut stalled = RawPeer::connect(server.addr);
    stalled.send(&Request::Put {
        name: "stalled".into(),
        size: 100,
    });
    assert_eq!(stalled.recv(), Response::Ready);
    stalled.send(&Body::Chunk(b"first part"));
    assert!(stalled.closed_by_server());
    assert!(!server.root().join("stalled").exists());
    assert_no_temp_files(server.root());

    // Dribbles a frame one byte at a time: cut off by the frame deadline.
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    let mut greeting = [0u8; 64];
    let _ = stream.read(&mut greeting).expect("greeting");
    let started = Instant::now();
    let mut cut_off = false;
    for _ in 0..60 {
        if stream.write_all(&[0]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cut_off, "a dribbling client was never cut off");
    assert!(started.elapsed() < Duration::from_secs(5));
    let reports = server.wait_reports(3);
    assert!(
        reports.iter().any(|r| r
            .failure
            .as_ref()
            .is_some_and(|f| f.kind == ErrorKind::Timeout)),
        "{reports:?}"
    );
}

#[test]
fn connections_beyond_the_limit_are_refused_with_busy_at_once() {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let server = TestServer::with_config(config);
    let mut first = server.client();
    let mut second = server.client();
    let started = Instant::now();
    match Client::connect(server.addr, quick_config()) {
        Err(Error::Remote { kind, message, .. }) => {
            assert_eq!(kind, ErrorKind::Busy);
            assert!(message.contains("busy"), "{message}");
        }
        other => panic!("expected busy, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // The connections in progress keep working.
    first.list().expect("first");
    second.list().expect("second");
    drop(first);
    // Its place is freed once the server notices the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(server.addr, quick_config()) {
            Ok(mut third) => {
                third.list().expect("third");
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind(), ErrorKind::Busy);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("place never freed: {e}"),
        }
    }
}

#[test]
fn hellos_with_bad_magic_or_version_are_refused() {
    let server = TestServer::start();
    let rows = [
        (
            Hello {
                magic: *b"HTTP",
                ..Hello::ours()
            },
            ErrorKind::Protocol,
        ),
        (
            Hello {
                version: 99,
                min_version: 99,
                ..Hello::ours()
            },
            ErrorKind::Version,
        ),
    ];
    for (hello, kind) in rows {
        let mut peer = RawPeer::connect_silent(server.addr);
        assert!(matches!(
            peer.conn.recv_hello::<Response>(),
            Ok(Response::Hello(_))
        ));
        peer.send(&Request::Hello(hello));
        expect_error(peer.recv(), kind);
        assert!(peer.closed_by_server());
    }
    // Someone speaking HTTP at the server gets told, not hung.
    let answer = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (response, _) = codec::decode_frame::<Response>(&answer, MAX_FRAME)
        .expect("decodes")
        .expect("complete");
    let message = expect_error(response, ErrorKind::Protocol);
    assert!(message.contains("does not speak ft"), "{message}");
}

#[test]
fn the_client_recognises_servers_that_are_not_ft() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let banner = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        let (silent, _) = listener.accept().expect("accept");
        std::thread::sleep(Duration::from_secs(2));
        drop(silent);
    });
    match Client::connect(addr, quick_config()) {
        Err(Error::Protocol(message)) => {
            assert!(message.contains("does not speak ft"), "{message}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    let mut config = quick_config();
    config.timeout = Duration::from_millis(300);
    match Client::connect(addr, config) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Timeout, "{e}"),
        Ok(_) => panic!("a silent server was accepted"),
    }
    banner.join().expect("fake server");
}

#[cfg(unix)]
#[test]
fn symlinks_never_lead_out_of_the_served_directory() {
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("secret"), b"do not leak").expect("write");
    let server = TestServer::start();
    std::os::unix::fs::symlink(outside.path().join("secret"), server.root().join("link"))
        .expect("symlink");
    std::os::unix::fs::symlink(outside.path(), server.root().join("dirlink")).expect("symlink");
    let mut client = server.client();
    let mut sink = Vec::new();
    for name in ["link", "dirlink"] {
        let err = client.get_into(name, &mut sink, |_| {}).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = client
            .put_reader(&b"overwrite?"[..], 10, name, |_| {})
            .expect_err(name);
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    assert!(sink.is_empty());
    assert_eq!(
        fs::read(outside.path().join("secret")).expect("read"),
        b"do not leak"
    );
    assert_eq!(fs::read_dir(outside.path()).expect("read").count(), 1);
    assert!(client.list().expect("list").is_empty());
}

#[test]
fn max_file_size_refuses_before_the_body() {
    let mut config = ServerConfig::default();
    config.max_file_size = Some(1000);
    let server = TestServer::with_config(config);
    let mut client = server.client();
    let data = noise(1001, 3);
    let err = client
        .put_reader(&data[..], 1001, "big", |_| {})
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::TooLarge);
    client
        .put_reader(&data[..1000], 1000, "ok", |_| {})
        .expect("at the limit");
}

#[test]
fn the_magic_is_what_the_spec_says() {
    assert_eq!(&MAGIC, b"\x89FT\n");
}
