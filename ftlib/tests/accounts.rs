//! Accounts on a real in-process server over real TLS connections (docs/PROTOCOL.md
//! sections 5.4 and 5.5): what each role may do, checked before any data moves; one answer
//! for a wrong password and an unknown user; the logins the server refuses and the
//! connections it then closes; the library client's login. Where one exact frame matters
//! (a 10 GiB `Put` from a reader, a second `Login`) the test opens TLS itself with rustls,
//! pins the server's fingerprint, and speaks frames.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use ft_testutil::{DEADLINE, digest, names_in, noise, wait_until};
use ftlib::accounts::{Users, add_user};
use ftlib::codec;
use ftlib::protocol::{Body, Hello, Request, Response, VERSION};
use ftlib::store::DirStore;
use ftlib::{
    Client, ClientConfig, Connection, Credentials, Error, ErrorKind, Fingerprint, Op, Password,
    Report, Role, Server, ServerConfig, ShutdownHandle, TLS_GREETING, Transport, Trust,
};
use rustls::pki_types::ServerName;
use rustls::version::TLS13;
use rustls::{ClientConnection, StreamOwned};
use tempfile::TempDir;

/// The accounts every server here has: a writer and a reader.
const WRITER: (&str, &str) = ("writer", "w-secret");
const READER: (&str, &str) = ("reader", "r-secret");

/// The server's words (PROTOCOL.md 5.4, 5.5): the one answer to a wrong password and to
/// an unknown user, then the refusals of each kind of client.
const LOGIN_FAILED: &str = "login failed: wrong user name or password";
const NEEDS_LOGIN: &str = "this server requires a login: use --user NAME";
const ANONYMOUS_READS: &str = "anonymous users may only read: log in with --user NAME";
const READER_READS: &str = "user reader may only read: uploads are refused";

/// Far more than any test sends: a refused upload of this size can only be refused early.
const TEN_GIB: u64 = 10 << 30;

/// The accounts, hashed once for the whole test binary (each hash costs tens of ms).
fn users() -> Arc<Users> {
    static USERS: OnceLock<Arc<Users>> = OnceLock::new();
    Arc::clone(USERS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("users");
        for ((name, password), role) in [(WRITER, Role::Write), (READER, Role::Read)] {
            add_user(&file, name, role, password).expect("add user");
        }
        Arc::new(Users::load(&file).expect("load users"))
    }))
}

/// A TLS server on 127.0.0.1:0 (with the accounts, unless configured otherwise), serving a
/// temporary directory that holds `seed.txt` ([`SEED`]); shut down and joined on drop.
struct Served {
    dir: TempDir,
    addr: SocketAddr,
    fingerprint: Fingerprint,
    reports: Arc<Mutex<Vec<Report>>>,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<ftlib::Result<()>>>,
}

/// The bytes of `seed.txt`.
const SEED: &[u8] = b"seed";

impl Served {
    /// The accounts; clients that do not log in may do what `anonymous` allows.
    fn start(anonymous: Option<Role>) -> Served {
        let mut config = ServerConfig::default();
        config.users = Some(users());
        config.anonymous = anonymous;
        Served::with_config(config)
    }

    /// A server as `config` says; it must speak TLS.
    fn with_config(config: ServerConfig) -> Served {
        assert!(!config.plain, "these servers speak TLS");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("seed.txt"), SEED).expect("seed");
        let listener = ftlib::listen("127.0.0.1:0").expect("bind loopback");
        let server = Server::new(listener, DirStore::open(dir.path()).expect("store"), config)
            .expect("server");
        let addr = server.local_addr().expect("addr");
        let fingerprint = server.fingerprint().expect("TLS");
        let stop = server.shutdown_handle();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let thread = std::thread::spawn(move || {
            server.run(move |r| sink.lock().expect("reports").push(r.clone()))
        });
        Served {
            dir,
            addr,
            fingerprint,
            reports,
            stop,
            thread: Some(thread),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A raw peer past the hellos, version 3.
    fn raw(&self) -> Connection {
        raw_tls(self.addr, self.fingerprint, 3)
    }

    /// A raw peer logged in as `(user, password)`, which must succeed with `role`.
    fn raw_as(&self, (user, password): (&str, &str), role: Role) -> Connection {
        let mut conn = self.raw();
        assert_eq!(
            login(&mut conn, user, password),
            Response::LoggedIn { role }
        );
        conn
    }

    /// A library client pinning this server, logging in as `login` if given.
    fn client(&self, login: Option<(&str, &str)>) -> ftlib::Result<Client> {
        let mut config = ClientConfig::trusting(Trust::Pinned(self.fingerprint));
        config.timeout = DEADLINE;
        config.login = login.map(|(user, password)| Credentials {
            user: user.into(),
            password: Password(password.into()),
        });
        Client::connect(self.addr, config)
    }

    /// The first `n` reports, as `(user, op, name, error kind)`; waits for them (a report
    /// is made after its answer is sent).
    fn reports(&self, n: usize) -> Vec<Summary> {
        wait_until(&format!("{n} reports"), || {
            self.reports.lock().expect("reports").len() >= n
        });
        self.reports.lock().expect("reports")[..n]
            .iter()
            .map(|r| {
                (
                    r.user.clone(),
                    r.op,
                    r.name.clone(),
                    r.failure.as_ref().map(|f| f.kind),
                )
            })
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.shutdown();
            let _ = thread.join();
        }
    }
}

