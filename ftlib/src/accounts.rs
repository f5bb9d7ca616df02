//! A server's accounts: the users file (`NAME:ROLE:PHC` lines with argon2id hashes), checking
//! a login against it (bounded memory, the same time for unknown users as for wrong
//! passwords), adding a user to it atomically, and the [`Throttle`] that slows repeated login
//! failures from one address.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHashString, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{Error, Result};
use crate::protocol::{MAX_PASSWORD, MAX_USER};
use crate::sys;
use crate::text::escape;

mod throttle;

pub use crate::protocol::Role;
pub use throttle::Throttle;

/// Largest argon2 memory cost accepted in a users file, in KiB (the default is 19 MiB):
/// hashes made elsewhere may be costlier, but not enough to take the server's memory.
const MAX_M_COST: u32 = 256 * 1024;

/// Largest argon2 time cost accepted in a users file (the default is 2).
const MAX_T_COST: u32 = 16;

/// Largest argon2 parallelism accepted in a users file (the default is 1).
const MAX_P_COST: u32 = 16;

/// Argon2 computations allowed at once in the process: each holds its memory cost (19 MiB
/// with the defaults) for its whole run.
const CONCURRENT_HASHES: usize = 2;

/// The accounts of a users file: who may log in, with which password and [`Role`].
///
/// # Examples
/// ```
/// use ftlib::accounts::{Added, Role, Users, add_user};
///
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("users");
/// assert_eq!(add_user(&file, "alice", Role::Write, "s3cret")?, Added::Added);
/// let users = Users::load(&file)?;
/// assert_eq!(users.verify("alice", "s3cret"), Some(Role::Write));
/// assert_eq!(users.verify("alice", "guess"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Users {
    accounts: HashMap<String, Account>,
    /// What an unknown user's password is checked against, so that the answer takes as long
    /// as for a known one.
    dummy: PasswordHashString,
}

/// One line of the users file.
struct Account {
    role: Role,
    hash: PasswordHashString,
}

impl fmt::Debug for Users {
    /// Names and roles only: the hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.accounts.iter().collect();
        names.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f.debug_map()
            .entries(
                names
                    .into_iter()
                    .map(|(name, account)| (name, account.role)),
            )
            .finish()
    }
}

impl Users {
    /// Reads the users file at `path`: lines `NAME:ROLE:PHC`, where ROLE is `read` or `write`
    /// and PHC an argon2id hash as [`add_user`] writes it; blank lines and lines starting
    /// with `#` are ignored.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Config`] naming the file and the
    /// line for a line that is not a valid account, or names a user already defined.
    pub fn load(path: &Path) -> Result<Users> {
        let text = fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the users file {}", path.display()), e))?;
        Users::parse(&text, path)
    }

    /// The accounts in `text`, the contents of the users file at `path`.
    fn parse(text: &str, path: &Path) -> Result<Users> {
        let mut accounts = HashMap::new();
        let mut lines = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let bad = |why: String| {
                Error::Config(format!(
                    "users file {} line {number}: {why}",
                    path.display()
                ))
            };
            let Some((name, role, hash)) = parse_line(line).map_err(bad)? else {
                continue;
            };
            if let Some(first) = lines.insert(name, number) {
                return Err(bad(format!(
                    "user {name} is already defined on line {first}"
                )));
            }
            accounts.insert(name.to_owned(), Account { role, hash });
        }
        Ok(Users {
            accounts,
            dummy: dummy_hash()?,
        })
    }

    /// The role of `name` if `password` is theirs; `None` for a wrong password and for an
    /// unknown user alike, after the same work. At most two checks run at once in the
    /// process (each holds the hash's memory cost, 19 MiB by default); more wait their turn.
    pub fn verify(&self, name: &str, password: &str) -> Option<Role> {
        let account = self.accounts.get(name);
        let hash = account.map_or(&self.dummy, |account| &account.hash);
        let matches = {
            let mut permit = HASHING.acquire();
            matches_hash(
                &hash.password_hash(),
                password.as_bytes(),
                &mut permit.blocks,
            )
        };
        account.filter(|_| matches).map(|account| account.role)
    }

    /// True when the file defines no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }
}

