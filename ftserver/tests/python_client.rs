//! The example Python client, `docs/examples/ft_client.py` (written from docs/PROTOCOL.md
//! alone), against the real `ftserver`: TLS with the printed fingerprint pinned, a wrong pin
//! refused before any request, plain mode on both sides, refusals between the two modes, and
//! logins: a write user puts, a read user only reads, a wrong password is auth-failed.
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
        Setup::in_base(
            tempfile::tempdir().expect("create a temporary directory"),
            extra,
        )
    }

    fn in_base(base: TempDir, extra: &[&str]) -> Setup {
        for dir in ["served", "local"] {
            fs::create_dir(base.path().join(dir)).expect("mkdir");
        }
        let server = ServerProcess::start(&base.path().join("served"), extra);
        Setup { server, base }
    }

    /// A TLS server with the accounts of [`ACCOUNTS`] in `users.txt` (outside the root),
    /// written by `ftserver --add-user`, and `extra` options.
    fn with_accounts(extra: &[&str]) -> Setup {
        let base = tempfile::tempdir().expect("create a temporary directory");
        let users = base.path().join("users.txt");
        let users = users.to_str().expect("utf-8 path");
        for (name, role, password) in ACCOUNTS {
            let mut command = Command::new(util::ftserver());
            command
                .args(["--users", users, "--add-user", name, "--role", role])
                .env("FT_PASSWORD", password);
            let out = ft_testutil::run(command);
            assert_eq!(out.code, Some(0), "{out:?}");
        }
        let mut all = vec!["--users", users];
        all.extend_from_slice(extra);
        Setup::in_base(base, &all)
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

    /// The script logged in as `user` with `password` (`--user USER`, FT_PASSWORD).
    fn py_as(&self, user: &str, password: &str, args: &[&str]) -> Output {
        let mut all = vec!["--user", user];
        all.extend_from_slice(args);
        self.py_with(self.trust(), &all, &[("FT_PASSWORD", password)])
    }

    /// Writes `data` to `name` outside the served directory; gives the path.
    fn local_file(&self, name: &str, data: &[u8]) -> String {
        let file = self.base.path().join(name);
        fs::write(&file, data).expect("write");
        file.to_str().expect("utf-8 path").to_owned()
    }

    /// Uploads `data` as `name` with the script, or, without xxhash, writes it into the
    /// served directory. Returns the server's report line for the upload, if there was one.
    fn put(&self, python: &Python, name: &str, data: &[u8]) -> Option<Line> {
        if !python.xxhash {
            fs::write(self.served().join(name), data).expect("write");
            return None;
        }
        let out = self.py(&["put", &self.local_file(name, data)]);
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

/// The accounts of [`Setup::with_accounts`]: name, role, password.
const ACCOUNTS: [(&str, &str, &str); 2] = [
    ("alice", "write", "correct horse"),
    ("bob", "read", "battery staple"),
];

/// A write user's upload is stored under its name; a read user gets and lists, and its
/// upload is refused after `LoggedIn{read}` without being sent; without a login nothing is
/// allowed.
#[test]
fn logins_give_each_user_its_role() {
    let Some(python) = python() else {
        return skip("logins_give_each_user_its_role");
    };
    let setup = Setup::with_accounts(&[]);
    if python.xxhash {
        let out = setup.py_as(
            "alice",
            "correct horse",
            &["put", &setup.local_file("a.txt", b"hello")],
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        let login = Line::parse(&setup.server.next_line());
        assert_eq!(login.summary(), "login alice 0 bytes success");
        let put = Line::parse(&setup.server.next_line());
        assert_eq!(put.summary(), "put a.txt 5 bytes success");
        assert_eq!(put.user, "alice");

        let out = setup.py_as(
            "bob",
            "battery staple",
            &["put", &setup.local_file("b.txt", b"nope")],
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("permission-denied"), "{out:?}");
        assert!(out.stderr.contains("user bob has the role read"), "{out:?}");
        assert!(out.stderr.contains("nothing was sent"), "{out:?}");
        let login = Line::parse(&setup.server.next_line());
        assert_eq!(login.summary(), "login bob 0 bytes success");
        assert!(!setup.served().join("b.txt").exists());
    } else {
        fs::write(setup.served().join("a.txt"), b"hello").expect("write");
    }

    let out = setup.py_as("bob", "battery staple", &["get", "a.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read(setup.local().join("a.txt")).expect("read"),
        b"hello"
    );
    assert_eq!(
        Line::parse(&setup.server.next_line()).summary(),
        "login bob 0 bytes success"
    );
    let get = Line::parse(&setup.server.next_line());
    assert_eq!(get.summary(), "get a.txt 5 bytes success");
    assert_eq!(get.user, "bob");

    let out = setup.py(&["list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("server: permission-denied: this server requires a login"),
        "{out:?}"
    );
    let list = Line::parse(&setup.server.next_line());
    assert_eq!(list.summary(), "list - 0 entries permission-denied");
    assert_eq!(list.user, "-");
}

/// A wrong password and an unknown user get the same auth-failed answer, and nothing else
/// happens on their connections.
#[test]
fn wrong_password_is_auth_failed() {
    let Some(_) = python() else {
        return skip("wrong_password_is_auth_failed");
    };
    let setup = Setup::with_accounts(&[]);
    fs::write(setup.served().join("a.txt"), b"hello").expect("write");
    for (user, password) in [("alice", "wrong horse"), ("mallory", "correct horse")] {
        let out = setup.py_as(user, password, &["get", "a.txt"]);
        assert_eq!(out.code, Some(1), "{user}: {out:?}");
        assert!(
            out.stderr
                .contains("server: auth-failed: login failed: wrong user name or password"),
            "{user}: {out:?}"
        );
        let line = Line::parse(&setup.server.next_line());
        assert_eq!(line.op, "login", "{line:?}");
        assert_eq!(line.kind.as_deref(), Some("auth-failed"), "{line:?}");
        assert_eq!(line.user, "-", "{line:?}");
    }
    assert!(!setup.local().join("a.txt").exists());
    assert_eq!(
        setup.server.try_line(std::time::Duration::from_millis(200)),
        None
    );
}

/// With `--anonymous read`, the script without `--user` lists, and its upload is refused by
/// the server with permission-denied before any data.
#[test]
fn anonymous_readers_may_not_upload() {
    let Some(python) = python() else {
        return skip("anonymous_readers_may_not_upload");
    };
    let setup = Setup::with_accounts(&["--anonymous", "read"]);
    fs::write(setup.served().join("a.txt"), b"hello").expect("write");
    setup.list_and_get("a.txt", b"hello");
    if !python.xxhash {
        return;
    }
    let out = setup.py(&["put", &setup.local_file("b.txt", b"nope")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("server: permission-denied: anonymous users may only read"),
        "{out:?}"
    );
    let put = Line::parse(&setup.server.next_line());
    assert_eq!(put.summary(), "put b.txt 0 bytes permission-denied");
    assert!(!setup.served().join("b.txt").exists());
}
