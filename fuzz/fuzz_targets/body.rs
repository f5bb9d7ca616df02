//! `ftlib::codec::decode::<Body>` on arbitrary payloads: a message or an error, never a
//! panic, never an allocation over `MAX_FRAME`; a chunk borrows from the payload, and what
//! decodes re-encodes and decodes the same.

#![no_main]

use ftlib::codec::{self, HEADER_LEN};
use ftlib::protocol::Body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoded = None;
    ft_fuzz::within_limit(data, || decoded = codec::decode::<Body<'_>>(data).ok());
    let Some(msg) = decoded else { return };
    if let Body::Chunk(chunk) = msg {
        let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        let at = chunk.as_ptr() as usize;
        assert!(
            chunk.is_empty() || (start <= at && at + chunk.len() <= end),
            "chunk was copied"
        );
    }
    let mut frame = Vec::new();
    codec::encode_frame(&msg, &mut frame).expect("a decoded body encodes");
    let back = codec::decode::<Body<'_>>(&frame[HEADER_LEN..]).expect("a re-encoded body decodes");
    assert_eq!(back, msg);
});
