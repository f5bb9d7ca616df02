//! Whole frames (header and payload) as they come off a socket: `decode_frame` of requests,
//! responses and bodies, frame after frame, the first under the hello limit as a
//! `Connection` reads it, and the header check `payload_len` under both limits.

#![no_main]

use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::{Body, MAX_FRAME, MAX_HELLO_FRAME, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(header) = data.first_chunk::<HEADER_LEN>() {
        let claimed = u32::from_be_bytes(*header) as usize;
        for limit in [MAX_FRAME, MAX_HELLO_FRAME] {
            match codec::payload_len(*header, limit) {
                Ok(len) => assert!(len == claimed && len <= limit),
                Err(_) => assert!(claimed > limit),
            }
        }
    }
    ft_fuzz::within_limit(data, || {
        for first_limit in [MAX_HELLO_FRAME, MAX_FRAME] {
            ft_fuzz::decode_stream::<Request>(data, first_limit);
            ft_fuzz::decode_stream::<Response>(data, first_limit);
        }
        ft_fuzz::decode_stream::<Body<'_>>(data, MAX_FRAME);
    });
});
