//! Opening a connection: the transport as [`ClientConfig::trust`] says (plain, or TLS with
//! the server's certificate pinned or looked up in the known-hosts file, recorded there on
//! first contact), and the login after the hellos.

use std::net::{SocketAddr, TcpStream};

use super::exchange::unexpected;
use super::{ClientConfig, Credentials};
use crate::connection::Connection;
use crate::error::{Error, IdentityChange, Result, Side};
use crate::protocol::{LOGIN_VERSION, Request, Response, Role};
use crate::tls;
use crate::trust::{self, FirstContact, Trust};

/// Opens the connection's transport as `config.trust` says: plain, or TLS with the server's
/// certificate pinned or looked up in (and on first contact recorded to) the known-hosts
/// file.
pub(super) fn secure(
    stream: TcpStream,
    host: &str,
    addr: &SocketAddr,
    config: &ClientConfig,
) -> Result<(Connection, Option<FirstContact>)> {
    let server = format!("{host} port {}", addr.port());
    let (expected, mismatch, recorded, advice) = match &config.trust {
        Trust::Plain => {
            let conn = Connection::tcp(stream, config.timeout).map_err(|e| Error::net(addr, e))?;
            return Ok((conn, None));
        }
        Trust::Pinned(fp) => (
            Some(*fp),
            "is not the one pinned",
            "the pinned fingerprint".to_owned(),
            "Check the fingerprint given (the server prints its own when it starts); if it is \
             right, someone may be intercepting the connection. If the server was given a new \
             identity, pin the new fingerprint."
                .to_owned(),
        ),
        Trust::KnownHosts(file) => match trust::lookup(file, host, addr.port())? {
            Some((line, fp)) => (
                Some(fp),
                "has changed",
                format!("{} line {line}", file.display()),
                format!(
                    "Someone may be intercepting the connection, or the server was given a new \
                     identity. If the change is expected, remove line {line} of {} and connect \
                     again.",
                    file.display()
                ),
            ),
            None => (None, "", String::new(), String::new()),
        },
    };
    match tls::connect(stream, host, expected, config.timeout)? {
        Ok((conn, found)) => {
            let first_contact = match (&config.trust, expected) {
                (Trust::KnownHosts(file), None) => {
                    // Not recording it trusts this server no less than recording it would
                    // (the first contact trusts whoever answers); the observer says so.
                    let not_recorded = trust::record(file, host, addr.port(), found)
                        .err()
                        .map(|e| e.to_string());
                    Some(FirstContact {
                        server,
                        fingerprint: found,
                        file: file.clone(),
                        not_recorded,
                    })
                }
                _ => None,
            };
            Ok((conn, first_contact))
        }
        Err(tls::Mismatch { expected, found }) => {
            Err(Error::IdentityChanged(Box::new(IdentityChange {
                server,
                mismatch,
                recorded,
                expected,
                found,
                advice,
            })))
        }
    }
}

/// Logs in on a connection past its hellos: the account's role.
pub(super) fn log_in(conn: &mut Connection, version: u32, login: &Credentials) -> Result<Role> {
    if version < LOGIN_VERSION {
        return Err(Error::Unsupported("logins", version));
    }
    conn.send(&Request::Login {
        user: login.user.clone(),
        password: login.password.clone(),
    })?;
    match conn.expect("before answering the login")? {
        Response::LoggedIn { role } => Ok(role),
        Response::Error { kind, message } => Err(Side::Server.remote(kind, message)),
        other => Err(unexpected(other, "logged-in")),
    }
}
