//! A fake ft server that lies, for testing the client against it: it accepts one connection
//! on loopback and plays a script written with ftlib's own codec, then answers `List` with
//! an empty listing so a test can tell whether the connection is still in step. Also the
//! hostile listing both the library and the `ftclient` binary are tested against, and the
//! check that what they print holds nothing a terminal would interpret.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use ftlib::Error;
use ftlib::connection::Connection;
use ftlib::protocol::{Body, Entry, EntryKind, EntryV3, Hello, How, Request, Response};
use serde::Serialize;

/// The name every download and upload script expects the client to ask for.
pub const NAME: &str = "asked.txt";

/// How long the fake server waits for the client before giving up on it.
pub const FAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the fake server's connection ended, once its script was played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed (or reset) the connection.
    ClientClosed,
    /// The client kept the connection open but said nothing for [`FAKE_TIMEOUT`].
    ClientSilent,
}

/// A fake ft server on loopback, built on ftlib's own codec: it accepts one connection,
/// plays a script on it, then answers any `List` with an empty listing (so a test can check
/// the connection is still in step) until the client hangs up.
#[derive(Debug)]
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    thread: Option<JoinHandle<Ending>>,
}

impl FakeServer {
    /// Plays `script` from the first byte: the script decides whether and how to greet.
    pub fn start(script: fn(&mut Peer)) -> FakeServer {
        FakeServer::spawn(script, false)
    }

    /// Greets like a real server, reads the client's hello, then plays `script`.
    pub fn after_hello(script: fn(&mut Peer)) -> FakeServer {
        FakeServer::spawn(script, true)
    }

    fn spawn(script: fn(&mut Peer), greet: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let raw = stream.try_clone().expect("clone stream");
            let mut peer = Peer {
                conn: Connection::tcp(stream, FAKE_TIMEOUT).expect("connection"),
                raw,
            };
            if greet {
                peer.handshake();
            }
            script(&mut peer);
            peer.serve_until_closed()
        });
        FakeServer {
            addr,
            thread: Some(thread),
        }
    }

    /// Waits for the fake server to finish (bounded by [`FAKE_TIMEOUT`]) and re-raises any
    /// failed assertion of its script.
    pub fn finish(mut self) -> Ending {
        match self.thread.take().expect("not finished yet").join() {
            Ok(ending) => ending,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// The server's end of the connection, as a script sees it.
#[derive(Debug)]
pub struct Peer {
    conn: Connection,
    /// The same socket, for bytes that are not a well-formed frame.
    pub raw: TcpStream,
}

impl Peer {
    /// Greets like a real server and reads the client's hello.
    fn handshake(&mut self) {
        self.send(&Response::Hello(Hello::ours()));
        match self.conn.recv_hello::<Request>().expect("client hello") {
            Request::Hello(_) => {}
            other => panic!("expected the client's hello, got {other:?}"),
        }
    }

    /// The client's next request.
    pub fn request(&mut self) -> Request {
        self.conn
            .expect::<Request>("a request")
            .expect("the client's request")
    }

    /// Reads a `Get` and checks it asks for [`NAME`].
    pub fn expect_get(&mut self) {
        match self.request() {
            Request::Get { name } => assert_eq!(name, NAME),
            other => panic!("expected get {NAME}, got {other:?}"),
        }
    }

    /// Reads a `List`.
    pub fn expect_list(&mut self) {
        match self.request() {
            Request::List => {}
            other => panic!("expected list, got {other:?}"),
        }
    }

    /// Reads a `Put` (or a v4 `Upload` that waits); returns the declared size.
    pub fn expect_put(&mut self) -> u64 {
        match self.request() {
            Request::Put { name, size }
            | Request::Upload {
                name,
                size,
                how: How::Wait,
                ..
            } => {
                assert_eq!(name, NAME);
                size
            }
            other => panic!("expected put {NAME}, got {other:?}"),
        }
    }

    /// Reads an upload body up to its `End` or `Abort`; returns the bytes received.
    pub fn drain_body(&mut self) -> u64 {
        let mut got = 0;
        loop {
            match self.conn.expect::<Body<'_>>("a body").expect("body frame") {
                Body::Chunk(data) => got += data.len() as u64,
                Body::End { .. } | Body::Abort { .. } => return got,
            }
        }
    }

    /// Sends one frame. The client may have hung up already; the script carries on.
    pub fn send<T: Serialize + ?Sized>(&mut self, msg: &T) {
        let _ = self.conn.send(msg);
    }

    /// Sends one frame; false once the client is gone.
    pub fn try_send<T: Serialize + ?Sized>(&mut self, msg: &T) -> bool {
        self.conn.send(msg).is_ok()
    }

    /// Sends `payload` with a correct header, whatever it contains.
    pub fn frame(&mut self, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("payload fits a header");
        self.raw(&len.to_be_bytes());
        self.raw(payload);
    }

    /// Sends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) {
        let _ = self.raw.write_all(bytes);
    }

    /// Announces a download of `size` bytes.
    pub fn file(&mut self, size: u64) {
        self.send(&Response::File { size, modified: 0 });
    }

    /// Closes the connection.
    pub fn hang_up(&mut self) {
        self.conn.close();
    }

    /// After the script: answers `List` with an empty listing, ignores anything else, until
    /// the client closes or stays silent for [`FAKE_TIMEOUT`].
    fn serve_until_closed(mut self) -> Ending {
        loop {
            match self.conn.recv::<Request>() {
                Ok(Some(Request::List)) => self.send(&Response::ListEnd { count: 0 }),
                Ok(Some(_)) => {}
                // Body frames of an upload the script did not read: skip them.
                Err(Error::Protocol(_)) => {}
                Err(Error::Timeout(_)) => return Ending::ClientSilent,
                Ok(None) | Err(_) => return Ending::ClientClosed,
            }
        }
    }
}

/// A listing entry for a file named `name`.
pub fn entry(name: &str) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: EntryKind::File,
        size: 1,
        modified: 0,
        executable: false,
    }
}

/// Names that would take over a terminal: the client accepts them as data.
pub fn terminal_names() -> Vec<Entry> {
    let names = [
        "clear\x1b[2J\x1b[H",
        "title\x1b]0;owned\x07",
        "two\nlines",
        "carriage\rreturn",
        "tab\there",
        "bell\x07",
        "del\x7f",
        "c1 csi\u{9b}31m",
        "rtl\u{202e}fdp.exe",
        "isolate\u{2066}x\u{2069}",
        "quote\"and\\backslash",
        "../x",
        "/etc/x",
        "plain.txt",
    ];
    let mut entries: Vec<Entry> = names.iter().map(|n| entry(n)).collect();
    entries.push(Entry {
        name: "dir\x1b[31m".into(),
        kind: EntryKind::Dir,
        size: 0,
        modified: 0,
        executable: false,
    });
    entries
}

/// A script: answers a `List` with [`terminal_names`], in two batches.
pub fn serve_terminal_names(p: &mut Peer) {
    p.expect_list();
    let entries = terminal_names();
    let (first, second) = entries.split_at(5);
    let old = |entries: &[Entry]| entries.iter().cloned().map(EntryV3::from).collect();
    p.send(&Response::Entries(old(first)));
    p.send(&Response::Entries(old(second)));
    p.send(&Response::ListEnd {
        count: entries.len() as u64,
    });
}

/// Panics when `text` holds anything a terminal would interpret.
pub fn assert_printable(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in {text:?}"
    );
}
