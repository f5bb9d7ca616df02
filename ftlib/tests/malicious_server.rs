//! The client against a server that lies: bodies longer or shorter than declared, wrong
//! digests, endless data, frame and length bombs, hostile names in listings, unexpected
//! answers, unknown error kinds, silence. Whatever the server does, the client writes only
//! the file it asked for, stops at the declared size, leaves nothing behind on failure,
//! escapes what it prints, times out clearly, and closes a connection it can no longer trust.
//! The fake server is `ft_testutil::fake_server`; the row that runs the real `ftclient`
//! binary against it is in `ftclient/tests/malicious_server.rs`.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ft_testutil::fake_server::{
    Ending, FakeServer, NAME, Peer, assert_printable, entry, serve_terminal_names, terminal_names,
};
use ft_testutil::{digest, names_in, noise};
use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::{
    Attrs, Body, DEFAULT_CHUNK, Entry, EntryV3, ErrorKind, Hello, LIST_BATCH, MAX_CHUNK, MAX_FRAME,
    MAX_HELLO_FRAME, Response,
};
use ftlib::store::DirStore;
use ftlib::text::escape;
use ftlib::{Client, ClientConfig};
use serde::Serialize;

/// Client timeout for rows that must fail before any timeout could fire.
const QUICK: Duration = Duration::from_secs(5);

/// Client timeout for rows where the server goes silent.
const SHORT: Duration = Duration::from_millis(500);

/// Most listing entries the client accepts in these tests.
const MAX_LIST: u64 = 1000;

/// Mirrors of [`Response`] and [`Body`] whose error kinds are plain codes, to send kinds this
/// library has never heard of. bincode encodes an enum by variant index, so only the order
/// of the variants up to the one used matters; the others are placeholders.
#[allow(dead_code)]
#[derive(Serialize)]
enum WireResponse {
    Hello(Hello),
    Error { kind: u16, message: String },
}

#[allow(dead_code)]
#[derive(Serialize)]
enum WireBody {
    Chunk(()),
    End { digest: [u8; 16] },
    Abort { kind: u16, message: String },
}

/// How the start of [`EVIL_MESSAGE`] must look in an error's text: shown, but escaped.
const EVIL_ESCAPED: &str = "\\u{1b}[2J\\u{1b}]0;owned\\u{7}";

/// A kind code no version of the protocol defines.
const UNKNOWN_KIND: u16 = 999;

/// A message meant to take over the terminal of whoever prints it unescaped.
const EVIL_MESSAGE: &str =
    "\x1b[2J\x1b]0;owned\x07fake prompt$ \rrm -rf ~\nsecond line\u{9b}31m\u{202e}txt.exe";

/// The bincode tag of `Response::Entries`, read off a real encoding.
fn entries_tag() -> u8 {
    let mut frame = Vec::new();
    codec::encode_frame(&Response::Entries(Vec::new()), &mut frame).expect("encode");
    assert_eq!(frame.len(), HEADER_LEN + 2, "tag and empty length");
    frame[HEADER_LEN]
}

/// A bincode varint claiming 2^60: a length no limit allows.
const LENGTH_BOMB: [u8; 9] = [253, 0, 0, 0, 0, 0, 0, 0, 0x10];

// ---------------------------------------------------------------------------------------
// Checks shared by every row
// ---------------------------------------------------------------------------------------

fn client_config(kind: ErrorKind) -> ClientConfig {
    let mut config = ClientConfig::trusting(ftlib::Trust::Plain);
    config.timeout = if kind == ErrorKind::Timeout {
        SHORT
    } else {
        QUICK
    };
    config.max_list_entries = MAX_LIST;
    config
}

/// A timeout row took about the timeout; any other row returned before one could fire.
fn assert_prompt(elapsed: Duration, kind: ErrorKind, what: &str) {
    if kind == ErrorKind::Timeout {
        assert!(
            elapsed >= SHORT.mul_f64(0.9) && elapsed < SHORT * 4 + Duration::from_secs(2),
            "{what}: timed out after {elapsed:?}, configured {SHORT:?}"
        );
    } else {
        assert!(
            elapsed < QUICK / 2,
            "{what}: took {elapsed:?}, as if it waited for a timeout"
        );
    }
}

