//! Frames on bytes: a `u32` big-endian length, then a bincode payload.
//!
//! This is the only module that names bincode, and it never touches a socket: it turns
//! messages into bytes and bytes into messages, checking every length against its limit
//! before anything is allocated.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::MAX_FRAME;

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// The one bincode configuration of protocol v1: little-endian, variable-length integers,
/// and a decode limit equal to the frame limit.
pub type Config = Configuration<LittleEndian, Varint, Limit<MAX_FRAME>>;

/// The bincode configuration every frame is encoded and decoded with.
pub fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes `msg` as one frame (header and payload) into `out`, replacing its contents.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the payload would exceed [`MAX_FRAME`].
pub fn encode_frame<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.extend_from_slice(&[0; HEADER_LEN]);
    bincode::serde::encode_into_std_write(msg, out, config())
        .map_err(|e| Error::Protocol(format!("cannot encode message: {e}")))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_FRAME {
        return Err(Error::FrameTooLarge {
            len: len as u64,
            limit: MAX_FRAME,
        });
    }
    let len = u32::try_from(len).map_err(|_| Error::FrameTooLarge {
        len: len as u64,
        limit: MAX_FRAME,
    })?;
    out[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Writes into `out` (replacing its contents) the bytes that come before the data in the
/// frame of a `Body::Chunk` of `len` bytes: frame header, variant index, length. Sending
/// these then the data is the same as sending the encoded frame, without copying the data.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the frame would exceed [`MAX_FRAME`].
pub fn chunk_prefix(len: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.extend_from_slice(&[0; HEADER_LEN]);
    // A newtype variant is its index then its value; bytes are a length then the bytes.
    let (variant, length) = (0u32, len as u64);
    bincode::serde::encode_into_std_write((variant, length), out, config())
        .map_err(|e| Error::Protocol(format!("cannot encode a chunk header: {e}")))?;
    let total = out.len() - HEADER_LEN + len;
    let total = u32::try_from(total)
        .ok()
        .filter(|&t| t as usize <= MAX_FRAME)
        .ok_or(Error::FrameTooLarge {
            len: total as u64,
            limit: MAX_FRAME,
        })?;
    out[..HEADER_LEN].copy_from_slice(&total.to_be_bytes());
    Ok(())
}

/// Reads a frame header and checks the length against `limit`.
///
/// # Errors
/// [`Error::FrameTooLarge`] when the declared length is above `limit`.
pub fn payload_len(header: [u8; HEADER_LEN], limit: usize) -> Result<usize> {
    let len = u32::from_be_bytes(header);
    match usize::try_from(len) {
        Ok(len) if len <= limit => Ok(len),
        _ => Err(Error::FrameTooLarge {
            len: u64::from(len),
            limit,
        }),
    }
}

/// Decodes one payload as a `T`, which may borrow from it (chunk data is not copied).
///
/// # Errors
/// [`Error::Protocol`] when the payload is not a valid `T` or has bytes left over.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T> {
    let (msg, used) = bincode::serde::borrow_decode_from_slice(payload, config()).map_err(|e| {
        Error::Protocol(format!("malformed {} message: {e}", short_type_name::<T>()))
    })?;
    if used != payload.len() {
        return Err(Error::Protocol(format!(
            "{} trailing bytes after a {} message",
            payload.len() - used,
            short_type_name::<T>()
        )));
    }
    Ok(msg)
}

