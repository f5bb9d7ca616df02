//! Serving one request: [`handle`], the one dispatch (one `match` over [`Request`],
//! including the version check of v2-only requests), and one function per request type. A
//! request is answered now, or — a pipelined upload — received and left waiting for its
//! group's commit.

use std::time::Instant;

use xxhash_rust::xxh3::Xxh3;

use super::Ctx;
use super::pipeline::Waiting;
use super::session::{Access, Session, answer_error, gone_mid_body};
use super::tree;
use super::upload::{Resume, put, put_pipelined, put_resumable};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::protocol::{
    Attrs, DIGEST_LEN, How, LOGIN_VERSION, MAX_PASSWORD, MAX_USER, Password, RESUME_VERSION,
    Request, Response, TAGGED_VERSION, TREE_VERSION,
};
use crate::report::{Op, Report};
use crate::store::{Name, Source};
use crate::text::escape;
use crate::transfer::{self, Digest, Hooks, Span};

/// What became of a request.
pub(super) enum Handled {
    /// Answered (or failed in a way that needs no answer); its report, and whether the
    /// connection goes on.
    Answered { report: Report, keep_going: bool },
    /// A pipelined upload received; its answer and report wait for the group's commit.
    Deferred(Waiting),
    /// Not served: the answers of the uploads waiting before it could not be sent, so the
    /// client is gone.
    Unserved,
}

/// Serves `request`, read at `started`: the dispatch.
pub(super) fn handle(s: &mut Session<'_>, request: Request, started: Instant) -> Handled {
    let needs_v2 = matches!(
        request,
        Request::GetFrom { .. } | Request::PutResumable { .. } | Request::PutPipelined { .. }
    );
    let needs_v4 = matches!(
        request,
        Request::Upload { .. }
            | Request::Stat { .. }
            | Request::ListDir { .. }
            | Request::MakeDir { .. }
    );
    let needs_v5 = matches!(
        request,
        Request::Upload {
            how: How::Tagged { .. },
            ..
        }
    );
    match request {
        _ if needs_v5 && s.version < TAGGED_VERSION => {
            let error = Error::Protocol(format!(
                "tagged resumable uploads need ft v{TAGGED_VERSION}"
            ));
            answer_now(s, Op::Connect, None, started, |_| Err(error.into()))
        }
        _ if needs_v4 && s.version < TREE_VERSION => {
            let error = Error::Protocol(format!(
                "directory trees and file attributes need ft v{TREE_VERSION}"
            ));
            answer_now(s, Op::Connect, None, started, |_| Err(error.into()))
        }
        _ if needs_v2 && s.version < RESUME_VERSION => {
            let error = Error::Protocol(format!(
                "resumable and pipelined requests need ft v{RESUME_VERSION}"
            ));
            answer_now(s, Op::Connect, None, started, |_| Err(error.into()))
        }
        Request::Login { .. } if s.version < LOGIN_VERSION => {
            let error = Error::Protocol(format!("logins need ft v{LOGIN_VERSION}"));
            answer_now(s, Op::Connect, None, started, |_| Err(error.into()))
        }
        Request::Put { name, size } => {
            let allowed = s.may(Access::Write);
            answer_now(s, Op::Put, Some(&name), started, |ex| {
                allowed?;
                put(ex, &name, size, None, false)
            })
        }
        Request::PutResumable { name, size, digest } => {
            let allowed = s.may(Access::Write);
            answer_now(s, Op::Put, Some(&name), started, |ex| {
                allowed?;
                put_resumable(ex, &name, size, Resume::Digest(digest), None, false)
            })
        }
        Request::PutPipelined { name, size } => put_pipelined(s, name, size, None, false, started),
        Request::Upload {
            name,
            size,
            attrs,
            how,
        } => {
            if how == How::Pipelined {
                return put_pipelined(s, name, size, attrs, true, started);
            }
            let allowed = s.may(Access::Write);
            answer_now(s, Op::Put, Some(&name), started, |ex| {
                allowed?;
                match how {
                    How::Resumable { digest } => {
                        put_resumable(ex, &name, size, Resume::Digest(digest), attrs, true)
                    }
                    How::Tagged { tag } => {
                        put_resumable(ex, &name, size, Resume::Tag(tag), attrs, true)
                    }
                    How::Wait | How::Pipelined => put(ex, &name, size, attrs, true),
                }
            })
        }
        Request::Stat { name, digest } => {
            let allowed = s.may(Access::Read);
            answer_now(s, Op::Stat, Some(&name), started, |ex| {
                allowed?;
                tree::stat(ex, &name, digest)
            })
        }
        Request::ListDir { dir, recursive } => {
            let allowed = s.may(Access::Read);
            let shown = (!dir.is_empty()).then_some(dir.as_str());
            answer_now(s, Op::List, shown, started, |ex| {
                allowed?;
                tree::list_dir(ex, &dir, recursive)
            })
        }
        Request::MakeDir { name } => {
            let allowed = s.may(Access::Write);
            answer_now(s, Op::MakeDir, Some(&name), started, |ex| {
                allowed?;
                tree::make_dir(ex, &name)
            })
        }
        Request::Get { name } => {
            let allowed = s.may(Access::Read);
            answer_now(s, Op::Get, Some(&name), started, |ex| {
                allowed?;
                get(ex, &name)
            })
        }
        Request::GetFrom {
            name,
            offset,
            prefix,
        } => {
            let allowed = s.may(Access::Read);
            answer_now(s, Op::Get, Some(&name), started, |ex| {
                allowed?;
                get_from(ex, &name, offset, prefix)
            })
        }
        Request::List => {
            let allowed = s.may(Access::Read);
            answer_now(s, Op::List, None, started, |ex| {
                allowed?;
                list(ex)
            })
        }
        Request::Login { user, password } => login(s, &user, &password, started),
        Request::Hello(_) => {
            let error = Error::Protocol("a second hello".into());
            answer_now(s, Op::Connect, None, started, |_| Err(error.into()))
        }
    }
}