/// What happens to the connection after a failure, and how the test checks it.
fn assert_connection_state(client: Client, fake: FakeServer, broken: bool, what: &str) {
    let mut client = client;
    assert_eq!(client.is_open(), !broken, "{what}: is_open");
    if broken {
        // The client let go of the socket at once, while the Client itself still lives.
        assert_eq!(
            fake.finish(),
            Ending::ClientClosed,
            "{what}: the client kept a broken connection open"
        );
        let again = client
            .list()
            .expect_err("a broken connection refuses requests");
        assert_eq!(again.kind(), ErrorKind::Connection, "{what}: {again}");
    } else {
        // Still in step: the next request on the same connection works.
        assert_eq!(
            client
                .list()
                .unwrap_or_else(|e| panic!("{what}: follow-up: {e}")),
            Vec::new()
        );
        drop(client);
        assert_eq!(fake.finish(), Ending::ClientClosed, "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// Requests against a lying server: one row per lie
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Get,
    List,
    Put,
}

struct Row {
    what: &'static str,
    op: Op,
    /// Played after a correct handshake.
    script: fn(&mut Peer),
    kind: ErrorKind,
    /// A piece of the error's text.
    text: &'static str,
    /// The connection can no longer carry requests afterwards.
    broken: bool,
}

fn run_row(row: &Row) {
    let what = row.what;
    let fake = FakeServer::after_hello(row.script);
    let local = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(local.path()).expect("store");
    let mut client = Client::connect(fake.addr, client_config(row.kind))
        .unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    let started = Instant::now();
    let mut beyond_declared = None;
    let result = match row.op {
        Op::Get => client.get(NAME, &store, false, |p| {
            if p.done > p.total {
                beyond_declared = Some(p);
            }
        }),
        Op::List => client.list().map(|entries| entries.len() as u64),
        Op::Put => {
            let data = noise(10_000, 7);
            client.put_reader(&data[..], data.len() as u64, NAME, |_| {})
        }
    };
    let elapsed = started.elapsed();
    let err = match result {
        Ok(n) => panic!("{what}: accepted ({n})"),
        Err(e) => e,
    };
    let shown = err.to_string();
    assert_eq!(err.kind(), row.kind, "{what}: {shown}");
    assert!(
        shown.contains(row.text),
        "{what}: {shown:?} lacks {:?}",
        row.text
    );
    assert_printable(&shown, what);
    assert_prompt(elapsed, row.kind, what);
    assert_eq!(
        beyond_declared, None,
        "{what}: progress beyond the declared size"
    );
    // No final file, no temporary file, nothing else.
    assert_eq!(names_in(local.path()), Vec::<String>::new(), "{what}");
    assert_connection_state(client, fake, row.broken, what);
}

#[test]
fn lying_downloads_publish_nothing() {
    let rows = [
        Row {
            what: "20 bytes in one chunk for a declared 10",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(&[b'x'; 20]));
                p.send(&Body::End {
                    digest: digest(&[b'x'; 20]),
                });
            },
            kind: ErrorKind::Protocol,
            text: "longer than the declared 10 bytes",
            broken: true,
        },
        Row {
            what: "20 bytes in two chunks for a declared 10",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(&[b'x'; 10]));
                p.send(&Body::Chunk(&[b'y'; 10]));
                p.send(&Body::End {
                    digest: digest(&[b'x'; 10]),
                });
            },
            kind: ErrorKind::Protocol,
            text: "longer than the declared 10 bytes",
            broken: true,
        },
        Row {
            what: "fewer bytes than declared, then End",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(b"12345"));
                p.send(&Body::End {
                    digest: digest(b"12345"),
                });
            },
            kind: ErrorKind::SizeMismatch,
            text: "expected 10 bytes, got 5",
            broken: false,
        },
        Row {
            what: "no body at all, then End",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::End {
                    digest: digest(b""),
                });
            },
            kind: ErrorKind::SizeMismatch,
            text: "expected 10 bytes, got 0",
            broken: false,
        },
        Row {
            // Refused as soon as the size is known: more than the local disk can hold.
            what: "a huge declared size, then a short body",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(u64::MAX);
                p.send(&Body::Chunk(b"12345"));
                p.send(&Body::End {
                    digest: digest(b"12345"),
                });
            },
            kind: ErrorKind::NoSpace,
            text: "not enough space",
            broken: true,
        },
        Row {
            what: "the right size with a wrong digest",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(b"0123456789"));
                p.send(&Body::End {
                    digest: digest(b"0123456788"),
                });
            },
            kind: ErrorKind::ChecksumMismatch,
            text: "checksum mismatch",
            broken: false,
        },
        Row {
            what: "an empty chunk",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(b""));
            },
            kind: ErrorKind::Protocol,
            text: "chunk of 0 bytes",
            broken: true,
        },
        Row {
            what: "a chunk over MAX_CHUNK (the frame itself is legal)",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(8 * MAX_CHUNK as u64);
                p.send(&Body::Chunk(&vec![0u8; MAX_CHUNK + 1]));
            },
            kind: ErrorKind::Protocol,
            text: "allowed: 1 to",
            broken: true,
        },
        Row {
            what: "an abort with an unknown kind and a hostile message",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(b"12345"));
                p.send(&WireBody::Abort {
                    kind: UNKNOWN_KIND,
                    message: EVIL_MESSAGE.into(),
                });
            },
            kind: ErrorKind::Other,
            text: EVIL_ESCAPED,
            broken: false,
        },
        Row {
            what: "a frame length bomb (u32::MAX) in the middle of a body",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(100);
                p.send(&Body::Chunk(b"0123456789"));
                p.raw(&u32::MAX.to_be_bytes());
            },
            kind: ErrorKind::Protocol,
            text: "frame of 4294967295 bytes exceeds the limit",
            broken: true,
        },
        Row {
            what: "a frame one byte over the limit in the middle of a body",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(100);
                p.send(&Body::Chunk(b"0123456789"));
                let len = u32::try_from(MAX_FRAME + 1).expect("fits");
                p.raw(&len.to_be_bytes());
            },
            kind: ErrorKind::Protocol,
            text: "exceeds the limit",
            broken: true,
        },
        Row {
            what: "a garbage frame in the middle of a body",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(100);
                p.frame(&[99, 1, 2, 3]);
            },
            kind: ErrorKind::Protocol,
            text: "malformed Body",
            broken: true,
        },
        Row {
            what: "a chunk whose byte length is a bomb",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(100);
                // Body::Chunk is variant 0; then the byte length.
                let mut payload = vec![0u8];
                payload.extend_from_slice(&LENGTH_BOMB);
                payload.extend_from_slice(b"abc");
                p.frame(&payload);
            },
            kind: ErrorKind::Protocol,
            text: "malformed Body",
            broken: true,
        },
        Row {
            what: "a declared 64 MiB, a few MiB, then silence",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(64 << 20);
                let chunk = noise(DEFAULT_CHUNK, 3);
                for _ in 0..16 {
                    p.send(&Body::Chunk(&chunk));
                }
            },
            kind: ErrorKind::Timeout,
            text: "timed out after 0.5 s",
            broken: true,
        },
        Row {
            what: "a hang-up in the middle of a body",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.send(&Body::Chunk(b"12345"));
                p.hang_up();
            },
            kind: ErrorKind::Connection,
            text: "connection closed by the peer",
            broken: true,
        },
        Row {
            what: "another file's answer (v4 Opened naming another name)",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Opened {
                    name: "other.txt".into(),
                    size: 5,
                    offset: 0,
                    attrs: Attrs {
                        modified: 0,
                        nanos: 0,
                        executable: false,
                    },
                });
                p.send(&Body::Chunk(b"other"));
                p.send(&Body::End {
                    digest: digest(b"other"),
                });
            },
            kind: ErrorKind::Protocol,
            text: "the server answered with other.txt",
            broken: true,
        },
        Row {
            what: "Stored in reply to Get",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Stored { size: 10 });
            },
            kind: ErrorKind::Protocol,
            text: "expected file, the server sent stored",
            broken: true,
        },
        Row {
            what: "a listing in reply to Get",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Entries(vec![entry("../x").into()]));
            },
            kind: ErrorKind::Protocol,
            text: "expected file, the server sent entries",
            broken: true,
        },
        Row {
            what: "a second hello in reply to Get",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Hello(Hello::ours()));
            },
            kind: ErrorKind::Protocol,
            text: "the server sent hello",
            broken: true,
        },
        Row {
            what: "an error of an unknown kind with a hostile message",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&WireResponse::Error {
                    kind: UNKNOWN_KIND,
                    message: EVIL_MESSAGE.into(),
                });
            },
            kind: ErrorKind::Other,
            text: EVIL_ESCAPED,
            broken: false,
        },
        Row {
            what: "not found, with a hostile message",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Error {
                    kind: ErrorKind::NotFound,
                    message: EVIL_MESSAGE.into(),
                });
            },
            kind: ErrorKind::NotFound,
            text: EVIL_ESCAPED,
            broken: false,
        },
        Row {
            what: "an error of a connection-breaking kind",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.send(&Response::Error {
                    kind: ErrorKind::ShuttingDown,
                    message: "bye".into(),
                });
            },
            kind: ErrorKind::ShuttingDown,
            text: "server: bye",
            broken: true,
        },
        Row {
            what: "no answer to Get",
            op: Op::Get,
            script: |p| p.expect_get(),
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
        Row {
            what: "File, then silence",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
            },
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
        Row {
            what: "a frame header cut short, then silence",
            op: Op::Get,
            script: |p| {
                p.expect_get();
                p.file(10);
                p.raw(&[0, 0]);
            },
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
    ];
    for row in &rows {
        run_row(row);
    }
}

