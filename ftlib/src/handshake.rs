//! The hello exchange that opens every connection: pure decisions on the peer's hello
//! ([`accept_hello`] on the server, [`choose_version`] on the client) and the two thin
//! wrappers that move the hellos over a [`Connection`].

use crate::connection::Connection;
use crate::error::{Error, Result, Side};
use crate::protocol::{Hello, MAGIC, MIN_VERSION, Request, Response, VERSION};

/// The server's decision on the client's first message: the version the client chose.
///
/// # Errors
/// [`Error::Protocol`] when the message is not a hello or has the wrong magic;
/// [`Error::Version`] when the chosen version is not one we speak.
pub(crate) fn accept_hello(first: Request) -> Result<u32> {
    match first {
        Request::Hello(hello) if hello.magic != MAGIC => Err(Error::Protocol(
            "the peer does not speak ft (bad magic in hello)".into(),
        )),
        Request::Hello(hello) if (MIN_VERSION..=VERSION).contains(&hello.version) => {
            Ok(hello.version)
        }
        Request::Hello(hello) => Err(Error::Version {
            ours_min: MIN_VERSION,
            ours_max: VERSION,
            theirs_min: hello.min_version,
            theirs_max: hello.version,
        }),
        _ => Err(Error::Protocol("the first message must be a hello".into())),
    }
}

/// The client's decision on the server's greeting: the newest version both speak.
///
/// # Errors
/// [`Error::Remote`] when the server refused (e.g. kind `Busy`); [`Error::Version`] when no
/// version is common; [`Error::Protocol`] for a wrong magic or a greeting that is no hello.
pub(crate) fn choose_version(greeting: Response) -> Result<u32> {
    match greeting {
        Response::Hello(hello) if hello.magic != MAGIC => Err(Error::Protocol(
            "the server does not speak ft (bad magic in hello)".into(),
        )),
        Response::Hello(hello) => {
            let version = hello.version.min(VERSION);
            if version < hello.min_version.max(MIN_VERSION) {
                return Err(Error::Version {
                    ours_min: MIN_VERSION,
                    ours_max: VERSION,
                    theirs_min: hello.min_version,
                    theirs_max: hello.version,
                });
            }
            Ok(version)
        }
        Response::Error { kind, message } => Err(Side::Server.remote(kind, message)),
        other => Err(Error::Protocol(format!(
            "the server began with {} instead of hello",
            other.name()
        ))),
    }
}

/// The client's hello announcing the chosen `version`.
pub(crate) fn client_hello(version: u32) -> Request {
    Request::Hello(Hello {
        version,
        ..Hello::ours()
    })
}

/// The server's side: greets first (so a refused client never has unread data in flight),
/// then reads and checks the client's hello. Returns the version the client chose.
///
/// # Errors
/// As [`accept_hello`], and connection errors (a peer that is not ft is named by its first
/// bytes, see [`Connection::recv_hello`]).
pub(crate) fn server_handshake(conn: &mut Connection) -> Result<u32> {
    conn.send(&Response::Hello(Hello::ours()))?;
    accept_hello(conn.recv_hello()?)
}