/// What [`add_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The name was new: its line was appended.
    Added,
    /// The name existed: its line was replaced in place.
    Replaced,
}

/// Gives `name` the role `role` and the password `password` in the users file at `path`,
/// creating the file if missing. The password is hashed with argon2id (the argon2 crate's
/// default parameters, a random salt). An existing line of `name` is replaced where it
/// stands; other lines, comments included, are kept in order. The new file is written
/// beside the old one, readable by its owner only (mode 0600), synced, and renamed over it.
///
/// # Errors
/// [`Error::Config`] for an invalid name, an empty or too long password, or an existing file
/// that does not load (see [`Users::load`]); [`Error::Io`] when the file cannot be read or
/// written.
pub fn add_user(path: &Path, name: &str, role: Role, password: &str) -> Result<Added> {
    check_name(name).map_err(Error::Config)?;
    if !matches!(role, Role::Read | Role::Write) {
        return Err(Error::Config(format!(
            "{role} is not a role: read or write"
        )));
    }
    if password.is_empty() {
        return Err(Error::Config("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Error::Config(format!(
            "the password is {} bytes long; a server checks at most {MAX_PASSWORD}",
            password.len()
        )));
    }
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::io(
                format!("reading the users file {}", path.display()),
                e,
            ));
        }
    };
    // Never rewrite a file the server would not load.
    Users::parse(&text, path)?;

    let hash = {
        let salt = SaltString::generate(&mut OsRng);
        let _permit = HASHING.acquire();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Error::Config(format!("hashing the password: {e}")))?
            .serialize()
    };
    let new_line = format!("{name}:{role}:{}", hash.as_str());
    let mut added = Added::Added;
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines() {
        if matches!(parse_line(line), Ok(Some((n, _, _))) if n == name) {
            lines.push(&new_line);
            added = Added::Replaced;
        } else {
            lines.push(line);
        }
    }
    if added == Added::Added {
        lines.push(&new_line);
    }
    let mut contents = lines.join("\n");
    contents.push('\n');
    replace_file(path, contents.as_bytes())?;
    Ok(added)
}

/// Removes the account `name` from the users file at `path`: its line goes, every other
/// line (comments included) is kept in order, and the file is replaced as [`add_user`]
/// replaces it. Returns `false`, changing nothing, when there is no such account.
///
/// # Errors
/// [`Error::Config`] for an invalid name or a file that does not load (see
/// [`Users::load`]); [`Error::Io`] when the file cannot be read or written (a missing file
/// included: there is nothing to remove from).
pub fn remove_user(path: &Path, name: &str) -> Result<bool> {
    check_name(name).map_err(Error::Config)?;
    let text = fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the users file {}", path.display()), e))?;
    // Never rewrite a file the server would not load.
    Users::parse(&text, path)?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !matches!(parse_line(line), Ok(Some((n, _, _))) if n == name))
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(false);
    }
    let mut contents = kept.join("\n");
    if !contents.is_empty() {
        contents.push('\n');
    }
    replace_file(path, contents.as_bytes())?;
    Ok(true)
}

/// The account on `line`, `None` for a comment or a blank line, or why the line is invalid.
fn parse_line(line: &str) -> std::result::Result<Option<(&str, Role, PasswordHashString)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.splitn(3, ':');
    let (Some(name), Some(role), Some(phc)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("expected NAME:ROLE:PASSWORD-HASH".into());
    };
    check_name(name)?;
    let role = role.parse::<Role>()?;
    let hash = PasswordHashString::new(phc)
        .map_err(|e| format!("the password hash of {name} is not a PHC string: {e}"))?;
    check_hash(&hash).map_err(|why| format!("the password hash of {name} {why}"))?;
    Ok(Some((name, role, hash)))
}

/// Refuses a user name that is not 1 to [`MAX_USER`] characters of `A-Z a-z 0-9 . _ -`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_USER
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid user name {}: 1 to {MAX_USER} characters of A-Z a-z 0-9 . _ -",
            escape(name)
        ))
    }
}