#[test]
fn lying_listings_are_refused() {
    let rows = [
        Row {
            what: "a batch of LIST_BATCH + 1 entries",
            op: Op::List,
            script: |p| {
                p.expect_list();
                let batch: Vec<EntryV3> = (0..=LIST_BATCH)
                    .map(|i| entry(&format!("f{i}")).into())
                    .collect();
                p.send(&Response::Entries(batch));
                p.send(&Response::ListEnd {
                    count: LIST_BATCH as u64 + 1,
                });
            },
            kind: ErrorKind::Protocol,
            text: "expected at most 256 entries",
            broken: true,
        },
        Row {
            what: "more entries in total than max_list_entries",
            op: Op::List,
            script: |p| {
                p.expect_list();
                for b in 0..4 {
                    let batch: Vec<EntryV3> = (0..LIST_BATCH)
                        .map(|i| entry(&format!("f{b}-{i}")).into())
                        .collect();
                    p.send(&Response::Entries(batch));
                }
                p.send(&Response::ListEnd {
                    count: 4 * LIST_BATCH as u64,
                });
            },
            kind: ErrorKind::Protocol,
            text: "longer than the limit of 1000 entries",
            broken: true,
        },
        Row {
            what: "an endless listing",
            op: Op::List,
            script: |p| {
                p.expect_list();
                let batch: Vec<EntryV3> = (0..LIST_BATCH)
                    .map(|i| entry(&format!("e{i}")).into())
                    .collect();
                // Bounded only by the client; the cap is a guard for this test.
                for _ in 0..100_000 {
                    if !p.try_send(&Response::Entries(batch.clone())) {
                        break;
                    }
                }
            },
            kind: ErrorKind::Protocol,
            text: "longer than the limit of 1000 entries",
            broken: true,
        },
        Row {
            what: "an entry with a 300-byte name",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![
                    entry("ok").into(),
                    entry(&"n".repeat(300)).into(),
                ]));
                p.send(&Response::ListEnd { count: 2 });
            },
            kind: ErrorKind::Protocol,
            text: "name of 300 bytes",
            broken: true,
        },
        Row {
            what: "an entry with an empty name",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![entry("").into()]));
                p.send(&Response::ListEnd { count: 1 });
            },
            kind: ErrorKind::Protocol,
            text: "name of 0 bytes",
            broken: true,
        },
        Row {
            what: "an empty batch",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(Vec::new()));
                p.send(&Response::ListEnd { count: 0 });
            },
            kind: ErrorKind::Protocol,
            text: "an empty listing batch",
            broken: true,
        },
        Row {
            what: "an error message over 1,024 bytes",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Error {
                    kind: ErrorKind::Io,
                    message: "m".repeat(1025),
                });
            },
            kind: ErrorKind::Protocol,
            text: "an error message of 1025 bytes (at most 1024)",
            broken: true,
        },
        Row {
            what: "an end that miscounts",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![
                    entry("a").into(),
                    entry("b").into(),
                ]));
                p.send(&Response::ListEnd { count: 3 });
            },
            kind: ErrorKind::Protocol,
            text: "claiming 3 entries after 2",
            broken: true,
        },
        Row {
            what: "a frame length bomb (u32::MAX) in a listing",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![entry("a").into()]));
                p.raw(&u32::MAX.to_be_bytes());
            },
            kind: ErrorKind::Protocol,
            text: "frame of 4294967295 bytes exceeds the limit",
            broken: true,
        },
        Row {
            what: "a batch whose entry count is a bomb",
            op: Op::List,
            script: |p| {
                p.expect_list();
                let mut payload = vec![entries_tag()];
                payload.extend_from_slice(&LENGTH_BOMB);
                p.frame(&payload);
            },
            kind: ErrorKind::Protocol,
            text: "malformed Response",
            broken: true,
        },
        Row {
            what: "an entry whose name length is a bomb",
            op: Op::List,
            script: |p| {
                p.expect_list();
                let mut payload = vec![entries_tag(), 1];
                payload.extend_from_slice(&LENGTH_BOMB);
                payload.extend_from_slice(b"abc");
                p.frame(&payload);
            },
            kind: ErrorKind::Protocol,
            text: "malformed Response",
            broken: true,
        },
        Row {
            what: "a file body in reply to List",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.file(10);
            },
            kind: ErrorKind::Protocol,
            text: "unexpected file in a listing",
            broken: true,
        },
        Row {
            what: "an error with a hostile message",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![entry("a").into()]));
                p.send(&WireResponse::Error {
                    kind: UNKNOWN_KIND,
                    message: EVIL_MESSAGE.into(),
                });
            },
            kind: ErrorKind::Other,
            text: EVIL_ESCAPED,
            broken: false,
        },
        Row {
            what: "no answer to List",
            op: Op::List,
            script: |p| p.expect_list(),
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
        Row {
            what: "one batch, then silence",
            op: Op::List,
            script: |p| {
                p.expect_list();
                p.send(&Response::Entries(vec![entry("a").into()]));
            },
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
    ];
    for row in &rows {
        run_row(row);
    }
}

