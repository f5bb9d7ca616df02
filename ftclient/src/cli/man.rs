//! `ftclient --man`: one page holding every subcommand's synopsis, arguments and options
//! (clap_mangen alone writes the top page and points at `ftclient-put(1)` pages that nobody
//! installs), and the examples of `--help` one to an entry, the command on a line of its own.

use std::io;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// The page for `cmd` (not yet built, so that its subcommands have only their own options).
pub(super) fn page(cmd: clap::Command) -> String {
    let name = cmd.get_name().to_owned();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        // Their -h is the same as everywhere; it would only repeat in each section.
        .map(|sub| sub.clone().disable_help_flag(true))
        .collect();
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let (examples, prose) = split_after_help(&after);
    let man = Man::new(cmd);

    let mut page = Roff::new().render();
    page += &section(|w| man.render_title(w));
    page += &section(|w| man.render_name_section(w));

    let mut synopsis = Roff::new();
    synopsis.control("SH", ["SYNOPSIS"]);
    page += &section(|w| synopsis.to_writer(w));
    let mut lead = Roff::new();
    lead.text([
        bold(name.as_str()),
        roman(" ["),
        italic("OPTIONS"),
        roman("] "),
        italic("HOST"),
        roman(" "),
        italic("PORT"),
    ]);
    let lead = section(|w| lead.to_writer(w));
    for (i, sub) in subs.iter().enumerate() {
        // clap_mangen's synopsis of the subcommand: one text line starting with its name.
        let own = section(|w| Man::new(sub.clone()).render_synopsis_section(w));
        let own = own.strip_prefix(".SH SYNOPSIS\n").unwrap_or(&own);
        if i > 0 {
            page += ".br\n";
        }
        page += &format!("{} {own}", lead.trim_end());
    }
    let mut others = Roff::new();
    others.control("br", []);
    others.text([
        bold(name.as_str()),
        roman(" "),
        bold("--completions"),
        roman(" "),
        italic("SHELL"),
    ]);
    others.control("br", []);
    others.text([bold(name.as_str()), roman(" "), bold("--man")]);
    page += &section(|w| others.to_writer(w));

    page += &section(|w| man.render_description_section(w));
    let mut description = Roff::new();
    for paragraph in prose {
        description.control("PP", []);
        for line in paragraph {
            // A text line starting with a space would break the filled paragraph.
            description.text([roman(line.trim_start())]);
        }
    }
    page += &section(|w| description.to_writer(w));

    page += &section(|w| man.render_options_section(w));

    if !subs.is_empty() {
        let mut heading = Roff::new();
        heading.control("SH", ["COMMANDS"]);
        page += &section(|w| heading.to_writer(w));
        for sub in subs {
            let mut about = Roff::new();
            about.control("SS", [sub.get_name()]);
            if let Some(text) = sub.get_long_about().or_else(|| sub.get_about()) {
                for line in text.to_string().lines() {
                    about.text([roman(line)]);
                }
            }
            page += &section(|w| about.to_writer(w));
            let options = section(|w| Man::new(sub).render_options_section(w));
            page += options.strip_prefix(".SH OPTIONS\n").unwrap_or(&options);
        }
    }

    if !examples.is_empty() {
        let mut block = Roff::new();
        block.control("SH", ["EXAMPLES"]);
        for (command, what) in examples {
            // Not filled: a command is never broken across lines.
            block.control("PP", []).control("nf", []);
            block.text([bold(command)]);
            block.control("fi", []).control("RS", []);
            block.text([roman(what)]);
            block.control("RE", []);
        }
        page += &section(|w| block.to_writer(w));
    }
    page += &section(|w| man.render_version_section(w));
    page
}

/// One section as clap_mangen or roff writes it, without the preamble each write repeats.
fn section(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let preamble = Roff::new().render();
    text.strip_prefix(&preamble).unwrap_or(&text).to_owned()
}

/// The examples of an after-help text (`  COMMAND  WHAT` lines under `Examples:`, a line
/// indented further continuing the WHAT above) and its other paragraphs, each a list of
/// lines.
fn split_after_help(text: &str) -> (Vec<(String, String)>, Vec<Vec<&str>>) {
    let mut examples: Vec<(String, String)> = Vec::new();
    let mut prose: Vec<Vec<&str>> = Vec::new();
    let mut in_paragraph = false;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.is_empty() || (indent == 0 && body == "Examples:") {
            in_paragraph = false;
        } else if in_paragraph {
            if let Some(paragraph) = prose.last_mut() {
                paragraph.push(line);
            }
        } else if indent > 2 {
            if let Some((_, what)) = examples.last_mut() {
                if !what.is_empty() {
                    what.push(' ');
                }
                what.push_str(body);
            }
        } else if indent > 0 {
            let (command, what) = body.split_once("  ").unwrap_or((body, ""));
            examples.push((command.to_owned(), what.trim().to_owned()));
        } else {
            prose.push(vec![line]);
            in_paragraph = true;
        }
    }
    (examples, prose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_help_splits_into_examples_and_paragraphs() {
        let text = "\
Examples:
  tool a b        does a
  tool --long c d --e   does c,
                  and more
  tool bare

First paragraph
  goes on.

Second.";
        let (examples, prose) = split_after_help(text);
        assert_eq!(
            examples,
            [
                ("tool a b".to_owned(), "does a".to_owned()),
                (
                    "tool --long c d --e".to_owned(),
                    "does c, and more".to_owned()
                ),
                ("tool bare".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            prose,
            [vec!["First paragraph", "  goes on."], vec!["Second."]]
        );
    }
}
