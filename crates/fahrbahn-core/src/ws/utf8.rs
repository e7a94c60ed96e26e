//! Incremental UTF-8 validation for text messages that arrive in pieces.

/// Validates a byte stream as UTF-8 piece by piece, failing as soon as the
/// bytes seen so far cannot be the start of valid UTF-8 (the "fail fast"
/// behaviour Autobahn|Testsuite 6.4.x checks), even inside a partial frame.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Validator {
    /// Bytes of an incomplete code point carried over from the last piece.
    pending: [u8; 4],
    pending_len: usize,
}

/// The bytes are not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

fn char_width(first: u8) -> usize {
    match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

/// Validates `data`, returning how many trailing bytes form an incomplete
/// (but so far valid) code point. SIMD-accelerated (`simdutf8`), with the
/// same error details as `std::str::from_utf8`.
fn validate_prefix(data: &[u8]) -> Result<usize, InvalidUtf8> {
    match simdutf8::compat::from_utf8(data) {
        Ok(_) => Ok(0),
        Err(e) if e.error_len().is_none() => Ok(data.len() - e.valid_up_to()),
        Err(_) => Err(InvalidUtf8),
    }
}

impl Utf8Validator {
    /// Feeds the next piece of the stream.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let width = char_width(self.pending[0]);
            let take = (width - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            let incomplete = validate_prefix(&self.pending[..self.pending_len])?;
            if incomplete > 0 {
                // Still incomplete: `data` is exhausted.
                return Ok(());
            }
            self.pending_len = 0;
        }
        let incomplete = validate_prefix(data)?;
        if incomplete > 0 {
            self.pending[..incomplete].copy_from_slice(&data[data.len() - incomplete..]);
            self.pending_len = incomplete;
        }
        Ok(())
    }

    /// Ends the stream: fails if it stopped inside a code point. Resets the
    /// validator for the next message.
    pub(crate) fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }

    /// Forgets any carried-over bytes.
    pub(crate) fn reset(&mut self) {
        self.pending_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let whole = std::str::from_utf8(bytes).is_ok();
        for split in 0..=bytes.len() {
            let mut v = Utf8Validator::default();
            let r = v
                .feed(&bytes[..split])
                .and_then(|_| v.feed(&bytes[split..]))
                .and_then(|_| v.finish());
            assert_eq!(r.is_ok(), whole, "split at {split} of {bytes:x?}");
        }
        let mut v = Utf8Validator::default();
        for b in bytes {
            v.feed(std::slice::from_ref(b))?;
        }
        v.finish()
    }

    #[test]
    fn valid_text_in_every_split() {
        assert!(check_split("κόσμε Hello-µ@ßöäüàá-UTF-8!! 𝄞".as_bytes()).is_ok());
    }

    #[test]
    fn invalid_sequences_detected() {
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..],
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xff",
            b"abc\xe0\x80\xaf",
        ] {
            assert!(check_split(bad).is_err(), "{bad:x?}");
        }
    }

    #[test]
    fn fails_fast_inside_a_code_point() {
        // 0xF4 0x90 can never start a valid code point (above U+10FFFF):
        // the error must come before the rest arrives.
        let mut v = Utf8Validator::default();
        assert!(
            v.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
                .is_ok()
        );
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }

    #[test]
    fn truncated_at_end_fails_on_finish() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(b"ab\xe2\x82").is_ok());
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // The validator is reusable after finish.
        assert!(v.feed(b"ok").is_ok());
        assert_eq!(v.finish(), Ok(()));
    }
}
