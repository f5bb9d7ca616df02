//! The decoders against arbitrary bytes: a message or an error, never a panic, never one
//! allocation larger than the frame limit; every valid message round-trips. A counting
//! global allocator (`ft_testutil::CountingAlloc`) records the largest single allocation
//! each thread requests.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use ft_testutil::{CountingAlloc, largest_allocation};
use ftlib::Error;
use ftlib::codec::{self, HEADER_LEN};
use ftlib::connection::Connection;
use ftlib::protocol::{
    Attrs, Body, DIGEST_LEN, Entry, EntryKind, EntryV3, ErrorKind, Hello, How, LIST_BATCH,
    MAX_FRAME, MAX_HELLO_FRAME, Password, Request, Response, Role,
};
use proptest::collection::vec;
use proptest::prelude::*;

// Every allocation is counted, so `largest_allocation` can bound what a decode asks for.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------------------------------
// The decoders, all at once

/// Feeds `payload` to every payload decoder, then `frame` to every frame decoder and the
/// header check, with both limits. Panics only on a broken invariant.
fn decode_everything(payload: &[u8], frame: &[u8]) {
    let _ = codec::decode::<Request>(payload);
    let _ = codec::decode::<Response>(payload);
    let _ = codec::decode::<Body<'_>>(payload);
    for limit in [MAX_FRAME, MAX_HELLO_FRAME] {
        check_frame::<Request>(frame, limit);
        check_frame::<Response>(frame, limit);
        check_frame::<Body<'_>>(frame, limit);
    }
}

/// `decode_frame` agrees with `payload_len` and never claims bytes it was not given.
fn check_frame<'a, T: serde::Deserialize<'a>>(frame: &'a [u8], limit: usize) {
    let header = frame.first_chunk::<HEADER_LEN>().copied();
    let declared = header.map(|h| codec::payload_len(h, limit));
    match codec::decode_frame::<T>(frame, limit) {
        Ok(Some((_, used))) => {
            let Some(Ok(len)) = declared else {
                panic!("a frame decoded although its header is {declared:?}")
            };
            assert!(
                len <= limit,
                "payload of {len} bytes over the limit {limit}"
            );
            assert_eq!(used, HEADER_LEN + len);
            assert!(used <= frame.len());
        }
        Ok(None) => match declared {
            None => {}
            Some(Ok(len)) => assert!(frame.len() < HEADER_LEN + len, "complete frame ignored"),
            Some(Err(e)) => panic!("oversized header {e} asked for more bytes"),
        },
        Err(Error::FrameTooLarge { len, limit: got }) => {
            assert_eq!(got, limit);
            assert!(len > limit as u64);
            assert!(matches!(declared, Some(Err(Error::FrameTooLarge { .. }))));
        }
        Err(Error::Protocol(_)) => assert!(matches!(declared, Some(Ok(_)))),
        Err(e) => panic!("unexpected error kind from decode_frame: {e:?}"),
    }
}

/// `payload` behind a header declaring its true length.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("test payloads are small");
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// Decodes `payload` and `framed(payload)` every way, and returns the largest allocation.
fn largest_allocation_decoding(payload: &[u8]) -> usize {
    let frame = framed(payload);
    largest_allocation(|| decode_everything(payload, &frame)).1
}

// ---------------------------------------------------------------------------------------
// Generators for hostile bytes

/// Values a length or size field is most likely to break on.
fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..=300u64,
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
        Just(MAX_FRAME as u64 - 16),
        Just(MAX_FRAME as u64),
        Just(MAX_FRAME as u64 + 1),
        Just((MAX_FRAME / 48) as u64),
        Just(1 << 62),
    ]
}

/// One piece of a plausible-looking payload: a small varint (also a variant tag), a
/// varint with a 2/4/8/16-byte body (bincode's markers 251..=254), the invalid marker 255,
/// or a run of arbitrary bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..=250).prop_map(|b| vec![b]),
        (0u8..12).prop_map(|b| vec![b]),
        interesting_u64().prop_map(|v| varint_marked(251, &(v as u16).to_le_bytes())),
        interesting_u64().prop_map(|v| varint_marked(252, &(v as u32).to_le_bytes())),
        interesting_u64().prop_map(|v| varint_marked(253, &v.to_le_bytes())),
        interesting_u64().prop_map(|v| varint_marked(254, &u128::from(v).to_le_bytes())),
        Just(vec![255]),
        vec(any::<u8>(), 0..24),
    ]
}

