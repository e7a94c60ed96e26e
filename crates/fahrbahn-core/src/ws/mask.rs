//! Payload masking (RFC 6455 section 5.3), a word at a time.

/// XORs `data` with the 4-byte `key`, where `data[0]` is at position
/// `offset` of the frame payload (so a payload can be unmasked in pieces).
/// Returns the offset after `data`.
///
/// Works on 8-byte words with the key rotated to the right phase, falling
/// back to bytes only at the ends; no `unsafe`.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let phase = offset % 4;
    let mut rotated = [0u8; 4];
    for (i, b) in rotated.iter_mut().enumerate() {
        *b = key[(phase + i) % 4];
    }
    let mut pattern = [0u8; 8];
    pattern[..4].copy_from_slice(&rotated);
    pattern[4..].copy_from_slice(&rotated);
    let word64 = u64::from_ne_bytes(pattern);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8-byte chunk")) ^ word64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    for (i, b) in rest.iter_mut().enumerate() {
        *b ^= rotated[i % 4];
    }
    offset + data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 5.7: masked "Hello" with key 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn matches_naive_at_every_offset_and_length() {
        let key = [1, 2, 3, 250];
        for len in 0..40 {
            for offset in 0..8 {
                let orig: Vec<u8> = (0..len as u8).map(|x| x.wrapping_mul(31)).collect();
                let mut a = orig.clone();
                let mut b = orig.clone();
                apply_mask(&mut a, key, offset);
                naive(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let key = [9, 8, 7, 6];
        let orig: Vec<u8> = (0..100u8).collect();
        let mut whole = orig.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = orig.clone();
        let mut off = 0;
        for part in pieces.chunks_mut(7) {
            off = apply_mask(part, key, off);
        }
        assert_eq!(whole, pieces);
    }
}
