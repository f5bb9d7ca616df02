//! The server's identity: a self-signed certificate and its key, created once in a state
//! directory and kept, and the [`Fingerprint`] people compare and clients pin.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};

/// The key file in a state directory (PKCS#8 PEM, readable by its owner only).
pub const KEY_FILE: &str = "identity.key";
/// The certificate file in a state directory (PEM).
pub const CERT_FILE: &str = "identity.crt";

/// SHA-256 of a certificate's DER bytes; shown as `SHA256:` and unpadded base64, as OpenSSH
/// writes key fingerprints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SHA256:{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Parses `SHA256:<43 characters of unpadded base64>`.
    fn from_str(text: &str) -> std::result::Result<Fingerprint, String> {
        let wrong = || {
            format!(
                "{text:?} is not a fingerprint: expected SHA256: followed by 43 characters of \
                 base64, as the server prints it"
            )
        };
        let encoded = text.strip_prefix("SHA256:").ok_or_else(wrong)?;
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|_| wrong())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| wrong())?;
        Ok(Fingerprint(bytes))
    }
}

/// A server's certificate and private key.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A new self-signed identity (ECDSA P-256), kept in memory only.
    ///
    /// # Errors
    /// When no key can be generated.
    pub fn generate() -> Result<Identity> {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["ft".to_owned()])
                .map_err(|e| Error::Config(format!("cannot create an identity: {e}")))?;
        Ok(Identity::from_parts(
            cert.der().clone(),
            PrivatePkcs8KeyDer::from(signing_key.serialize_der()),
        ))
    }

    fn from_parts(cert: CertificateDer<'static>, key: PrivatePkcs8KeyDer<'static>) -> Identity {
        let fingerprint = Fingerprint::of_certificate(&cert);
        Identity {
            cert,
            key,
            fingerprint,
        }
    }

    /// The identity kept in `dir` ([`KEY_FILE`], [`CERT_FILE`]), created there first if
    /// neither file exists (the directory too, readable by its owner only). True in the
    /// second place when it was created now.
    ///
    /// # Errors
    /// [`Error::Config`] when only one of the files exists, a file cannot be parsed, or the
    /// key is readable by others; [`Error::Io`] when the directory cannot be read or written.
    pub fn load_or_create(dir: &Path) -> Result<(Identity, bool)> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        // Several servers started at once on one state directory (several in front of one
        // bucket): one creates the identity, the others wait for its second file and use it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match (key_path.exists(), cert_path.exists()) {
                (true, true) => {
                    return Identity::load(&key_path, &cert_path).map(|id| (id, false));
                }
                (false, false) => {
                    let identity = Identity::generate()?;
                    match identity.save(dir, &key_path, &cert_path) {
                        Ok(()) => return Ok((identity, true)),
                        // Another process published its certificate first: use its identity.
                        Err(Error::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(e),
                    }
                }
                // Only a file just written can be another process's creation in progress.
                (true, false) | (false, true)
                    if std::time::Instant::now() < deadline
                        && just_written(&key_path, &cert_path) => {}
                (true, false) | (false, true) => {
                    return Err(Error::Config(format!(
                        "{} holds only one of {KEY_FILE} and {CERT_FILE}: restore the other, \
                         or remove both to create a new identity (clients will see it change)",
                        dir.display()
                    )));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn load(key_path: &Path, cert_path: &Path) -> Result<Identity> {
        check_private(key_path)?;
        let bad = |path: &Path, e: &dyn fmt::Display| {
            Error::Config(format!("cannot read {}: {e}", path.display()))
        };
        let key = PrivatePkcs8KeyDer::from_pem_file(key_path).map_err(|e| bad(key_path, &e))?;
        let cert = CertificateDer::from_pem_file(cert_path).map_err(|e| bad(cert_path, &e))?;
        let identity = Identity::from_parts(cert, key);
        // A key that does not match the certificate would fail every handshake later.
        crate::tls::server_config(&identity).map_err(|e| {
            Error::Config(format!(
                "{} and {} do not belong together: {e}",
                key_path.display(),
                cert_path.display()
            ))
        })?;
        Ok(identity)
    }

    fn save(&self, dir: &Path, key_path: &Path, cert_path: &Path) -> Result<()> {
        create_private_dir(dir)?;
        let key_pem = pem("PRIVATE KEY", self.key.secret_pkcs8_der());
        let cert_pem = pem("CERTIFICATE", &self.cert);
        // The certificate first: a crash between the two leaves a state that says so at the
        // next start rather than a key without its certificate being silently replaced.
        write_new(cert_path, cert_pem.as_bytes(), 0o644)?;
        write_new(key_path, key_pem.as_bytes(), 0o600)
    }

    /// The certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// PEM text of one DER object.
/// Whether the one of `a` and `b` that exists was written in the last few seconds: the
/// first file of an identity another process is creating (the second follows within
/// milliseconds), rather than what a crash or an operator left.
fn just_written(a: &Path, b: &Path) -> bool {
    [a, b]
        .iter()
        .filter_map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .any(|at| {
            at.elapsed()
                .map_or(true, |age| age < std::time::Duration::from_secs(10))
        })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Creates `dir` (and its parents) readable by its owner only, if missing.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Writes a file that must not exist yet, with `mode`, durably, and whole before it appears
/// under its name (written under a temporary name, then linked, which fails if the name is
/// taken: a process reading it never sees it half written).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options
        .open(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))
        .and_then(|mut file| {
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))
        })
        .and_then(|()| {
            fs::hard_link(&tmp, path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))
        });
    let _ = fs::remove_file(&tmp);
    written
}