/// A request being answered now: what its handler works with.
pub(super) struct Exchange<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) conn: &'a mut Connection,
    /// The protocol version of the connection.
    version: u32,
    /// Body bytes this request moved, for its report (also when it fails).
    pub(super) moved: u64,
    /// The digest of the file a put stored or a get sent, for its report.
    pub(super) digest: Option<[u8; DIGEST_LEN]>,
    /// The connection's number in the registry, if it has one: closed when a newer attempt
    /// of its resumable upload takes over.
    pub(super) conn_id: Option<u64>,
}

/// A request's failure, and whether the client has already been told (inside a body or
/// listing, the failure travels as `Abort` or `Error` there).
pub(super) struct Failed {
    error: Error,
    answered: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            answered: false,
        }
    }
}

pub(super) fn answered(error: Error) -> Failed {
    Failed {
        error,
        answered: true,
    }
}

/// Serves a request whose answer goes out now. Answers go out in request order, so the
/// waiting pipelined uploads are committed and answered first; then `serve` runs, and a
/// failure it did not answer is answered here.
pub(super) fn answer_now(
    s: &mut Session<'_>,
    op: Op,
    name: Option<&str>,
    started: Instant,
    serve: impl FnOnce(&mut Exchange<'_>) -> Result<u64, Failed>,
) -> Handled {
    if !s.waiting.commit(s.ctx, &mut s.conn) {
        return Handled::Unserved;
    }
    let mut exchange = Exchange {
        ctx: s.ctx,
        conn: &mut s.conn,
        version: s.version,
        moved: 0,
        digest: None,
        conn_id: s.conn_id,
    };
    let result = serve(&mut exchange);
    let moved = exchange.moved;
    let digest = exchange.digest;
    let peer = s.conn.peer();
    match result {
        Ok(bytes) => Handled::Answered {
            // A download is reported `sent`: the server cannot know it was stored.
            report: Report::new(peer, op, name, started, bytes, None)
                .as_sent()
                .with_digest(digest),
            keep_going: true,
        },
        Err(Failed { error, answered }) => {
            // A connection cut by our own shutdown is not the peer's doing.
            let error = if error.breaks_connection() && s.ctx.shutdown.is_shutdown() {
                Error::ShuttingDown
            } else {
                error
            };
            if !answered {
                answer_error(&mut s.conn, &error);
            }
            Handled::Answered {
                report: Report::new(peer, op, name, started, moved, Some(&error)),
                keep_going: !error.breaks_connection(),
            }
        }
    }
}

fn get(ex: &mut Exchange<'_>, name: &str) -> Result<u64, Failed> {
    let mut source = ex.ctx.store.open(&Name::new(name)?, 0)?;
    ex.conn.send(&opened(ex.version, name, &source, None))?;
    let span = Span::whole(name, source.size);
    send_source(ex, span, &mut source, Xxh3::new())
}

fn get_from(
    ex: &mut Exchange<'_>,
    name: &str,
    offset: u64,
    prefix: [u8; DIGEST_LEN],
) -> Result<u64, Failed> {
    let checked = Name::new(name)?;
    let mut source = ex.ctx.store.open(&checked, 0)?;
    let mut start = (0, Xxh3::new());
    if offset > 0 && offset <= source.size {
        let hasher = transfer::hash_prefix(&mut source.reader, offset)
            .map_err(|e| Error::io(format!("reading {}", escape(name)), e))?;
        if hasher.digest128().to_be_bytes() == prefix {
            start = (offset, hasher);
        } else {
            // Not the client's bytes: send the whole file, read afresh from its start.
            source = ex.ctx.store.open(&checked, 0)?;
        }
    }
    let (offset, hasher) = start;
    ex.conn
        .send(&opened(ex.version, name, &source, Some(offset)))?;
    let span = Span {
        name,
        size: source.size,
        offset,
    };
    send_source(ex, span, &mut source, hasher)
}

/// Sends a download's body: the bytes of `span` from `source` (read up to the span's
/// offset already), the digest continuing `prefix`. Failures travel inside it as `Abort`.
fn send_source(
    ex: &mut Exchange<'_>,
    span: Span<'_>,
    source: &mut Source,
    prefix: Xxh3,
) -> Result<u64, Failed> {
    let moved = &mut ex.moved;
    let mut progress = |n: u64| *moved = n - span.offset;
    let mut hooks = Hooks {
        progress: Some(&mut progress),
        cancel: None,
    };
    let chunk_size = ex.ctx.config.chunk_size;
    let sent = match &source.kept {
        // The bytes as they are, with the digest kept at the upload (PROTOCOL.md 6.2):
        // nothing to encrypt or hash, so nothing to copy through this process.
        Some((file, digest)) if ex.conn.can_send_file() => {
            transfer::send_file_body(ex.conn, span, file, *digest, chunk_size, &mut hooks)
        }
        // Over TLS the bytes must pass through to be encrypted, but need no hashing: the
        // kept digest ends the body, and the client's check verifies them as above.
        Some((_, digest)) => transfer::send_body(
            ex.conn,
            span,
            &mut source.reader,
            Digest::Known(*digest),
            chunk_size,
            &mut hooks,
        ),
        None => transfer::send_body(
            ex.conn,
            span,
            &mut source.reader,
            Digest::Running(Box::new(prefix)),
            chunk_size,
            &mut hooks,
        ),
    }
    .map_err(|e| answered(gone_mid_body(e, "download")))?;
    ex.digest = Some(sent.digest);
    Ok(sent.bytes)
}

/// The answer that opens a download's body of `source`, from `offset` for a `GetFrom`:
/// `Opened` on a v4 connection, else `File` or `FileFrom`.
fn opened(version: u32, name: &str, source: &Source, from: Option<u64>) -> Response {
    if version >= TREE_VERSION {
        Response::Opened {
            name: name.to_owned(),
            size: source.size,
            offset: from.unwrap_or(0),
            attrs: Attrs {
                modified: source.modified,
                nanos: source.nanos,
                executable: source.executable,
            },
        }
    } else if let Some(offset) = from {
        Response::FileFrom {
            size: source.size,
            modified: source.modified,
            offset,
        }
    } else {
        Response::File {
            size: source.size,
            modified: source.modified,
        }
    }
}

fn list(ex: &mut Exchange<'_>) -> Result<u64, Failed> {
    let entries = ex.ctx.store.list(None, false)?;
    transfer::send_listing(ex.conn, entries, false, &mut ex.moved).map_err(answered)
}

/// Logs the connection in: only over TLS, once, and against the server's accounts. A
/// refusal closes the connection.
fn login(s: &mut Session<'_>, user: &str, password: &Password, started: Instant) -> Handled {
    let result = check_login(s, user, password);
    let name = Some(user);
    match result {
        Ok(role) => answer_now(s, Op::Login, name, started, |ex| {
            ex.conn.send(&Response::LoggedIn { role })?;
            Ok(0)
        }),
        Err(error) => answer_now(s, Op::Login, name, started, |_| Err(error.into())),
    }
}

/// The role of `user`, or why the login is refused (the session is updated on success).
/// An address with recent failures waits first; an unknown user costs the same work as a
/// wrong password.
fn check_login(s: &mut Session<'_>, user: &str, password: &Password) -> Result<crate::Role> {
    if s.user.is_some() {
        return Err(Error::Protocol("a second login".into()));
    }
    if s.began {
        return Err(Error::Protocol(
            "a login after other requests: log in right after the hello".into(),
        ));
    }
    if !s.secure {
        return Err(Error::AuthFailed(
            "passwords are not sent over a plain connection; this server runs without TLS \
             (--plain), so it has no logins"
                .into(),
        ));
    }
    let Some(users) = &s.ctx.config.users else {
        return Err(Error::AuthFailed(
            "this server has no accounts: connect without --user".into(),
        ));
    };
    let ip = s.conn.peer().ip();
    match s.ctx.throttle.turn(ip) {
        Some(wait) if !wait.is_zero() => std::thread::sleep(wait),
        Some(_) => {}
        None => {
            return Err(Error::AuthFailed(
                "too many failed logins from this address: try again in a few minutes".into(),
            ));
        }
    }
    // Oversized credentials are checked as an unknown user, for the same time.
    let fits = user.len() <= MAX_USER && password.0.len() <= MAX_PASSWORD;
    let role = if fits {
        users.verify(user, &password.0)
    } else {
        users.verify("", "")
    };
    match role {
        Some(role) => {
            s.ctx.throttle.succeeded(ip, user);
            s.user = Some(user.to_owned());
            s.waiting.user = Some(user.to_owned());
            s.role = Some(role);
            Ok(role)
        }
        None => {
            s.ctx.throttle.failed(ip, user);
            Err(Error::AuthFailed(
                "login failed: wrong user name or password".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use super::*;
    use crate::ErrorKind;
    use crate::connection::mem::{PEER, connection_pair};
    use crate::error::Side;
    use crate::handshake::{choose_version, client_hello};
    use crate::protocol::{DEFAULT_CHUNK, MAX_PIPELINED, VERSION};
    use crate::server::{ServerConfig, ShutdownHandle, session};
    use crate::store::{MemStore, Store};

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A connection loop serving a [`MemStore`] on one end of an in-memory pipe, and a
    /// client speaking frames on the other.
    struct Served {
        client: Connection,
        reports: Arc<Mutex<Vec<Report>>>,
        server: JoinHandle<()>,
    }

    impl Served {
        /// Serves `store`; the client's hello chooses `version`.
        fn start(store: &MemStore, version: u32) -> Served {
            let (mut client, server_end) = connection_pair(TIMEOUT);
            let reports = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&reports);
            let ctx = Ctx {
                store: Arc::new(store.clone()),
                config: ServerConfig::default(),
                shutdown: ShutdownHandle {
                    flag: Arc::default(),
                    wake: PEER,
                },
                reports: Arc::new(move |r: &Report| sink.lock().expect("reports").push(r.clone())),
                registry: Arc::default(),
                resuming: crate::server::takeover::Holders::default(),
                tls: None,
                throttle: crate::accounts::Throttle::new(),
            };
            let server = thread::spawn(move || {
                session::serve(&ctx, server_end, &AtomicBool::new(false), false, None);
            });
            let greeting = client.recv_hello().expect("greeting");
            assert_eq!(choose_version(greeting).expect("common version"), VERSION);
            client.send(&client_hello(version)).expect("hello");
            Served {
                client,
                reports,
                server,
            }
        }

        fn send(&mut self, request: &Request) {
            self.client.send(request).expect("request");
        }

        fn answer(&mut self) -> Response {
            self.client.expect("an answer").expect("answer")
        }

        /// Sends `data` as the body of `name`.
        fn body(&mut self, name: &str, data: &[u8]) {
            let span = Span::whole(name, data.len() as u64);
            let digest = Digest::Running(Box::new(Xxh3::new()));
            let mut reader = data;
            transfer::send_body(
                &mut self.client,
                span,
                &mut reader,
                digest,
                DEFAULT_CHUNK,
                &mut Hooks::default(),
            )
            .expect("body sent");
        }

        /// Receives the body of a download of `name`, `size` bytes.
        fn download(&mut self, name: &str, size: u64) -> Vec<u8> {
            let mut got = Vec::new();
            transfer::recv_body(
                &mut self.client,
                Side::Server,
                Span::whole(name, size),
                &mut got,
                Xxh3::new(),
                &mut Hooks::default(),
            )
            .expect("body received");
            got
        }

        /// Checks that the server closed the connection, then waits for it to finish.
        fn closed_by_server(mut self) -> Vec<(Op, Option<String>, Option<ErrorKind>)> {
            assert!(
                self.client
                    .recv::<Response>()
                    .expect("a clean end")
                    .is_none(),
                "the server closes after a protocol error"
            );
            self.finish()
        }

        /// Leaves, waits for the server to finish, and returns what it reported.
        fn finish(self) -> Vec<(Op, Option<String>, Option<ErrorKind>)> {
            drop(self.client);
            self.server.join().expect("server thread");
            let reports = self.reports.lock().expect("reports");
            reports
                .iter()
                .map(|r| (r.op, r.name.clone(), r.failure.as_ref().map(|f| f.kind)))
                .collect()
        }
    }

    fn put_file(store: &MemStore, name: &str, data: &[u8]) {
        let name = Name::new(name).expect("name");
        let mut file = store.create(&name, data.len() as u64).expect("create");
        file.write_all(data).expect("write");
        file.commit().expect("commit");
    }

    fn stored(size: u64) -> Response {
        Response::Stored { size }
    }

    fn kind_and_message(response: Response) -> (ErrorKind, String) {
        match response {
            Response::Error { kind, message } => (kind, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn ok(op: Op, name: &str) -> (Op, Option<String>, Option<ErrorKind>) {
        (op, Some(name.to_owned()), None)
    }

    #[test]
    fn a_put_then_a_get_round_trips() {
        let store = MemStore::new();
        let mut served = Served::start(&store, VERSION);
        served.send(&Request::Put {
            name: "a.txt".into(),
            size: 5,
        });
        assert_eq!(served.answer(), Response::Ready);
        served.body("a.txt", b"hello");
        assert_eq!(served.answer(), stored(5));
        served.send(&Request::Get {
            name: "a.txt".into(),
        });
        assert!(matches!(
            served.answer(),
            Response::Opened {
                size: 5,
                offset: 0,
                ..
            }
        ));
        assert_eq!(served.download("a.txt", 5), b"hello");
        assert_eq!(
            served.finish(),
            [ok(Op::Put, "a.txt"), ok(Op::Get, "a.txt")]
        );
    }

    #[test]
    fn a_put_of_an_existing_name_is_refused_before_any_data() {
        let store = MemStore::new();
        put_file(&store, "a", b"old");
        let mut served = Served::start(&store, VERSION);
        served.send(&Request::Put {
            name: "a".into(),
            size: 3,
        });
        let (kind, message) = kind_and_message(served.answer());
        assert_eq!(kind, ErrorKind::AlreadyExists);
        assert_eq!(message, "a already exists");
        // No body follows a refusal, and the connection goes on.
        served.send(&Request::Get { name: "a".into() });
        assert!(matches!(
            served.answer(),
            Response::Opened {
                size: 3,
                offset: 0,
                ..
            }
        ));
        assert_eq!(served.download("a", 3), b"old");
        assert_eq!(
            served.finish(),
            [
                (Op::Put, Some("a".into()), Some(ErrorKind::AlreadyExists)),
                ok(Op::Get, "a")
            ]
        );
    }

    #[test]
    fn a_listing_shows_the_stored_files() {
        let store = MemStore::new();
        put_file(&store, "one", b"1");
        put_file(&store, "two", b"22");
        let mut served = Served::start(&store, VERSION);
        served.send(&Request::List);
        let mut entries = Vec::new();
        let count = transfer::recv_listing(&mut served.client, 10, &mut |e| {
            entries.push((e.name, e.size));
        })
        .expect("listing");
        assert_eq!(count, 2);
        entries.sort();
        assert_eq!(entries, [("one".to_owned(), 1), ("two".to_owned(), 2)]);
        assert_eq!(served.finish(), [(Op::List, None, None)]);
    }

    /// One row per v2-only request: on a v1 connection each is a protocol error that
    /// closes the connection, reported as the connection's.
    #[test]
    fn v2_only_requests_on_a_v1_connection_are_protocol_errors() {
        let rows = [
            Request::GetFrom {
                name: "a".into(),
                offset: 1,
                prefix: [0; DIGEST_LEN],
            },
            Request::PutResumable {
                name: "a".into(),
                size: 1,
                digest: [0; DIGEST_LEN],
            },
            Request::PutPipelined {
                name: "a".into(),
                size: 1,
            },
        ];
        for request in rows {
            let store = MemStore::new();
            put_file(&store, "a", b"a");
            let mut served = Served::start(&store, 1);
            served.send(&request);
            let (kind, message) = kind_and_message(served.answer());
            assert_eq!(kind, ErrorKind::Protocol, "{request:?}");
            assert_eq!(
                message, "protocol error: resumable and pipelined requests need ft v2",
                "{request:?}"
            );
            assert_eq!(
                served.closed_by_server(),
                [(Op::Connect, None, Some(ErrorKind::Protocol))],
                "{request:?}"
            );
        }
    }

    #[test]
    fn a_second_hello_is_a_protocol_error() {
        let store = MemStore::new();
        let mut served = Served::start(&store, VERSION);
        served.send(&client_hello(VERSION));
        let (kind, message) = kind_and_message(served.answer());
        assert_eq!(kind, ErrorKind::Protocol);
        assert_eq!(message, "protocol error: a second hello");
        assert_eq!(
            served.closed_by_server(),
            [(Op::Connect, None, Some(ErrorKind::Protocol))]
        );
    }

    /// Everything is sent before any answer is read; the refused upload's body is read
    /// and dropped, and the answers come in request order, before the listing's.
    #[test]
    fn pipelined_puts_are_answered_in_order_with_one_refused_in_the_middle() {
        let store = MemStore::new();
        put_file(&store, "b", b"old");
        let mut served = Served::start(&store, VERSION);
        let uploads: [(&str, &[u8]); 3] = [("a", b"first"), ("b", b"new"), ("c", b"third")];
        for (name, data) in uploads {
            served.send(&Request::PutPipelined {
                name: name.into(),
                size: data.len() as u64,
            });
            served.body(name, data);
        }
        served.send(&Request::List);
        assert_eq!(served.answer(), stored(5));
        let (kind, message) = kind_and_message(served.answer());
        assert_eq!(
            (kind, message.as_str()),
            (ErrorKind::AlreadyExists, "b already exists")
        );
        assert_eq!(served.answer(), stored(5));
        let count = transfer::recv_listing(&mut served.client, 10, &mut |_| {}).expect("listing");
        assert_eq!(count, 3);
        let mut old = String::new();
        let b = Name::new("b").expect("name");
        store
            .open(&b, 0)
            .expect("b")
            .reader
            .read_to_string(&mut old)
            .expect("read");
        assert_eq!(old, "old");
        assert_eq!(
            served.finish(),
            [
                ok(Op::Put, "a"),
                (Op::Put, Some("b".into()), Some(ErrorKind::AlreadyExists)),
                ok(Op::Put, "c"),
                (Op::List, None, None),
            ]
        );
    }

    /// A request after pipelined uploads sees them committed: a get finds the file, a put
    /// of the same name is refused early.
    #[test]
    fn waiting_uploads_are_committed_before_a_later_answer() {
        let store = MemStore::new();
        let mut served = Served::start(&store, VERSION);
        served.send(&Request::PutPipelined {
            name: "p".into(),
            size: 4,
        });
        served.body("p", b"pipe");
        served.send(&Request::Get { name: "p".into() });
        served.send(&Request::Put {
            name: "p".into(),
            size: 1,
        });
        assert_eq!(served.answer(), stored(4));
        assert!(matches!(
            served.answer(),
            Response::Opened {
                size: 4,
                offset: 0,
                ..
            }
        ));
        assert_eq!(served.download("p", 4), b"pipe");
        let (kind, _) = kind_and_message(served.answer());
        assert_eq!(kind, ErrorKind::AlreadyExists);
        assert_eq!(
            served.finish(),
            [
                ok(Op::Put, "p"),
                ok(Op::Get, "p"),
                (Op::Put, Some("p".into()), Some(ErrorKind::AlreadyExists)),
            ]
        );
    }

    /// A pipelined upload over the limit closes the connection, after the answers of the
    /// uploads waiting before it, and without reading its body.
    #[test]
    fn an_oversized_pipelined_upload_is_answered_after_the_waiting_ones() {
        let store = MemStore::new();
        let mut served = Served::start(&store, VERSION);
        served.send(&Request::PutPipelined {
            name: "small".into(),
            size: 2,
        });
        served.body("small", b"ok");
        served.send(&Request::PutPipelined {
            name: "big".into(),
            size: MAX_PIPELINED + 1,
        });
        assert_eq!(served.answer(), stored(2));
        let (kind, message) = kind_and_message(served.answer());
        assert_eq!(kind, ErrorKind::Protocol);
        assert_eq!(
            message,
            format!(
                "protocol error: a pipelined upload of {} bytes (at most {MAX_PIPELINED})",
                MAX_PIPELINED + 1
            )
        );
        assert_eq!(
            served.closed_by_server(),
            [
                ok(Op::Put, "small"),
                (Op::Put, Some("big".into()), Some(ErrorKind::Protocol)),
            ]
        );
    }
}
