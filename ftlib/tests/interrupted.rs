//! A client that stops in the middle of a body — interrupted (its cancel flag, as Ctrl-C
//! sets it) or gone (its connection closed, as when it is killed) — is reported by the
//! server with one kind, `cancelled`, whether it was uploading or downloading, with a
//! short message that says it once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{RawPeer, TestServer, assert_no_temp_files, quick_config};
use ft_testutil::noise;
use ftlib::protocol::{Body, ErrorKind, Request, Response};
use ftlib::{Client, Op, Report, ServerConfig};

/// Bytes after which the clients below stop; the files are much larger.
const STOP_AT: u64 = 1024 * 1024;

/// The file the uploads send and the downloads fetch (sparse on the server).
const SIZE: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum How {
    /// The client's cancel flag is set part way, as ftclient's Ctrl-C handler does.
    Interrupted,
    /// The connection is closed part way, as when the client is killed.
    Gone,
}

/// A client over plain TCP or TLS, whose transfers stop at `STOP_AT` once `cancel` is set.
fn client(server: &TestServer, cancel: &Arc<AtomicBool>) -> Client {
    let mut config = quick_config();
    if let Some(fp) = server.fingerprint {
        config.trust = ftlib::Trust::Pinned(fp);
    }
    config.cancel = Some(Arc::clone(cancel));
    config.chunk_size = 64 * 1024;
    Client::connect(server.addr, config).expect("connect")
}

/// A progress callback that sets `cancel` (as Ctrl-C does) once [`STOP_AT`] bytes moved.
fn cancel_at_stop(cancel: &AtomicBool) -> impl FnMut(ftlib::Progress) + '_ {
    move |p| {
        if p.done >= STOP_AT {
            cancel.store(true, Ordering::SeqCst);
        }
    }
}

/// Stops an upload of `name` as `how` says, part way through its body.
fn stop_upload(server: &TestServer, name: &str, how: How) {
    let data = noise(usize::try_from(SIZE).expect("size"), 7);
    match how {
        How::Interrupted => {
            let cancel = Arc::new(AtomicBool::new(false));
            let mut client = client(server, &cancel);
            let err = client
                .put_reader(&data[..], SIZE, name, cancel_at_stop(&cancel))
                .expect_err("interrupted");
            assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
        }
        How::Gone => {
            let mut peer = RawPeer::connect(server.addr);
            peer.send(&Request::Put {
                name: name.to_owned(),
                size: SIZE,
            });
            assert!(matches!(peer.recv(), Response::Ready));
            for piece in data[..usize::try_from(STOP_AT).expect("size")].chunks(64 * 1024) {
                peer.send(&Body::Chunk(piece));
            }
            drop(peer);
        }
    }
}

/// Stops a download of `name` as `how` says, part way through its body.
fn stop_download(server: &TestServer, name: &str, how: How) {
    match how {
        How::Interrupted => {
            let cancel = Arc::new(AtomicBool::new(false));
            let mut client = client(server, &cancel);
            let err = client
                .get_into(name, &mut std::io::sink(), cancel_at_stop(&cancel))
                .expect_err("interrupted");
            assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
        }
        How::Gone => {
            let mut peer = RawPeer::connect(server.addr);
            peer.send(&Request::Get {
                name: name.to_owned(),
            });
            assert!(matches!(
                peer.recv(),
                Response::File { .. } | Response::Opened { .. }
            ));
            let mut got = 0;
            while got < STOP_AT {
                match peer.conn.expect::<Body<'_>>("a chunk").expect("chunk") {
                    Body::Chunk(data) => got += data.len() as u64,
                    other => panic!("{other:?}"),
                }
            }
            // Unread bytes are waiting: closing resets the connection under the server.
            drop(peer);
        }
    }
}

/// The server's report of the one `op` request.
fn report_of(server: &TestServer, op: Op) -> Report {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reports = server.wait_reports(1);
        if let Some(report) = reports.iter().find(|r| r.op == op) {
            return report.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{reports:?}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn an_interrupted_put_and_get_are_reported_alike_on_the_server() {
    // (how, TLS, the message of the upload's report, of the download's)
    let rows: &[(How, bool, &str, &str)] = &[
        (
            How::Interrupted,
            false,
            "the client aborted the transfer: interrupted before the end",
            "the client closed the connection in the middle of the download",
        ),
        (
            How::Interrupted,
            true,
            "the client aborted the transfer: interrupted before the end",
            "the client closed the connection in the middle of the download",
        ),
        (
            How::Gone,
            false,
            "the client closed the connection in the middle of the upload",
            "the client closed the connection in the middle of the download",
        ),
    ];
    for &(how, tls, put_message, get_message) in rows {
        let server = if tls {
            TestServer::secure(ServerConfig::default())
        } else {
            TestServer::start()
        };
        let served = std::fs::File::create(server.root().join("big.bin")).expect("create");
        served.set_len(SIZE).expect("sparse file");
        drop(served);

        stop_upload(&server, "up.bin", how);
        let put = report_of(&server, Op::Put);
        stop_download(&server, "big.bin", how);
        let get = report_of(&server, Op::Get);
        for (report, message) in [(&put, put_message), (&get, get_message)] {
            let failure = report.failure.as_ref().expect("a failure");
            assert_eq!(
                failure.kind,
                ErrorKind::Cancelled,
                "{how:?} {tls}: {report}"
            );
            assert_eq!(failure.message, message, "{how:?} {tls}: {report}");
            assert!(
                report
                    .to_string()
                    .ends_with(&format!("failure cancelled: {message}")),
                "{report}"
            );
            assert!(report.bytes >= STOP_AT && report.bytes < SIZE, "{report}");
            assert_eq!(report.digest, None, "{report}");
        }
        assert!(!server.root().join("up.bin").exists());
        assert_no_temp_files(server.root());
    }
}
