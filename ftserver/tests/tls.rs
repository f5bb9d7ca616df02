//! The real `ftserver`'s TLS, seen from outside: a plain greeting, then a TLS 1.3 handshake
//! (a client offering only TLS 1.2 is refused) presenting the certificate whose fingerprint
//! the server printed; and its identity, created once in the state directory (readable by
//! its owner only), kept across restarts, and never inside the served root.

mod util;

use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ftlib::codec::decode_frame;
use ftlib::connection::Connection;
use ftlib::protocol::{Hello, MAX_HELLO_FRAME, Response};
use ftlib::{CERT_FILE, ClientConfig, ErrorKind, Fingerprint, KEY_FILE, TLS_GREETING, Trust};
use rustls::pki_types::ServerName;
use rustls::version::{TLS12, TLS13};
use rustls::{AlertDescription, ClientConnection, ProtocolVersion, SupportedProtocolVersion};
use util::*;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A TCP connection to a TLS ftserver after its plain greeting, and the client side of a
/// handshake offering only `versions` (ring, picked here), run to its end or its failure.
struct Opened {
    greeting: Response,
    tls: ClientConnection,
    sock: TcpStream,
    handshake: io::Result<()>,
}

fn open(addr: SocketAddr, versions: &[&'static SupportedProtocolVersion]) -> Opened {
    let sock = TcpStream::connect(addr).expect("connect");
    // The greeting is one plain frame, read as any ft frame is; nothing follows it until the
    // client speaks, so nothing of the handshake is left in this connection's buffer.
    let greeting = Connection::tcp(sock.try_clone().expect("clone"), DEADLINE)
        .expect("plain connection")
        .recv_hello::<Response>()
        .expect("the greeting");
    let config = rustls::ClientConfig::builder_with_provider(ft_testutil::tls::provider())
        .with_protocol_versions(versions)
        .expect("ring speaks these versions")
        .dangerous()
        .with_custom_certificate_verifier(ft_testutil::tls::TestVerifier::any())
        .with_no_client_auth();
    let name = ServerName::try_from("ft").expect("a server name");
    let mut tls = ClientConnection::new(Arc::new(config), name).expect("client connection");
    let mut io = sock;
    let handshake = (|| {
        while tls.is_handshaking() {
            tls.complete_io(&mut io)?;
        }
        Ok(())
    })();
    Opened {
        greeting,
        tls,
        sock: io,
        handshake,
    }
}

/// The greeting a TLS server sends in plain before the handshake.
fn tls_greeting() -> Response {
    Response::Error {
        kind: ErrorKind::TlsRequired,
        message: TLS_GREETING.to_owned(),
    }
}

/// The next ft frame inside TLS, as a response.
fn recv_inside(opened: &mut Opened) -> Response {
    let mut stream = rustls::Stream::new(&mut opened.tls, &mut opened.sock);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some((msg, _)) =
            decode_frame::<Response>(&bytes, MAX_HELLO_FRAME).expect("an ft frame")
        {
            return msg;
        }
        let n = stream.read(&mut buf).expect("read inside TLS");
        assert_ne!(n, 0, "the server closed before a whole frame");
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// The greeting is plain; the handshake that follows is TLS 1.3 and presents the
/// certificate of the fingerprint on the server's second line; inside it, ft starts over
/// with the server's hello.
#[test]
fn a_plain_greeting_then_tls_13_with_the_printed_certificate() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(root.path(), &[]);
    let mut opened = open(server.addr, &[&TLS13, &TLS12]);
    assert_eq!(opened.greeting, tls_greeting());
    opened.handshake.as_ref().expect("TLS handshake");
    assert_eq!(
        opened.tls.protocol_version(),
        Some(ProtocolVersion::TLSv1_3),
        "offered 1.3 and 1.2"
    );
    let certs = opened.tls.peer_certificates().expect("a certificate");
    assert_eq!(certs.len(), 1, "one self-signed certificate");
    assert_eq!(
        Some(Fingerprint::of_certificate(&certs[0]).to_string()),
        server.fingerprint
    );
    assert_eq!(recv_inside(&mut opened), Response::Hello(Hello::ours()));
}

/// A client offering only TLS 1.2 (which this test build of rustls can speak) gets a
/// `protocol_version` alert; the server reports the failed connection and serves on.
#[test]
fn a_client_offering_only_tls_12_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start(root.path(), &[]);
    let opened = open(server.addr, &[&TLS12]);
    assert_eq!(opened.greeting, tls_greeting());
    let e = opened.handshake.expect_err("TLS 1.2 is refused");
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert_eq!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(&rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion
        )),
        "{e}"
    );
    assert_eq!(opened.tls.protocol_version(), None);
    let line = Line::parse(&server.next_line());
    assert_eq!((line.op.as_str(), line.kind.is_some()), ("connect", true));
    assert!(line.message.contains("TLS"), "{}", line.message);
    assert_eq!(client(&server).list().expect("serves on"), vec![]);
}

