//! What every ft fuzz target shares: a global allocator that remembers the largest single
//! allocation (`ft_testutil::CountingAlloc`, as in the test suite), and the checks run on
//! each input. The decoders are ftlib's own (`ftlib::codec`), so the fuzzers use exactly
//! the bincode configuration ft ships.

use ft_testutil::{CountingAlloc, largest_allocation};
use ftlib::Error;
use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::MAX_FRAME;
use serde::Deserialize;

// Every allocation is counted, so `within_limit` can bound what one decode asks for. The
// counter is per thread; libFuzzer runs each input on the thread that calls the target.
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` on `data` and panics (a finding) when it allocated more than [`MAX_FRAME`] at once.
pub fn within_limit(data: &[u8], f: impl FnOnce()) {
    let ((), largest) = largest_allocation(f);
    assert!(
        largest <= MAX_FRAME,
        "decoding {} bytes allocated {largest} bytes at once, over MAX_FRAME = {MAX_FRAME}",
        data.len()
    );
}

/// Decodes `bytes` as a stream of frames of `T`, the way a connection reads them: the
/// first with the hello limit when `first_limit` says so, the rest with `MAX_FRAME`, until
/// the stream ends, is incomplete, or is refused. Checks that `decode_frame` agrees with
/// the header check `Connection` uses (`payload_len`) and never claims bytes it was not given.
pub fn decode_stream<'a, T: Deserialize<'a>>(mut bytes: &'a [u8], first_limit: usize) {
    let mut limit = first_limit;
    loop {
        let declared = bytes
            .first_chunk::<HEADER_LEN>()
            .map(|header| codec::payload_len(*header, limit));
        match codec::decode_frame::<T>(bytes, limit) {
            Ok(Some((_, used))) => {
                let Some(Ok(len)) = declared else {
                    panic!("a frame decoded although its header says {declared:?}")
                };
                assert!(
                    len <= limit,
                    "payload of {len} bytes over the limit {limit}"
                );
                assert_eq!(
                    used,
                    HEADER_LEN + len,
                    "frame length disagrees with its header"
                );
                let Some(rest) = bytes.get(used..) else {
                    panic!("decode_frame used {used} of {} bytes", bytes.len())
                };
                bytes = rest;
            }
            Ok(None) => {
                match declared {
                    None => assert!(bytes.len() < HEADER_LEN),
                    Some(Ok(len)) => {
                        assert!(bytes.len() < HEADER_LEN + len, "complete frame ignored")
                    }
                    Some(Err(e)) => panic!("oversized header ({e}) asked for more bytes"),
                }
                return;
            }
            Err(Error::FrameTooLarge { len, limit: got }) => {
                assert_eq!(got, limit);
                assert!(
                    len > limit as u64,
                    "refused {len} bytes under the limit {limit}"
                );
                return;
            }
            Err(Error::Protocol(_)) => {
                assert!(
                    matches!(declared, Some(Ok(_))),
                    "protocol error on header {declared:?}"
                );
                return;
            }
            Err(e) => panic!("unexpected error from decode_frame: {e:?}"),
        }
        limit = ftlib::protocol::MAX_FRAME;
    }
}
