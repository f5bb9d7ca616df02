//! What a client trusts: a known-hosts file (trust on first use, as SSH does), one pinned
//! fingerprint, or nothing at all over a plain connection; and the known-hosts file itself,
//! lines `HOST PORT SHA256:<fp>`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tls::{Fingerprint, create_private_dir};

/// How a client decides that the server is the one it means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// TLS; the server's fingerprint is looked up in this known-hosts file, and recorded
    /// there on first contact. A different fingerprint stops the client before any request.
    KnownHosts(PathBuf),
    /// TLS; the server must present exactly this fingerprint (no file is read or written).
    Pinned(Fingerprint),
    /// No TLS: names, bytes and listings cross the network in clear. For trusted networks
    /// and benchmarks only; the server must run plain too.
    Plain,
}

impl Default for Trust {
    /// The known-hosts file in the platform's config directory ([`default_known_hosts`]).
    fn default() -> Trust {
        Trust::KnownHosts(default_known_hosts().unwrap_or_default())
    }
}

/// The known-hosts file in the platform's config directory for ft: on Linux
/// `$XDG_CONFIG_HOME/ft/known_hosts`, else `~/.config/ft/known_hosts`. `None` without a home
/// directory.
pub fn default_known_hosts() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "ft").map(|dirs| dirs.config_dir().join("known_hosts"))
}

/// A server's fingerprint recorded on first contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstContact {
    /// The server as the user named it: `HOST port PORT`.
    pub server: String,
    /// Its fingerprint, now trusted.
    pub fingerprint: Fingerprint,
    /// The known-hosts file it was written to.
    pub file: PathBuf,
    /// Why it could not be written there (a home directory that cannot be written, say),
    /// if it could not: the connection goes on, as after any first contact, and the next
    /// one will be a first contact again.
    pub not_recorded: Option<String>,
}

/// The key a server is known by: the host as typed (lowercase, IPv6 brackets removed) and
/// the port.
pub(crate) fn host_key(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// A line of a known-hosts file that names `host` and `port`: its number (from 1) and
/// fingerprint. A missing file knows nobody.
///
/// # Errors
/// [`Error::Config`] for a line that is not `HOST PORT SHA256:<fp>` (or a comment);
/// [`Error::Io`] when the file cannot be read.
pub(crate) fn lookup(file: &Path, host: &str, port: u16) -> Result<Option<(usize, Fingerprint)>> {
    if file.as_os_str().is_empty() {
        return Err(Error::Config(
            "no known-hosts file: there is no home directory to keep it in; pin the server \
             with --fingerprint"
                .into(),
        ));
    }
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        // A file in the way of its directory: it cannot exist either.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot read the known-hosts file {}: {e}; fix it (a readable file of \
                 `HOST PORT SHA256:…` lines), or pin the server with --fingerprint",
                file.display()
            )));
        }
    };
    let host = host_key(host);
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            Error::Config(format!(
                "{} line {} is not `HOST PORT SHA256:<fingerprint>`: fix or remove it",
                file.display(),
                index + 1
            ))
        };
        let mut fields = line.split_whitespace();
        let (Some(h), Some(p), Some(fp), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let p: u16 = p.parse().map_err(|_| bad())?;
        let fp: Fingerprint = fp.parse().map_err(|_| bad())?;
        if h == host && p == port {
            return Ok(Some((index + 1, fp)));
        }
    }
    Ok(None)
}

/// Appends `host port fingerprint` to the known-hosts file, creating it (and its
/// directory, readable by its owner only) if needed.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written.
pub(crate) fn record(file: &Path, host: &str, port: u16, fp: Fingerprint) -> Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The configuration directory and its parent (`~/.config/ft`) may be made, never
        // the home directory they belong in.
        let home = dir.parent().and_then(Path::parent);
        if home.is_some_and(|home| !home.as_os_str().is_empty() && !home.is_dir()) {
            return Err(Error::Config(format!(
                "{} does not exist: no known-hosts file is made there",
                home.map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )));
        }
        create_private_dir(dir)?;
    }
    let context = || format!("recording the server in {}", file.display());
    let mut out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| Error::io(context(), e))?;
    // One write of one whole line, so concurrent first contacts do not interleave.
    let line = format!("{} {port} {fp}\n", host_key(host));
    out.write_all(line.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| Error::io(context(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(seed: &[u8]) -> Fingerprint {
        Fingerprint::of_certificate(seed)
    }

    #[test]
    fn a_recorded_server_is_found_by_host_and_port() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cfg/ft/known_hosts");
        assert_eq!(lookup(&file, "localhost", 6789).expect("missing"), None);
        record(&file, "LocalHost", 6789, fp(b"a")).expect("record");
        record(&file, "localhost", 6790, fp(b"b")).expect("record");
        record(&file, "[::1]", 6789, fp(b"c")).expect("record");
        assert_eq!(
            lookup(&file, "localhost", 6789).expect("read"),
            Some((1, fp(b"a")))
        );
        assert_eq!(
            lookup(&file, "LOCALHOST", 6790).expect("read"),
            Some((2, fp(b"b")))
        );
        assert_eq!(
            lookup(&file, "::1", 6789).expect("read"),
            Some((3, fp(b"c")))
        );
        assert_eq!(lookup(&file, "127.0.0.1", 6789).expect("read"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.parent().expect("dir"))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn comments_are_skipped_and_a_broken_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("known_hosts");
        let good = fp(b"a");
        fs::write(&file, format!("# mine\n\nhost 1 {good}\nhost two {good}\n")).expect("write");
        assert_eq!(lookup(&file, "host", 1).expect("read"), Some((3, good)));
        let e = lookup(&file, "other", 1).expect_err("line 4");
        assert!(e.to_string().contains("line 4"), "{e}");
    }
}
