//! One connection's life: the hello, then requests read one after the other and handed to
//! the dispatch, the waiting pipelined uploads committed whenever the client may be waiting
//! for their answers, and a graceful close.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::Ctx;
use super::handlers::{self, Handled};
use super::pipeline::Group;
use super::registry::Permit;
use crate::connection::Connection;
use crate::error::Error;
use crate::handshake::server_handshake;
use crate::protocol::{Request, Response, Role, clip_message};
use crate::report::{Op, Report};
use crate::tls;

/// A connection past its hello: what the handlers of its requests work with.
pub(super) struct Session<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) conn: Connection,
    /// The version the client chose in its hello.
    pub(super) version: u32,
    /// Pipelined uploads received, waiting to be committed as one group.
    pub(super) waiting: Group,
    /// True over TLS (a password may be received).
    pub(super) secure: bool,
    /// The account logged in, if any.
    pub(super) user: Option<String>,
    /// What this client may do now: the account's role, or the anonymous one.
    pub(super) role: Option<Role>,
    /// True once a request was served: a login must come before.
    pub(super) began: bool,
    /// The connection's number in the registry, when it has one (to close it:
    /// [`super::takeover`]).
    pub(super) conn_id: Option<u64>,
}

/// Serves one accepted socket, holding its place in the registry until the end: opens TLS
/// first unless the server is plain.
pub(super) fn serve_tcp(ctx: &Ctx, stream: TcpStream, permit: Permit) {
    let timeout = ctx.config.idle_timeout;
    let opened = match &ctx.tls {
        None => Connection::tcp(stream, timeout).map_err(|e| Error::io("a new connection", e)),
        Some(config) => {
            let peer = stream.peer_addr();
            let started = Instant::now();
            tls::accept(stream, Arc::clone(config), timeout).inspect_err(|e| {
                if let (Ok(peer), false) = (peer, ctx.shutdown.is_shutdown()) {
                    ctx.report(&Report::new(peer, Op::Connect, None, started, 0, Some(e)));
                }
            })
        }
    };
    if let Ok(conn) = opened {
        serve(
            ctx,
            conn,
            permit.busy(),
            ctx.tls.is_some(),
            Some(permit.id()),
        );
    }
}

/// Serves one connection: the hello, then requests until the client leaves, the
/// connection breaks or the server shuts down. `busy` tells the shutdown whether the
/// connection is inside a request; `conn_id`, if given, is its number in the registry.
pub(super) fn serve(
    ctx: &Ctx,
    mut conn: Connection,
    busy: &AtomicBool,
    secure: bool,
    conn_id: Option<u64>,
) {
    let started = Instant::now();
    let version = match server_handshake(&mut conn) {
        Ok(version) => version,
        Err(e) => {
            if !ctx.shutdown.is_shutdown() {
                answer_error(&mut conn, &e);
                ctx.report(&Report::new(
                    conn.peer(),
                    Op::Connect,
                    None,
                    started,
                    0,
                    Some(&e),
                ));
            }
            conn.close_gracefully();
            return;
        }
    };
    // Answers, and small files' frames, go out together: before the next read, and at the
    // end of each group's answers.
    let _ = conn.gather(true);
    let mut session = Session {
        ctx,
        conn,
        version,
        waiting: Group::default(),
        secure,
        user: None,
        role: ctx.config.anonymous,
        began: false,
        conn_id,
    };
    session.serve_requests(busy);
    // Verified uploads are published even when nobody is left to hear it.
    session.waiting.commit(ctx, &mut session.conn);
    session.conn.close_gracefully();
}

impl Session<'_> {
    fn serve_requests(&mut self, busy: &AtomicBool) {
        loop {
            // Before waiting for input, commit and answer what is waiting: the client may be
            // waiting for those answers before it sends more.
            if !self.waiting.advance(self.ctx, &mut self.conn) {
                return;
            }
            busy.store(!self.waiting.is_empty(), Ordering::SeqCst);
            if self.ctx.shutdown.is_shutdown() && self.waiting.is_empty() {
                return;
            }
            let started = Instant::now();
            let request = match self.conn.recv::<Request>() {
                Ok(Some(request)) => request,
                // Gone, or idle between requests: close quietly.
                Ok(None) | Err(Error::Timeout(_)) => return,
                // Shut down: the socket was closed for us.
                Err(_) if self.ctx.shutdown.is_shutdown() => return,
                Err(e) => {
                    // Earlier pipelined uploads are answered first, in order.
                    self.waiting.commit(self.ctx, &mut self.conn);
                    answer_error(&mut self.conn, &e);
                    let peer = self.conn.peer();
                    let report = Report::new(peer, Op::Connect, None, started, 0, Some(&e));
                    self.ctx.report(&report.by(self.user.as_deref()));
                    return;
                }
            };
            busy.store(true, Ordering::SeqCst);
            let handled = handlers::handle(self, request, started);
            self.began = true;
            match handled {
                Handled::Deferred(upload) => self.waiting.push(upload),
                Handled::Answered { report, keep_going } => {
                    self.ctx.report(&report.by(self.user.as_deref()));
                    if !keep_going {
                        return;
                    }
                }
                Handled::Unserved => return,
            }
        }
    }
}

/// What a request needs its client to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Downloads and listings.
    Read,
    /// Uploads.
    Write,
}

impl Session<'_> {
    /// Whether this client may do what a request needs; checked before any data moves.
    pub(super) fn may(&self, access: Access) -> crate::Result<()> {
        let allowed = self.role.is_some_and(|role| match access {
            Access::Read => role.may_read(),
            Access::Write => role.may_write(),
        });
        if allowed {
            return Ok(());
        }
        let why = match (&self.user, self.role) {
            (Some(user), _) => format!(
                "user {} may only read: uploads are refused",
                crate::text::escape(user)
            ),
            (None, Some(role)) if role.may_read() => {
                "anonymous users may only read: log in with --user NAME".to_owned()
            }
            (None, _) => "this server requires a login: use --user NAME".to_owned(),
        };
        Err(Error::PermissionDenied(why))
    }
}

/// `error`, met while the body of an `upload` or `download` was moving, as the server
/// reports it: the client's end of the stream, a reset or a broken pipe mean the client
/// closed its connection (interrupted, killed): [`Error::ClientGone`], kind `cancelled`, as
/// when a client aborts its upload itself. A timeout (a silent client, a cut network) stays
/// one.
pub(super) fn gone_mid_body(error: Error, body: &'static str) -> Error {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match &error {
        Error::Closed(_) => Error::ClientGone(body),
        Error::Network { source, .. }
            if matches!(
                source.kind(),
                BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
            ) =>
        {
            Error::ClientGone(body)
        }
        _ => error,
    }
}

/// Sends the failure to the client if the connection can still carry it.
pub(super) fn answer_error(conn: &mut Connection, error: &Error) {
    // Timed out, closed, broken or shut down: nobody is listening any more.
    let worth_sending = !matches!(
        error,
        Error::Timeout(_)
            | Error::Closed(_)
            | Error::ClientGone(_)
            | Error::Network { .. }
            | Error::ShuttingDown
    );
    if worth_sending {
        let _ = conn.send(&Response::Error {
            kind: error.kind(),
            message: clip_message(error.to_string()),
        });
    }
}
