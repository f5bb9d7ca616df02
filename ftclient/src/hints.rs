//! What the user can do about a failure: a short hint appended to the library's message,
//! chosen by operation and error kind, naming the host, port and directory where it helps.

use std::io;
use std::path::Path;

use ftlib::{Error, ErrorKind, Op};

/// Where the client was talking to, for hints that name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The host as given (brackets removed).
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The local directory (`--dir`).
    pub dir: &'a Path,
    /// `--timeout`, in seconds.
    pub timeout: u64,
    /// False with `--no-resume`: an interrupted transfer keeps nothing to continue.
    pub resume: bool,
}

/// What to do after `error` in operation `op` (`Connect` for reaching the server), if
/// anything useful can be said.
pub(crate) fn hint(op: Op, error: &Error, to: Target<'_>) -> Option<String> {
    let Target {
        host,
        port,
        dir,
        timeout,
        resume,
    } = to;
    let dir = dir.display();
    // A kind the server reported is about the server's side, otherwise about ours.
    let remote = matches!(error, Error::Remote { .. } | Error::Aborted { .. });
    // A refusal by role or for want of a login says what to do itself: ours, and the
    // server's, whose account messages name the option to use (PROTOCOL.md 5.4, 5.5: "use
    // --user NAME", "connect without --user"). A hint there would contradict them.
    match error {
        Error::PermissionDenied(_) => return None,
        Error::AlreadyExists {
            why: ftlib::Taken::SameCommand,
            ..
        } => {
            return Some(match op {
                Op::Get => "download it in a command of its own, with --dir elsewhere".into(),
                _ => "upload it in a command of its own, with --as or --to".into(),
            });
        }
        Error::Remote { message, .. }
            if message.contains("--user") || message.contains("may only read") =>
        {
            return None;
        }
        _ => {}
    }
    let text = match (op, error.kind()) {
        (_, ErrorKind::Connection) => {
            let what = match error {
                Error::Resolve(_) => format!("check the host name {host:?}"),
                Error::Network { source, .. } => match source.kind() {
                    io::ErrorKind::ConnectionRefused => {
                        format!("is ftserver running on {host}, port {port}?")
                    }
                    io::ErrorKind::TimedOut => format!(
                        "nothing answered within {timeout} s: check the host and port, \
                     and that no firewall blocks port {port}"
                    ),
                    _ => format!("check the network, and that ftserver still runs on {host}"),
                },
                _ => {
                    format!("check that ftserver still runs on {host}, port {port}, and try again")
                }
            };
            // A transfer cut: what it moved is kept, as after Ctrl-C.
            if matches!(op, Op::Put | Op::Get) && resume {
                what + "; running the same command again goes on: a file of 16 MiB or more \
                        continues where it stopped"
            } else {
                what
            }
        }
        // A directory on the way is a link or a file there (PROTOCOL 6.1's messages): no
        // name of this one would do.
        (Op::Put, ErrorKind::AlreadyExists)
            if error.to_string().contains("which ft does not follow")
                || error
                    .to_string()
                    .contains("already exists and is not a directory") =>
        {
            "ft puts nothing through a symbolic link or a file on the server's path: choose \
             another directory (--to), or ask the server's operator"
                .into()
        }
        (Op::Put, ErrorKind::AlreadyExists) => {
            "the server never replaces a file: choose another name (rename or copy yours)".into()
        }
        (Op::Get, ErrorKind::AlreadyExists) if !remote => match error {
            // --overwrite replaces only a regular file: anything else stays.
            Error::AlreadyExists {
                why:
                    ftlib::Taken::Symlink
                    | ftlib::Taken::Directory
                    | ftlib::Taken::NotAFile
                    | ftlib::Taken::NotADirectory,
                ..
            } => "ft replaces only a regular file, even with --overwrite: move this one \
                  away, or download elsewhere with --dir"
                .into(),
            Error::AlreadyExists {
                why: ftlib::Taken::InUse,
                ..
            } => "another transfer of it is running; try again once it is done".into(),
            _ => "pass --overwrite to replace your copy, or --dir to download elsewhere".into(),
        },
        (Op::Get, ErrorKind::NotFound) if error.to_string().contains("(not a regular file)") => {
            "if it is a directory, download it with `get -r`".into()
        }
        (Op::Get, ErrorKind::NotFound) => {
            format!("`ftclient {host} {port} list` shows the files the server has")
        }
        (Op::Put, ErrorKind::NotFound) => match error {
            Error::NotFound {
                name,
                why: ftlib::Missing::NotRegular,
            } if Path::new(name).is_dir() => "it is a directory: upload it with put -r".into(),
            Error::NotFound {
                why: ftlib::Missing::NotRegular,
                ..
            } => "only regular files are uploaded; to send what a pipe or a device gives, \
                 read it as a stream: `put - --as NAME < FILE`"
                .into(),
            // Where a plain name (one component) was looked for: `--dir` first.
            Error::NotFound {
                name,
                why: ftlib::Missing::Local,
            } if Path::new(name).parent() == Some(to.dir) && to.dir != Path::new(".") => {
                format!("a plain name is looked up in {dir}, then in the current directory")
            }
            _ => return None,
        },
        (Op::Put, ErrorKind::InvalidName) => {
            "each part of a name must be a plain file name: not . or .., without control \
             characters or \\, at most 255 bytes (a Windows server refuses : too)"
                .into()
        }
        // `list` shows a directory as `NAME/`.
        (Op::Get, ErrorKind::InvalidName) if directory_name(error) => {
            "a name ending in / is a directory: download it with `get -r`".into()
        }
        (Op::Get, ErrorKind::InvalidName) => {
            format!("use a name as `ftclient {host} {port} list` prints it")
        }
        (Op::Put, ErrorKind::TooLarge) => {
            "the server's --max-file-size refuses it; ask its operator".into()
        }
        // A stream held in a temporary file until it is verified (`put -`, `get NAME -`).
        (_, ErrorKind::NoSpace) if !remote && error.to_string().contains("a temporary file in") => {
            "free space there, or set TMPDIR to a directory with room".into()
        }
        (_, ErrorKind::NoSpace) if !remote && error.to_string().contains("to the output") => {
            "the output's disk is full".into()
        }
        (_, ErrorKind::NoSpace) if remote || op == Op::Put => {
            "the server's disk is too full; ask its operator to free space".into()
        }
        (_, ErrorKind::NoSpace) => {
            format!("free space in {dir}, or download elsewhere with --dir")
        }
        (Op::Put, ErrorKind::PermissionDenied) if remote => {
            "the server may not write that directory: ask its operator".into()
        }
        (Op::Put, ErrorKind::PermissionDenied) => "check that you may read the file".into(),
        (Op::Get, ErrorKind::PermissionDenied) if remote => {
            "the server may not read it; tell its operator".into()
        }
        (Op::Get, ErrorKind::PermissionDenied) => format!("check that you may write to {dir}"),
        // A file the system gives a size of 0 but content (such as in /proc): only a
        // stream reads it whole.
        (Op::Put, ErrorKind::SizeMismatch)
            if !remote && matches!(error, Error::SizeMismatch { expected: 0, .. }) =>
        {
            format!(
                "its size is not known before it is read (a file of /proc or /sys): send it as \
                 a stream, `cat FILE | ftclient {host} {port} put - --as NAME`"
            )
        }
        (Op::Put, ErrorKind::SizeMismatch) if !remote => {
            "the file changed while it was sent; upload it again once it is complete".into()
        }
        (_, ErrorKind::ChecksumMismatch) => {
            "nothing was kept; try again (a file that changed since an interrupted transfer \
             starts over)"
                .into()
        }
        (_, ErrorKind::SizeMismatch) => {
            "the file changed while it was sent, so nothing was kept; try again once it is \
             complete"
                .into()
        }
        // Interrupted here (Ctrl-C): the server's cancelled means another client's doing.
        (Op::Put | Op::Get, ErrorKind::Cancelled) if !remote && resume => {
            "run the same command again to go on: a file of 16 MiB or more continues where \
             it stopped"
                .into()
        }
        (Op::Put | Op::Get, ErrorKind::Cancelled) if !remote => {
            "run the same command again to start over".into()
        }
        (_, ErrorKind::Busy | ErrorKind::ShuttingDown) => "try again later".into(),
        (Op::Put | Op::Get, ErrorKind::Timeout) if resume => format!(
            "the server stopped answering; run the same command again to go on (a file of 16 \
             MiB or more continues where it stopped), or raise --timeout (now {timeout} s)"
        ),
        (_, ErrorKind::Timeout) => {
            format!("the server stopped answering; try again, or raise --timeout (now {timeout} s)")
        }
        (_, ErrorKind::Version) => {
            "ftclient and ftserver speak different protocol versions; upgrade the older one".into()
        }
        (_, ErrorKind::Protocol) => format!("is {host}, port {port}, an ft server?"),
        (_, ErrorKind::AuthFailed) if remote => {
            "check the user name and the password (FT_PASSWORD or the prompt)".into()
        }
        _ => return None,
    };
    Some(text)
}

