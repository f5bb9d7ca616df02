//! Writes the seed corpus, `seeds/<target>/<name>`: a few valid messages per target,
//! encoded by ftlib itself. Run from `fuzz/`: `cargo run --example write_seeds`.

use std::fs;
use std::path::Path;

use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::{
    Body, Entry, EntryKind, ErrorKind, Hello, MAX_FRAME, MAX_HELLO_FRAME, Request, Response,
};
use serde::Serialize;

fn frame<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_frame(msg, &mut out).expect("seed messages fit a frame");
    out
}

fn payload<T: Serialize + ?Sized>(msg: &T) -> Vec<u8> {
    frame(msg).split_off(HEADER_LEN)
}

fn main() -> std::io::Result<()> {
    let put = Request::Put {
        name: "report.pdf".into(),
        size: 5,
    };
    let requests = [
        ("hello", Request::Hello(Hello::ours())),
        ("put", put.clone()),
        (
            "get",
            Request::Get {
                name: "é.txt".into(),
            },
        ),
        ("list", Request::List),
        (
            "get-from",
            Request::GetFrom {
                name: "big.iso".into(),
                offset: 1 << 20,
                prefix: [0x11; 16],
            },
        ),
        (
            "put-resumable",
            Request::PutResumable {
                name: "big.iso".into(),
                size: 1 << 30,
                digest: [0x22; 16],
            },
        ),
        (
            "put-pipelined",
            Request::PutPipelined {
                name: "small.txt".into(),
                size: 5,
            },
        ),
    ];
    let responses = [
        ("hello", Response::Hello(Hello::ours())),
        (
            "error",
            Response::Error {
                kind: ErrorKind::NotFound,
                message: "report.pdf not found".into(),
            },
        ),
        ("ready", Response::Ready),
        ("stored", Response::Stored { size: 5 }),
        (
            "file",
            Response::File {
                size: 1 << 40,
                modified: 1_700_000_000,
            },
        ),
        (
            "entries",
            Response::Entries(vec![
                Entry {
                    name: "a.txt".into(),
                    kind: EntryKind::File,
                    size: 5,
                    modified: 1_700_000_000,
                },
                Entry {
                    name: "sub".into(),
                    kind: EntryKind::Dir,
                    size: 0,
                    modified: -1,
                },
            ]),
        ),
        ("list-end", Response::ListEnd { count: 2 }),
        (
            "file-from",
            Response::FileFrom {
                size: 1 << 30,
                modified: 1_700_000_000,
                offset: 1 << 20,
            },
        ),
        ("ready-from", Response::ReadyFrom { offset: 1 << 20 }),
    ];
    let bodies = [
        ("chunk", Body::Chunk(b"hello")),
        ("end", Body::End { digest: [0xab; 16] }),
        (
            "abort",
            Body::Abort {
                kind: ErrorKind::Cancelled,
                message: "cancelled by the user".into(),
            },
        ),
    ];

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)
    };
    for (name, msg) in &requests {
        write("request", name, &payload(msg))?;
    }
    for (name, msg) in &responses {
        write("response", name, &payload(msg))?;
    }
    for (name, msg) in &bodies {
        write("body", name, &payload(msg))?;
    }

    // Frames: whole conversations as they cross the wire, and lying headers.
    let upload = [
        frame(&Request::Hello(Hello::ours())),
        frame(&put),
        frame(&Body::Chunk(b"hello")),
        frame(&Body::End { digest: [0xab; 16] }),
    ]
    .concat();
    write("frame", "upload", &upload)?;
    let listing = [
        frame(&Response::Hello(Hello::ours())),
        frame(&responses[5].1),
        frame(&Response::ListEnd { count: 2 }),
    ]
    .concat();
    write("frame", "listing", &listing)?;
    write("frame", "list", &frame(&Request::List))?;
    let claims = [
        ("claims-max-frame", MAX_FRAME as u32),
        ("claims-over-hello", MAX_HELLO_FRAME as u32 + 1),
        ("claims-u32-max", u32::MAX),
    ];
    for (name, len) in claims {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&payload(&put));
        write("frame", name, &bytes)?;
    }
    println!("seeds written to {}", root.display());
    Ok(())
}
