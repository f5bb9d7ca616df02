//! Test data: deterministic pseudo-random bytes, and the digest ft sends after a body,
//! computed here independently of ftlib's own hashing.

use xxhash_rust::xxh3::xxh3_128;

/// Deterministic pseudo-random bytes (xorshift): reproducible failures, and no pattern a
/// bug could hide in. Distinct seeds give distinct bytes; for one seed, a shorter run is a
/// prefix of a longer one.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    // Odd and distinct for every seed (`seed | 1` would make 2 and 3 the same).
    let mut x = seed.wrapping_mul(2).wrapping_add(1);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The XXH3-128 digest of `data`, big-endian, as a `Body::End` carries it.
pub fn digest(data: &[u8]) -> [u8; 16] {
    xxh3_128(data).to_be_bytes()
}