/// `message; hint`, or the message alone when there is no hint or it already says it.
pub(crate) fn with_hint(message: &str, hint: Option<String>) -> String {
    match hint {
        Some(hint) if !message.contains(&hint) => format!("{message}; {hint}"),
        _ => message.to_owned(),
    }
}

/// Whether `error` refuses a name ending in `/`, as `list` shows a directory.
fn directory_name(error: &Error) -> bool {
    matches!(error, Error::InvalidName { name, .. } if name.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftlib::{Changed, Missing, Side, Taken};

    fn to() -> Target<'static> {
        Target {
            host: "files.example",
            port: 6789,
            dir: Path::new("client_data"),
            timeout: 30,
            resume: true,
        }
    }

    fn remote(kind: ErrorKind) -> Error {
        Error::Remote {
            side: Side::Server,
            kind,
            message: "m".into(),
        }
    }

    fn net(kind: io::ErrorKind) -> Error {
        Error::Network {
            peer: "192.0.2.1:6789".into(),
            source: io::Error::from(kind),
        }
    }

    /// One row per situation a user meets: the hint holds the words they act on.
    #[test]
    fn hints_say_what_to_do() {
        let rows: Vec<(Op, Error, &str)> = vec![
            (
                Op::Connect,
                net(io::ErrorKind::ConnectionRefused),
                "is ftserver running on files.example, port 6789?",
            ),
            (Op::Connect, net(io::ErrorKind::TimedOut), "within 30 s"),
            (
                Op::Connect,
                Error::Resolve(io::Error::other("no such host")),
                "check the host name \"files.example\"",
            ),
            (Op::Connect, Error::Busy { live: 3 }, "try again later"),
            (
                Op::Put,
                remote(ErrorKind::AlreadyExists),
                "choose another name",
            ),
            (
                Op::Get,
                Error::AlreadyExists {
                    name: "x".into(),
                    why: Taken::Exists,
                },
                "pass --overwrite",
            ),
            (
                Op::Get,
                Error::AlreadyExists {
                    name: "x".into(),
                    why: Taken::Symlink,
                },
                "only a regular file, even with --overwrite",
            ),
            (
                Op::Get,
                Error::AlreadyExists {
                    name: "x".into(),
                    why: Taken::SameCommand,
                },
                "a command of its own",
            ),
            (
                Op::Get,
                remote(ErrorKind::NotFound),
                "`ftclient files.example 6789 list`",
            ),
            (
                Op::Get,
                Error::Remote {
                    side: Side::Server,
                    kind: ErrorKind::NotFound,
                    message: "doc not found (not a regular file)".into(),
                },
                "`get -r`",
            ),
            (
                Op::Put,
                Error::NotFound {
                    name: "client_data/x".into(),
                    why: Missing::Local,
                },
                "looked up in client_data, then in the current directory",
            ),
            (Op::Put, remote(ErrorKind::InvalidName), "a plain file name"),
            (Op::Get, remote(ErrorKind::InvalidName), "as `ftclient"),
            (
                Op::Get,
                Error::InvalidName {
                    name: "odd/".into(),
                    reason: "has an empty component",
                },
                "download it with `get -r`",
            ),
            (Op::Put, remote(ErrorKind::TooLarge), "--max-file-size"),
            (Op::Put, remote(ErrorKind::NoSpace), "server's disk"),
            (
                Op::Put,
                Error::io(
                    "holding the input in a temporary file in /tmp",
                    io::Error::from(io::ErrorKind::StorageFull),
                ),
                "set TMPDIR",
            ),
            (
                Op::Get,
                Error::io(
                    "writing to the output",
                    io::Error::from(io::ErrorKind::StorageFull),
                ),
                "the output's disk is full",
            ),
            (
                Op::Get,
                Error::io("writing", io::Error::from(io::ErrorKind::StorageFull)),
                "free space in client_data",
            ),
            (
                Op::Put,
                remote(ErrorKind::PermissionDenied),
                "the server may not write that directory",
            ),
            (
                Op::Get,
                Error::io("writing", io::Error::from(io::ErrorKind::PermissionDenied)),
                "write to client_data",
            ),
            (
                Op::Get,
                remote(ErrorKind::PermissionDenied),
                "the server may not read it",
            ),
            (
                Op::Connect,
                Error::Remote {
                    side: Side::Server,
                    kind: ErrorKind::AuthFailed,
                    message: "login failed: wrong user name or password".into(),
                },
                "check the user name and the password",
            ),
            (
                Op::Put,
                Error::SizeMismatch {
                    name: "f".into(),
                    expected: 2,
                    actual: 1,
                    why: Changed::Unknown,
                },
                "changed while it was sent",
            ),
            (
                Op::Get,
                Error::ChecksumMismatch { name: "f".into() },
                "try again",
            ),
            (Op::Put, remote(ErrorKind::ShuttingDown), "try again later"),
            (
                Op::Put,
                Error::Cancelled,
                "run the same command again to go on",
            ),
            (Op::Get, Error::Cancelled, "continues where it stopped"),
            (
                Op::Put,
                Error::Closed("in the middle of a file body"),
                "continues where it stopped",
            ),
            (
                Op::Get,
                Error::Remote {
                    side: Side::Server,
                    kind: ErrorKind::SizeMismatch,
                    message: "f: expected 5 bytes, got 6 (the file grew while being sent)".into(),
                },
                "the file changed while it was sent",
            ),
            (
                Op::Get,
                Error::Timeout(std::time::Duration::from_secs(30)),
                "raise --timeout (now 30 s)",
            ),
            (
                Op::Connect,
                Error::Version {
                    ours_min: 1,
                    ours_max: 1,
                    theirs_min: 2,
                    theirs_max: 2,
                },
                "upgrade the older one",
            ),
            (
                Op::Connect,
                Error::Protocol("bad magic".into()),
                "an ft server?",
            ),
            (
                Op::Put,
                Error::Closed("before answering"),
                "ftserver still runs on files.example, port 6789",
            ),
        ];
        for (op, error, want) in rows {
            let got = hint(op, &error, to()).unwrap_or_default();
            assert!(got.contains(want), "{op} {error}: {got:?} lacks {want:?}");
        }
        let starting_over = Target {
            resume: false,
            ..to()
        };
        let got = hint(Op::Get, &Error::Cancelled, starting_over).unwrap_or_default();
        assert!(got.contains("start over"), "{got:?}");
    }

    #[test]
    fn nothing_to_say_gives_no_hint() {
        let said = |kind, message: &str| Error::Remote {
            side: Side::Server,
            kind,
            message: message.into(),
        };
        for (op, error) in [
            (Op::List, Error::Cancelled),
            (Op::Put, remote(ErrorKind::Cancelled)),
            (Op::Put, remote(ErrorKind::ReadOnly)),
            (Op::Get, remote(ErrorKind::Io)),
            // Remote already-exists on get is another transfer of the same file, not ours.
            (Op::Get, remote(ErrorKind::AlreadyExists)),
            // The server's account refusals say what to do.
            (
                Op::Get,
                said(
                    ErrorKind::PermissionDenied,
                    "this server requires a login: use --user NAME",
                ),
            ),
            (
                Op::Put,
                said(
                    ErrorKind::PermissionDenied,
                    "anonymous users may only read: log in with --user NAME",
                ),
            ),
            (
                Op::Connect,
                said(
                    ErrorKind::AuthFailed,
                    "this server has no accounts: connect without --user",
                ),
            ),
            (
                Op::Put,
                Error::PermissionDenied(
                    "user r may only read (role read): uploads are refused".into(),
                ),
            ),
        ] {
            assert_eq!(hint(op, &error, to()), None, "{op} {error}");
        }
    }

    #[test]
    fn with_hint_appends_once() {
        assert_eq!(with_hint("x failed", None), "x failed");
        assert_eq!(
            with_hint("x failed", Some("try again".into())),
            "x failed; try again"
        );
        assert_eq!(
            with_hint("busy, try again later", Some("try again later".into())),
            "busy, try again later"
        );
    }
}
