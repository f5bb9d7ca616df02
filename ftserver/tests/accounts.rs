//! Accounts on the real `ftserver` process: `--add-user` and the users file it writes, the
//! options that refuse to start (`--users` with `--plain` or inside the root), the report
//! lines of logins and of a logged-in client's requests, and the slowdown of repeated
//! failures from one address.

mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ftlib::accounts::Users;
use ftlib::{Client, Credentials, Error, ErrorKind, Password, Role};
use util::{DEADLINE, Line, Output, ServerProcess, ftserver, names_in, pinned};

const LOGIN_FAILED: &str = "login failed: wrong user name or password";

/// What `--add-user` adds after saying what it did.
const RESTART: &str =
    "; a running ftserver reads the file when it starts: restart it to use the change";

/// `ftserver --users FILE --add-user NAME --role ROLE`, with `FT_PASSWORD` set to
/// `password`, or unset for `None`; stdin is not a terminal.
fn add_user(file: &Path, name: &str, role: &str, password: Option<&str>) -> Output {
    let mut command = Command::new(ftserver());
    command
        .arg("--users")
        .arg(file)
        .args(["--add-user", name, "--role", role]);
    match password {
        Some(password) => command.env("FT_PASSWORD", password),
        None => command.env_remove("FT_PASSWORD"),
    };
    ft_testutil::run(command)
}

/// A users file in its own directory (never the served one) with a writer and a reader.
fn users_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    for (name, role, password) in [
        ("writer", "write", "w-secret"),
        ("reader", "read", "r-secret"),
    ] {
        let out = add_user(&file, name, role, Some(password));
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    (dir, file)
}

/// A library client for `server`, logged in as `login` if given.
fn log_in(server: &ServerProcess, login: Option<(&str, &str)>) -> ftlib::Result<Client> {
    let mut config = pinned(server);
    config.timeout = DEADLINE;
    config.login = login.map(|(user, password)| Credentials {
        user: user.into(),
        password: Password(password.into()),
    });
    Client::connect(server.addr, config)
}

/// `ftserver 0 --bind 127.0.0.1 --root ROOT --users FILE EXTRA…`.
fn start(root: &Path, users: &Path, extra: &[&str]) -> ServerProcess {
    let users = users.to_str().expect("a UTF-8 path");
    let mut args = vec!["--users", users];
    args.extend_from_slice(extra);
    ServerProcess::start(root, &args)
}