fn varint_marked(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![marker];
    out.extend_from_slice(body);
    out
}

/// Payloads that begin like real messages: a valid tag (or one just past the last
/// variant), then pieces.
fn biased_payload() -> impl Strategy<Value = Vec<u8>> {
    (0u8..12, vec(piece(), 0..12)).prop_map(|(tag, pieces)| {
        let mut out = vec![tag];
        out.extend(pieces.into_iter().flatten());
        out
    })
}

/// Frames whose header may lie: the true length, a small or huge claim, or a claim at and
/// around both limits.
fn hostile_frame() -> impl Strategy<Value = Vec<u8>> {
    let claim = prop_oneof![
        Just(None),
        any::<u32>().prop_map(Some),
        (0u32..64).prop_map(Some),
        Just(Some(u32::MAX)),
        Just(Some(MAX_FRAME as u32)),
        Just(Some(MAX_FRAME as u32 + 1)),
        Just(Some(MAX_HELLO_FRAME as u32)),
        Just(Some(MAX_HELLO_FRAME as u32 + 1)),
    ];
    (
        claim,
        prop_oneof![biased_payload(), vec(any::<u8>(), 0..256)],
    )
        .prop_map(|(claim, payload)| match claim {
            None => framed(&payload),
            Some(len) => {
                let mut frame = len.to_be_bytes().to_vec();
                frame.extend_from_slice(&payload);
                frame
            }
        })
}

// ---------------------------------------------------------------------------------------
// Generators for valid messages

fn text(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

fn hello() -> impl Strategy<Value = Hello> {
    (any::<[u8; 4]>(), any::<u32>(), any::<u32>(), text(64)).prop_map(
        |(magic, version, min_version, agent)| Hello {
            magic,
            version,
            min_version,
            agent,
        },
    )
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop_oneof![any::<u16>(), 0u16..24].prop_map(ErrorKind::from)
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        text(255),
        any::<u16>().prop_map(EntryKind::from),
        any::<u64>(),
        any::<i64>(),
    )
        .prop_map(|(name, kind, size, modified)| Entry {
            name,
            kind,
            size,
            modified,
            executable: size % 2 == 1,
        })
}

fn attrs() -> impl Strategy<Value = Attrs> {
    (any::<i64>(), any::<u32>(), any::<bool>()).prop_map(|(modified, nanos, executable)| Attrs {
        modified,
        nanos,
        executable,
    })
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::Wait),
        Just(How::Pipelined),
        any::<[u8; DIGEST_LEN]>().prop_map(|digest| How::Resumable { digest }),
        any::<[u8; DIGEST_LEN]>().prop_map(|tag| How::Tagged { tag }),
    ]
}

/// The requests of version 4.
fn tree_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            text(300),
            any::<u64>(),
            proptest::option::of(attrs()),
            how()
        )
            .prop_map(|(name, size, attrs, how)| Request::Upload {
                name,
                size,
                attrs,
                how
            }),
        (text(300), any::<bool>()).prop_map(|(name, digest)| Request::Stat { name, digest }),
        (text(300), any::<bool>()).prop_map(|(dir, recursive)| Request::ListDir { dir, recursive }),
        text(300).prop_map(|name| Request::MakeDir { name }),
    ]
}

