//! Standard input and output as the local side of a transfer, for any program:
//! [`Session::put_stream`] uploads a stream whose size is not known in advance (spooled to
//! an unnamed temporary file first, so the server still gets its exact size and digest and
//! publishes it only whole), and [`Session::get_stream`] downloads a file into a writer
//! only once it is verified (spooled the same way, so a failed download writes nothing).

use std::io::{Read, Seek, Write};
use std::time::Instant;

use super::exchange::Sink;
use super::observer::Observer;
use super::session::Session;
use crate::error::{Error, Result};
use crate::report::{Op, Report};
use crate::store::Name;

impl Session {
    /// Uploads everything `reader` gives, up to its end, as `name` on the server. The bytes
    /// are first kept in an unnamed temporary file (in the system's temporary directory),
    /// so that the upload declares its exact size and the server verifies and publishes it
    /// only whole, as any other; the server's size limit applies.
    ///
    /// # Errors
    /// As [`Session::put`]; reading `reader` or writing the temporary file fails the item.
    pub fn put_stream(
        &mut self,
        reader: &mut dyn Read,
        name: &str,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        observer.start(1);
        let started = Instant::now();
        let spooled = spool(reader);
        let mut spool = match spooled {
            Ok(spool) => spool,
            Err(e) => {
                let report = Report::new(
                    self.peer_or_unspecified(),
                    Op::Put,
                    Some(name),
                    started,
                    0,
                    Some(&e),
                );
                observer.finished(0, report, Some(&e));
                return Ok(false);
            }
        };
        let names = [name.to_owned()];
        let mut same = |_: &mut super::Client, _: usize| Ok(false);
        self.one_by_one(
            &names,
            Op::Put,
            observer,
            |client, _, progress| {
                let size = spool
                    .seek(std::io::SeekFrom::End(0))
                    .and_then(|size| spool.rewind().map(|()| size))
                    .map_err(|e| Error::io("reading the spooled input", e))?;
                client.put_named(&mut spool, size, &Name::new(name)?, None, progress)
            },
            &mut same,
        )
    }

    /// Downloads `name` and writes it to `writer` once it is complete and verified (kept
    /// meanwhile in an unnamed temporary file): a failed download writes nothing.
    ///
    /// # Errors
    /// As [`Session::get`]; writing to `writer` fails the item.
    pub fn get_stream(
        &mut self,
        name: &str,
        writer: &mut dyn Write,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        observer.start(1);
        let names = [name.to_owned()];
        let mut same = |_: &mut super::Client, _: usize| Ok(false);
        self.one_by_one(
            &names,
            Op::Get,
            observer,
            |client, _, progress| {
                let mut spool = tempfile::tempfile().map_err(spooling("the download"))?;
                let got = client
                    .download(&Name::new(name)?, None, Sink::Writer(&mut spool), progress)
                    .map_err(|e| match e {
                        // Writing the spool, not the output, failed.
                        Error::Io { source, .. } => spooling("the download")(source),
                        other => other,
                    })?;
                spool
                    .rewind()
                    .and_then(|()| std::io::copy(&mut spool, writer))
                    .and_then(|_| writer.flush())
                    .map_err(|e| Error::io("writing to the output", e))?;
                Ok(got)
            },
            &mut same,
        )
    }
}

/// Copies `reader` to its end into an unnamed temporary file.
fn spool(reader: &mut dyn Read) -> Result<std::fs::File> {
    use std::io::Write;
    let mut file = tempfile::tempfile().map_err(spooling("the input"))?;
    // Read and written apart, so that each failure is named for what failed.
    let mut buf = vec![0; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(file),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the input", e)),
        };
        file.write_all(&buf[..n]).map_err(spooling("the input"))?;
    }
}

/// The error of holding `what` in an unnamed temporary file, naming where those go
/// (`TMPDIR`, else `/tmp`), so that a full or missing directory there is not taken for the
/// server's or the output's.
fn spooling(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| {
        let dir = std::env::temp_dir();
        Error::io(
            format!("holding {what} in a temporary file in {}", dir.display()),
            e,
        )
    }
}
