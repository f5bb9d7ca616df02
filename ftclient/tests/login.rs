//! `ftclient --user NAME` against the real `ftserver --users FILE`: what each role may do,
//! seen as a person sees it (exit status, report lines, files on both sides); what a server
//! that requires a login refuses to a client without one, and what `--anonymous read`
//! allows; one message for a wrong password and an unknown user; the options that never
//! let a password cross in clear.

mod util;

use std::fs;
use std::process::Command;

use ftlib::Role;
use ftlib::accounts::add_user;
use tempfile::TempDir;
use util::{Fixture, Line, Output, ftclient, ftclient_in, names_in, reports, run};

const WRITER: (&str, &str) = ("writer", "w-secret");
const READER: (&str, &str) = ("reader", "r-secret");

/// A server with a writer and a reader (users file in its own directory), `seed.txt`
/// served, and `up.txt` ready to upload in the client's directory.
struct Accounts {
    fx: Fixture,
    _users: TempDir,
}

impl Accounts {
    /// `ftserver --users FILE EXTRA…`.
    fn start(extra: &[&str]) -> Accounts {
        let users = tempfile::tempdir().expect("tempdir");
        let file = users.path().join("users");
        for ((name, password), role) in [(WRITER, Role::Write), (READER, Role::Read)] {
            add_user(&file, name, role, password).expect("add user");
        }
        let mut options = vec!["--users", file.to_str().expect("a UTF-8 path")];
        options.extend_from_slice(extra);
        let fx = Fixture::with_options(&options);
        fs::write(fx.served().join("seed.txt"), b"seed").expect("seed");
        fs::write(fx.local().join("up.txt"), b"hello").expect("local file");
        Accounts { fx, _users: users }
    }

    /// `ftclient [--user NAME] 127.0.0.1 PORT ARGS… --dir LOCAL --fingerprint FP`, with
    /// `FT_PASSWORD` the login's password, or unset without a login.
    fn ft(&self, login: Option<(&str, &str)>, args: &[&str]) -> Output {
        ft_as(&self.fx, login, args)
    }

    /// The server's next report line, as `USER OP NAME success|KIND`.
    fn next(&self) -> String {
        next(&self.fx)
    }
}

/// `ftclient [--user NAME] …` on `fx`'s server (see [`Accounts::ft`]).
fn ft_as(fx: &Fixture, login: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut command = Command::new(ftclient());
    command.current_dir(fx.cwd());
    match login {
        Some((user, password)) => command.args(["--user", user]).env("FT_PASSWORD", password),
        None => command.env_remove("FT_PASSWORD"),
    };
    command.args(fx.args(args)).args(fx.trust());
    run(command)
}

/// `fx`'s server's next report line, as `USER OP NAME success|KIND`.
fn next(fx: &Fixture) -> String {
    let line = Line::parse(&fx.server.next_line());
    format!(
        "{} {} {} {}",
        line.user,
        line.op,
        line.name,
        line.kind.as_deref().unwrap_or("success")
    )
}

/// The one report line of `out` on stdout (a put or a get).
fn only_line(out: &Output) -> Line {
    let mut lines = reports(&out.stdout);
    assert_eq!(lines.len(), 1, "{out:?}");
    lines.remove(0)
}

/// A list's report line: on stderr, its entries being on stdout.
fn list_line(out: &Output) -> Line {
    let mut lines = reports(&out.stderr);
    assert_eq!(lines.len(), 1, "{out:?}");
    lines.remove(0)
}