/// The responses of version 4.
fn tree_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (text(300), any::<u64>(), any::<u64>(), attrs()).prop_map(|(name, size, offset, attrs)| {
            Response::Opened {
                name,
                size,
                offset,
                attrs,
            }
        }),
        vec(entry(), 0..=LIST_BATCH).prop_map(Response::Listing),
        (entry(), proptest::option::of(any::<[u8; DIGEST_LEN]>()))
            .prop_map(|(entry, digest)| Response::Described { entry, digest }),
        any::<bool>().prop_map(|created| Response::Made { created }),
        (text(300), any::<u64>()).prop_map(|(name, size)| Response::Uploaded { name, size }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        hello().prop_map(Request::Hello),
        (text(300), any::<u64>()).prop_map(|(name, size)| Request::Put { name, size }),
        text(300).prop_map(|name| Request::Get { name }),
        Just(Request::List),
        (text(300), any::<u64>(), any::<[u8; DIGEST_LEN]>()).prop_map(|(name, offset, prefix)| {
            Request::GetFrom {
                name,
                offset,
                prefix,
            }
        }),
        (text(300), any::<u64>(), any::<[u8; DIGEST_LEN]>())
            .prop_map(|(name, size, digest)| Request::PutResumable { name, size, digest }),
        (text(300), any::<u64>()).prop_map(|(name, size)| Request::PutPipelined { name, size }),
        (text(80), text(300)).prop_map(|(user, password)| Request::Login {
            user,
            password: Password(password),
        }),
        tree_request(),
    ]
}

/// Fails to compile when a request is added, so [`request`] learns to generate it.
fn _request_covers_every_variant(msg: &Request) {
    match msg {
        Request::Hello(_)
        | Request::Put { .. }
        | Request::Get { .. }
        | Request::List
        | Request::GetFrom { .. }
        | Request::PutResumable { .. }
        | Request::PutPipelined { .. }
        | Request::Login { .. }
        | Request::Upload { .. }
        | Request::Stat { .. }
        | Request::ListDir { .. }
        | Request::MakeDir { .. } => {}
    }
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        hello().prop_map(Response::Hello),
        (error_kind(), text(1024)).prop_map(|(kind, message)| Response::Error { kind, message }),
        Just(Response::Ready),
        any::<u64>().prop_map(|size| Response::Stored { size }),
        (any::<u64>(), any::<i64>()).prop_map(|(size, modified)| Response::File { size, modified }),
        vec(entry(), 0..=LIST_BATCH)
            .prop_map(|batch| Response::Entries(batch.into_iter().map(EntryV3::from).collect())),
        any::<u64>().prop_map(|count| Response::ListEnd { count }),
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(size, modified, offset)| {
            Response::FileFrom {
                size,
                modified,
                offset,
            }
        }),
        any::<u64>().prop_map(|offset| Response::ReadyFrom { offset }),
        any::<u16>()
            .prop_map(Role::from)
            .prop_map(|role| Response::LoggedIn { role }),
        tree_response(),
    ]
}

/// Fails to compile when a response is added, so [`response`] learns to generate it.
fn _response_covers_every_variant(msg: &Response) {
    match msg {
        Response::Hello(_)
        | Response::Error { .. }
        | Response::Ready
        | Response::Stored { .. }
        | Response::File { .. }
        | Response::Entries(_)
        | Response::ListEnd { .. }
        | Response::FileFrom { .. }
        | Response::ReadyFrom { .. }
        | Response::LoggedIn { .. }
        | Response::Opened { .. }
        | Response::Listing(_)
        | Response::Described { .. }
        | Response::Made { .. }
        | Response::Uploaded { .. } => {}
    }
}

/// Fails to compile when a body frame is added, so [`body`] learns to generate it.
fn _body_covers_every_variant(msg: &Body<'_>) {
    match msg {
        Body::Chunk(_) | Body::End { .. } | Body::Abort { .. } => {}
    }
}

/// A [`Body`] that owns its chunk, so the strategy can produce it.
#[derive(Debug, Clone)]
enum OwnedBody {
    Chunk(Vec<u8>),
    End([u8; DIGEST_LEN]),
    Abort(ErrorKind, String),
}

impl OwnedBody {
    fn borrow(&self) -> Body<'_> {
        match self {
            OwnedBody::Chunk(data) => Body::Chunk(data),
            OwnedBody::End(digest) => Body::End { digest: *digest },
            OwnedBody::Abort(kind, message) => Body::Abort {
                kind: *kind,
                message: message.clone(),
            },
        }
    }
}

