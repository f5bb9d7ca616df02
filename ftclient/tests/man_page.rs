//! `ftclient --man`: one page with every subcommand's options (what `SUB --help` shows), no
//! pointers to `ftclient-put(1)` pages that do not exist, and each example of `--help` with
//! its command whole on one line of the formatted page.

mod util;

use std::io::Write;
use std::process::{Command, Stdio};

use util::{assert_success, ftclient_in};

/// The long options (`--name`) among the option lines of a `--help` text.
fn long_options(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            line.split([' ', ',', '='])
                .find(|word| word.starts_with("--"))
                .map(str::to_owned)
        })
        .collect()
}

/// `text` as roff writes it (clap_mangen escapes every `-`).
fn roff(text: &str) -> String {
    text.replace('-', "\\-")
}

/// The man page's text from `.SS name` to the next heading.
fn subsection<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = format!("\n.SS {name}\n");
    let start = page
        .find(&heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the page"));
    let rest = &page[start + heading.len()..];
    let end = [rest.find("\n.SS "), rest.find("\n.SH ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_man_page_covers_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ftclient_in(dir.path(), ["--man"]);
    assert_success(&out);
    let page = &out.stdout;

    let top = ftclient_in(dir.path(), ["--help"]);
    assert_success(&top);
    let global = long_options(&top.stdout);
    assert!(global.contains(&"--quiet".to_owned()), "{global:?}");
    for option in &global {
        assert!(
            page.contains(&roff(option)),
            "{option} missing from the page"
        );
    }

    let rows: &[(&str, &[&str])] = &[
        ("put", &["--recursive", "--to", "--resume", "--as"]),
        ("get", &["--recursive", "--resume"]),
        ("list", &["--recursive", "--long", "--bytes"]),
    ];
    for (sub, expected) in rows {
        let help = ftclient_in(dir.path(), ["127.0.0.1", "1", sub, "--help"]);
        assert_success(&help);
        // Its own options, in its own section; the global ones are in OPTIONS above.
        let own: Vec<String> = long_options(&help.stdout)
            .into_iter()
            .filter(|option| !global.contains(option) && option != "--help")
            .collect();
        for option in *expected {
            assert!(own.iter().any(|o| o == option), "{sub} --help: {own:?}");
        }
        let section = subsection(page, sub);
        for option in &own {
            assert!(
                section.contains(&format!("\\fB{}\\fR", roff(option))),
                "{sub} {option} missing from its section:\n{section}"
            );
        }
        // And the line of the synopsis that shows it.
        let synopsis = format!("\\fIPORT\\fR \\fB{sub}\\fR ");
        assert!(page.contains(&synopsis), "no {synopsis:?} in the synopsis");
    }
    for short in ["\\fB\\-r\\fR", "\\fB\\-l\\fR"] {
        assert!(page.contains(short), "{short} missing");
    }
    for missing in [
        "ftclient\\-put(",
        "ftclient\\-get(",
        "ftclient\\-list(",
        "(1)\n",
    ] {
        assert!(!page.contains(missing), "{missing:?} in the page:\n{page}");
    }
}

/// Each example's command is on a line of its own on an 80-column page (when groff is
/// installed to format it).
#[test]
fn examples_keep_each_command_on_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = ftclient_in(dir.path(), ["--help"]);
    assert_success(&help);
    let commands: Vec<&str> = help
        .stdout
        .lines()
        .skip_while(|line| *line != "Examples:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .map(|line| {
            // Two spaces at least between the command and what it does: the page splits
            // them there.
            let (command, _) = line.trim().split_once("  ").unwrap_or_else(|| {
                panic!("{line:?}: no two spaces after the command");
            });
            command
        })
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");

    let out = ftclient_in(dir.path(), ["--man"]);
    assert_success(&out);
    for command in &commands {
        let line = format!(".nf\n\\fB{}\\fR\n.fi\n", roff(command));
        assert!(out.stdout.contains(&line), "{line:?} missing");
    }

    let groff = Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou", "-rLL=80n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut groff) = groff else {
        eprintln!("skipped the formatted page: groff is not installed");
        return;
    };
    groff
        .stdin
        .take()
        .expect("stdin")
        .write_all(out.stdout.as_bytes())
        .expect("write to groff");
    let formatted = groff.wait_with_output().expect("groff");
    assert!(formatted.status.success(), "{formatted:?}");
    let formatted = String::from_utf8_lossy(&formatted.stdout);
    let lines: Vec<&str> = formatted.lines().map(str::trim).collect();
    for command in &commands {
        assert!(
            lines.contains(command),
            "{command:?} is not a line of its own in:\n{formatted}"
        );
    }
    assert!(lines.contains(&"COMMANDS"), "{formatted}");
    assert!(lines.contains(&"EXAMPLES"), "{formatted}");
}