/// The writer puts, gets and lists; every report line, the client's and the server's,
/// names it.
#[test]
fn a_writer_puts_gets_and_lists_under_its_name() {
    let a = Accounts::start(&[]);
    let out = a.ft(Some(WRITER), &["put", "up.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = only_line(&out);
    assert_eq!(
        (line.user.as_str(), line.summary().as_str()),
        ("writer", "put up.txt 5 bytes success")
    );
    assert_eq!(a.fx.served_bytes("up.txt"), b"hello");

    fs::remove_file(a.fx.local().join("up.txt")).expect("rm");
    let out = a.ft(Some(WRITER), &["get", "up.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = only_line(&out);
    assert_eq!(
        (line.user.as_str(), line.summary().as_str()),
        ("writer", "get up.txt 5 bytes success")
    );
    assert_eq!(
        fs::read(a.fx.local().join("up.txt")).expect("read"),
        b"hello"
    );

    let out = a.ft(Some(WRITER), &["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["seed.txt", "up.txt"]);
    let line = list_line(&out);
    assert_eq!(
        (line.user.as_str(), line.summary().as_str()),
        ("writer", "list - 2 entries success")
    );

    let out = a.ft(Some(WRITER), &["--json", "--overwrite", "get", "seed.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(json["user"], "writer");

    // Resumable transfers go one by one, and are reported the same way.
    fs::write(a.fx.local().join("again.txt"), b"again").expect("local file");
    for args in [
        ["put", "--resume", "again.txt"],
        ["get", "--resume", "up.txt"],
    ] {
        let mut args = args.to_vec();
        args.insert(0, "--overwrite");
        let out = a.ft(Some(WRITER), &args);
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        assert_eq!(only_line(&out).user, "writer", "{args:?}");
    }
    assert_eq!(a.fx.served_bytes("again.txt"), b"again");

    for expected in [
        "writer login writer success",
        "writer put up.txt success",
        "writer login writer success",
        "writer get up.txt success",
        "writer login writer success",
        "writer list - success",
        "writer login writer success",
        "writer get seed.txt success",
        "writer login writer success",
        "writer put again.txt success",
        "writer login writer success",
        "writer get up.txt success",
    ] {
        assert_eq!(a.next(), expected);
    }
}

/// The reader gets and lists; its put is refused by the client itself, after the login
/// said `read`: nothing is sent (the server reports the login and nothing else for it) and
/// nothing is stored.
#[test]
fn a_reader_gets_and_lists_but_its_put_is_refused_before_sending() {
    let a = Accounts::start(&[]);
    let out = a.ft(Some(READER), &["get", "seed.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(only_line(&out).user, "reader");
    assert_eq!(
        fs::read(a.fx.local().join("seed.txt")).expect("read"),
        b"seed"
    );
    let out = a.ft(Some(READER), &["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(list_line(&out).user, "reader");

    let out = a.ft(Some(READER), &["put", "up.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = only_line(&out);
    assert_eq!(
        (line.user.as_str(), line.summary().as_str()),
        ("reader", "put up.txt 0 bytes permission-denied")
    );
    assert_eq!(
        line.message,
        "user reader may only read (role read): uploads are refused"
    );
    let out = a.ft(Some(READER), &["put", "--resume", "up.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(only_line(&out).message, line.message);
    assert_eq!(names_in(&a.fx.served()), ["seed.txt"]);

    // A listing after the puts: the server's lines go from the puts' logins straight to it.
    let out = a.ft(Some(READER), &["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "reader login reader success",
        "reader get seed.txt success",
        "reader login reader success",
        "reader list - success",
        "reader login reader success",
        "reader login reader success",
        "reader login reader success",
        "reader list - success",
    ] {
        assert_eq!(a.next(), expected);
    }
}

/// Without `--user`, a server that requires a login refuses every request with
/// `permission-denied` and says how to log in; nothing moves either way.
#[test]
fn without_a_login_nothing_is_served() {
    let a = Accounts::start(&[]);
    let refusal = "server: this server requires a login: use --user NAME";

    let out = a.ft(None, &["list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "");
    let line = list_line(&out);
    assert_eq!(
        (line.user.as_str(), line.summary().as_str()),
        ("-", "list - 0 entries permission-denied")
    );
    assert_eq!(line.message, refusal);

    let out = a.ft(None, &["get", "seed.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = only_line(&out);
    assert_eq!(line.summary(), "get seed.txt 0 bytes permission-denied");
    // The server's words alone: a hint about its files would mislead.
    assert_eq!(line.message, refusal);
    assert_eq!(names_in(&a.fx.local()), ["up.txt"]);

    let out = a.ft(None, &["put", "up.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = only_line(&out);
    assert_eq!(line.summary(), "put up.txt 0 bytes permission-denied");
    assert_eq!(line.message, refusal);
    assert_eq!(names_in(&a.fx.served()), ["seed.txt"]);

    for expected in [
        "- list - permission-denied",
        "- get seed.txt permission-denied",
        "- put up.txt permission-denied",
    ] {
        assert_eq!(a.next(), expected);
    }
}

/// `--anonymous read`: anyone lists and gets, without a name (`-`); an upload still needs
/// an account that may write.
#[test]
fn anonymous_read_lets_anyone_get_and_list_but_not_put() {
    let a = Accounts::start(&["--anonymous", "read"]);
    let out = a.ft(None, &["list"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "seed.txt\n");
    assert_eq!(list_line(&out).user, "-");
    let out = a.ft(None, &["get", "seed.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(only_line(&out).user, "-");
    assert_eq!(
        fs::read(a.fx.local().join("seed.txt")).expect("read"),
        b"seed"
    );

    let out = a.ft(None, &["put", "up.txt"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = only_line(&out);
    assert_eq!(line.summary(), "put up.txt 0 bytes permission-denied");
    assert_eq!(
        line.message,
        "server: anonymous users may only read: log in with --user NAME"
    );
    assert_eq!(names_in(&a.fx.served()), ["seed.txt"]);

    let out = a.ft(Some(WRITER), &["put", "up.txt"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(a.fx.served_bytes("up.txt"), b"hello");
    for expected in [
        "- list - success",
        "- get seed.txt success",
        "- put up.txt permission-denied",
        "writer login writer success",
        "writer put up.txt success",
    ] {
        assert_eq!(a.next(), expected);
    }
}

/// A wrong password and an unknown user print the same words, exit 1, and download
/// nothing.
#[test]
fn a_wrong_password_and_an_unknown_user_read_the_same() {
    let a = Accounts::start(&[]);
    let wrong = a.ft(Some(("writer", "r-secret")), &["get", "seed.txt"]);
    let unknown = a.ft(Some(("nobody", "w-secret")), &["get", "seed.txt"]);
    let expected = format!(
        "ftclient: cannot log in to 127.0.0.1:{}: server: login failed: wrong user name or \
         password; check the user name and the password (FT_PASSWORD or the prompt)\n",
        a.fx.port()
    );
    for out in [&wrong, &unknown] {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout, "");
        assert_eq!(out.stderr, expected);
    }
    assert_eq!(names_in(&a.fx.local()), ["up.txt"]);
    assert_eq!(a.next(), "- login writer auth-failed");
    assert_eq!(a.next(), "- login nobody auth-failed");
}

/// Usage errors that keep a password off the network: `--plain` with `--user`, and
/// `--user` with no password to read (no FT_PASSWORD, stdin not a terminal). Neither
/// connects: the server's first report line is the listing that follows.
#[test]
fn a_password_is_never_sent_in_clear_nor_invented() {
    let a = Accounts::start(&["--anonymous", "read"]);
    let plain = ftclient_in(
        &a.fx.cwd(),
        a.fx.args(&["--plain", "--user", "writer", "list"]),
    );
    assert_eq!(plain.code, Some(2), "{plain:?}");
    assert!(
        plain
            .stderr
            .contains("the argument '--plain' cannot be used with '--user <NAME>'"),
        "{plain:?}"
    );

    let mut command = Command::new(ftclient());
    command
        .current_dir(a.fx.cwd())
        .env_remove("FT_PASSWORD")
        .args(["--user", "writer"])
        .args(a.fx.args(&["list"]))
        .args(a.fx.trust());
    let no_password = run(command);
    assert_eq!(no_password.code, Some(2), "{no_password:?}");
    assert_eq!(
        no_password.stderr,
        "ftclient: --user writer needs a password: set FT_PASSWORD, or run on a terminal to \
         be asked\n"
    );
    assert_eq!(no_password.stdout, "");

    assert_eq!(a.ft(None, &["list"]).code, Some(0));
    assert_eq!(a.next(), "- list - success");
}

/// `--user` against a server without accounts fails with the server's reason.
#[test]
fn a_login_to_a_server_without_accounts_says_so() {
    let fx = Fixture::new();
    let out = ft_as(&fx, Some(WRITER), &["list"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "ftclient: cannot log in to 127.0.0.1:{}: server: this server has no accounts: \
             connect without --user\n",
            fx.port()
        )
    );
    assert_eq!(next(&fx), "- login writer auth-failed");
}
