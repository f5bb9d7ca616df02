//! `ftserver --man`: clap_mangen's sections, with the examples of `--help` one to an entry
//! (the command on a line of its own, what it does below) and the rest of the after-help
//! text as paragraphs of the description. ftclient's `cli/man.rs` does the same for its page.

use std::io;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// The page for `cmd`.
pub(crate) fn page(cmd: clap::Command) -> String {
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
    page += &section(|w| man.render_synopsis_section(w));
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
