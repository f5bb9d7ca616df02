//! Moves every file of a directory to an ft server and back with `put_many` / `get_many`,
//! printing files per second: `cargo run --release --example bulk -- HOST:PORT SRC DST`.

use std::path::PathBuf;
use std::time::Instant;

use ftlib::store::DirStore;
use ftlib::{Client, ClientConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, src, dst] = &args[..] else {
        return Err("usage: bulk HOST:PORT SRC DST".into());
    };
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(src)?
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.path(), e.file_name().into_string().ok()?))
        })
        .collect();
    files.sort();
    let mut client = Client::connect(addr.as_str(), ClientConfig::default())?;
    let mut failed = 0;
    let started = Instant::now();
    client.put_many(&files, |_, _| {}, |_, r| failed += usize::from(r.is_err()));
    let put = started.elapsed().as_secs_f64();
    let names: Vec<String> = files.into_iter().map(|f| f.1).collect();
    let store = DirStore::open(dst)?;
    let started = Instant::now();
    client.get_many(
        &names,
        &store,
        false,
        |_, _| {},
        |_, r| failed += usize::from(r.is_err()),
    );
    let get = started.elapsed().as_secs_f64();
    let n = names.len() as f64;
    println!(
        "{} files: put {put:.3} s ({:.0} files/s), get {get:.3} s ({:.0} files/s), {failed} failed",
        names.len(),
        n / put,
        n / get
    );
    Ok(())
}