/// The next report line of `server`, as `USER OP NAME success|KIND`.
fn next(server: &ServerProcess) -> String {
    let line = Line::parse(&server.next_line());
    format!(
        "{} {} {} {}",
        line.user,
        line.op,
        line.name,
        line.kind.as_deref().unwrap_or("success")
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// `--add-user` needs no PORT, says what it did, and writes a file only its owner may read,
/// with an argon2id hash and never the password; a second `--add-user` of the same name
/// replaces its line where it stands and leaves the others as they were.
#[test]
fn add_user_writes_a_private_file_of_hashes_and_replaces_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    let shown = file.display();

    let out = add_user(&file, "alice", "write", Some("correct horse"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("added user alice (write) to {shown}{RESTART}\n")
    );
    assert_eq!(out.stderr, "");
    let out = add_user(&file, "bob", "read", Some("battery staple"));
    assert_eq!(
        out.stdout,
        format!("added user bob (read) to {shown}{RESTART}\n")
    );
    let before = fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = before.lines().collect();
    assert_eq!(lines.len(), 2, "{before}");
    assert!(
        lines[0].starts_with("alice:write:$argon2id$v=19$m=19456,t=2,p=1$"),
        "{before}"
    );
    assert!(
        lines[1].starts_with("bob:read:$argon2id$v=19$m=19456,t=2,p=1$"),
        "{before}"
    );
    for password in ["correct horse", "battery staple", "correct", "battery"] {
        assert!(!before.contains(password), "{password:?} is in the file");
    }
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let users = Users::load(&file).expect("load");
    assert_eq!(users.verify("alice", "correct horse"), Some(Role::Write));
    assert_eq!(users.verify("bob", "battery staple"), Some(Role::Read));

    let out = add_user(&file, "alice", "read", Some("new password"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("replaced user alice (read) in {shown}{RESTART}\n")
    );
    let after = fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = after.lines().collect();
    assert_eq!(lines.len(), 2, "{after}");
    assert!(lines[0].starts_with("alice:read:$argon2id$"), "{after}");
    assert_eq!(
        lines[1],
        before.lines().nth(1).expect("bob"),
        "bob untouched"
    );
    assert!(!after.contains("new password"));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    let users = Users::load(&file).expect("load");
    assert_eq!(users.verify("alice", "new password"), Some(Role::Read));
    assert_eq!(users.verify("alice", "correct horse"), None);
    assert_eq!(names_in(dir.path()), ["users"], "no temporary file left");
}

/// `--remove-user` drops only that account's line (a comment and the other account stay,
/// and the others still log in while it no longer does); a name that is not there fails
/// with exit 1 and leaves the file as it was.
#[test]
fn remove_user_drops_one_line_and_the_login() {
    let (_dir, file) = users_file();
    let mut text = fs::read_to_string(&file).expect("read");
    text.insert_str(0, "# team accounts\n");
    fs::write(&file, &text).expect("write");
    let remove = |name: &str| {
        let mut command = Command::new(ftserver());
        command
            .arg("--users")
            .arg(&file)
            .args(["--remove-user", name]);
        ft_testutil::run(command)
    };
    let out = remove("writer");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!("removed user writer from {}{RESTART}\n", file.display())
    );
    let left = fs::read_to_string(&file).expect("read");
    let want: String = text
        .lines()
        .filter(|l| !l.starts_with("writer:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(left, want);
    assert_eq!(mode(&file), 0o600);

    let out = remove("writer");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no user writer in"), "{out:?}");
    assert_eq!(fs::read_to_string(&file).expect("read"), left);

    let root = tempfile::tempdir().expect("tempdir");
    let server = start(root.path(), &file, &[]);
    assert!(log_in(&server, Some(("reader", "r-secret"))).is_ok());
    let refused = log_in(&server, Some(("writer", "w-secret"))).expect_err("removed");
    assert_eq!(refused.kind(), ErrorKind::AuthFailed, "{refused}");
}

/// Each refusal of `--add-user`: its exit status and message, and the users file exactly as
/// it was, with nothing left beside it.
#[test]
fn add_user_refuses_what_it_cannot_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("users");
    let out = add_user(&file, "alice", "write", Some("pw"));
    assert_eq!(out.code, Some(0), "{out:?}");
    let original = fs::read(&file).expect("read");
    let shown = file.display().to_string();
    let long = "n".repeat(65);
    let rows: Vec<(&str, &str, Option<&str>, i32, String)> = vec![
        (
            "bob",
            "read",
            Some(""),
            1,
            format!("ftserver: cannot add user bob to {shown}: the password is empty\n"),
        ),
        (
            "alice",
            "write",
            Some(""),
            1,
            format!("ftserver: cannot add user alice to {shown}: the password is empty\n"),
        ),
        (
            "b b",
            "read",
            Some("pw"),
            1,
            format!(
                "ftserver: cannot add user b b to {shown}: invalid user name \"b b\": 1 to 64 \
                 characters of A-Z a-z 0-9 . _ -\n"
            ),
        ),
        (
            "a:b",
            "read",
            Some("pw"),
            1,
            "invalid user name a:b: 1 to 64".into(),
        ),
        (&long, "read", Some("pw"), 1, "invalid user name".into()),
        (
            "bob",
            "read",
            None,
            1,
            "ftserver: no password: set FT_PASSWORD, or run on a terminal to be asked for it\n"
                .into(),
        ),
        (
            "bob",
            "admin",
            Some("pw"),
            2,
            "invalid value 'admin' for '--role <ROLE>'".into(),
        ),
    ];
    for (name, role, password, code, message) in rows {
        let out = add_user(&file, name, role, password);
        let row = format!("{name} {role} {password:?}");
        assert_eq!(out.code, Some(code), "{row}: {out:?}");
        assert!(out.stderr.contains(&message), "{row}: {:?}", out.stderr);
        assert_eq!(out.stdout, "", "{row}");
        assert!(
            fs::read(&file).expect("read") == original,
            "{row}: file changed"
        );
        assert_eq!(names_in(dir.path()), ["users"], "{row}");
    }

    // Usage errors: --add-user needs --users and --role.
    let file_arg = file.to_str().expect("a UTF-8 path");
    for args in [
        vec!["--add-user", "bob", "--role", "read"],
        vec!["--users", file_arg, "--add-user", "bob"],
        vec!["--users", file_arg, "--role", "read"],
    ] {
        let mut command = Command::new(ftserver());
        command.args(&args).env("FT_PASSWORD", "pw");
        let out = ft_testutil::run(command);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
    }
    assert!(fs::read(&file).expect("read") == original);
}

/// What refuses to start: `--users` with `--plain` (passwords would cross in clear; a
/// usage error, status 2, as the other conflicting options), a
/// users file inside the served root (also through `..` or a symbolic link), a missing
/// users file, and `--anonymous` other than with `--users` and `read`. Nothing is served.
#[test]
fn unsafe_or_invalid_account_options_refuse_to_start() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("root");
    fs::create_dir_all(root.join("sub")).expect("mkdir");
    let (_users_dir, users) = users_file();
    fs::copy(&users, root.join("users")).expect("copy into the root");
    let inside = root.join("users");
    let roundabout = root.join("sub").join("..").join("users");
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut rows: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec!["--users".into(), path(&users), "--plain".into()],
            2,
            "error: --users needs TLS: passwords would cross the network in clear; drop \
             --plain\n"
                .into(),
        ),
        (
            vec!["--users".into(), path(&inside)],
            1,
            format!(
                "ftserver: the users file {} is inside the served root {}: clients could \
                 download the password hashes; keep it elsewhere\n",
                inside.display(),
                root.display()
            ),
        ),
        (
            vec!["--users".into(), path(&roundabout)],
            1,
            "is inside the served root".into(),
        ),
        (
            vec!["--users".into(), path(&base.path().join("missing"))],
            1,
            "reading the users file".into(),
        ),
        (
            vec!["--anonymous".into(), "read".into()],
            2,
            "--users <FILE>".into(),
        ),
        (
            vec![
                "--users".into(),
                path(&users),
                "--anonymous".into(),
                "write".into(),
            ],
            2,
            "invalid value 'write' for '--anonymous <ROLE>'".into(),
        ),
    ];
    #[cfg(unix)]
    {
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&inside, &link).expect("symlink");
        rows.push((
            vec!["--users".into(), path(&link)],
            1,
            "is inside the served root".into(),
        ));
    }
    for (extra, code, message) in rows {
        let mut command = Command::new(ftserver());
        command
            .args(["0", "--bind", "127.0.0.1", "--root"])
            .arg(&root)
            .args(&extra);
        let out = ft_testutil::run(command);
        assert_eq!(out.code, Some(code), "{extra:?}: {out:?}");
        assert!(out.stderr.contains(&message), "{extra:?}: {:?}", out.stderr);
        assert_eq!(out.stdout, "", "{extra:?}: nothing may be served");
    }
}