#[test]
fn lying_upload_answers_are_refused() {
    let rows = [
        Row {
            what: "File instead of Ready",
            op: Op::Put,
            script: |p| {
                p.expect_put();
                p.file(10);
            },
            kind: ErrorKind::Protocol,
            text: "expected ready, the server sent file",
            broken: true,
        },
        Row {
            what: "Stored before the body",
            op: Op::Put,
            script: |p| {
                let size = p.expect_put();
                p.send(&Response::Stored { size });
            },
            kind: ErrorKind::Protocol,
            text: "expected ready, the server sent stored",
            broken: true,
        },
        Row {
            what: "Stored with another size",
            op: Op::Put,
            script: |p| {
                let size = p.expect_put();
                p.send(&Response::Ready);
                assert_eq!(p.drain_body(), size);
                p.send(&Response::Stored { size: size + 1 });
            },
            kind: ErrorKind::Protocol,
            text: "the server stored 10001 bytes of 10000",
            broken: true,
        },
        Row {
            what: "a v4 answer for another upload",
            op: Op::Put,
            script: |p| {
                let size = p.expect_put();
                p.send(&Response::Ready);
                assert_eq!(p.drain_body(), size);
                p.send(&Response::Uploaded {
                    name: "other.txt".into(),
                    size,
                });
            },
            kind: ErrorKind::Protocol,
            text: "uploaded asked.txt, the server answered for other.txt",
            broken: true,
        },
        Row {
            what: "an error with a hostile message after the body",
            op: Op::Put,
            script: |p| {
                p.expect_put();
                p.send(&Response::Ready);
                p.drain_body();
                p.send(&Response::Error {
                    kind: ErrorKind::NoSpace,
                    message: EVIL_MESSAGE.into(),
                });
            },
            kind: ErrorKind::NoSpace,
            text: EVIL_ESCAPED,
            broken: false,
        },
        Row {
            what: "a hang-up after Ready",
            op: Op::Put,
            script: |p| {
                p.expect_put();
                p.send(&Response::Ready);
                p.hang_up();
            },
            kind: ErrorKind::Connection,
            text: "",
            broken: true,
        },
        Row {
            what: "no answer to Put",
            op: Op::Put,
            script: |p| {
                p.expect_put();
            },
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
        Row {
            what: "Ready, then silence after the body",
            op: Op::Put,
            script: |p| {
                p.expect_put();
                p.send(&Response::Ready);
                p.drain_body();
            },
            kind: ErrorKind::Timeout,
            text: "timed out",
            broken: true,
        },
    ];
    for row in &rows {
        run_row(row);
    }
}

// ---------------------------------------------------------------------------------------
// Greetings
// ---------------------------------------------------------------------------------------

/// A script played from the first byte, the error kind `connect` must fail with, and a
/// piece of its text.
type Greeting = (&'static str, fn(&mut Peer), ErrorKind, &'static str);

#[test]
fn bad_greetings_fail_connect_clearly() {
    let rows: [Greeting; 10] = [
        ("never greets", |_| {}, ErrorKind::Timeout, "timed out"),
        (
            "hangs up at once",
            |p| p.hang_up(),
            ErrorKind::Connection,
            "before saying hello",
        ),
        (
            "busy, with a hostile message",
            |p| {
                p.send(&Response::Error {
                    kind: ErrorKind::Busy,
                    message: EVIL_MESSAGE.into(),
                })
            },
            ErrorKind::Busy,
            EVIL_ESCAPED,
        ),
        (
            "an error of an unknown kind, with a hostile message",
            |p| {
                p.send(&WireResponse::Error {
                    kind: UNKNOWN_KIND,
                    message: EVIL_MESSAGE.into(),
                })
            },
            ErrorKind::Other,
            EVIL_ESCAPED,
        ),
        (
            "only future versions",
            |p| {
                p.send(&Response::Hello(Hello {
                    version: 9,
                    min_version: 7,
                    ..Hello::ours()
                }))
            },
            ErrorKind::Version,
            "the peer v7..v9",
        ),
        (
            "bad magic",
            |p| {
                p.send(&Response::Hello(Hello {
                    magic: *b"HTTP",
                    ..Hello::ours()
                }))
            },
            ErrorKind::Protocol,
            "bad magic",
        ),
        (
            "Ready instead of hello",
            |p| p.send(&Response::Ready),
            ErrorKind::Protocol,
            "began with ready instead of hello",
        ),
        (
            "a frame length bomb as hello",
            |p| p.raw(&u32::MAX.to_be_bytes()),
            ErrorKind::Protocol,
            "does not speak ft",
        ),
        (
            // The error quotes the first bytes: they must come out escaped.
            "a terminal escape sequence instead of a hello",
            |p| p.raw(b"\x1b[2J\x1b]0;owned\x07"),
            ErrorKind::Protocol,
            "does not speak ft",
        ),
        (
            "a hello one byte over its limit",
            |p| {
                let len = u32::try_from(MAX_HELLO_FRAME + 1).expect("fits");
                p.raw(&len.to_be_bytes());
            },
            ErrorKind::Protocol,
            "does not speak ft",
        ),
    ];
    for (what, script, kind, text) in rows {
        let fake = FakeServer::start(script);
        let started = Instant::now();
        let err = Client::connect(fake.addr, client_config(kind))
            .map(|_| ())
            .expect_err(what);
        let elapsed = started.elapsed();
        let shown = err.to_string();
        assert_eq!(err.kind(), kind, "{what}: {shown}");
        assert!(shown.contains(text), "{what}: {shown:?} lacks {text:?}");
        assert_printable(&shown, what);
        assert_prompt(elapsed, kind, what);
        assert_eq!(fake.finish(), Ending::ClientClosed, "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// Names from the server
// ---------------------------------------------------------------------------------------

/// Names a hostile server might list, hoping a client feeds them back to a download.
const HOSTILE_NAMES: [&str; 8] = [
    "../x",
    "/etc/x",
    ".",
    "..",
    "../../../../../../tmp/ft-owned",
    "sub//x",
    "..\\x",
    ".ft-tmp-1-2-3",
];

/// The protocol never sends a file name back with a download, so the only way a server can
/// steer where the client writes is by listing names a program then asks for. Each is
/// refused locally before a request is sent, and only the asked-for file appears.
#[test]
fn names_from_the_server_never_choose_where_the_client_writes() {
    let fake = FakeServer::after_hello(|p| {
        p.expect_list();
        let mut batch: Vec<Entry> = HOSTILE_NAMES.iter().map(|n| entry(n)).collect();
        batch.push(entry(NAME));
        let count = batch.len() as u64;
        p.send(&Response::Entries(
            batch.into_iter().map(EntryV3::from).collect(),
        ));
        p.send(&Response::ListEnd { count });
        // The next request must be for the legitimate name: nothing hostile was asked for.
        p.expect_get();
        p.file(5);
        p.send(&Body::Chunk(b"hello"));
        p.send(&Body::End {
            digest: digest(b"hello"),
        });
    });
    let outer = tempfile::tempdir().expect("tempdir");
    let local = outer.path().join("local");
    fs::create_dir(&local).expect("mkdir");
    let store = DirStore::open(&local).expect("store");
    let absolute_before = Path::new("/etc/x").exists();
    let owned_before = Path::new("/tmp/ft-owned").exists();

    let mut client = Client::connect(fake.addr, client_config(ErrorKind::Other)).expect("connect");
    let listed = client.list().expect("the listing itself is accepted");
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    let mut expected = HOSTILE_NAMES.to_vec();
    expected.push(NAME);
    assert_eq!(names, expected);
    // A naive "download everything listed" loop.
    for entry in &listed {
        if entry.name == NAME {
            assert_eq!(
                client.get(&entry.name, &store, false, |_| {}).expect("get"),
                5
            );
        } else {
            let err = client
                .get(&entry.name, &store, false, |_| {})
                .expect_err(&entry.name);
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{}: {err}", entry.name);
            assert!(client.is_open(), "refused locally, before any request");
        }
    }
    assert_eq!(names_in(&local), vec![NAME.to_owned()]);
    assert_eq!(fs::read(local.join(NAME)).expect("read"), b"hello");
    assert_eq!(names_in(outer.path()), vec!["local".to_owned()]);
    assert_eq!(Path::new("/etc/x").exists(), absolute_before);
    assert_eq!(Path::new("/tmp/ft-owned").exists(), owned_before);
    drop(client);
    assert_eq!(fake.finish(), Ending::ClientClosed);
}

#[test]
fn listing_names_with_control_characters_are_accepted_and_escaped() {
    let fake = FakeServer::after_hello(serve_terminal_names);
    let mut client = Client::connect(fake.addr, client_config(ErrorKind::Other)).expect("connect");
    let mut got = Vec::new();
    let count = client.list_each(|e| got.push(e)).expect("list");
    assert_eq!(got, terminal_names());
    assert_eq!(count, got.len() as u64);
    for entry in &got {
        let shown = escape(&entry.name);
        assert_printable(&shown, &shown);
        if entry.name.chars().any(char::is_control) {
            assert!(shown.starts_with('"'), "{shown} is not quoted");
        }
    }
    assert_eq!(escape("plain.txt"), "plain.txt");
    assert_eq!(escape("../x"), "../x");
    drop(client);
    assert_eq!(fake.finish(), Ending::ClientClosed);
}

// ---------------------------------------------------------------------------------------
// Endless data
// ---------------------------------------------------------------------------------------

/// A server that streams forever under a declared size of u64::MAX: nothing in the
/// protocol ends it, so the user's cancel (Ctrl-C in ftclient) must, leaving nothing.
#[test]
fn an_endless_body_ends_at_cancel_and_leaves_nothing() {
    let fake = FakeServer::after_hello(|p| {
        p.expect_get();
        p.file(u64::MAX);
        let chunk = noise(DEFAULT_CHUNK, 11);
        // The cancelled client releases its socket; the short send timeout only guards the
        // test should it not.
        p.raw
            .set_write_timeout(Some(Duration::from_secs(1)))
            .expect("write timeout");
        // Endless as far as the client can tell; the cap (1 GiB) only guards this test.
        for _ in 0..4096 {
            if !p.try_send(&Body::Chunk(&chunk)) {
                break;
            }
        }
    });
    let cancel = Arc::new(AtomicBool::new(false));
    let mut config = client_config(ErrorKind::Other);
    config.cancel = Some(Arc::clone(&cancel));
    let mut client = Client::connect(fake.addr, config).expect("connect");
    let mut most = 0;
    let started = Instant::now();
    // Into a writer: a directory would refuse u64::MAX bytes at once for lack of space.
    let err = client
        .get_into(NAME, &mut std::io::sink(), |p| {
            assert_eq!(p.total, u64::MAX);
            most = p.done;
            if p.done >= 8 << 20 {
                cancel.store(true, Ordering::Relaxed);
            }
        })
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(
        (8 << 20..(8 << 20) + 2 * MAX_CHUNK as u64).contains(&most),
        "{most}"
    );
    assert!(started.elapsed() < QUICK, "{:?}", started.elapsed());
    assert_connection_state(client, fake, true, "cancelled endless body");
}

#[test]
fn the_wire_mirrors_encode_like_the_real_messages() {
    let (mut real, mut mirror) = (Vec::new(), Vec::new());
    let kind = ErrorKind::ChecksumMismatch;
    codec::encode_frame(
        &Response::Error {
            kind,
            message: "m".into(),
        },
        &mut real,
    )
    .expect("encode");
    codec::encode_frame(
        &WireResponse::Error {
            kind: kind.code(),
            message: "m".into(),
        },
        &mut mirror,
    )
    .expect("encode");
    assert_eq!(real, mirror);
    codec::encode_frame(
        &Body::Abort {
            kind,
            message: "m".into(),
        },
        &mut real,
    )
    .expect("encode");
    codec::encode_frame(
        &WireBody::Abort {
            kind: kind.code(),
            message: "m".into(),
        },
        &mut mirror,
    )
    .expect("encode");
    assert_eq!(real, mirror);
    // And an unknown code decodes as Other, which is what the rows above rely on.
    codec::encode_frame(
        &WireResponse::Error {
            kind: UNKNOWN_KIND,
            message: String::new(),
        },
        &mut mirror,
    )
    .expect("encode");
    let (back, _) = codec::decode_frame::<Response>(&mirror, MAX_FRAME)
        .expect("decode")
        .expect("complete");
    assert!(matches!(
        back,
        Response::Error {
            kind: ErrorKind::Other,
            ..
        }
    ));
    assert_eq!(ErrorKind::from(UNKNOWN_KIND), ErrorKind::Other);
}
