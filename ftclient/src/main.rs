//! `ftclient HOST PORT put FILE… | get NAME… | list [-l]`: parses arguments, runs an
//! `ftlib::Session` (one connection, reopened after a failure that broke it) with a
//! [`Printer`] that draws progress and prints one report line per request, and exits 0
//! when every request succeeded, 1 when any failed, 2 on usage errors, 130 when interrupted.

#![warn(unreachable_pub)]

mod cli;
mod hints;
mod output;
mod printer;
mod progress;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ftlib::{ClientConfig, Credentials, DirStore, Error, Password, Session, Trust};

use cli::{Args, Command, Parsed};
use hints::Target;
use printer::{Listing, Printer};
use progress::Bars;

fn main() -> ExitCode {
    // Before anything else: it may start the program over.
    ftlib::avoid_slow_memory_copies();
    // Room for a group commit's open files (downloads are committed a group at a time).
    ftlib::raise_open_files_limit(4096);
    let args = match cli::parse() {
        Parsed::Run(args) => args,
        Parsed::Done(code) => return code,
    };
    let several_as = matches!(
        &args.command,
        Command::Put { files, rename: Some(_), .. } if files.len() != 1
    );
    if several_as {
        eprintln!("error: put --as NAME takes exactly one FILE");
        return ExitCode::from(2);
    }
    if let Some(message) = stream_misuse(&args.command) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let bars = Bars::new(!args.quiet && std::io::stderr().is_terminal());
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let say = bars.err_printer();
    let handler = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        say("ftclient: interrupted, cleaning up (again to force)");
    });
    if let Err(e) = handler {
        eprintln!("ftclient: cannot install the signal handler: {e}");
    }
    let mut config = ClientConfig::default();
    config.timeout = Duration::from_secs(args.timeout);
    config.cancel = Some(Arc::clone(&cancel));
    if matches!(
        args.command,
        Command::Put {
            no_resume: true,
            ..
        } | Command::Get {
            no_resume: true,
            ..
        }
    ) {
        config.resume_from = None;
    }
    if let Some(user) = &args.user {
        match password(user) {
            Ok(password) => {
                config.login = Some(Credentials {
                    user: user.clone(),
                    password: Password(password),
                });
            }
            Err(message) => {
                eprintln!("ftclient: {message}");
                return ExitCode::from(2);
            }
        }
    }
    config.trust = match (args.plain, args.fingerprint) {
        (true, _) => Trust::Plain,
        (false, Some(fp)) => Trust::Pinned(fp),
        (false, None) => Trust::default(),
    };
    // A stream (`put -`, `get NAME -`) never resumes, whatever the flags.
    let streams = match &args.command {
        Command::Put { files, .. } => from_stdin(files),
        Command::Get { names, .. } => stdout_target(names).is_some(),
        _ => false,
    };
    let config_resumes = config.resume_from.is_some() && !streams;
    let mut session = Session::new(&args.host, args.port, config);
    let host = session.host().to_owned();
    let target = Target {
        host: &host,
        port: args.port,
        dir: &args.dir,
        timeout: args.timeout,
        resume: config_resumes,
    };
    let mut printer = Printer::new(&bars, args.json, target);
    if let Command::Get { names, .. } = &args.command {
        // The file itself goes to stdout: the report goes to stderr.
        printer.reports_to_stderr(stdout_target(names).is_some());
    }
    let all_ok = match run(&args, &bars, &mut session, &mut printer) {
        Ok(all_ok) => all_ok,
        Err(e) => {
            printer.cannot_reach(&e);
            false
        }
    };
    printer.finish();
    bars.finish();
    let all_ok = match progress::stdout_failure() {
        Some(e) => {
            bars.err(&format!(
                "ftclient: cannot write to standard output: {e}; what it shows is incomplete"
            ));
            false
        }
        None => all_ok,
    };
    if cancel.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the command; true when every request succeeded, `Err` when the server could not
