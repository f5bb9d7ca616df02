//! One [`Report`] per request, on either side: a one-line `Display` for people and a JSON
//! object for programs. How and where it is printed is the binaries' business.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, SecondsFormat};
use serde::Serialize;

use crate::error::Error;
use crate::protocol::{DIGEST_LEN, ErrorKind};
use crate::text::{escape, escape_message, terminal_safe_json};

/// Which request a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Op {
    /// The connection itself: greeting, refusal, malformed input outside a request.
    Connect,
    /// An upload.
    Put,
    /// A download.
    Get,
    /// A listing.
    List,
    /// A login.
    Login,
    /// (v4) Describing one name.
    Stat,
    /// (v4) Creating a directory.
    #[serde(rename = "mkdir")]
    MakeDir,
}

impl Op {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Connect => "connect",
            Op::Put => "put",
            Op::Get => "get",
            Op::List => "list",
            Op::Login => "login",
            Op::Stat => "stat",
            Op::MakeDir => "mkdir",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind, as on the wire.
    pub kind: ErrorKind,
    /// The message (unescaped; escaped when displayed).
    pub message: String,
}

impl From<&Error> for Failure {
    fn from(error: &Error) -> Failure {
        Failure {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct Report {
    /// When it finished.
    pub time: DateTime<Local>,
    /// The other side's address.
    pub peer: SocketAddr,
    /// The account logged in on the connection (`None`: anonymous).
    pub user: Option<String>,
    /// The operation.
    pub op: Op,
    /// The file name, if the request had one.
    pub name: Option<String>,
    /// File bytes moved by this request (0 for a listing).
    pub bytes: u64,
    /// Entries received or sent, for a listing.
    pub entries: Option<u64>,
    /// How long it took.
    pub duration: Duration,
    /// `None` on success.
    pub failure: Option<Failure>,
    /// Why the item was skipped, when it counts as done without moving (a file already
    /// there with the same bytes, a symbolic link that is not followed).
    pub skipped: Option<String>,
    /// A server's report of a download: the whole file and its digest were sent, which is
    /// all a server can know (whether the client verified and stored it is the client's
    /// report to say). Printed `sent` instead of `success`.
    pub sent: bool,
    /// The XXH3-128 of the whole file, as verified end to end: set on a put or get that
    /// succeeded (or a server's `sent`), `None` otherwise. Only JSON shows it.
    pub digest: Option<[u8; DIGEST_LEN]>,
}

impl Report {
    /// A report for a request that started at `started` and finished now; for a listing,
    /// `bytes` is the number of entries.
    pub fn new(
        peer: SocketAddr,
        op: Op,
        name: Option<&str>,
        started: Instant,
        bytes: u64,
        failure: Option<&Error>,
    ) -> Report {
        Report {
            time: Local::now(),
            peer,
            user: None,
            op,
            name: name.map(str::to_owned),
            bytes: if op == Op::List { 0 } else { bytes },
            entries: (op == Op::List).then_some(bytes),
            duration: started.elapsed(),
            failure: failure.map(Failure::from),
            skipped: None,
            sent: false,
            digest: None,
        }
    }

    /// The same report, carrying the file's verified digest if it succeeded (a failed or
    /// skipped item never shows one).
    #[must_use]
    pub fn with_digest(mut self, digest: Option<[u8; DIGEST_LEN]>) -> Report {
        self.digest = digest.filter(|_| self.failure.is_none() && self.skipped.is_none());
        self
    }

    /// The same report, said as a server's download: `sent`, not `success`.
    #[must_use]
    pub fn as_sent(mut self) -> Report {
        self.sent = self.failure.is_none() && self.op == Op::Get;
        self
    }

    /// The same report for an item skipped for `reason`: it needed nothing moved, so it
    /// counts as a success ([`Report::is_success`]).
    #[must_use]
    pub fn skipped(mut self, reason: &str) -> Report {
        self.skipped = Some(reason.to_owned());
        self.failure = None;
        self.digest = None;
        self
    }

    /// The same report, naming the account that made the request.
    #[must_use]
    pub fn by(mut self, user: Option<&str>) -> Report {
        self.user = user.map(str::to_owned);
        self
    }

    /// True when the request succeeded.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    /// The report as one line of JSON (no trailing newline), safe to print on a terminal.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            time: String,
            peer: String,
            user: Option<&'a str>,
            op: Op,
            name: Option<&'a str>,
            bytes: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            entries: Option<u64>,
            duration_ms: f64,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
            error_kind: Option<ErrorKind>,
            message: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            digest: Option<String>,
        }
        let json = Json {
            time: self.time.to_rfc3339_opts(SecondsFormat::Millis, false),
            peer: self.peer.to_string(),
            user: self.user.as_deref(),
            op: self.op,
            name: self.name.as_deref(),
            bytes: self.bytes,
            entries: self.entries,
            duration_ms: (self.duration.as_secs_f64() * 1e6).round() / 1e3,
            status: match (&self.skipped, self.is_success()) {
                (Some(_), _) => "skipped",
                (None, true) if self.sent => "sent",
                (None, true) => "success",
                (None, false) => "failure",
            },
            reason: self.skipped.as_deref(),
            error_kind: self.failure.as_ref().map(|f| f.kind),
            message: self.failure.as_ref().map(|f| f.message.as_str()),
            digest: self.digest.map(|d| hex(&d)),
        };
        let json =
            serde_json::to_string(&json).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        terminal_safe_json(&json)
    }
}

/// `bytes` as lowercase hexadecimal, two digits a byte (a digest as people compare it).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `TIME IP PORT USER OP NAME BYTES DURATION success` or `… failure KIND: MESSAGE`; USER
/// is `-` without a login.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} {:.3}s ",
            self.time.to_rfc3339_opts(SecondsFormat::Millis, false),
            self.peer.ip(),
            self.peer.port(),
            self.user.as_deref().map_or_else(|| "-".to_owned(), escape),
            self.op,
            self.name.as_deref().map_or_else(|| "-".to_owned(), escape),
            match self.entries {
                Some(n) => format!("{n} entries"),
                None => format!("{} bytes", self.bytes),
            },
            self.duration.as_secs_f64(),
        )?;
        match (&self.failure, &self.skipped) {
            (None, Some(reason)) => write!(f, "skipped {}", escape_message(reason)),
            (None, None) if self.sent => f.write_str("sent"),
            (None, None) => f.write_str("success"),
            (Some(failure), _) => write!(
                f,
                "failure {}: {}",
                failure.kind,
                escape_message(&failure.message)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(failure: Option<&Error>) -> Report {
        Report::new(
            "127.0.0.1:4000".parse().expect("addr"),
            Op::Put,
            Some("a b\x1b.txt"),
            Instant::now(),
            42,
            failure,
        )
    }

    #[test]
    fn display_is_one_escaped_line() {
        let ok = sample(None).to_string();
        assert!(ok.ends_with("success"), "{ok}");
        assert!(
            ok.contains(" 127.0.0.1 4000 - put \"a b\\u{1b}.txt\" 42 bytes "),
            "{ok}"
        );
        let err = Error::AlreadyExists {
            name: "x\ny".into(),
            why: crate::error::Taken::Exists,
        };
        let bad = sample(Some(&err)).to_string();
        assert!(!bad.contains('\n') && !bad.contains('\x1b'), "{bad:?}");
        assert!(bad.contains("failure already-exists: "), "{bad}");
    }

    #[test]
    fn json_has_the_documented_fields() {
        let err = Error::NotFound {
            name: "gone".into(),
            why: crate::error::Missing::Absent,
        };
        let json: serde_json::Value =
            serde_json::from_str(&sample(Some(&err)).to_json()).expect("valid json");
        for field in ft_testutil::JSON_REPORT_FIELDS {
            assert!(json.get(field).is_some(), "missing {field}: {json}");
        }
        assert_eq!(json["peer"], "127.0.0.1:4000");
        assert_eq!(json["op"], "put");
        assert_eq!(json["status"], "failure");
        assert_eq!(json["error_kind"], "not-found");
        assert_eq!(json["name"], "a b\u{1b}.txt");
        let ok: serde_json::Value = serde_json::from_str(&sample(None).to_json()).expect("json");
        assert_eq!(ok["status"], "success");
        assert!(ok["error_kind"].is_null());
        assert!(ok.get("digest").is_none(), "no digest unless given: {ok}");
    }

    /// A success carries its digest as 32 hex digits in JSON only; a failure or a skip
    /// never shows one, even if given.
    #[test]
    fn the_digest_is_in_json_only_and_only_on_success() {
        let digest = Some([
            0x00, 0x01, 0xab, 0xcd, 0xef, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90,
            0xa0, 0xff,
        ]);
        let ok = sample(None).with_digest(digest);
        let json: serde_json::Value = serde_json::from_str(&ok.to_json()).expect("json");
        assert_eq!(json["digest"], "0001abcdef102030405060708090a0ff");
        // The line scripts parse is the same with or without it.
        let line = ok.to_string();
        assert!(line.contains(" put \"a b\\u{1b}.txt\" 42 bytes "), "{line}");
        assert!(line.ends_with("s success"), "{line}");
        assert!(!ok.to_string().contains("0001abcdef"), "{ok}");
        let failed = sample(Some(&Error::Cancelled)).with_digest(digest);
        assert!(failed.digest.is_none());
        assert!(
            !failed.to_json().contains("\"digest\""),
            "{}",
            failed.to_json()
        );
        let skipped = sample(None).with_digest(digest).skipped("identical");
        assert!(
            !skipped.to_json().contains("\"digest\""),
            "{}",
            skipped.to_json()
        );
    }

    #[test]
    fn json_is_safe_on_a_terminal_and_still_the_same_value() {
        let raw = serde_json::to_string("a\x1b\u{7f}\u{9b}\u{202e}é").expect("json");
        let safe = terminal_safe_json(&raw);
        assert_eq!(safe, r#""a\u001b\u007f\u009b\u202eé""#);
        let back: String = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, "a\x1b\u{7f}\u{9b}\u{202e}é");
        let report = Report::new(
            "127.0.0.1:1".parse().expect("addr"),
            Op::Put,
            Some("csi\u{9b}31m"),
            Instant::now(),
            0,
            None,
        );
        assert!(
            report.to_json().contains(r"csi\u009b31m"),
            "{}",
            report.to_json()
        );
    }
}