/// Refuses a key file that others may read, as ssh does.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{} is readable by others (mode {:o}): the server's private key must be \
                 readable by its owner only; run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let _ = path;
    Ok(())
}

/// Where a server keeps its identity unless told otherwise: the platform's data directory
/// for ft (on Linux `$XDG_DATA_HOME/ft`, else `~/.local/share/ft`).
pub fn default_state_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "ft").map(|dirs| dirs.data_dir().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_as_written() {
        let fp = Fingerprint::of_certificate(b"certificate bytes");
        let text = fp.to_string();
        assert!(text.starts_with("SHA256:"), "{text}");
        assert_eq!(text.len(), "SHA256:".len() + 43, "{text}");
        assert!(!text.ends_with('='), "{text}");
        assert_eq!(text.parse::<Fingerprint>(), Ok(fp));
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        let good = Fingerprint::of_certificate(b"x").to_string();
        let rows = [
            good.replace("SHA256:", ""),
            good.replace("SHA256:", "MD5:"),
            format!("{good}="),
            good[..good.len() - 1].to_owned(),
            format!("{good}AA"),
            good.replace('A', "*"),
            String::new(),
        ];
        for row in rows {
            if row == good {
                continue;
            }
            assert!(row.parse::<Fingerprint>().is_err(), "{row:?} accepted");
        }
    }

    /// The digest OpenSSH would print for the same bytes: `SHA256:` + unpadded base64.
    #[test]
    fn the_fingerprint_is_sha256_in_unpadded_base64() {
        // sha256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        let fp = Fingerprint::of_certificate(b"abc");
        assert_eq!(
            fp.to_string(),
            "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"
        );
    }

    #[test]
    fn an_identity_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let (first, created) = Identity::load_or_create(&state).expect("create");
        assert!(created);
        let (again, created) = Identity::load_or_create(&state).expect("load");
        assert!(!created);
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(&state.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&state), 0o700);
        }
    }

    /// Servers started together on one state directory end up with one identity.
    #[test]
    fn servers_starting_at_once_share_the_identity_one_of_them_created() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (path, barrier) = (dir.path().join("state"), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Identity::load_or_create(&path).expect("load or create")
                    })
                })
                .collect();
            let made: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect();
            assert_eq!(made.iter().filter(|(_, created)| *created).count(), 1);
            assert!(
                made.iter()
                    .all(|(id, _)| id.fingerprint() == made[0].0.fingerprint())
            );
            let names: Vec<_> = fs::read_dir(dir.path().join("state"))
                .expect("read")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        }
    }

    #[test]
    fn a_half_identity_or_an_open_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        Identity::load_or_create(dir.path()).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.path().join(KEY_FILE);
            fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = Identity::load_or_create(dir.path()).expect_err("open key");
            assert!(e.to_string().contains("chmod 600"), "{e}");
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        fs::remove_file(dir.path().join(CERT_FILE)).expect("remove");
        let e = Identity::load_or_create(dir.path()).expect_err("half");
        assert!(e.to_string().contains("only one of"), "{e}");
        // Left long ago (a crash, an operator), not being written now: refused at once,
        // without the wait for another server's creation to finish.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(dir.path().join(KEY_FILE))
            .and_then(|f| f.set_modified(old))
            .expect("age the key");
        let started = std::time::Instant::now();
        let e = Identity::load_or_create(dir.path()).expect_err("half");
        assert!(e.to_string().contains("only one of"), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "waited {:?}",
            started.elapsed()
        );
    }
}