/// A report as the tests compare it: user, operation, name, error kind.
type Summary = (Option<String>, Op, Option<String>, Option<ErrorKind>);

fn summary(user: Option<&str>, op: Op, name: Option<&str>, kind: Option<ErrorKind>) -> Summary {
    (user.map(str::to_owned), op, name.map(str::to_owned), kind)
}

/// The client side of TLS over TCP, as an ft [`Transport`].
#[derive(Debug)]
struct Tls(StreamOwned<ClientConnection, TcpStream>);

impl Read for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Tls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Transport for Tls {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.sock.set_read_timeout(timeout)?;
        self.0.sock.set_write_timeout(timeout)
    }

    fn input_ready(&mut self) -> bool {
        false
    }

    fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        self.0.conn.send_close_notify();
        let _ = self.0.flush();
        self.0.sock.shutdown(how)
    }
}

/// Connects to a TLS server as ftlib's client does (reads the plain greeting, opens TLS 1.3
/// pinning `fingerprint`, exchanges hellos choosing `version`), and hands over the
/// connection for raw frames.
fn raw_tls(addr: SocketAddr, fingerprint: Fingerprint, version: u32) -> Connection {
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut header = [0u8; 4];
    sock.read_exact(&mut header).expect("greeting header");
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    sock.read_exact(&mut payload).expect("greeting");
    assert_eq!(
        codec::decode::<Response>(&payload).expect("a response"),
        Response::Error {
            kind: ErrorKind::TlsRequired,
            message: TLS_GREETING.into()
        }
    );
    let config = rustls::ClientConfig::builder_with_provider(ft_testutil::tls::provider())
        .with_protocol_versions(&[&TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(ft_testutil::tls::TestVerifier::pinned(fingerprint))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let tls = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let mut conn =
        Connection::new(Tls(StreamOwned::new(tls, sock)), addr, DEADLINE).expect("connection");
    match conn.recv_hello::<Response>().expect("server hello") {
        Response::Hello(hello) => assert_eq!(hello.version, VERSION),
        other => panic!("expected the server's hello, got {other:?}"),
    }
    let hello = Hello {
        version,
        ..Hello::ours()
    };
    conn.send(&Request::Hello(hello)).expect("hello");
    conn
}

/// Sends one `Login` and returns the answer.
fn login(conn: &mut Connection, user: &str, password: &str) -> Response {
    conn.send(&Request::Login {
        user: user.into(),
        password: Password(password.into()),
    })
    .expect("login");
    answer(conn)
}

fn answer(conn: &mut Connection) -> Response {
    conn.expect::<Response>("an answer").expect("answer")
}

fn error(kind: ErrorKind, message: &str) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

/// True when the server ended the connection: its next read is the end of the stream (or a
/// reset), not a frame and not a timeout.
fn closed_by_server(conn: &mut Connection) -> bool {
    matches!(
        conn.recv::<Response>(),
        Ok(None) | Err(Error::Closed(_) | Error::Network { .. })
    )
}

/// Sends `data` as a body: chunks, then `End` with its digest.
fn send_body(conn: &mut Connection, data: &[u8]) {
    for chunk in data.chunks(256 * 1024) {
        conn.send_chunk(chunk).expect("chunk");
    }
    conn.send(&Body::End {
        digest: digest(data),
    })
    .expect("end");
}

/// Receives a body and returns its bytes, checking the digest at its end.
fn recv_body(conn: &mut Connection) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        match conn.expect::<Body<'_>>("a body frame").expect("body") {
            Body::Chunk(chunk) => data.extend_from_slice(chunk),
            Body::End { digest: end } => {
                assert_eq!(end, digest(&data), "the body's digest");
                return data;
            }
            Body::Abort { kind, message } => panic!("aborted: {kind} {message}"),
        }
    }
}