fn body() -> impl Strategy<Value = OwnedBody> {
    prop_oneof![
        vec(any::<u8>(), 0..8192).prop_map(OwnedBody::Chunk),
        any::<[u8; DIGEST_LEN]>().prop_map(OwnedBody::End),
        (error_kind(), text(1024)).prop_map(|(kind, message)| OwnedBody::Abort(kind, message)),
    ]
}

/// Encodes `msg`, checks that the frame and the bare payload decode back to it and that
/// every cut of them is incomplete (frame) or an error (payload).
fn assert_round_trip<T>(msg: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut frame = Vec::new();
    codec::encode_frame(msg, &mut frame).expect("a generated message encodes");
    let payload = &frame[HEADER_LEN..];
    let (back, used) = codec::decode_frame::<T>(&frame, MAX_FRAME)
        .expect("a frame we encoded decodes")
        .expect("a frame we encoded is complete");
    assert_eq!(&back, msg, "frame {frame:02x?}");
    assert_eq!(used, frame.len());
    assert_eq!(codec::decode::<T>(payload).ok().as_ref(), Some(msg));
    // A handful of cuts; all of them for short messages.
    let cuts: Vec<usize> = if payload.len() <= 64 {
        (0..payload.len()).collect()
    } else {
        vec![0, 1, payload.len() / 2, payload.len() - 1]
    };
    for cut in cuts {
        assert!(
            codec::decode::<T>(&payload[..cut]).is_err(),
            "payload cut at {cut} decoded"
        );
        assert!(
            matches!(
                codec::decode_frame::<T>(&frame[..HEADER_LEN + cut], MAX_FRAME),
                Ok(None)
            ),
            "frame cut at {cut} did not ask for more"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes: every decoder returns, and no allocation exceeds `MAX_FRAME`.
    #[test]
    fn arbitrary_bytes_never_panic_nor_allocate_past_the_limit(
        payload in vec(any::<u8>(), 0..4096),
    ) {
        let largest = largest_allocation_decoding(&payload);
        prop_assert!(largest <= MAX_FRAME, "{largest} bytes allocated for {payload:02x?}");
    }

    /// Payloads that start like messages and carry huge length prefixes: likewise.
    #[test]
    fn message_like_bytes_never_panic_nor_allocate_past_the_limit(payload in biased_payload()) {
        let largest = largest_allocation_decoding(&payload);
        prop_assert!(largest <= MAX_FRAME, "{largest} bytes allocated for {payload:02x?}");
    }

    /// Frames with lying headers: likewise, and the header check agrees with the decoder.
    #[test]
    fn hostile_frames_never_panic_nor_allocate_past_the_limit(frame in hostile_frame()) {
        let payload = frame.get(HEADER_LEN..).unwrap_or_default();
        let (_, largest) = largest_allocation(|| decode_everything(payload, &frame));
        prop_assert!(largest <= MAX_FRAME, "{largest} bytes allocated for {frame:02x?}");
    }

    /// Whatever decodes, re-encodes to something that decodes to the same message
    /// (the encoding need not be canonical: unknown codes become `Other`, varints may be long).
    #[test]
    fn decoded_messages_re_encode_to_themselves(payload in biased_payload()) {
        if let Ok(msg) = codec::decode::<Request>(&payload) {
            assert_round_trip(&msg);
        }
        if let Ok(msg) = codec::decode::<Response>(&payload) {
            assert_round_trip(&msg);
        }
        if let Ok(msg) = codec::decode::<Body<'_>>(&payload) {
            // A body borrows its chunk, so it cannot go through `assert_round_trip`.
            let mut frame = Vec::new();
            codec::encode_frame(&msg, &mut frame).expect("a decoded body encodes");
            let back: Body<'_> = codec::decode(&frame[HEADER_LEN..]).expect("re-encoded body decodes");
            prop_assert_eq!(back, msg);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Every valid request round-trips.
    #[test]
    fn requests_round_trip(msg in request()) {
        assert_round_trip(&msg);
    }

    /// Every valid response round-trips, error kinds as `ErrorKind::from(code)`.
    #[test]
    fn responses_round_trip(msg in response()) {
        assert_round_trip(&msg);
    }

    /// Every valid body frame round-trips, the chunk borrowed from the frame.
    #[test]
    fn bodies_round_trip(owned in body()) {
        let msg = owned.borrow();
        let mut frame = Vec::new();
        codec::encode_frame(&msg, &mut frame).expect("a generated body encodes");
        let (back, used) = codec::decode_frame::<Body<'_>>(&frame, MAX_FRAME)
            .expect("decodes")
            .expect("complete");
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(&back, &msg);
        for cut in [0, 1, frame.len() - HEADER_LEN - 1] {
            let cut_payload = &frame[HEADER_LEN..HEADER_LEN + cut];
            prop_assert!(codec::decode::<Body<'_>>(cut_payload).is_err(), "cut at {cut} decoded");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tables

/// A payload: `tag`, then each piece.
fn payload(tag: u8, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![tag];
    for piece in pieces {
        out.extend_from_slice(piece);
    }
    out
}

/// bincode's varint for `n`, the wide form: marker 253 and a little-endian `u64`.
fn wide(n: u64) -> Vec<u8> {
    varint_marked(253, &n.to_le_bytes())
}

/// One row per length field stretched to and past the limit: each is a protocol error,
/// a length over what is left of the limit is refused before anything near it is
/// allocated, and a length within it costs at most `MAX_FRAME`.
///
/// What bincode 2 really does, measured here: a string whose claimed length fits the
/// limit is allocated in full *before* its bytes are read, so an 11-byte `Put` makes the
/// decoder reserve `MAX_FRAME - 12` bytes, then fail. The honest bound for arbitrary
/// input is therefore `MAX_FRAME`, not the payload's length.
#[test]
fn stretched_lengths_are_errors_within_the_limit() {
    type Decoder = fn(&[u8]) -> bool;
    let request: Decoder = |p| codec::decode::<Request>(p).is_ok();
    let response: Decoder = |p| codec::decode::<Response>(p).is_ok();
    let body: Decoder = |p| codec::decode::<Body<'_>>(p).is_ok();
    let max = MAX_FRAME as u64;
    // Large enough to be refused: the limit also counts the bytes claimed before it.
    let over = max;
    // Small enough to be admitted by the limit (then cut short by the payload's end).
    let admitted = max - 32;
    let small = 1024;
    let hello_start: &[u8] = b"\x89FT\n\x01\x01";
    // (what, decoder, payload, largest allocation allowed)
    let rows: Vec<(&str, Decoder, Vec<u8>, usize)> = vec![
        (
            "put name claims u64::MAX",
            request,
            payload(1, &[&wide(u64::MAX), b"a"]),
            small,
        ),
        (
            "put name claims MAX_FRAME",
            request,
            payload(1, &[&wide(over), b"a"]),
            small,
        ),
        (
            "put name claims MAX_FRAME - 32",
            request,
            payload(1, &[&wide(admitted), b"a"]),
            MAX_FRAME,
        ),
        (
            "get name claims 2^62",
            request,
            payload(2, &[&wide(1 << 62)]),
            small,
        ),
        (
            "hello agent claims MAX_FRAME",
            request,
            payload(0, &[hello_start, &wide(over)]),
            small,
        ),
        (
            "hello agent claims MAX_FRAME - 32",
            request,
            payload(0, &[hello_start, &wide(admitted)]),
            MAX_FRAME,
        ),
        (
            "error message claims u64::MAX",
            response,
            payload(1, &[&[10], &wide(u64::MAX)]),
            small,
        ),
        (
            "error message claims MAX_FRAME - 32",
            response,
            payload(1, &[&[10], &wide(admitted)]),
            MAX_FRAME,
        ),
        (
            "entries count u64::MAX",
            response,
            payload(5, &[&wide(u64::MAX)]),
            MAX_FRAME,
        ),
        (
            "entries count 2^40, one entry",
            response,
            payload(5, &[&wide(1 << 40), &[1, b'a', 1, 0, 0]]),
            MAX_FRAME,
        ),
        (
            "entry name claims MAX_FRAME",
            response,
            payload(5, &[&[1], &wide(over)]),
            small,
        ),
        (
            "entry name claims MAX_FRAME - 32",
            response,
            payload(5, &[&[1], &wide(admitted)]),
            MAX_FRAME,
        ),
        (
            "chunk claims u64::MAX",
            body,
            payload(0, &[&wide(u64::MAX)]),
            small,
        ),
        (
            "chunk claims MAX_FRAME - 32",
            body,
            payload(0, &[&wide(admitted), &[0; 16]]),
            small,
        ),
        (
            "abort message claims MAX_FRAME",
            body,
            payload(2, &[&[6], &wide(over)]),
            small,
        ),
        (
            "abort message claims MAX_FRAME - 32",
            body,
            payload(2, &[&[6], &wide(admitted)]),
            MAX_FRAME,
        ),
        (
            "end digest cut short",
            body,
            payload(1, &[&[0; DIGEST_LEN - 1]]),
            small,
        ),
        (
            "varint marker 255",
            request,
            payload(1, &[&[255], &[0; 16]]),
            small,
        ),
        (
            "varint u128 length",
            request,
            payload(1, &[&[254], &[0xff; 16]]),
            small,
        ),
        ("tag past the last variant", response, vec![200], small),
        ("tag in a wide varint", request, wide(1), small),
    ];
    for (what, decode, payload, allowed) in rows {
        let (ok, largest) = largest_allocation(|| decode(&payload));
        assert!(!ok, "{what}: decoded");
        assert!(
            largest <= allowed,
            "{what}: {largest} bytes allocated, allowed {allowed}"
        );
        // Every other decoder stays within the frame limit on the same bytes.
        let largest = largest_allocation_decoding(&payload);
        assert!(largest <= MAX_FRAME, "{what}: {largest} bytes allocated");
    }
}

/// The hello limit bounds how many bytes are read, not what bincode may reserve: a
/// 20-byte hello frame still makes the decoder reserve almost `MAX_FRAME` bytes (then
/// fail), because the codec decodes every frame with the one `MAX_FRAME` configuration.
#[test]
fn hello_frames_allocate_within_the_frame_limit() {
    let hello = payload(0, &[b"\x89FT\n\x01\x01", &wide(MAX_FRAME as u64 - 32)]);
    let frame = framed(&hello);
    assert!(frame.len() <= MAX_HELLO_FRAME);
    let (got, largest) =
        largest_allocation(|| codec::decode_frame::<Request>(&frame, MAX_HELLO_FRAME).map(|_| ()));
    assert!(matches!(got, Err(Error::Protocol(_))), "{got:?}");
    assert!(largest <= MAX_FRAME, "{largest} bytes allocated");
}

/// A payload of `count` listing entries of the smallest kind: 4 bytes each on the wire,
/// 48 (`size_of::<Entry>()`) in memory.
fn minimal_entries(count: usize) -> Vec<u8> {
    let mut out = payload(5, &[&wide(count as u64)]);
    for _ in 0..count {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
    out
}

/// REGRESSION, fails against ftlib as of this test (found while checking the allocation
/// bound; the fuzzers' 4 KiB inputs cannot reach it). A `Response::Entries` payload well within
/// `MAX_FRAME` makes the decoder allocate one block of about twice `MAX_FRAME`: serde
/// preallocates 1 MiB / 48 = 21 845 entries, and entry 21 846 doubles the vector to
/// 43 690 × 48 = 2 097 120 bytes. bincode's limit (which charges ~26 bytes per entry) stops
/// the decode only past ~40 300 entries; `LIST_BATCH` is checked after decoding.
#[test]
fn entries_allocate_within_the_limit() {
    let rows = [
        ("21 846 entries: the smallest payload that trips it", 21_846),
        ("21 845 entries: just fits the preallocation", 21_845),
        ("40 000 entries", 40_000),
        ("a full frame of entries", (MAX_FRAME - 10) / 4),
    ];
    for (what, count) in rows {
        let bytes = minimal_entries(count);
        assert!(bytes.len() <= MAX_FRAME);
        let (got, largest) = largest_allocation(|| {
            codec::decode::<Response>(&bytes).map(|r| matches!(r, Response::Entries(_)))
        });
        assert!(
            largest <= MAX_FRAME,
            "{what}: decoding {} bytes ({got:?}) allocated {largest} bytes at once, over MAX_FRAME = {MAX_FRAME}",
            bytes.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The connection against lying peers, over real loopback sockets

/// A connected pair: our `Connection` and a peer thread that writes `bytes`, then closes.
fn lying_peer(bytes: Vec<u8>) -> (Connection, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let peer = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        // The connection may give up before reading everything; a failed write is fine.
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(Shutdown::Write);
    });
    let (stream, _) = listener.accept().expect("accept");
    let conn = Connection::tcp(stream, Duration::from_secs(10)).expect("connection");
    (conn, peer)
}

/// Bytes a header and `sent` payload bytes may make the connection allocate: the read
/// buffer grows with what arrives (at most doubling), plus error messages.
fn connection_allowance(sent: usize) -> usize {
    2 * sent + 1024
}

/// The error a lying header must produce.
#[derive(Debug, Clone, Copy)]
enum Expect {
    TooLarge,
    Closed,
    Protocol,
}

/// One row per lying header: the connection fails with the right error, allocating in
/// proportion to the bytes that actually arrived, not to the length claimed.
#[test]
fn lying_headers_fail_without_allocating_the_claim() {
    use Expect::{Closed, Protocol, TooLarge};
    let (frame, hello) = (MAX_FRAME as u32, MAX_HELLO_FRAME as u32);
    // (what, claimed length, bytes sent after the header, read as a hello?, expected error)
    let rows = [
        ("u32::MAX, 3 bytes", u32::MAX, 3, false, TooLarge),
        ("MAX_FRAME + 1, 3 bytes", frame + 1, 3, false, TooLarge),
        ("MAX_FRAME, 3 bytes", frame, 3, false, Closed),
        ("MAX_FRAME, none", frame, 0, false, Closed),
        ("MAX_FRAME, 100 000 bytes", frame, 100_000, false, Closed),
        ("hello, u32::MAX", u32::MAX, 3, true, Protocol),
        ("hello, MAX_HELLO_FRAME + 1", hello + 1, 3, true, Protocol),
        ("hello, MAX_HELLO_FRAME, 3 bytes", hello, 3, true, Closed),
    ];
    for (what, claim, sent, hello, expected) in rows {
        let mut bytes = claim.to_be_bytes().to_vec();
        bytes.resize(HEADER_LEN + sent, 1);
        let (mut conn, peer) = lying_peer(bytes);
        let (got, largest) = largest_allocation(|| {
            if hello {
                conn.recv_hello::<Request>().map(|_| ())
            } else {
                conn.recv::<Request>().map(|_| ())
            }
        });
        peer.join().expect("peer thread");
        match (&got, expected) {
            (Err(Error::FrameTooLarge { .. }), TooLarge)
            | (Err(Error::Closed(_)), Closed)
            | (Err(Error::Protocol(_)), Protocol) => {}
            _ => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
        let allowed = connection_allowance(sent);
        assert!(
            largest <= allowed,
            "{what}: {largest} bytes allocated, allowed {allowed}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A header claiming more than the peer sends: an error, and the buffer never grows
    /// past what arrived.
    #[test]
    fn short_frames_fail_without_allocating_the_claim(
        claim in prop_oneof![1..=MAX_FRAME as u32, Just(MAX_FRAME as u32), any::<u32>().prop_map(|c| c.max(1))],
        sent in prop_oneof![0usize..64, 0usize..300_000],
    ) {
        let sent = sent.min(claim.saturating_sub(1) as usize);
        let mut bytes = claim.to_be_bytes().to_vec();
        bytes.resize(HEADER_LEN + sent, 0);
        let (mut conn, peer) = lying_peer(bytes);
        let (got, largest) = largest_allocation(|| conn.recv::<Request>().map(|_| ()));
        peer.join().expect("peer thread");
        if claim as usize > MAX_FRAME {
            prop_assert!(matches!(got, Err(Error::FrameTooLarge { .. })), "{got:?}");
        } else {
            prop_assert!(matches!(got, Err(Error::Closed(_))), "{got:?}");
        }
        let allowed = connection_allowance(sent);
        prop_assert!(largest <= allowed, "{largest} bytes allocated, allowed {allowed}");
    }
}
