//! The example Python client, `docs/examples/ft_client.py` (written from docs/PROTOCOL.md
//! alone), against the real `ftserver`: TLS with the printed fingerprint pinned, a wrong pin
//! refused before any request, plain mode on both sides, and refusals between the two modes.
//! Skipped, saying why, where `python3` is missing; uploads need its optional `xxhash`
//! package, and where that is missing the files are put in the served directory instead.

mod util;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ftlib::protocol::{Hello, Request, Response};
use tempfile::TempDir;
use util::fake_server::{FakeServer, Peer};
use util::{Line, Output, ServerProcess, noise};

/// What the machine offers to run the script.
struct Python {
    /// The optional `xxhash` package is installed: `put` works.
    xxhash: bool,
}

/// `python3`, checked once; `None` (and a printed reason) where it cannot run.
fn python() -> Option<&'static Python> {
    static PYTHON: OnceLock<Option<Python>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let version = Command::new("python3").arg("--version").output();
            if !version.is_ok_and(|out| out.status.success()) {
                return None;
            }
            let xxhash = Command::new("python3")
                .args(["-c", "import xxhash"])
                .output()
                .is_ok_and(|out| out.status.success());
            if !xxhash {
                println!(
                    "python3 has no xxhash package (pip install xxhash): uploads are not \
                     tested, the files are placed in the served directory instead"
                );
            }
            Some(Python { xxhash })
        })
        .as_ref()
}

/// Prints why the calling test does nothing.
fn skip(test: &str) {
    println!("skipped {test}: python3 is not installed");
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/ft_client.py")
}

/// A server on `served/` and a client directory `local/` under one temporary directory.
struct Setup {
    server: ServerProcess,
    base: TempDir,
}

impl Setup {
    fn new(extra: &[&str]) -> Setup {
        let base = tempfile::tempdir().expect("create a temporary directory");
        for dir in ["served", "local"] {
            fs::create_dir(base.path().join(dir)).expect("mkdir");
        }
        let server = ServerProcess::start(&base.path().join("served"), extra);
        Setup { server, base }
    }

    fn served(&self) -> PathBuf {
        self.base.path().join("served")
    }

    fn local(&self) -> PathBuf {
        self.base.path().join("local")
    }

    /// `--fingerprint FP` as the server printed it, or `--plain` for a plain server.
    fn trust(&self) -> Vec<OsString> {
        match &self.server.fingerprint {
            Some(fp) => vec!["--fingerprint".into(), fp.into()],
            None => vec!["--plain".into()],
        }
    }

    /// `ft_client.py TRUST… --dir LOCAL 127.0.0.1 PORT ARGS…` with `env` set.
    fn py_with(&self, trust: Vec<OsString>, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("python3");
        command
            .arg(script_path())
            .args(trust)
            .arg("--dir")
            .arg(self.local())
            .args(["127.0.0.1", &self.server.addr.port().to_string()])
            .args(args)
            .current_dir(self.base.path())
            .env_remove("FT_PASSWORD");
        for (key, value) in env {
            command.env(key, value);
        }
        ft_testutil::run(command)
    }

    /// The script trusting this server as it should.
    fn py(&self, args: &[&str]) -> Output {
        self.py_with(self.trust(), args, &[])
    }

    /// Uploads `data` as `name` with the script, or, without xxhash, writes it into the
    /// served directory. Returns the server's report line for the upload, if there was one.
    fn put(&self, python: &Python, name: &str, data: &[u8]) -> Option<Line> {
        if !python.xxhash {
            fs::write(self.served().join(name), data).expect("write");
            return None;
        }
        let file = self.base.path().join(name);
        fs::write(&file, data).expect("write");
        let out = self.py(&["put", file.to_str().expect("utf-8 path")]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout
                .starts_with(&format!("put {name}: {} bytes stored", data.len())),
            "{out:?}"
        );
        Some(Line::parse(&self.server.next_line()))
    }