/// Decodes a whole frame (header included) from `bytes`: the message and the bytes used.
/// `Ok(None)` means `bytes` does not yet hold a complete frame.
///
/// # Errors
/// As [`payload_len`] and [`decode`].
pub fn decode_frame<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    limit: usize,
) -> Result<Option<(T, usize)>> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = payload_len(*header, limit)?;
    let Some(payload) = rest.get(..len) else {
        return Ok(None);
    };
    Ok(Some((decode(payload)?, HEADER_LEN + len)))
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        Body, DIGEST_LEN, Entry, EntryKind, EntryV3, ErrorKind, Hello, MAX_CHUNK, Request, Response,
    };

    fn round_trip<T>(msg: &T) -> T
    where
        T: Serialize + for<'a> Deserialize<'a> + std::fmt::Debug + PartialEq,
    {
        let mut buf = Vec::new();
        encode_frame(msg, &mut buf).expect("encode");
        let (back, used) = decode_frame::<T>(&buf, MAX_FRAME)
            .expect("decode")
            .expect("complete");
        assert_eq!(used, buf.len());
        back
    }

    #[test]
    fn messages_round_trip() {
        let requests = [
            Request::Hello(Hello::ours()),
            Request::Put {
                name: "a.txt".into(),
                size: u64::MAX,
            },
            Request::Get { name: "é".into() },
            Request::List,
        ];
        for r in &requests {
            assert_eq!(&round_trip(r), r);
        }
        let responses = [
            Response::Hello(Hello::ours()),
            Response::Error {
                kind: ErrorKind::NotFound,
                message: "x".into(),
            },
            Response::Ready,
            Response::Stored { size: 5 },
            Response::File {
                size: 1 << 40,
                modified: -5,
            },
            Response::Entries(vec![EntryV3 {
                name: "n".into(),
                kind: EntryKind::Dir,
                size: 0,
                modified: 1_700_000_000,
            }]),
            Response::Listing(vec![Entry {
                name: "d/n".into(),
                kind: EntryKind::File,
                size: 3,
                modified: 1_700_000_000,
                executable: true,
            }]),
            Response::ListEnd { count: 1 },
        ];
        for r in &responses {
            assert_eq!(&round_trip(r), r);
        }
    }

    #[test]
    fn chunk_decodes_without_copy() {
        let data = vec![7u8; 1000];
        let mut buf = Vec::new();
        encode_frame(&Body::Chunk(&data), &mut buf).expect("encode");
        let payload = &buf[HEADER_LEN..];
        let body: Body<'_> = decode(payload).expect("decode");
        let Body::Chunk(bytes) = body else {
            panic!("not a chunk: {body:?}")
        };
        assert_eq!(bytes, &data[..]);
        let start = payload.as_ptr() as usize;
        let at = bytes.as_ptr() as usize;
        assert!(at > start && at < start + payload.len(), "chunk was copied");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn frame_of<T: Serialize>(msg: &T) -> String {
        let mut frame = Vec::new();
        encode_frame(msg, &mut frame).expect("encode");
        hex(&frame)
    }

    /// The version 3 rows of docs/PROTOCOL.md section 4.6, exactly.
    #[test]
    fn v3_frames_match_the_spec() {
        use crate::protocol::{ErrorKind, Password, Role};
        let error = |kind, message: &str| Response::Error {
            kind,
            message: message.into(),
        };
        let rows: [(&str, String); 7] = [
            (
                "00 00 00 0e 07 05 61 6c 69 63 65 06 73 65 63 72 65 74",
                frame_of(&Request::Login {
                    user: "alice".into(),
                    password: Password("secret".into()),
                }),
            ),
            (
                "00 00 00 02 09 01",
                frame_of(&Response::LoggedIn { role: Role::Read }),
            ),
            (
                "00 00 00 02 09 02",
                frame_of(&Response::LoggedIn { role: Role::Write }),
            ),
            (
                "00 00 00 04 01 12 01 78",
                frame_of(&error(ErrorKind::AuthFailed, "x")),
            ),
            (
                "00 00 00 04 01 0d 01 78",
                frame_of(&error(ErrorKind::PermissionDenied, "x")),
            ),
            (
                "00 00 00 13 00 89 46 54 0a 05 01 0b 66 74 6c 69 62 2f 30 2e 31 2e 30",
                frame_of(&Request::Hello(Hello::ours())),
            ),
            (
                "00 00 00 34 01 13 31",
                frame_of(&error(ErrorKind::TlsRequired, crate::tls::TLS_GREETING))[..20].to_owned(),
            ),
        ];
        for (want, got) in rows {
            assert_eq!(got, want);
        }
    }

    /// The ft frames of docs/PROTOCOL.md section 13.1 (a TLS session with a login) that
    /// section 4.6 does not show, exactly.
    #[test]
    fn v3_session_frames_match_the_spec() {
        use crate::protocol::{ErrorKind, Password};
        let text = |s: &str| hex(s.as_bytes());
        let failed = "login failed: wrong user name or password";
        let rows: [(String, String); 4] = [
            (
                format!(
                    "00 00 00 13 00 89 46 54 0a 05 01 0b {}",
                    text("ftlib/0.1.0")
                ),
                frame_of(&Response::Hello(Hello::ours())),
            ),
            (
                format!(
                    "00 00 00 15 07 05 {} 0d {}",
                    text("alice"),
                    text("correct horse")
                ),
                frame_of(&Request::Login {
                    user: "alice".into(),
                    password: Password("correct horse".into()),
                }),
            ),
            (
                format!("00 00 00 34 01 13 31 {}", text(crate::tls::TLS_GREETING)),
                frame_of(&Response::Error {
                    kind: ErrorKind::TlsRequired,
                    message: crate::tls::TLS_GREETING.into(),
                }),
            ),
            (
                format!("00 00 00 2c 01 12 29 {}", text(failed)),
                frame_of(&Response::Error {
                    kind: ErrorKind::AuthFailed,
                    message: failed.into(),
                }),
            ),
        ];
        for (want, got) in rows {
            assert_eq!(got, want);
        }
    }

    /// The version 4 rows of docs/PROTOCOL.md section 4.6, exactly.
    #[test]
    fn v4_frames_match_the_spec() {
        use crate::protocol::{Attrs, How};
        let hello: [u8; DIGEST_LEN] = [
            0xb5, 0xe9, 0xc1, 0xad, 0x07, 0x1b, 0x3e, 0x7f, 0xc7, 0x79, 0xcf, 0xaa, 0x5e, 0x52,
            0x38, 0x18,
        ];
        let attrs = |modified, nanos, executable| Attrs {
            modified,
            nanos,
            executable,
        };
        let entry = |name: &str, kind, size, executable| Entry {
            name: name.into(),
            kind,
            size,
            modified: 1_700_000_000,
            executable,
        };
        let rows: [(&str, String); 21] = [
            (
                "00 00 00 0b 08 03 64 2f 61 03 01 02 02 01 02",
                frame_of(&Request::Upload {
                    name: "d/a".into(),
                    size: 3,
                    attrs: Some(attrs(1, 2, true)),
                    how: How::Pipelined,
                }),
            ),
            (
                "00 00 00 0a 08 05 61 2e 74 78 74 05 00 00",
                frame_of(&Request::Upload {
                    name: "a.txt".into(),
                    size: 5,
                    attrs: None,
                    how: How::Wait,
                }),
            ),
            (
                "00 00 00 21 08 05 61 2e 74 78 74 05 01 fc 00 e2 a7 ca 00 00 01 \
                 b5 e9 c1 ad 07 1b 3e 7f c7 79 cf aa 5e 52 38 18",
                frame_of(&Request::Upload {
                    name: "a.txt".into(),
                    size: 5,
                    attrs: Some(attrs(1_700_000_000, 0, false)),
                    how: How::Resumable { digest: hello },
                }),
            ),
            (
                "00 00 00 21 08 05 61 2e 74 78 74 05 01 fc 00 e2 a7 ca 00 00 03 \
                 b5 e9 c1 ad 07 1b 3e 7f c7 79 cf aa 5e 52 38 18",
                frame_of(&Request::Upload {
                    name: "a.txt".into(),
                    size: 5,
                    attrs: Some(attrs(1_700_000_000, 0, false)),
                    how: How::Tagged { tag: hello },
                }),
            ),
            (
                "00 00 00 11 08 05 61 2e 74 78 74 05 01 fc 00 e2 a7 ca 00 00 02",
                frame_of(&Request::Upload {
                    name: "a.txt".into(),
                    size: 5,
                    attrs: Some(attrs(1_700_000_000, 0, false)),
                    how: How::Pipelined,
                }),
            ),
            (
                "00 00 00 04 09 01 61 01",
                frame_of(&Request::Stat {
                    name: "a".into(),
                    digest: true,
                }),
            ),
            (
                "00 00 00 06 09 03 64 2f 61 00",
                frame_of(&Request::Stat {
                    name: "d/a".into(),
                    digest: false,
                }),
            ),
            (
                "00 00 00 03 0a 00 01",
                frame_of(&Request::ListDir {
                    dir: String::new(),
                    recursive: true,
                }),
            ),
            (
                "00 00 00 04 0a 01 64 00",
                frame_of(&Request::ListDir {
                    dir: "d".into(),
                    recursive: false,
                }),
            ),
            (
                "00 00 00 03 0b 01 64",
                frame_of(&Request::MakeDir { name: "d".into() }),
            ),
            (
                "00 00 00 0c 0a 01 61 05 00 fc 00 e2 a7 ca 00 00",
                frame_of(&Response::Opened {
                    name: "a".into(),
                    size: 5,
                    offset: 0,
                    attrs: attrs(1_700_000_000, 0, false),
                }),
            ),
            (
                "00 00 00 10 0a 01 61 05 02 fc 00 e2 a7 ca fc 00 65 cd 1d 01",
                frame_of(&Response::Opened {
                    name: "a".into(),
                    size: 5,
                    offset: 2,
                    attrs: attrs(1_700_000_000, 500_000_000, true),
                }),
            ),
            (
                "00 00 00 0e 0b 01 03 64 2f 61 01 03 fc 00 e2 a7 ca 01",
                frame_of(&Response::Listing(vec![entry(
                    "d/a",
                    EntryKind::File,
                    3,
                    true,
                )])),
            ),
            (
                "00 00 00 18 0b 02 01 64 02 00 fc 00 e2 a7 ca 00 03 64 2f 61 01 03 fc 00 e2 a7 ca 01",
                frame_of(&Response::Listing(vec![
                    entry("d", EntryKind::Dir, 0, false),
                    entry("d/a", EntryKind::File, 3, true),
                ])),
            ),
            (
                "00 00 00 1c 0c 01 61 01 05 fc 00 e2 a7 ca 00 01 \
                 b5 e9 c1 ad 07 1b 3e 7f c7 79 cf aa 5e 52 38 18",
                frame_of(&Response::Described {
                    entry: entry("a", EntryKind::File, 5, false),
                    digest: Some(hello),
                }),
            ),
            (
                "00 00 00 0c 0c 01 64 02 00 fc 00 e2 a7 ca 00 00",
                frame_of(&Response::Described {
                    entry: entry("d", EntryKind::Dir, 0, false),
                    digest: None,
                }),
            ),
            (
                "00 00 00 02 0d 01",
                frame_of(&Response::Made { created: true }),
            ),
            (
                "00 00 00 04 0e 01 61 05",
                frame_of(&Response::Uploaded {
                    name: "a".into(),
                    size: 5,
                }),
            ),
            (
                "00 00 00 02 0d 00",
                frame_of(&Response::Made { created: false }),
            ),
            (
                "00 00 00 13 00 89 46 54 0a 05 01 0b 66 74 6c 69 62 2f 30 2e 31 2e 30",
                frame_of(&Response::Hello(Hello::ours())),
            ),
            (
                "00 00 00 41 01 0a 3e",
                frame_of(&Response::Error {
                    kind: ErrorKind::Protocol,
                    message: crate::Error::Protocol(
                        "directory trees and file attributes need ft v4".into(),
                    )
                    .to_string(),
                })[..20]
                    .to_owned(),
            ),
        ];
        for (want, got) in rows {
            let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(got, want);
        }
        // The valid neighbours of the v4 rows of `malformed_payloads_are_protocol_errors`.
        for payload in [
            &[9, 1, b'a', 1][..],
            &[8, 1, b'a', 1, 1, 2, 0, 0, 0],
            &[8, 1, b'a', 1, 0, 2],
        ] {
            decode::<Request>(payload).expect("a valid v4 request");
        }
    }

    /// The frames of docs/PROTOCOL.md section 13.4 (a tree put twice, then got) that
    /// section 4.6 does not show, exactly.
    #[test]
    fn v4_session_frames_match_the_spec() {
        use crate::error::Taken;
        use crate::protocol::{Attrs, How};
        let text = |s: &str| hex(s.as_bytes());
        let time = "fc 00 e2 a7 ca";
        let hello = "b5 e9 c1 ad 07 1b 3e 7f c7 79 cf aa 5e 52 38 18";
        let attrs = Attrs {
            modified: 1_700_000_000,
            nanos: 0,
            executable: false,
        };
        let entry = |name: &str, kind, size| Entry {
            name: name.into(),
            kind,
            size,
            modified: 1_700_000_000,
            executable: false,
        };
        let digest = {
            let mut d = [0u8; DIGEST_LEN];
            d.copy_from_slice(&xxhash_rust::xxh3::xxh3_128(b"hello").to_be_bytes());
            d
        };
        let taken = crate::Error::AlreadyExists {
            name: "d/a.txt".into(),
            why: Taken::Exists,
        };
        let rows: [(String, String); 12] = [
            (
                format!(
                    "00 00 00 13 08 07 {} 05 01 {time} 00 00 02",
                    text("d/a.txt")
                ),
                frame_of(&Request::Upload {
                    name: "d/a.txt".into(),
                    size: 5,
                    attrs: Some(attrs),
                    how: How::Pipelined,
                }),
            ),
            (
                format!("00 00 00 0a 0e 07 {} 05", text("d/a.txt")),
                frame_of(&Response::Uploaded {
                    name: "d/a.txt".into(),
                    size: 5,
                }),
            ),
            (
                format!("00 00 00 05 0b 03 {}", text("d/e")),
                frame_of(&Request::MakeDir { name: "d/e".into() }),
            ),
            (
                format!("00 00 00 19 01 02 16 {}", text("d/a.txt already exists")),
                frame_of(&Response::Error {
                    kind: taken.kind(),
                    message: taken.to_string(),
                }),
            ),
            (
                format!("00 00 00 0a 09 07 {} 00", text("d/a.txt")),
                frame_of(&Request::Stat {
                    name: "d/a.txt".into(),
                    digest: false,
                }),
            ),
            (
                format!("00 00 00 12 0c 07 {} 01 05 {time} 00 00", text("d/a.txt")),
                frame_of(&Response::Described {
                    entry: entry("d/a.txt", EntryKind::File, 5),
                    digest: None,
                }),
            ),
            (
                format!("00 00 00 0a 09 07 {} 01", text("d/a.txt")),
                frame_of(&Request::Stat {
                    name: "d/a.txt".into(),
                    digest: true,
                }),
            ),
            (
                format!(
                    "00 00 00 22 0c 07 {} 01 05 {time} 00 01 {hello}",
                    text("d/a.txt")
                ),
                frame_of(&Response::Described {
                    entry: entry("d/a.txt", EntryKind::File, 5),
                    digest: Some(digest),
                }),
            ),
            (
                format!("00 00 00 04 0a 01 {} 01", text("d")),
                frame_of(&Request::ListDir {
                    dir: "d".into(),
                    recursive: true,
                }),
            ),
            (
                format!(
                    "00 00 00 1a 0b 02 05 {} 01 05 {time} 00 01 {} 02 00 {time} 00",
                    text("a.txt"),
                    text("e")
                ),
                frame_of(&Response::Listing(vec![
                    entry("a.txt", EntryKind::File, 5),
                    entry("e", EntryKind::Dir, 0),
                ])),
            ),
            (
                format!("00 00 00 09 02 07 {}", text("d/a.txt")),
                frame_of(&Request::Get {
                    name: "d/a.txt".into(),
                }),
            ),
            (
                format!("00 00 00 12 0a 07 {} 05 00 {time} 00 00", text("d/a.txt")),
                frame_of(&Response::Opened {
                    name: "d/a.txt".into(),
                    size: 5,
                    offset: 0,
                    attrs,
                }),
            ),
        ];
        for (want, got) in rows {
            assert_eq!(got, want);
        }
        assert_eq!(hex(&digest), hello);
    }

    /// The busy refusal exactly as docs/PROTOCOL.md shows it.
    #[test]
    fn busy_frame_matches_the_spec() {
        let error = crate::Error::Busy { live: 256 };
        let mut frame = Vec::new();
        encode_frame(
            &Response::Error {
                kind: error.kind(),
                message: error.to_string(),
            },
            &mut frame,
        )
        .expect("encode");
        assert_eq!(
            frame[..16],
            [
                0, 0, 0, 0x39, 1, 8, 0x36, b'b', b'u', b's', b'y', b':', b' ', b'a', b'l', b'r'
            ]
        );
    }

    #[test]
    fn chunk_prefix_then_data_is_the_encoded_frame() {
        for len in [0, 1, 250, 251, 252, 65_535, 65_536, 70_000, MAX_CHUNK] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut whole = Vec::new();
            encode_frame(&Body::Chunk(&data), &mut whole).expect("encode");
            let mut split = Vec::new();
            chunk_prefix(len, &mut split).expect("prefix");
            split.extend_from_slice(&data);
            assert_eq!(split, whole, "chunk of {len} bytes");
        }
        assert!(chunk_prefix(MAX_FRAME, &mut Vec::new()).is_err());
    }

    #[test]
    fn largest_chunk_fits_in_a_frame() {
        let data = vec![1u8; MAX_CHUNK];
        let mut buf = Vec::new();
        encode_frame(&Body::Chunk(&data), &mut buf).expect("largest chunk encodes");
        assert!(buf.len() - HEADER_LEN <= MAX_FRAME);
    }

    #[test]
    fn oversized_frame_is_refused_before_allocation() {
        assert!(matches!(
            payload_len(u32::MAX.to_be_bytes(), MAX_FRAME),
            Err(Error::FrameTooLarge { len, .. }) if len == u64::from(u32::MAX)
        ));
        let len = u32::try_from(MAX_FRAME + 1).expect("fits");
        assert!(payload_len(len.to_be_bytes(), MAX_FRAME).is_err());
        assert_eq!(payload_len(7u32.to_be_bytes(), MAX_FRAME).expect("ok"), 7);
        let data = vec![0u8; MAX_FRAME + 10];
        let mut buf = Vec::new();
        assert!(matches!(
            encode_frame(&Body::Chunk(&data), &mut buf),
            Err(Error::FrameTooLarge { .. })
        ));
    }

    /// One row per malformed payload: each must be a protocol error, never a panic.
    #[test]
    fn malformed_payloads_are_protocol_errors() {
        let mut put = Vec::new();
        encode_frame(
            &Request::Put {
                name: "a".into(),
                size: 1,
            },
            &mut put,
        )
        .expect("encode");
        let put = &put[HEADER_LEN..];
        let mut trailing = put.to_vec();
        trailing.push(0);
        let rows: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("unknown tag", vec![200]),
            ("tag only", vec![1]),
            ("truncated", put[..put.len() - 1].to_vec()),
            ("trailing byte", trailing),
            // Put with a string length claiming 2^60 bytes: refused by the limit.
            ("length bomb", vec![1, 253, 0, 0, 0, 0, 0, 0, 0, 0x10, b'a']),
            ("invalid utf-8", vec![1, 2, 0xff, 0xfe, 1]),
            // v4: a bool is 0 or 1, an Option tag 0 or 1, How has three variants.
            ("bool of 2", vec![9, 1, b'a', 2]),
            ("option tag 2", vec![8, 1, b'a', 1, 2, 0, 0, 0, 0]),
            ("how of 3", vec![8, 1, b'a', 1, 0, 3]),
        ];
        for (what, bytes) in rows {
            let got = decode::<Request>(&bytes);
            assert!(
                matches!(got, Err(Error::Protocol(_))),
                "{what}: got {got:?}"
            );
        }
    }

    #[test]
    fn incomplete_frames_ask_for_more() {
        let mut buf = Vec::new();
        encode_frame(&Request::List, &mut buf).expect("encode");
        for cut in 0..buf.len() {
            assert!(
                decode_frame::<Request>(&buf[..cut], MAX_FRAME)
                    .expect("no error")
                    .is_none()
            );
        }
    }
}
