//! One connection's life: the hello, then requests read one after the other and handed to
//! the dispatch, the waiting pipelined uploads committed whenever the client may be waiting
//! for their answers, and a graceful close.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::Ctx;
use super::handlers::{self, Handled};
use super::pipeline::Group;
use super::registry::Permit;
use crate::connection::Connection;
use crate::error::Error;
use crate::handshake::server_handshake;
use crate::protocol::{Request, Response, clip_message};
use crate::report::{Op, Report};

/// A connection past its hello: what the handlers of its requests work with.
pub(super) struct Session<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) conn: Connection,
    /// The version the client chose in its hello.
    pub(super) version: u32,
    /// Pipelined uploads received, waiting to be committed as one group.
    pub(super) waiting: Group,
}

/// Serves one accepted socket, holding its place in the registry until the end.
pub(super) fn serve_tcp(ctx: &Ctx, stream: TcpStream, permit: Permit) {
    if let Ok(conn) = Connection::tcp(stream, ctx.config.idle_timeout) {
        serve(ctx, conn, permit.busy());
    }
}

/// Serves one connection: the hello, then requests until the client leaves, the
/// connection breaks or the server shuts down. `busy` tells the shutdown whether the
/// connection is inside a request.
pub(super) fn serve(ctx: &Ctx, mut conn: Connection, busy: &AtomicBool) {
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
    let mut session = Session {
        ctx,
        conn,
        version,
        waiting: Group::default(),
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
            if self.waiting.due(&mut self.conn) && !self.waiting.commit(self.ctx, &mut self.conn) {
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
                    self.ctx.report(&report);
                    return;
                }
            };
            busy.store(true, Ordering::SeqCst);
            match handlers::handle(self, request, started) {
                Handled::Deferred(upload) => self.waiting.push(upload),
                Handled::Answered { report, keep_going } => {
                    self.ctx.report(&report);
                    if !keep_going {
                        return;
                    }
                }
                Handled::Unserved => return,
            }
        }
    }
}

/// Sends the failure to the client if the connection can still carry it.
pub(super) fn answer_error(conn: &mut Connection, error: &Error) {
    // Timed out, closed, broken or shut down: nobody is listening any more.
    let worth_sending = !matches!(
        error,
        Error::Timeout(_) | Error::Closed(_) | Error::Network { .. } | Error::ShuttingDown
    );
    if worth_sending {
        let _ = conn.send(&Response::Error {
            kind: error.kind(),
            message: clip_message(error.to_string()),
        });
    }
}
