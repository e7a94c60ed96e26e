//! Helpers shared by the targets.

use std::sync::OnceLock;
use std::time::Instant;

/// A fixed base instant for every run (the core never reads the clock;
/// the targets pass this and offsets of it).
pub(crate) fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Takes the first byte of `data` (0 when empty) and the rest.
pub(crate) fn take_byte(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}

/// `data` in pieces: all of it at once when `chunk` is 0, else pieces of
/// `chunk` bytes, then `chunk + 1`, … (so that the boundaries move
/// around).
pub(crate) fn pieces(data: &[u8], chunk: u8) -> Vec<&[u8]> {
    if chunk == 0 {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut size = usize::from(chunk);
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        out.push(piece);
        rest = tail;
        size = size % 13 + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_input() {
        let data: Vec<u8> = (0..100).collect();
        for chunk in 0..=255u8 {
            let joined: Vec<u8> = pieces(&data, chunk).concat();
            assert_eq!(joined, data);
        }
        assert!(pieces(&[], 3).is_empty());
    }
}