/// be reached.
fn run(
    args: &Args,
    bars: &Bars,
    session: &mut Session,
    printer: &mut Printer<'_>,
) -> Result<bool, Error> {
    match &args.command {
        Command::Put {
            files,
            rename: Some(name),
            to,
            ..
        } if from_stdin(files) => {
            let name = match to {
                Some(to) => format!("{to}/{name}"),
                None => name.clone(),
            };
            session.put_stream(&mut std::io::stdin().lock(), &name, printer)
        }
        Command::Put {
            files,
            resume,
            rename: Some(name),
            to,
            ..
        } => match files.as_slice() {
            [file] => session.put_files_to(
                std::slice::from_ref(file),
                Some(name),
                to.as_deref(),
                &args.dir,
                *resume,
                printer,
            ),
            // Refused in main before connecting.
            _ => Ok(false),
        },
        Command::Put {
            files,
            recursive: true,
            to,
            resume,
            ..
        } => session.put_tree(files, to.as_deref(), &args.dir, *resume, printer),
        Command::Put {
            files, resume, to, ..
        } => session.put_files_to(files, None, to.as_deref(), &args.dir, *resume, printer),
        Command::Get {
            names,
            recursive: false,
            ..
        } if stdout_target(names).is_some() => {
            let name = stdout_target(names).unwrap_or_default();
            session.get_stream(name, &mut std::io::stdout().lock(), printer)
        }
        Command::Get {
            names,
            resume,
            recursive,
            ..
        } => {
            let dir = match DirStore::open(&args.dir) {
                Ok(dir) => dir,
                Err(e) => {
                    bars.err(&format!(
                        "ftclient: cannot download into {}: {e}; create it, or choose \
                         another directory with --dir",
                        args.dir.display()
                    ));
                    return Ok(false);
                }
            };
            if *recursive {
                // A directory as `list` shows it (`sub/`) names that directory.
                let names: Vec<String> = names.iter().map(|n| as_dir(n).to_owned()).collect();
                session.get_tree(&names, &dir, args.overwrite, *resume, printer)
            } else {
                session.get(names, &dir, args.overwrite, *resume, printer)
            }
        }
        Command::List {
            path,
            recursive,
            long,
            bytes,
            digest,
        } => {
            let dir = path.as_deref().map_or("", as_dir);
            let mut listing = Listing::new(printer, *long, *bytes, *digest);
            if *digest {
                session.list_dir_digests(dir, *recursive, &mut listing)
            } else {
                session.list_dir(dir, *recursive, &mut listing)
            }
        }
    }
}

/// A server directory's name as given, without the one `/` that `list` shows after a
/// directory (`sub/` is `sub`); anything else as it is, for the name rules to judge.
fn as_dir(name: &str) -> &str {
    match name.strip_suffix('/') {
        Some(dir) if !dir.is_empty() && !dir.ends_with('/') => dir,
        _ => name,
    }
}

/// The name of `get NAME -`, which writes the file to standard output.
fn stdout_target(names: &[String]) -> Option<&str> {
    match names {
        [name, dash] if dash == "-" && name != "-" => Some(name),
        _ => None,
    }
}

/// Whether `put FILE...` is `put -`, which reads standard input.
fn from_stdin(files: &[std::path::PathBuf]) -> bool {
    matches!(files, [file] if file.as_os_str() == "-")
}

/// Why a command misuses `-` (standard input or output), if it does.
fn stream_misuse(command: &Command) -> Option<&'static str> {
    match command {
        Command::Put {
            files,
            rename,
            recursive,
            resume,
            ..
        } if files.iter().any(|f| f.as_os_str() == "-") => {
            if files.len() > 1 || *recursive {
                Some("put - (standard input) takes no other FILE and no -r")
            } else if rename.is_none() {
                Some("put - reads standard input: name it on the server with --as NAME")
            } else if *resume {
                Some("put - cannot --resume: standard input cannot be read twice")
            } else {
                None
            }
        }
        Command::Get {
            names,
            recursive,
            resume,
            ..
        } if names.iter().any(|n| n == "-") => {
            if stdout_target(names).is_none() {
                Some(
                    "get NAME - writes one file to standard output: give exactly one NAME before -",
                )
            } else if *recursive || *resume {
                Some("get NAME - takes no -r and no --resume")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The password of `user`: from `FT_PASSWORD`, else asked on the terminal without echo.
fn password(user: &str) -> Result<String, String> {
    if let Ok(password) = std::env::var("FT_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "--user {user} needs a password: set FT_PASSWORD, or run on a terminal to be asked"
        ));
    }
    rpassword::prompt_password(format!("password for {user}: "))
        .map_err(|e| format!("cannot read the password: {e}"))
}