/// Without `--users` the server says on stderr that anyone may read and write; with it,
/// it does not, unless the file has no account.
#[cfg(unix)]
#[test]
fn only_a_server_without_accounts_warns_that_anyone_may_write() {
    let root = tempfile::tempdir().expect("tempdir");
    let open = ServerProcess::start(root.path(), &[]);
    open.wait_for_stderr(&format!(
        "ftserver: warning: no --users: anyone who can reach port {} may download, list \
         and upload files; see --users to require a login",
        open.addr.port()
    ));

    let (_dir, users) = users_file();
    let mut closed = start(root.path(), &users, &[]);
    closed.signal(libc::SIGTERM);
    closed.wait_exit(DEADLINE);
    // Everything it wrote before the shutdown line has been read by then.
    closed.wait_for_stderr("shutting down");
    assert!(!closed.stderr().contains("warning"), "{}", closed.stderr());

    let empty = users.with_file_name("empty");
    fs::write(&empty, "# nobody yet\n").expect("write");
    let nobody = start(root.path(), &empty, &[]);
    nobody.wait_for_stderr(&format!(
        "ftserver: warning: {} has no accounts: nobody can log in",
        empty.display()
    ));
}

/// A wrong password and an unknown user: the client gets the same kind and message, and the
/// server reports each as a failed `login` naming the user attempted, nobody logged in.
#[test]
fn failed_logins_read_the_same_and_are_reported_with_the_attempted_user() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, users) = users_file();
    let server = start(root.path(), &users, &[]);
    let mut answers = Vec::new();
    for (user, password) in [("writer", "r-secret"), ("nobody", "w-secret")] {
        match log_in(&server, Some((user, password))).expect_err("refused") {
            Error::Remote { kind, message, .. } => answers.push((kind, message)),
            other => panic!("{user}: expected the server's refusal, got {other:?}"),
        }
        let line = Line::parse(&server.next_line());
        assert_eq!(
            (line.user.as_str(), line.op.as_str(), line.name.as_str()),
            ("-", "login", user)
        );
        assert_eq!(line.kind.as_deref(), Some("auth-failed"));
        assert_eq!(line.message, LOGIN_FAILED);
    }
    assert_eq!(answers[0], (ErrorKind::AuthFailed, LOGIN_FAILED.to_owned()));
    assert_eq!(answers[0], answers[1]);
}

