//! Payload masking (RFC 6455 section 5.3), a word at a time.

/// XORs `data` with the 4-byte `key`, where `data[0]` is at position
/// `offset` of the frame payload (so a payload can be unmasked in pieces).
/// Returns the offset after `data`.
///
/// Works on 8-byte words with the key rotated to the right phase, falling
/// back to bytes only at the ends; no `unsafe`.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let rotated = rotate_key(key, offset);
    let word = u64::from(u32::from_le_bytes(rotated));
    let word64 = u64::from_le(word | word << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8-byte chunk")) ^ word64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    for (b, k) in rest.iter_mut().zip(rotated.iter().cycle()) {
        *b ^= k;
    }
    offset + data.len()
}

/// The key as it applies from payload position `offset` on.
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Little-endian: the lowest byte is the first; rotating right by one
    // byte moves key[1] into it.
    u32::from_le_bytes(key)
        .rotate_right(8 * (offset % 4) as u32)
        .to_le_bytes()
}

/// Appends `src` XORed with the 4-byte `key` to `dst`, where `src[0]` is at
/// position `offset` of the frame payload: copying and unmasking in one
/// pass. Returns the offset after `src`.
///
/// Works on 64-byte blocks (fixed-size loops the compiler turns into
/// vector instructions), falling back to bytes only at the end; no
/// `unsafe`.
pub(crate) fn mask_extend(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) -> usize {
    const BLOCK: usize = 64;
    let start = dst.len();
    if src.len() < BLOCK {
        dst.extend_from_slice(src);
        return apply_mask(&mut dst[start..], key, offset);
    }
    let rotated = rotate_key(key, offset);
    let mut pattern = [0u8; BLOCK];
    for lane in pattern.chunks_exact_mut(4) {
        lane.copy_from_slice(&rotated);
    }
    dst.reserve(src.len());
    let mut blocks = src.chunks_exact(BLOCK);
    for block in &mut blocks {
        let mut out = [0u8; BLOCK];
        for ((o, s), p) in out.iter_mut().zip(block).zip(&pattern) {
            *o = s ^ p;
        }
        dst.extend_from_slice(&out);
    }
    // The tail starts at a multiple of 64 bytes: the same phase.
    let rest = blocks.remainder();
    let tail = dst.len();
    dst.extend_from_slice(rest);
    apply_mask(&mut dst[tail..], rotated, 0);
    offset + src.len()
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
    fn mask_extend_matches_naive() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in [0, 1, 3, 63, 64, 65, 127, 128, 200, 1000] {
            for offset in 0..5 {
                let orig: Vec<u8> = (0..len).map(|x| (x * 7 + 3) as u8).collect();
                let mut expected = orig.clone();
                naive(&mut expected, key, offset);
                let mut dst = vec![9, 9];
                let end = mask_extend(&mut dst, &orig, key, offset);
                assert_eq!(end, offset + len);
                assert_eq!(&dst[..2], &[9, 9]);
                assert_eq!(&dst[2..], &expected[..], "len {len} offset {offset}");
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