/// Receives a whole listing and returns the names, sorted.
fn recv_listing(conn: &mut Connection) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match answer(conn) {
            Response::Entries(batch) => names.extend(batch.into_iter().map(|e| e.name)),
            Response::ListEnd { count } => {
                assert_eq!(count, names.len() as u64);
                names.sort();
                return names;
            }
            other => panic!("expected a listing, got {other:?}"),
        }
    }
}

/// What a row of the access table expects of a group of requests.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Allowed,
    Refused(&'static str),
}

/// Reads the answer to a request that `expect`s: when refused, the error with the table's
/// message; when allowed, what `allowed` reads and checks.
fn answered(
    conn: &mut Connection,
    expect: Expect,
    row: &str,
    allowed: impl FnOnce(&mut Connection),
) {
    match expect {
        Expect::Allowed => allowed(conn),
        Expect::Refused(why) => assert_eq!(
            answer(conn),
            error(ErrorKind::PermissionDenied, why),
            "{row}"
        ),
    }
}

/// Section 5.5, one row per kind of client: each request of each kind, in raw frames on one
/// connection, is served or refused with `permission-denied` and the table's message. A
/// refused upload declares 10 GiB and is answered the error instead of `Ready` (a pipelined
/// one has its body read and dropped); the connection stays usable after every refusal;
/// refused uploads leave nothing in the served directory, not even a temporary file.
#[test]
fn each_kind_of_client_is_served_or_refused_as_section_5_5_says() {
    use Expect::{Allowed, Refused};
    /// Who logs in, and the role the login answers.
    type Login = Option<((&'static str, &'static str), Role)>;
    let rows: [(Option<Role>, Login, Expect, Expect); 5] = [
        (None, None, Refused(NEEDS_LOGIN), Refused(NEEDS_LOGIN)),
        (Some(Role::Read), None, Allowed, Refused(ANONYMOUS_READS)),
        (
            None,
            Some((READER, Role::Read)),
            Allowed,
            Refused(READER_READS),
        ),
        (None, Some((WRITER, Role::Write)), Allowed, Allowed),
        (
            Some(Role::Read),
            Some((WRITER, Role::Write)),
            Allowed,
            Allowed,
        ),
    ];
    for (anonymous, account, reads, writes) in rows {
        let row = format!("anonymous {anonymous:?}, login {account:?}");
        let served = Served::start(anonymous);
        let mut conn = match account {
            Some((credentials, role)) => served.raw_as(credentials, role),
            None => served.raw(),
        };

        conn.send(&Request::List).expect("list");
        answered(&mut conn, reads, &row, |c| {
            assert_eq!(recv_listing(c), ["seed.txt"], "{row}");
        });
        conn.send(&Request::Get {
            name: "seed.txt".into(),
        })
        .expect("get");
        answered(&mut conn, reads, &row, |c| {
            assert!(matches!(answer(c), Response::File { size: 4, .. }), "{row}");
            assert_eq!(recv_body(c), SEED);
        });
        conn.send(&Request::GetFrom {
            name: "seed.txt".into(),
            offset: 0,
            prefix: digest(b""),
        })
        .expect("get from");
        answered(&mut conn, reads, &row, |c| {
            assert!(
                matches!(answer(c), Response::FileFrom { offset: 0, .. }),
                "{row}"
            );
            assert_eq!(recv_body(c), SEED);
        });

        let data = b"hello";
        let size = match writes {
            Allowed => data.len() as u64,
            Refused(_) => TEN_GIB,
        };
        conn.send(&Request::Put {
            name: "put.txt".into(),
            size,
        })
        .expect("put");
        answered(&mut conn, writes, &row, |c| {
            assert_eq!(answer(c), Response::Ready, "{row}");
            send_body(c, data);
            assert_eq!(answer(c), Response::Stored { size: 5 });
        });
        conn.send(&Request::PutResumable {
            name: "resumed.txt".into(),
            size,
            digest: digest(data),
        })
        .expect("put resumable");
        answered(&mut conn, writes, &row, |c| {
            assert_eq!(answer(c), Response::ReadyFrom { offset: 0 }, "{row}");
            send_body(c, data);
            assert_eq!(answer(c), Response::Stored { size: 5 });
        });
        // Data follows a pipelined upload at once, refused or not (1 MiB in four chunks),
        // and here a listing follows without waiting.
        let piped = noise(1 << 20, 7);
        conn.send(&Request::PutPipelined {
            name: "piped.bin".into(),
            size: piped.len() as u64,
        })
        .expect("put pipelined");
        send_body(&mut conn, &piped);
        conn.send(&Request::List).expect("list after");
        answered(&mut conn, writes, &row, |c| {
            assert_eq!(answer(c), Response::Stored { size: 1 << 20 }, "{row}");
        });
        let on_disk: &[&str] = match writes {
            Allowed => &["piped.bin", "put.txt", "resumed.txt", "seed.txt"],
            Refused(_) => &["seed.txt"],
        };
        // Still in step: the listing's answer comes next.
        answered(&mut conn, reads, &row, |c| {
            assert_eq!(recv_listing(c), on_disk, "{row}");
        });
        conn.close_gracefully();
        assert_eq!(names_in(served.root()), on_disk, "{row}");

        let kind = |expect| match expect {
            Allowed => None,
            Refused(_) => Some(ErrorKind::PermissionDenied),
        };
        let user = account.map(|((user, _), _)| user);
        let mut expected = Vec::new();
        if let Some(user) = user {
            expected.push(summary(Some(user), Op::Login, Some(user), None));
        }
        for (op, name, expect) in [
            (Op::List, None, reads),
            (Op::Get, Some("seed.txt"), reads),
            (Op::Get, Some("seed.txt"), reads),
            (Op::Put, Some("put.txt"), writes),
            (Op::Put, Some("resumed.txt"), writes),
            (Op::Put, Some("piped.bin"), writes),
            (Op::List, None, reads),
        ] {
            expected.push(summary(user, op, name, kind(expect)));
        }
        assert_eq!(served.reports(expected.len()), expected, "{row}");
    }
}

