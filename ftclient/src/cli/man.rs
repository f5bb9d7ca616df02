//! `ftclient --man`: one page holding every subcommand's synopsis, arguments and options
//! (clap_mangen alone writes the top page and points at `ftclient-put(1)` pages that nobody
//! installs), and the examples of `--help` one to an entry, the command on a line of its own.

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use ft_manpage::{after_help, paragraphs, section};

/// The page for `cmd` (not yet built, so that its subcommands have only their own options).
pub(super) fn page(cmd: clap::Command) -> String {
    let name = cmd.get_name().to_owned();
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        // Their -h is the same as everywhere; it would only repeat in each section.
        .map(|sub| sub.clone().disable_help_flag(true))
        .collect();
    let (examples, prose) = after_help(&cmd);
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
        let own = ft_manpage::synopsis(sub);
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
    page += &paragraphs(&prose);

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

    page += &ft_manpage::examples(&examples);
    page += &section(|w| man.render_version_section(w));
    page
}
