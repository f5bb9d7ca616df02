//! What every ft fuzz target shares: a global allocator that remembers the largest single
//! allocation, and the checks run on each input. The decoders are ftlib's own
//! (`ftlib::codec`), so the fuzzers use exactly the bincode configuration ft ships.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ftlib::Error;
use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::MAX_FRAME;
use serde::Deserialize;

/// `System`, remembering the largest size asked for since the last [`largest_allocation`].
/// libFuzzer runs one input at a time, so one counter for the process is enough.
#[derive(Debug)]
pub struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; noting the size neither allocates
// nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the largest single allocation it made.
pub fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    f();
    LARGEST.load(Ordering::Relaxed)
}

/// Runs `f` on `data` and panics (a finding) when it allocated more than [`MAX_FRAME`] at once.
pub fn within_limit(data: &[u8], f: impl FnOnce()) {
    let largest = largest_allocation(f);
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
