//! `ftserver --users FILE --add-user NAME --role ROLE`: where the password comes from
//! (`FT_PASSWORD`, or a prompt without echo on a terminal) and the line that reports what
//! was done. The file itself is `ftlib::accounts`'s.

use std::env;
use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::path::Path;

use ftlib::Role;
use ftlib::accounts::{self, Added};

/// The environment variable a password is taken from before any prompt.
pub(crate) const PASSWORD_VAR: &str = "FT_PASSWORD";

/// Adds `name` with `role` to the users file `file`, or replaces their line, with a password
/// from `FT_PASSWORD` or asked twice on the terminal. Returns the line to print.
pub(crate) fn add_user(file: &Path, name: &str, role: Role) -> Result<String, String> {
    let password = new_password(
        env::var_os(PASSWORD_VAR),
        io::stdin().is_terminal(),
        &format!("password for {name}: "),
        ask,
    )?;
    add_with(file, name, role, &password)
}

/// Said after a change to the users file: the server reads it only at start.
pub(crate) const RESTART: &str =
    "; a running ftserver reads the file when it starts: restart it to use the change";

/// What [`add_user`] does once it has the password.
fn add_with(file: &Path, name: &str, role: Role, password: &str) -> Result<String, String> {
    let shown = file.display();
    match accounts::add_user(file, name, role, password) {
        Ok(Added::Added) => Ok(format!("added user {name} ({role}) to {shown}{RESTART}")),
        Ok(Added::Replaced) => Ok(format!("replaced user {name} ({role}) in {shown}{RESTART}")),
        Err(e) => Err(format!("cannot add user {name} to {shown}: {e}")),
    }
}

/// Removes the account `name` from the users file `file`. Returns the line to print.
pub(crate) fn remove_user(file: &Path, name: &str) -> Result<String, String> {
    let shown = file.display();
    match accounts::remove_user(file, name) {
        Ok(true) => Ok(format!("removed user {name} from {shown}{RESTART}")),
        Ok(false) => Err(format!("no user {name} in {shown}; nothing was changed")),
        Err(e) => Err(format!("cannot remove user {name} from {shown}: {e}")),
    }
}

/// The password in `var` if set; else, on a `terminal`, what `ask` reads after `prompt`.
fn password_from(
    var: Option<OsString>,
    terminal: bool,
    prompt: &str,
    mut ask: impl FnMut(&str) -> io::Result<String>,
) -> Result<String, String> {
    if let Some(value) = var {
        return value
            .into_string()
            .map_err(|_| format!("{PASSWORD_VAR} is not valid UTF-8"));
    }
    if !terminal {
        return Err(format!(
            "no password: set {PASSWORD_VAR}, or run on a terminal to be asked for it"
        ));
    }
    ask(prompt).map_err(|e| format!("cannot read the password: {e}"))
}

/// [`password_from`], asking twice on a terminal so that a typo is not recorded.
fn new_password(
    var: Option<OsString>,
    terminal: bool,
    prompt: &str,
    mut ask: impl FnMut(&str) -> io::Result<String>,
) -> Result<String, String> {
    let from_var = var.is_some();
    let password = password_from(var, terminal, prompt, &mut ask)?;
    if !from_var {
        let again = password_from(None, terminal, "the same password again: ", &mut ask)?;
        if again != password {
            return Err("the two passwords differ; nothing was changed".into());
        }
    }
    Ok(password)
}

/// Prints `prompt` and reads a line on the terminal without echo.
fn ask(prompt: &str) -> io::Result<String> {
    rpassword::prompt_password(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that answers `answers` in turn and records the prompts.
    fn terminal<'a>(
        answers: &'a [&'a str],
        prompts: &'a mut Vec<String>,
    ) -> impl FnMut(&str) -> io::Result<String> + 'a {
        let mut answers = answers.iter();
        move |prompt| {
            prompts.push(prompt.to_owned());
            answers
                .next()
                .map(|a| a.to_string())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
        }
    }

    #[test]
    fn the_variable_comes_first_and_is_never_confirmed() {
        let mut prompts = Vec::new();
        let got = new_password(
            Some("from-env".into()),
            true,
            "password: ",
            terminal(&[], &mut prompts),
        );
        assert_eq!(got.as_deref(), Ok("from-env"));
        assert!(prompts.is_empty());
    }

    #[test]
    fn a_terminal_is_asked_twice_and_the_answers_must_agree() {
        let mut prompts = Vec::new();
        let got = new_password(None, true, "pw: ", terminal(&["a", "a"], &mut prompts));
        assert_eq!(got.as_deref(), Ok("a"));
        assert_eq!(prompts, ["pw: ", "the same password again: "]);

        let mut prompts = Vec::new();
        let got = new_password(None, true, "pw: ", terminal(&["a", "b"], &mut prompts));
        assert_eq!(
            got,
            Err("the two passwords differ; nothing was changed".into())
        );

        let mut prompts = Vec::new();
        let got = password_from(None, true, "pw: ", terminal(&["once"], &mut prompts));
        assert_eq!(got.as_deref(), Ok("once"));
        assert_eq!(prompts, ["pw: "]);
    }

    #[test]
    fn without_a_terminal_or_the_variable_the_message_says_what_to_do() {
        let mut prompts = Vec::new();
        let got = new_password(None, false, "pw: ", terminal(&["a"], &mut prompts));
        let message = got.expect_err("no source of password");
        assert!(message.contains("set FT_PASSWORD"), "{message}");
        assert!(prompts.is_empty());

        let mut prompts = Vec::new();
        let got = password_from(None, true, "pw: ", terminal(&[], &mut prompts));
        let message = got.expect_err("terminal closed");
        assert!(message.starts_with("cannot read the password"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_variable_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let var = OsString::from_vec(vec![0xff, b'x']);
        let got = password_from(Some(var), true, "pw: ", |_: &str| Ok(String::new()));
        assert_eq!(got, Err("FT_PASSWORD is not valid UTF-8".into()));
    }

    #[test]
    fn the_printed_line_says_added_or_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("users");
        let shown = file.display();
        assert_eq!(
            add_with(&file, "alice", Role::Write, "pw"),
            Ok(format!("added user alice (write) to {shown}{RESTART}"))
        );
        assert_eq!(
            add_with(&file, "alice", Role::Read, "pw2"),
            Ok(format!("replaced user alice (read) in {shown}{RESTART}"))
        );
        let refused = add_with(&file, "alice", Role::Read, "").expect_err("empty");
        assert_eq!(
            refused,
            format!("cannot add user alice to {shown}: the password is empty")
        );
    }
}