/// The promise at its sharpest: a reader announcing a 10 GiB upload is refused in the very
/// next frame, where `Ready` would come, and nothing is created; the same connection goes
/// on (a listing, then a download).
#[test]
fn a_readers_put_is_refused_before_any_data() {
    let served = Served::start(None);
    let mut conn = served.raw_as(READER, Role::Read);
    conn.send(&Request::Put {
        name: "huge.bin".into(),
        size: TEN_GIB,
    })
    .expect("put");
    let refusal = answer(&mut conn);
    assert_ne!(refusal, Response::Ready);
    assert_eq!(refusal, error(ErrorKind::PermissionDenied, READER_READS));
    assert_eq!(names_in(served.root()), ["seed.txt"]);
    conn.send(&Request::List).expect("list");
    assert_eq!(recv_listing(&mut conn), ["seed.txt"]);
    conn.send(&Request::Get {
        name: "seed.txt".into(),
    })
    .expect("get");
    assert!(matches!(answer(&mut conn), Response::File { size: 4, .. }));
    assert_eq!(recv_body(&mut conn), SEED);
}

/// A reader's pipelined upload, sent with its body and a `List` behind it before anything is
/// read: the upload is answered `permission-denied`, its body was read and dropped (the
/// listing that follows is in step), and nothing was stored.
#[test]
fn a_readers_pipelined_put_is_refused_and_its_body_dropped() {
    let served = Served::start(None);
    let mut conn = served.raw_as(READER, Role::Read);
    let data = noise(300 * 1024, 3);
    conn.send(&Request::PutPipelined {
        name: "piped.bin".into(),
        size: data.len() as u64,
    })
    .expect("put pipelined");
    send_body(&mut conn, &data);
    conn.send(&Request::List).expect("list");
    assert_eq!(
        answer(&mut conn),
        error(ErrorKind::PermissionDenied, READER_READS)
    );
    assert_eq!(recv_listing(&mut conn), ["seed.txt"]);
    assert_eq!(names_in(served.root()), ["seed.txt"]);
    assert_eq!(
        served.reports(3),
        [
            summary(Some("reader"), Op::Login, Some("reader"), None),
            summary(
                Some("reader"),
                Op::Put,
                Some("piped.bin"),
                Some(ErrorKind::PermissionDenied)
            ),
            summary(Some("reader"), Op::List, None, None),
        ]
    );
}