/// The client's side: reads the server's greeting and answers with the version both speak
/// (sending nothing when there is none).
///
/// # Errors
/// As [`choose_version`], and connection errors.
pub(crate) fn client_handshake(conn: &mut Connection) -> Result<u32> {
    let version = choose_version(conn.recv_hello()?)?;
    conn.send(&client_hello(version))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::ErrorKind;
    use crate::connection::Connection;
    use crate::connection::mem::{self, PEER, connection_pair};

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn hello(magic: [u8; 4], min_version: u32, version: u32) -> Hello {
        Hello {
            magic,
            version,
            min_version,
            agent: "test".into(),
        }
    }

    /// What a decision should give: a version, or an error of this kind whose text
    /// contains this.
    #[derive(Debug)]
    enum Want {
        Version(u32),
        Fails(ErrorKind, &'static str),
    }

    fn check(what: &str, got: Result<u32>, want: &Want) {
        match (got, want) {
            (Ok(v), Want::Version(w)) => assert_eq!(v, *w, "{what}"),
            (Err(e), Want::Fails(kind, text)) => {
                assert_eq!(e.kind(), *kind, "{what}: {e}");
                assert!(e.to_string().contains(text), "{what}: {e:?} lacks {text:?}");
            }
            (got, want) => panic!("{what}: got {got:?}, wanted {want:?}"),
        }
    }

    /// One row per first message a server may receive.
    #[test]
    fn the_server_accepts_only_a_hello_with_a_version_it_speaks() {
        let rows = [
            (
                "ours",
                Request::Hello(Hello::ours()),
                Want::Version(VERSION),
            ),
            (
                "a v1 client",
                Request::Hello(hello(MAGIC, 1, 1)),
                Want::Version(1),
            ),
            (
                "a v2-only client",
                Request::Hello(hello(MAGIC, 2, 2)),
                Want::Version(2),
            ),
            (
                "a v3 client",
                Request::Hello(hello(MAGIC, 1, 3)),
                Want::Version(3),
            ),
            (
                "a v4 client",
                Request::Hello(hello(MAGIC, 1, 4)),
                Want::Version(4),
            ),
            (
                "bad magic",
                Request::Hello(hello(*b"\x89FT\r", 1, 2)),
                Want::Fails(
                    ErrorKind::Protocol,
                    "protocol error: the peer does not speak ft (bad magic in hello)",
                ),
            ),
            (
                "too new",
                Request::Hello(hello(MAGIC, 6, 7)),
                Want::Fails(
                    ErrorKind::Version,
                    "version mismatch: we speak ft v1..v5, the peer v6..v7",
                ),
            ),
            (
                "version zero",
                Request::Hello(hello(MAGIC, 0, 0)),
                Want::Fails(ErrorKind::Version, "the peer v0..v0"),
            ),
            (
                "a request first",
                Request::List,
                Want::Fails(
                    ErrorKind::Protocol,
                    "protocol error: the first message must be a hello",
                ),
            ),
            (
                "a put first",
                Request::Put {
                    name: "a".into(),
                    size: 1,
                },
                Want::Fails(ErrorKind::Protocol, "the first message must be a hello"),
            ),
        ];
        for (what, first, want) in rows {
            check(what, accept_hello(first), &want);
        }
    }

    /// One row per greeting a client may receive.
    #[test]
    fn the_client_chooses_the_newest_common_version() {
        let rows = [
            (
                "ours",
                Response::Hello(Hello::ours()),
                Want::Version(VERSION),
            ),
            (
                "a v1 server",
                Response::Hello(hello(MAGIC, 1, 1)),
                Want::Version(1),
            ),
            (
                "a newer server that still speaks ours",
                Response::Hello(hello(MAGIC, 1, 9)),
                Want::Version(VERSION),
            ),
            (
                "a server too new",
                Response::Hello(hello(MAGIC, 6, 9)),
                Want::Fails(
                    ErrorKind::Version,
                    "version mismatch: we speak ft v1..v5, the peer v6..v9",
                ),
            ),
            (
                "a server too old",
                Response::Hello(hello(MAGIC, 0, 0)),
                Want::Fails(ErrorKind::Version, "the peer v0..v0"),
            ),
            (
                "bad magic",
                Response::Hello(hello([0; 4], 1, 2)),
                Want::Fails(
                    ErrorKind::Protocol,
                    "protocol error: the server does not speak ft (bad magic in hello)",
                ),
            ),
            (
                "busy",
                Response::Error {
                    kind: ErrorKind::Busy,
                    message: "busy: already serving 1 connection".into(),
                },
                Want::Fails(
                    ErrorKind::Busy,
                    "server: busy: already serving 1 connection",
                ),
            ),
            (
                "ready first",
                Response::Ready,
                Want::Fails(
                    ErrorKind::Protocol,
                    "protocol error: the server began with ready instead of hello",
                ),
            ),
            (
                "a listing first",
                Response::ListEnd { count: 0 },
                Want::Fails(ErrorKind::Protocol, "began with list-end instead of hello"),
            ),
        ];
        for (what, greeting, want) in rows {
            check(what, choose_version(greeting), &want);
        }
        let Request::Hello(ours) = client_hello(1) else {
            panic!("not a hello")
        };
        assert_eq!(
            (ours.magic, ours.min_version, ours.version),
            (MAGIC, MIN_VERSION, 1)
        );
    }

    #[test]
    fn both_sides_agree_over_an_in_memory_pair() {
        let (mut client, mut server) = connection_pair(TIMEOUT);
        let serving = thread::spawn(move || {
            let version = server_handshake(&mut server);
            (version, server.recv::<Request>().expect("request"))
        });
        assert_eq!(client_handshake(&mut client).expect("client"), VERSION);
        client.send(&Request::List).expect("first request");
        let (version, first) = serving.join().expect("server thread");
        assert_eq!(version.expect("server"), VERSION);
        assert_eq!(first, Some(Request::List));
    }

    /// A v1-only client and our server agree on v1; the hello is the client's only frame.
    #[test]
    fn an_older_client_gets_its_version() {
        let (mut client, mut server) = connection_pair(TIMEOUT);
        client
            .send(&Request::Hello(hello(MAGIC, 1, 1)))
            .expect("send");
        assert_eq!(server_handshake(&mut server).expect("server"), 1);
        assert!(matches!(
            client.recv_hello::<Response>(),
            Ok(Response::Hello(h)) if h == Hello::ours()
        ));
    }

    /// A client that finds no common version sends nothing, so the server reads a clean end.
    #[test]
    fn a_client_without_a_common_version_sends_nothing() {
        let (mut client, mut server) = connection_pair(TIMEOUT);
        server
            .send(&Response::Hello(hello(MAGIC, 7, 8)))
            .expect("send");
        assert!(matches!(
            client_handshake(&mut client),
            Err(Error::Version {
                theirs_min: 7,
                theirs_max: 8,
                ..
            })
        ));
        drop(client);
        assert_eq!(server.recv::<Request>().expect("clean end"), None);
    }

    /// Either side facing an HTTP peer names the bytes it began with.
    #[test]
    fn a_peer_that_does_not_speak_ft_is_named_by_its_bytes() {
        let expected = "protocol error: the peer does not speak ft \
                        (it began with bytes 47 45 54 20, \"GET \")";
        type Handshake = fn(&mut Connection) -> Result<u32>;
        let sides: [(&str, Handshake); 2] =
            [("server", server_handshake), ("client", client_handshake)];
        for (side, handshake) in sides {
            let (ours, mut theirs) = mem::pipe();
            let mut conn = Connection::new(ours, PEER, TIMEOUT).expect("connection");
            theirs
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("write");
            let got = handshake(&mut conn);
            match got {
                Err(e @ Error::Protocol(_)) => assert_eq!(e.to_string(), expected, "{side}"),
                other => panic!("{side}: {other:?}"),
            }
        }
    }

    /// One row per first frame that is an ft frame but no request: the server names it.
    #[test]
    fn the_server_refuses_a_first_frame_that_is_no_request() {
        let rows: [(&str, &[u8], &str); 3] = [
            (
                "unknown tag",
                &[0, 0, 0, 1, 200],
                "malformed Request message",
            ),
            ("empty payload", &[0, 0, 0, 0], "malformed Request message"),
            (
                "trailing byte",
                &[0, 0, 0, 2, 3, 0],
                "1 trailing bytes after a Request message",
            ),
        ];
        for (what, frame, text) in rows {
            let (ours, mut theirs) = mem::pipe();
            let mut conn = Connection::new(ours, PEER, TIMEOUT).expect("connection");
            theirs.write_all(frame).expect("write");
            match server_handshake(&mut conn) {
                Err(e @ Error::Protocol(_)) => assert!(e.to_string().contains(text), "{what}: {e}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    /// A server that refuses with `Busy` is reported as the server's error.
    #[test]
    fn a_busy_refusal_reaches_the_client() {
        let (mut client, mut server) = connection_pair(TIMEOUT);
        let busy = Error::Busy { live: 2 };
        server
            .send(&Response::Error {
                kind: busy.kind(),
                message: busy.to_string(),
            })
            .expect("send");
        server.close();
        let got = client_handshake(&mut client).expect_err("refused");
        assert_eq!(got.kind(), ErrorKind::Busy);
        assert!(
            got.to_string()
                .starts_with("server: busy: already serving 2")
        );
    }

    #[test]
    fn a_peer_that_hangs_up_before_hello_is_closed() {
        let (mut client, server) = connection_pair(TIMEOUT);
        drop(server);
        assert!(matches!(
            client_handshake(&mut client),
            Err(Error::Closed("before saying hello"))
        ));
    }
}