/// Every request of a logged-in client is reported under its name (the 4th field), those of
/// a client that did not log in under `-`; with `--json`, `"user"` is the name or null.
#[test]
fn report_lines_name_the_user_of_every_request() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::write(root.path().join("seed.txt"), b"seed").expect("seed");
    let (_dir, users) = users_file();
    let server = start(root.path(), &users, &["--anonymous", "read"]);

    let mut writer = log_in(&server, Some(("writer", "w-secret"))).expect("log in");
    writer
        .put_reader(&b"hello"[..], 5, "up.txt", |_| {})
        .expect("put");
    writer
        .get_into("up.txt", &mut Vec::new(), |_| {})
        .expect("get");
    writer.list().expect("list");
    let mut reader = log_in(&server, Some(("reader", "r-secret"))).expect("log in");
    reader
        .get_into("seed.txt", &mut Vec::new(), |_| {})
        .expect("get");
    let mut anonymous = log_in(&server, None).expect("connect");
    anonymous.list().expect("list");
    anonymous
        .get_into("seed.txt", &mut Vec::new(), |_| {})
        .expect("get");
    let refused = anonymous
        .put_reader(&b"x"[..], 1, "anon.txt", |_| {})
        .expect_err("anonymous users may only read");
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    // The connection goes on after a refusal.
    anonymous.list().expect("list");

    let lines: Vec<String> = (0..10).map(|_| next(&server)).collect();
    assert_eq!(
        lines,
        [
            "writer login writer success",
            "writer put up.txt success",
            "writer get up.txt success",
            "writer list - success",
            "reader login reader success",
            "reader get seed.txt success",
            "- list - success",
            "- get seed.txt success",
            "- put anon.txt permission-denied",
            "- list - success",
        ]
    );
}

/// `--json`: the user is a field, null without a login.
#[test]
fn json_reports_carry_the_user_or_null() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, users) = users_file();
    let server = start(root.path(), &users, &["--anonymous", "read", "--json"]);
    log_in(&server, Some(("reader", "r-secret")))
        .expect("log in")
        .list()
        .expect("list");
    log_in(&server, None)
        .expect("connect")
        .list()
        .expect("list");
    let users: Vec<(serde_json::Value, serde_json::Value)> = (0..3)
        .map(|_| {
            let json: serde_json::Value =
                serde_json::from_str(&server.next_line()).expect("a JSON line");
            (json["user"].clone(), json["op"].clone())
        })
        .collect();
    assert_eq!(
        users,
        [
            ("reader".into(), "login".into()),
            ("reader".into(), "list".into()),
            (serde_json::Value::Null, "list".into()),
        ]
    );
}

/// After three wrong passwords from one address the fourth attempt is answered only after
/// the throttle's wait (250 ms, doubled per failure: 1 s by then). Only a lower bound is
/// checked, so a slow machine cannot make this fail.
#[test]
fn repeated_failures_from_one_address_are_slowed_down() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_dir, users) = users_file();
    let server = start(root.path(), &users, &[]);
    let attempt = || {
        let started = Instant::now();
        let refused = log_in(&server, Some(("writer", "guess"))).expect_err("wrong password");
        assert_eq!(refused.kind(), ErrorKind::AuthFailed);
        started.elapsed()
    };
    for _ in 0..3 {
        attempt();
    }
    let fourth = attempt();
    assert!(
        fourth >= Duration::from_millis(900),
        "the fourth failure took only {fourth:?}"
    );
    for _ in 0..4 {
        assert_eq!(next(&server), "- login writer auth-failed");
    }
}

/// Thirty logins at once keep the server's memory bounded: verifications take turns two
/// at a time in two buffers kept for the next ones. (The argon2 crate's own verification
/// allocated 19 MiB anew for each, and the allocator kept what each thread had freed: 30
/// concurrent logins left a server 340–400 MB large.)
#[cfg(target_os = "linux")]
#[test]
fn concurrent_logins_take_bounded_memory() {
    let (_dir, file) = users_file();
    let root = tempfile::tempdir().expect("tempdir");
    let server = start(root.path(), &file, &["--max-connections", "64"]);
    let mut config = pinned(&server);
    config.timeout = DEADLINE;
    config.login = Some(Credentials {
        user: "reader".into(),
        password: Password("r-secret".into()),
    });
    let addr = server.addr;
    std::thread::scope(|scope| {
        let logins: Vec<_> = (0..30)
            .map(|_| {
                let config = config.clone();
                scope.spawn(move || Client::connect(addr, config).map(|_| ()))
            })
            .collect();
        for login in logins {
            login.join().expect("no panic").expect("logged in");
        }
    });
    let status = fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    // Two verifications of 19 MiB, TLS sessions, thread stacks: about 60 MB here.
    assert!(peak_kib < 150 * 1024, "peak resident memory {peak_kib} KiB");
}