    /// Lists, gets `name` into `local/` and checks it holds `data`, with the server's report
    /// lines.
    fn list_and_get(&self, name: &str, data: &[u8]) {
        let out = self.py(&["list"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let shown: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(shown[0], "file", "{out:?}");
        assert_eq!(shown[1], data.len().to_string(), "{out:?}");
        assert_eq!(shown[3], name, "{out:?}");
        let line = Line::parse(&self.server.next_line());
        assert_eq!(line.summary(), "list - 1 entries success");

        let out = self.py(&["get", name]);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout
                .starts_with(&format!("get {name}: {} bytes", data.len())),
            "{out:?}"
        );
        assert_eq!(fs::read(self.local().join(name)).expect("read"), data);
        let line = Line::parse(&self.server.next_line());
        assert_eq!(
            line.summary(),
            format!("get {name} {} bytes success", data.len())
        );
        assert_eq!(line.user, "-");
    }
}

/// Put, list and get over TLS with the pin, a file of several chunks.
#[test]
fn tls_round_trip_with_the_pinned_fingerprint() {
    let Some(python) = python() else {
        return skip("tls_round_trip_with_the_pinned_fingerprint");
    };
    let setup = Setup::new(&[]);
    let data = noise(1_000_003, 9);
    if let Some(line) = setup.put(python, "big.bin", &data) {
        assert_eq!(line.summary(), "put big.bin 1000003 bytes success");
        assert_eq!(line.user, "-");
    }
    assert_eq!(
        fs::read(setup.served().join("big.bin")).expect("read"),
        data
    );
    setup.list_and_get("big.bin", &data);
}

/// A fingerprint that differs from the server's: the handshake completes, then the script
/// stops, naming both fingerprints, before sending anything inside TLS; the server sees a
/// connection end before any hello, never a request.
#[test]
fn wrong_pin_is_refused_before_any_request() {
    let Some(_) = python() else {
        return skip("wrong_pin_is_refused_before_any_request");
    };
    let setup = Setup::new(&[]);
    fs::write(setup.served().join("a.txt"), b"hello").expect("write");
    let real = setup.server.fingerprint.clone().expect("a TLS server");
    // Another valid fingerprint: the first base64 character changed.
    let first = if real.as_bytes()[7] == b'A' { "B" } else { "A" };
    let wrong = format!("SHA256:{first}{}", &real[8..]);
    let trust = || vec!["--fingerprint".into(), wrong.clone().into()];

    for args in [&["get", "a.txt"][..], &["list"]] {
        let out = setup.py_with(trust(), args, &[]);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert!(out.stderr.contains("identity-changed"), "{out:?}");
        assert!(out.stderr.contains(&real), "names what it found: {out:?}");
        assert!(out.stderr.contains(&wrong), "names the pin: {out:?}");
        assert!(out.stderr.contains("nothing was sent"), "{out:?}");
        let line = Line::parse(&setup.server.next_line());
        assert_eq!(
            line.op, "connect",
            "no request reached the server: {line:?}"
        );
        assert!(line.kind.is_some(), "{line:?}");
    }
    assert!(!setup.local().join("a.txt").exists());
    // The next line is the next request: nothing else was reported in between.
    setup.list_and_get("a.txt", b"hello");
}

/// Both sides plain: today's protocol in clear still works.
#[test]
fn plain_script_against_a_plain_server() {
    let Some(python) = python() else {
        return skip("plain_script_against_a_plain_server");
    };
    let setup = Setup::new(&["--plain"]);
    assert!(setup.server.fingerprint.is_none());
    if let Some(line) = setup.put(python, "a.txt", b"hello") {
        assert_eq!(line.summary(), "put a.txt 5 bytes success");
    }
    setup.list_and_get("a.txt", b"hello");
}

/// A plain server of an older version (a fake one: ftserver speaks v3): the script chooses
/// that version in its hello, then lists.
#[test]
fn plain_script_chooses_an_older_servers_version() {
    let Some(_) = python() else {
        return skip("plain_script_chooses_an_older_servers_version");
    };
    fn older(peer: &mut Peer, version: u32) {
        peer.send(&Response::Hello(Hello {
            version,
            ..Hello::ours()
        }));
        match peer.request() {
            Request::Hello(hello) => {
                assert_eq!(hello.version, version, "{hello:?}");
                assert_eq!(hello.min_version, 1, "{hello:?}");
                assert_eq!(hello.agent, "ft_client.py/3", "{hello:?}");
            }
            other => panic!("expected the client's hello, got {other:?}"),
        }
    }
    let scripts: [fn(&mut Peer); 2] = [|peer| older(peer, 1), |peer| older(peer, 2)];
    for script in scripts {
        let fake = FakeServer::start(script);
        let mut command = Command::new("python3");
        command.arg(script_path()).args([
            "--plain",
            "127.0.0.1",
            &fake.addr.port().to_string(),
            "list",
        ]);
        let out = ft_testutil::run(command);
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, "", "an empty listing: {out:?}");
        fake.finish();
    }
}

/// One side TLS, the other plain: both refusals are immediate and say what to do, and the
/// TLS script sends nothing to a plain server.
#[test]
fn modes_that_differ_are_refused() {
    let Some(_) = python() else {
        return skip("modes_that_differ_are_refused");
    };
    let tls = Setup::new(&[]);
    let out = tls.py_with(vec!["--plain".into()], &["list"], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("tls-required"), "{out:?}");
    assert!(out.stderr.contains("requires TLS"), "{out:?}");
    assert!(out.stderr.contains("run without --plain"), "{out:?}");
    assert_eq!(Line::parse(&tls.server.next_line()).op, "connect");

    let plain = Setup::new(&["--plain"]);
    let fingerprint = tls.server.fingerprint.clone().expect("a TLS server");
    let out = plain.py_with(
        vec!["--fingerprint".into(), fingerprint.into()],
        &["list"],
        &[],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("tls-required"), "{out:?}");
    assert!(out.stderr.contains("does not use TLS"), "{out:?}");
    let line = Line::parse(&plain.server.next_line());
    assert_eq!(line.op, "connect", "{line:?}");
    assert!(line.message.contains("before saying hello"), "{line:?}");
}

/// Options that cannot go together are usage errors (exit 2), before any connection.
#[test]
fn usage_errors_exit_2() {
    let Some(_) = python() else {
        return skip("usage_errors_exit_2");
    };
    let setup = Setup::new(&["--plain"]);
    let fp = format!("SHA256:{}", "A".repeat(43));
    let rows: &[(&[&str], &str)] = &[
        (&["list"], "--fingerprint"),
        (&["--fingerprint", "SHA256:short", "list"], "43 characters"),
        (&["--plain", "--user", "alice", "list"], "--plain"),
        (
            &["--plain", "--fingerprint", &fp, "list"],
            "no use with --plain",
        ),
        (
            &["--fingerprint", &fp, "--user", "alice", "list"],
            "FT_PASSWORD",
        ),
    ];
    for (args, needle) in rows {
        let out = setup.py_with(Vec::new(), args, &[]);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    }
    assert_eq!(
        setup.server.try_line(std::time::Duration::from_millis(200)),
        None,
        "no connection was made"
    );
}