/// Permission bits of `path`.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Checks the identity files in `dir`: the key readable by its owner only, the directory
/// too (on Unix); gives the key's bytes.
fn identity_files(dir: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
    }
    assert!(dir.join(CERT_FILE).is_file());
    fs::read(dir.join(KEY_FILE)).expect("the key")
}

/// `--state-dir` (missing, so created, 0700) gets the identity on first start (said on
/// stderr); a restart with it loads the same identity: same key, same fingerprint, and a
/// client pinning the old fingerprint connects. The default directory is left alone.
#[test]
fn the_identity_in_the_state_dir_survives_a_restart() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("served");
    fs::create_dir(&root).expect("mkdir");
    let state = base.path().join("state").join("ft");
    let state_arg = state.to_str().expect("UTF-8 path");
    let extra = ["--state-dir", state_arg];
    let server = ft_testutil::ServerProcess::start(ftserver(), LOCALHOST, &root, &extra);
    let fp = server.fingerprint.clone().expect("a fingerprint");
    server.wait_for_stderr(&format!(
        "created a new identity in {} ({fp})",
        state.display()
    ));
    let key = identity_files(&state);
    let home = server.stop();
    assert!(
        !home.path().join("data").exists(),
        "the default state dir was used"
    );

    let again = ft_testutil::ServerProcess::start_in(ftserver(), LOCALHOST, &root, &extra, home);
    assert_eq!(again.fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(identity_files(&state), key, "the key was rewritten");
    let pin = Trust::Pinned(fp.parse().expect("a fingerprint"));
    let mut client =
        ftlib::Client::connect(again.addr, ClientConfig::trusting(pin)).expect("pinned client");
    assert_eq!(client.list().expect("list"), vec![]);
    assert_eq!(names_in(&root), Vec::<String>::new(), "nothing in the root");
}

/// Without `--state-dir` the identity lives in `$XDG_DATA_HOME/ft`, and a restart with the
/// same environment finds it there.
#[test]
fn the_default_state_dir_is_xdg_data_home_ft() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = ft_testutil::ServerProcess::start(ftserver(), LOCALHOST, root.path(), &[]);
    let dir = server.home.path().join("data").join("ft");
    server.wait_for_stderr(&format!("created a new identity in {}", dir.display()));
    let key = identity_files(&dir);
    let fp = server.fingerprint.clone();
    let home = server.stop();
    assert!(
        !home.path().join(".local").exists(),
        "XDG_DATA_HOME was ignored"
    );
    let again = ft_testutil::ServerProcess::start_in(ftserver(), LOCALHOST, root.path(), &[], home);
    assert_eq!(again.fingerprint, fp);
    assert_eq!(identity_files(&dir), key);
}

/// A state directory that is, or would be, inside the served root (clients could download
/// the private key) is refused at start, whichever way it is written; nothing is created in
/// the root, or anywhere else.
#[test]
fn a_state_dir_inside_the_root_is_refused() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("served");
    fs::create_dir(&root).expect("mkdir");
    let text = |p: &Path| p.to_str().expect("UTF-8 path").to_owned();
    let mut rows: Vec<(&str, Option<String>)> = vec![
        ("the root itself", Some(text(&root))),
        ("a directory in it", Some(text(&root.join("state")))),
        (
            "a relative path into it",
            Some(text(&Path::new("served").join("a").join("b"))),
        ),
        (
            "through a missing directory and ..",
            Some(text(&base.path().join("missing/../served/state"))),
        ),
        ("the default, with XDG_DATA_HOME in the root", None),
    ];
    let mut left = vec!["served".to_owned()];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&root, base.path().join("link")).expect("symlink");
        let link = base.path().join("link").join("state");
        rows.push(("through a symbolic link", Some(text(&link))));
        left.insert(0, "link".to_owned());
    }
    for (what, state_dir) in rows {
        let home = tempfile::tempdir().expect("a home");
        let mut command = Command::new(ftserver());
        isolate(&mut command, home.path());
        command
            .current_dir(base.path())
            .args(["0", "--bind", "127.0.0.1", "--root"])
            .arg(&root);
        match &state_dir {
            Some(dir) => {
                command.args(["--state-dir", dir]);
            }
            None => {
                command.env("XDG_DATA_HOME", &root);
            }
        }
        let out = ft_testutil::run(command);
        assert_eq!(out.code, Some(1), "{what}: {out:?}");
        assert!(
            out.stderr.contains("is inside the served root"),
            "{what}: {out:?}"
        );
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
        assert_eq!(names_in(&root), Vec::<String>::new(), "{what}");
        assert_eq!(names_in(base.path()), left, "{what}");
    }
}