/// A wrong password, an unknown user, a name no account could have, an oversized name and
/// an oversized password: the same kind and the same message, then the server closes the
/// connection; the report names the attempted user. A new server per row, so that the
/// throttle of the earlier failures does not slow the later ones.
#[test]
fn every_failed_login_gets_one_answer_and_the_connection_closes() {
    let long_name = "u".repeat(65);
    let long_password = "p".repeat(1025);
    let rows = [
        ("reader", "w-secret"),
        ("reader", ""),
        ("nobody", "r-secret"),
        ("Reader", "r-secret"),
        ("no such/user", "r-secret"),
        (long_name.as_str(), "r-secret"),
        ("reader", long_password.as_str()),
    ];
    for (user, password) in rows {
        let served = Served::start(None);
        let mut conn = served.raw();
        assert_eq!(
            login(&mut conn, user, password),
            error(ErrorKind::AuthFailed, LOGIN_FAILED),
            "{user}"
        );
        assert!(closed_by_server(&mut conn), "{user}: still open");
        assert_eq!(
            served.reports(1),
            [summary(
                None,
                Op::Login,
                Some(user),
                Some(ErrorKind::AuthFailed)
            )]
        );
    }
}

/// The other rows of section 5.4: a login where none can succeed, or out of place. Each is
/// answered once, with its kind and message, and the server closes the connection.
#[test]
fn logins_out_of_place_are_refused_and_close_the_connection() {
    let no_accounts = || Served::with_config(ServerConfig::default());
    let auth = ErrorKind::AuthFailed;
    let protocol = ErrorKind::Protocol;
    type Start = fn() -> Served;
    type Setup = fn(&Served) -> Connection;
    let rows: [(&str, Start, Setup, ErrorKind, &str); 4] = [
        (
            "a server without accounts",
            no_accounts,
            Served::raw,
            auth,
            "this server has no accounts: connect without --user",
        ),
        (
            "a second login",
            || Served::start(None),
            |s| s.raw_as(READER, Role::Read),
            protocol,
            "protocol error: a second login",
        ),
        (
            "a login after a listing",
            || Served::start(Some(Role::Read)),
            |s| {
                let mut conn = s.raw();
                conn.send(&Request::List).expect("list");
                assert_eq!(recv_listing(&mut conn), ["seed.txt"]);
                conn
            },
            protocol,
            "protocol error: a login after other requests: log in right after the hello",
        ),
        (
            "a login on a v2 connection",
            || Served::start(None),
            |s| raw_tls(s.addr, s.fingerprint, 2),
            protocol,
            "protocol error: logins need ft v3",
        ),
    ];
    for (row, start, setup, kind, message) in rows {
        let served = start();
        let mut conn = setup(&served);
        assert_eq!(
            login(&mut conn, "writer", "w-secret"),
            error(kind, message),
            "{row}"
        );
        assert!(closed_by_server(&mut conn), "{row}: still open");
    }
}

/// A server in plain mode refuses a `Login` that arrives in clear, even with accounts
/// configured through the library, and closes the connection.
#[test]
fn a_login_in_clear_is_refused() {
    let mut config = ServerConfig::plain();
    config.users = Some(users());
    config.anonymous = None;
    let server = common::TestServer::with_config(config);
    let mut peer = common::RawPeer::connect(server.addr);
    peer.send(&Request::Login {
        user: WRITER.0.into(),
        password: Password(WRITER.1.into()),
    });
    assert_eq!(
        peer.recv(),
        error(
            ErrorKind::AuthFailed,
            "passwords are not sent over a plain connection; this server runs without TLS \
             (--plain), so it has no logins"
        )
    );
    assert!(peer.closed_by_server());
}

/// The library client logged in as the writer: its role and name, then a put, a get and a
/// listing, each reported by the server under the writer's name.
#[test]
fn a_writer_client_puts_gets_and_lists_under_its_name() {
    let served = Served::start(None);
    let mut client = served.client(Some(WRITER)).expect("log in");
    assert_eq!(
        (client.role(), client.user()),
        (Some(Role::Write), Some("writer"))
    );
    let data = noise(100_000, 5);
    client
        .put_reader(&data[..], data.len() as u64, "up.bin", |_| {})
        .expect("put");
    let mut got = Vec::new();
    client.get_into("up.bin", &mut got, |_| {}).expect("get");
    assert!(got == data, "the bytes differ");
    let mut names: Vec<String> = client
        .list()
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, ["seed.txt", "up.bin"]);
    let writer = Some("writer");
    assert_eq!(
        served.reports(4),
        [
            summary(writer, Op::Login, writer, None),
            summary(writer, Op::Put, Some("up.bin"), None),
            summary(writer, Op::Get, Some("up.bin"), None),
            summary(writer, Op::List, None, None),
        ]
    );
}

