//! `ftlib::codec::decode::<Request>` on arbitrary payloads: a message or an error, never a
//! panic, never an allocation over `MAX_FRAME`; what decodes re-encodes and decodes the same.

#![no_main]

use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoded = None;
    ft_fuzz::within_limit(data, || decoded = codec::decode::<Request>(data).ok());
    if let Some(msg) = decoded {
        let mut frame = Vec::new();
        codec::encode_frame(&msg, &mut frame).expect("a decoded request encodes");
        let back =
            codec::decode::<Request>(&frame[HEADER_LEN..]).expect("a re-encoded request decodes");
        assert_eq!(back, msg);
    }
});