/// Refuses a hash that is not argon2id with a salt and an output, or whose costs exceed
/// the limits; completes "the password hash of NAME ...".
fn check_hash(hash: &PasswordHashString) -> std::result::Result<(), String> {
    let hash = hash.password_hash();
    if Algorithm::try_from(hash.algorithm) != Ok(Algorithm::Argon2id) {
        return Err(format!("is {}, not argon2id", hash.algorithm));
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("lacks its salt or its hash".into());
    }
    let params = Params::try_from(&hash).map_err(|e| format!("has invalid parameters: {e}"))?;
    if params.m_cost() > MAX_M_COST || params.t_cost() > MAX_T_COST || params.p_cost() > MAX_P_COST
    {
        return Err(format!(
            "costs more than a server spends on a login (m={}, t={}, p={}; at most m={MAX_M_COST}, \
             t={MAX_T_COST}, p={MAX_P_COST})",
            params.m_cost(),
            params.t_cost(),
            params.p_cost()
        ));
    }
    // The version is checked by the argon2 crate when the hash is verified; an unknown one
    // never verifies.
    Ok(())
}

/// A hash with the default parameters that no password is known to match: checking it
/// costs what checking a real account costs.
fn dummy_hash() -> Result<PasswordHashString> {
    let zeros = "A".repeat(43);
    let phc = format!(
        "$argon2id$v=19$m={},t={},p={}$AAAAAAAAAAAAAAAAAAAAAA${zeros}",
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST
    );
    PasswordHashString::new(&phc)
        .map_err(|e| Error::Config(format!("the stand-in password hash {phc} is invalid: {e}")))
}

/// Writes `contents` to a new file beside `path` (mode 0600), syncs it, renames it over
/// `path` and syncs the directory.
fn replace_file(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file name", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let context = || format!("writing the users file {}", path.display());

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()?;
        sys::publish_replace(&tmp, path)
    });
    if let Err(e) = written {
        // Nothing was published; do not leave the half-written copy behind.
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&tmp);
        }
        return Err(Error::io(context(), e));
    }
    sys::sync_dir(&dir).map_err(|e| Error::io(context(), e))
}

/// Counts the argon2 computations running in the process and makes more wait; keeps the
/// memory of those that verify logins for the next ones.
struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

#[derive(Debug)]
struct GateState {
    running: usize,
    /// The memory of verifications that ended: at most [`CONCURRENT_HASHES`] of them, each
    /// at most the default cost (19 MiB).
    spare: Vec<Vec<Block>>,
}

/// The gate of every argon2 computation in the process.
static HASHING: Gate = Gate {
    state: Mutex::new(GateState {
        running: 0,
        spare: Vec::new(),
    }),
    freed: Condvar::new(),
};

/// A place at the [`Gate`] and the memory it lends, given back on drop.
struct Permit {
    gate: &'static Gate,
    blocks: Vec<Block>,
}

impl Gate {
    /// Waits until fewer than [`CONCURRENT_HASHES`] computations run, and takes a place.
    fn acquire(&'static self) -> Permit {
        let mut state = lock(&self.state);
        while state.running >= CONCURRENT_HASHES {
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.running += 1;
        let blocks = state.spare.pop().unwrap_or_default();
        Permit { gate: self, blocks }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Kept for the next check up to the default cost; a costlier hash's memory (a
        // users file may hold up to MAX_M_COST) is given back.
        let mut blocks = std::mem::take(&mut self.blocks);
        if blocks.len() > Params::DEFAULT.block_count() {
            blocks = Vec::new();
        }
        let mut state = lock(&self.gate.state);
        state.running -= 1;
        state.spare.push(blocks);
        drop(state);
        self.gate.freed.notify_one();
    }
}

/// Whether `password` hashes to `hash` (argon2id, as [`check_hash`] made sure when the file
/// was loaded), computed in `blocks`, grown to the hash's memory cost and kept for the next
/// check. Written here rather than with the argon2 crate's `verify_password` because that
/// allocates the memory anew for every check, and the allocator keeps what each thread
/// freed: a burst of 100 failed logins left the server 390 MB larger.
fn matches_hash(hash: &PasswordHash<'_>, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_bytes = [0; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let count = params.block_count();
    if blocks.len() < count {
        blocks.resize(count, Block::default());
    }
    let mut out = [0; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password, salt, &mut *out, &mut blocks[..count])
        .is_ok()
        // `Output`'s comparison takes the same time wherever the bytes differ.
        && Output::new(out).is_ok_and(|got| got == expected)
}

/// Locks `mutex`; a panic elsewhere never leaves these counters half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier;

