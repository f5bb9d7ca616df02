//! `ftserver --man`: clap_mangen's sections, with the examples of `--help` one to an entry
//! (the command on a line of its own, what it does below) and the rest of the after-help
//! text as paragraphs of the description. ftclient's `cli/man.rs` does the same for its page; what they share is the ft-manpage crate.

use clap_mangen::Man;
use clap_mangen::roff::Roff;
use ft_manpage::{after_help, paragraphs, section};

/// The page for `cmd`.
pub(crate) fn page(cmd: clap::Command) -> String {
    let (examples, prose) = after_help(&cmd);
    let cmd_for_synopsis = cmd.clone();
    let man = Man::new(cmd);

    let mut page = Roff::new().render();
    page += &section(|w| man.render_title(w));
    page += &section(|w| man.render_name_section(w));
    page += &ft_manpage::synopsis(&cmd_for_synopsis);
    page += &section(|w| man.render_description_section(w));
    page += &paragraphs(&prose);
    page += &section(|w| man.render_options_section(w));
    page += &ft_manpage::examples(&examples);
    page += &section(|w| man.render_version_section(w));
    page
}