/// The library client logged in as the reader refuses an upload itself: the server never
/// hears of it (its reports go from the login straight to the listing that follows).
#[test]
fn a_reader_client_refuses_uploads_without_sending_them() {
    let served = Served::start(None);
    let mut client = served.client(Some(READER)).expect("log in");
    assert_eq!(client.role(), Some(Role::Read));
    let refused = client
        .put_reader(&b"hello"[..], 5, "up.txt", |_| {})
        .expect_err("a reader may not put");
    assert!(matches!(refused, Error::PermissionDenied(_)), "{refused:?}");
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    assert!(client.is_open(), "a local refusal keeps the connection");
    assert_eq!(client.list().expect("list").len(), 1);
    let reader = Some("reader");
    assert_eq!(
        served.reports(2),
        [
            summary(reader, Op::Login, reader, None),
            summary(reader, Op::List, None, None),
        ]
    );
    assert_eq!(names_in(served.root()), ["seed.txt"]);
}

/// The library client's side of a failed login: the server's kind and message, the same for
/// a wrong password and an unknown user.
#[test]
fn the_client_reports_a_failed_login_as_the_server_said() {
    let failure = |login| {
        let served = Served::start(None);
        match served.client(Some(login)).expect_err("refused") {
            Error::Remote { kind, message, .. } => (kind, message),
            other => panic!("expected the server's refusal, got {other:?}"),
        }
    };
    let wrong_password = failure(("writer", "r-secret"));
    assert_eq!(
        wrong_password,
        (ErrorKind::AuthFailed, LOGIN_FAILED.to_owned())
    );
    assert_eq!(failure(("nobody", "w-secret")), wrong_password);
}

/// A client configured to log in without TLS refuses before it connects: the address here
/// has nothing listening, and the error is about the configuration, not the network.
#[test]
fn the_client_never_sends_a_password_in_clear() {
    let mut config = ClientConfig::trusting(Trust::Plain);
    config.login = Some(Credentials {
        user: "writer".into(),
        password: Password("w-secret".into()),
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let refused = Client::connect(addr, config).expect_err("plain with a login");
    assert!(matches!(refused, Error::Config(_)), "{refused:?}");
    assert!(
        refused
            .to_string()
            .contains("never sent over a plain connection"),
        "{refused}"
    );
}

/// Credentials never show the password when debug-printed (they end up in logs).
#[test]
fn credentials_hide_the_password() {
    let credentials = Credentials {
        user: "writer".into(),
        password: Password("w-secret".into()),
    };
    let shown = format!("{credentials:?}");
    assert!(
        shown.contains("writer") && !shown.contains("w-secret"),
        "{shown}"
    );
    let request = Request::Login {
        user: "writer".into(),
        password: Password("w-secret".into()),
    };
    assert!(!format!("{request:?}").contains("w-secret"));
}

/// Parallel guesses from one address wait one after another: after two failures (a 500 ms
/// delay), four wrong logins sent at once take at least 4 x 500 ms together, where waiting
/// side by side would take 500 ms. Lower bounds only.
#[test]
fn parallel_guesses_from_one_address_queue() {
    let served = Served::start(None);
    for _ in 0..2 {
        let mut conn = served.raw();
        assert_eq!(
            login(&mut conn, "reader", "wrong"),
            error(ErrorKind::AuthFailed, LOGIN_FAILED)
        );
    }
    let started = std::time::Instant::now();
    let guesses: Vec<_> = (0..4)
        .map(|_| {
            let mut conn = served.raw();
            std::thread::spawn(move || login(&mut conn, "reader", "wrong"))
        })
        .collect();
    for guess in guesses {
        let answer = guess.join().expect("guess");
        assert!(
            matches!(
                answer,
                Response::Error {
                    kind: ErrorKind::AuthFailed,
                    ..
                }
            ),
            "{answer:?}"
        );
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
}