    use super::*;

    fn users_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("users");
        (dir, file)
    }

    #[test]
    fn an_added_user_logs_in_with_their_password_only() {
        let (_dir, file) = users_file();
        assert_eq!(
            add_user(&file, "alice", Role::Write, "correct horse").expect("add"),
            Added::Added
        );
        let users = Users::load(&file).expect("load");
        assert_eq!((users.len(), users.is_empty()), (1, false));
        assert_eq!(users.verify("alice", "correct horse"), Some(Role::Write));
        assert_eq!(users.verify("alice", "correct horsE"), None);
        assert_eq!(users.verify("bob", "correct horse"), None);
        let text = fs::read_to_string(&file).expect("read");
        assert!(
            text.starts_with("alice:write:$argon2id$v=19$m=19456,t=2,p=1$"),
            "{text}"
        );
        assert_eq!(format!("{users:?}"), r#"{"alice": Write}"#);
    }

    #[cfg(unix)]
    #[test]
    fn the_users_file_is_private_and_no_temporary_copy_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, file) = users_file();
        fs::write(&file, "# accounts\n").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        add_user(&file, "alice", Role::Read, "pw").expect("add");
        let mode = fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["users"]);
    }

    #[test]
    fn replacing_keeps_the_other_lines_in_order() {
        let (_dir, file) = users_file();
        add_user(&file, "alice", Role::Write, "old").expect("add");
        let alice = fs::read_to_string(&file).expect("read");
        let bob = format!("bob:read:{}", dummy_hash().expect("dummy").as_str());
        fs::write(
            &file,
            format!("# the team\n\n{bob}\n  # alice below\n{alice}# end\n"),
        )
        .expect("write");

        assert_eq!(
            add_user(&file, "alice", Role::Read, "new").expect("replace"),
            Added::Replaced
        );
        let text = fs::read_to_string(&file).expect("read");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[..4],
            ["# the team", "", bob.as_str(), "  # alice below"]
        );
        assert!(lines[4].starts_with("alice:read:$argon2id$"), "{text}");
        assert_eq!(lines[5..], ["# end"]);
        let users = Users::load(&file).expect("load");
        assert_eq!(users.len(), 2);
        assert_eq!(users.verify("alice", "new"), Some(Role::Read));
        assert_eq!(users.verify("alice", "old"), None);
    }

    #[test]
    fn malformed_lines_are_refused_with_file_and_line() {
        let good = dummy_hash().expect("dummy");
        let good = good.as_str();
        let cases = [
            ("alice", "expected NAME:ROLE:PASSWORD-HASH"),
            ("alice:write", "expected NAME:ROLE:PASSWORD-HASH"),
            (&format!(":write:{good}"), "invalid user name"),
            (&format!("al ice:write:{good}"), "invalid user name"),
            (
                &format!("{}:write:{good}", "a".repeat(65)),
                "invalid user name",
            ),
            (&format!("alice:admin:{good}"), "\"admin\" is not a role"),
            (&format!("alice:other:{good}"), "\"other\" is not a role"),
            (
                "alice:write:hunter2",
                "the password hash of alice is not a PHC string",
            ),
            (
                &good.replace("argon2id", "argon2i"),
                "the password hash of alice is argon2i, not argon2id",
            ),
            (
                &good.replace("m=19456", "m=4194304"),
                "the password hash of alice costs more than a server spends",
            ),
            (
                "alice:write:$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA",
                "the password hash of alice lacks its salt or its hash",
            ),
        ];
        let (_dir, file) = users_file();
        for (line, why) in cases {
            let line = if line.starts_with("$argon2") {
                format!("alice:write:{line}")
            } else {
                line.to_owned()
            };
            fs::write(&file, format!("# comment\n\n{line}\n")).expect("write");
            let error = Users::load(&file).expect_err(&line).to_string();
            let expected = format!("users file {} line 3: {why}", file.display());
            assert!(error.starts_with(&expected), "{line}: {error}");
            // add_user refuses to rewrite such a file.
            let added = add_user(&file, "bob", Role::Read, "pw").expect_err(&line);
            assert!(added.to_string().starts_with(&expected), "{added}");
        }
        fs::write(&file, format!("alice:write:{good}\n#\nalice:read:{good}\n")).expect("write");
        let error = Users::load(&file).expect_err("duplicate").to_string();
        assert!(
            error.ends_with("line 3: user alice is already defined on line 1"),
            "{error}"
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf_are_allowed() {
        let (_dir, file) = users_file();
        let good = dummy_hash().expect("dummy");
        fs::write(
            &file,
            format!("# users\r\n\r\n   \r\n a.b_c-9:read:{}\r\n", good.as_str()),
        )
        .expect("write");
        let users = Users::load(&file).expect("load");
        assert_eq!(users.len(), 1);
        fs::write(&file, "").expect("write");
        assert!(Users::load(&file).expect("load").is_empty());
        let missing = Users::load(&file.with_extension("missing")).expect_err("missing");
        assert!(
            missing.to_string().starts_with("reading the users file"),
            "{missing}"
        );
    }

    #[test]
    fn add_user_refuses_bad_names_and_passwords_without_writing() {
        let (_dir, file) = users_file();
        let long = "x".repeat(MAX_PASSWORD + 1);
        let cases = [
            ("", Role::Write, "pw", "invalid user name"),
            ("a:b", Role::Write, "pw", "invalid user name"),
            ("a\nb", Role::Write, "pw", "invalid user name"),
            ("alice", Role::Write, "", "the password is empty"),
            ("alice", Role::Write, &long, "a server checks at most 1024"),
            ("alice", Role::Other, "pw", "other is not a role"),
        ];
        for (name, role, password, why) in cases {
            let error = add_user(&file, name, role, password).expect_err(why);
            assert!(matches!(error, Error::Config(_)), "{error:?}");
            assert!(error.to_string().contains(why), "{error}");
            assert!(!file.exists());
        }
    }

    /// The verification written here agrees with the argon2 crate's own on hashes of other
    /// costs, output lengths and both versions, reusing (and growing) one buffer.
    #[test]
    fn matches_hash_agrees_with_the_argon2_crate() {
        let mut blocks = Vec::new();
        let cases = [
            (Version::V0x13, 8, 1, 1, 32),
            (Version::V0x13, 64, 3, 2, 16),
            (Version::V0x10, 32, 2, 1, 64),
            (Version::V0x13, 1024, 1, 4, 32),
        ];
        for (version, m, t, p, len) in cases {
            let params = Params::new(m, t, p, Some(len)).expect("params");
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(Algorithm::Argon2id, version, params)
                .hash_password(b"right", &salt)
                .expect("hash")
                .serialize();
            let hash = phc.password_hash();
            for (password, want) in [(&b"right"[..], true), (b"wrong", false), (b"", false)] {
                let crate_says = Argon2::default().verify_password(password, &hash).is_ok();
                assert_eq!(crate_says, want, "{phc}");
                assert_eq!(matches_hash(&hash, password, &mut blocks), want, "{phc}");
            }
        }
        assert_eq!(blocks.len(), 1024, "grown to the costliest");
    }

    #[test]
    fn at_most_two_hashes_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static MOST: AtomicUsize = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    let _permit = HASHING.acquire();
                    let running = lock(&HASHING.state).running;
                    MOST.fetch_max(running, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                });
            }
        });
        assert!(MOST.load(Ordering::SeqCst) <= CONCURRENT_HASHES);
    }
}
