//! permessage-deflate (RFC 7692): parameter negotiation and the codec.

use super::config::DeflateConfig;
use super::handshake::ExtensionElement;

pub(crate) const EXTENSION_NAME: &str = "permessage-deflate";

/// The parameters of one offer or response, validated (RFC 7692 section 7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in offers only).
    pub(crate) client_max_window_bits: Option<Option<u8>>,
}

fn window_bits(value: Option<&str>) -> Result<u8, String> {
    let v = value.ok_or("window bits parameter needs a value")?;
    // RFC 7692: 1*DIGIT without leading zeros, 8..=15.
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid window bits {v:?}"));
    }
    match v.parse::<u8>() {
        Ok(b @ 8..=15) => Ok(b),
        _ => Err(format!("window bits {v} out of range 8..=15")),
    }
}

impl Params {
    /// Validates an element's parameters: no unknown or duplicate names, no
    /// invalid values.
    pub(crate) fn parse(element: &ExtensionElement) -> Result<Self, String> {
        let mut p = Params::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &element.params {
            if seen.contains(&name.as_str()) {
                return Err(format!("duplicate parameter {name}"));
            }
            seen.push(name);
            match name.as_str() {
                "server_no_context_takeover" | "client_no_context_takeover" => {
                    if value.is_some() {
                        return Err(format!("{name} takes no value"));
                    }
                    if name.starts_with("server") {
                        p.server_no_context_takeover = true;
                    } else {
                        p.client_no_context_takeover = true;
                    }
                }
                "server_max_window_bits" => {
                    p.server_max_window_bits = Some(window_bits(value.as_deref())?);
                }
                "client_max_window_bits" => {
                    p.client_max_window_bits = Some(match value {
                        None => None,
                        Some(v) => Some(window_bits(Some(v))?),
                    });
                }
                other => return Err(format!("unknown parameter {other}")),
            }
        }
        Ok(p)
    }

    /// Renders these parameters as a header element.
    pub(crate) fn render(&self) -> String {
        let mut s = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        match self.client_max_window_bits {
            Some(Some(b)) => s.push_str(&format!("; client_max_window_bits={b}")),
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }
}

/// What both sides agreed on, from our point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// Reset our compressor after each message.
    pub(crate) reset_compressor: bool,
    /// Reset our decompressor after each message.
    pub(crate) reset_decompressor: bool,
    /// Our compressor's window, in bits.
    pub(crate) compress_window_bits: u8,
    pub(crate) level: u32,
    pub(crate) min_message_size: usize,
}

/// The client's offer header value.
pub(crate) fn client_offer(cfg: &DeflateConfig) -> String {
    Params {
        server_no_context_takeover: cfg.server_no_context_takeover,
        client_no_context_takeover: cfg.client_no_context_takeover,
        server_max_window_bits: cfg.server_max_window_bits,
        // Always announce that we can honour a client window limit.
        client_max_window_bits: Some(cfg.client_max_window_bits),
    }
    .render()
}

/// Server side: accept the first acceptable offer. Returns the agreement
/// and the response element.
pub(crate) fn server_accept(
    offers: &[ExtensionElement],
    cfg: &DeflateConfig,
) -> Option<(Agreement, String)> {
    for offer in offers.iter().filter(|o| o.name == EXTENSION_NAME) {
        let Ok(p) = Params::parse(offer) else {
            continue;
        };
        let server_bits = match (p.server_max_window_bits, cfg.server_max_window_bits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let client_bits = match (p.client_max_window_bits, cfg.client_max_window_bits) {
            (Some(Some(a)), Some(b)) => Some(Some(a.min(b))),
            (Some(_), Some(b)) => Some(Some(b)),
            // Without our own limit there is nothing to tell the client.
            _ => None,
        };
        let response = Params {
            server_no_context_takeover: p.server_no_context_takeover
                || cfg.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || cfg.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        let agreement = Agreement {
            reset_compressor: response.server_no_context_takeover,
            reset_decompressor: response.client_no_context_takeover,
            compress_window_bits: server_bits.unwrap_or(15),
            level: cfg.level,
            min_message_size: cfg.min_message_size,
        };
        return Some((agreement, response.render()));
    }
    None
}

/// Client side: check the server's response against what we offered.
pub(crate) fn client_check(
    responses: &[ExtensionElement],
    cfg: &DeflateConfig,
) -> Result<Agreement, String> {
    if responses.len() != 1 {
        return Err("more than one extension in the response".into());
    }
    let p = Params::parse(&responses[0])?;
    if let (Some(got), Some(offered)) = (p.server_max_window_bits, cfg.server_max_window_bits) {
        if got > offered {
            return Err(format!(
                "server_max_window_bits={got} is above the offered {offered}"
            ));
        }
    }
    if cfg.server_no_context_takeover && !p.server_no_context_takeover {
        return Err("server ignored server_no_context_takeover".into());
    }
    let client_bits = match p.client_max_window_bits {
        Some(None) => return Err("client_max_window_bits needs a value in a response".into()),
        Some(Some(b)) => match cfg.client_max_window_bits {
            Some(ours) if b > ours => {
                return Err(format!(
                    "client_max_window_bits={b} is above the offered {ours}"
                ));
            }
            _ => b,
        },
        None => cfg.client_max_window_bits.unwrap_or(15),
    };
    Ok(Agreement {
        reset_compressor: p.client_no_context_takeover || cfg.client_no_context_takeover,
        reset_decompressor: p.server_no_context_takeover,
        compress_window_bits: client_bits,
        level: cfg.level,
        min_message_size: cfg.min_message_size,
    })
}

#[cfg(feature = "deflate")]
pub(crate) use codec::Codec;

#[cfg(feature = "deflate")]
mod codec {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

    use super::Agreement;
    use crate::ws::error::ProtocolError;

    const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

    /// Compressor and decompressor of one connection. Each is allocated
    /// when first needed (zlib's state is about 300 KiB with a 15-bit
    /// window, which an idle connection should not hold) and, when context
    /// takeover is off for its direction, freed after every message.
    pub(crate) struct Codec {
        compress: Option<Compress>,
        decompress: Option<Decompress>,
        agreement: Agreement,
        /// The message being inflated ended its DEFLATE stream (a block
        /// with BFINAL set): any more compressed data in it is an error,
        /// however the payload arrives in pieces.
        stream_ended: bool,
    }

    impl std::fmt::Debug for Codec {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Codec")
                .field("agreement", &self.agreement)
                .finish_non_exhaustive()
        }
    }

    fn new_compressor(a: &Agreement) -> Compress {
        // zlib cannot run raw deflate with a 256-byte window; with 8 bits
        // agreed we emit stored blocks (no back-references at all), which
        // any window accepts.
        if a.compress_window_bits == 8 {
            Compress::new_with_window_bits(Compression::none(), false, 9)
        } else {
            Compress::new_with_window_bits(
                Compression::new(a.level.min(9)),
                false,
                a.compress_window_bits,
            )
        }
    }

    impl Codec {
        pub(crate) fn new(agreement: Agreement) -> Self {
            Self {
                compress: None,
                decompress: None,
                agreement,
                stream_ended: false,
            }
        }

        /// Whether the compressor state is allocated.
        #[cfg(test)]
        pub(crate) fn has_compressor(&self) -> bool {
            self.compress.is_some()
        }

        /// Whether the decompressor state is allocated.
        #[cfg(test)]
        pub(crate) fn has_decompressor(&self) -> bool {
            self.decompress.is_some()
        }

        /// Whether a message of `len` bytes should be compressed.
        pub(crate) fn wants(&self, len: usize) -> bool {
            len >= self.agreement.min_message_size
        }

        /// Compresses a whole message into `out` (appending), without the
        /// final `00 00 ff ff`.
        pub(crate) fn compress(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
            let start = out.len();
            let agreement = &self.agreement;
            let compress = self
                .compress
                .get_or_insert_with(|| new_compressor(agreement));
            loop {
                out.reserve(input.len() / 2 + 64);
                let before_in = compress.total_in();
                let status = compress
                    .compress_vec(input, out, FlushCompress::Sync)
                    .expect("deflate with valid parameters does not fail");
                let consumed = (compress.total_in() - before_in) as usize;
                input = &input[consumed..];
                // Done when all input is in and the flush fit in the buffer.
                if input.is_empty() && out.len() < out.capacity() {
                    break;
                }
                debug_assert!(matches!(status, Status::Ok | Status::BufError));
            }
            if out[start..].ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else if out.len() == start {
                // zlib emits nothing for a sync flush without new input (an
                // empty message after another one). RFC 7692 7.2.1: append
                // an empty stored block and drop its `00 00 ff ff`, leaving
                // `00`; an empty payload would not inflate with the tail.
                out.push(0x00);
            }
            if self.agreement.reset_compressor {
                // No context takeover: the next message starts afresh, so
                // the state is freed rather than kept for it.
                self.compress = None;
            }
        }

        /// Inflates a piece of a message into `out`, failing when `out`
        /// would exceed `limit` bytes.
        pub(crate) fn decompress(
            &mut self,
            mut input: &[u8],
            out: &mut Vec<u8>,
            limit: usize,
        ) -> Result<(), ProtocolError> {
            if self.stream_ended && !input.is_empty() {
                return Err(ProtocolError::InvalidCompressedData);
            }
            // A 15-bit window inflates anything a smaller one produced.
            let decompress = self
                .decompress
                .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
            loop {
                if out.len() > limit {
                    return Err(ProtocolError::MessageTooBig { limit });
                }
                if out.capacity() - out.len() < 4096 {
                    // Grow geometrically, but never past the limit (+1 to
                    // detect overflow), so a bomb cannot allocate more.
                    let target = (out.capacity() * 2)
                        .max(out.len() + (32 << 10))
                        .min(limit + 1);
                    out.reserve_exact(target - out.len());
                }
                let before_in = decompress.total_in();
                let before_out = out.len();
                let status = decompress
                    .decompress_vec(input, out, FlushDecompress::Sync)
                    .map_err(|_| ProtocolError::InvalidCompressedData)?;
                let consumed = (decompress.total_in() - before_in) as usize;
                input = &input[consumed..];
                if status == Status::StreamEnd {
                    // A final block: the next message starts a new stream.
                    decompress.reset(false);
                    self.stream_ended = true;
                    if !input.is_empty() {
                        return Err(ProtocolError::InvalidCompressedData);
                    }
                }
                if out.len() > limit {
                    return Err(ProtocolError::MessageTooBig { limit });
                }
                let produced = out.len() - before_out;
                if input.is_empty() && out.len() < out.capacity() {
                    return Ok(());
                }
                if consumed == 0 && produced == 0 {
                    if input.is_empty() {
                        return Ok(());
                    }
                    return Err(ProtocolError::InvalidCompressedData);
                }
            }
        }

        /// Ends a compressed message (feeds the implicit tail).
        pub(crate) fn finish_message(
            &mut self,
            out: &mut Vec<u8>,
            limit: usize,
        ) -> Result<(), ProtocolError> {
            // After a final block the stream is over: no tail to feed.
            if !std::mem::take(&mut self.stream_ended) {
                self.decompress(&TAIL, out, limit)?;
                self.stream_ended = false;
            }
            if self.agreement.reset_decompressor {
                self.decompress = None;
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn agreement(bits: u8, reset: bool) -> Agreement {
            Agreement {
                reset_compressor: reset,
                reset_decompressor: reset,
                compress_window_bits: bits,
                level: 6,
                min_message_size: 0,
            }
        }

        #[test]
        fn rfc7692_hello_example() {
            // RFC 7692 7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
            let mut c = Codec::new(agreement(15, false));
            let mut out = Vec::new();
            c.compress(b"Hello", &mut out);
            let mut plain = Vec::new();
            c.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut plain, 100)
                .unwrap();
            c.finish_message(&mut plain, 100).unwrap();
            assert_eq!(plain, b"Hello");
        }

        /// Found by the ws_frames fuzz target: data after a final block
        /// (BFINAL) was rejected when it came in the same read, but
        /// inflated as a new stream when it came in a later one.
        #[test]
        fn data_after_a_final_block_fails_however_it_is_cut() {
            // "a" as a final fixed-Huffman block, then "Hello" (RFC 7692
            // 7.2.3.1) as if a second stream.
            let mut one_final = Codec::new(agreement(15, false));
            let mut out = Vec::new();
            one_final
                .decompress(&[0x4b, 0x04, 0x00], &mut out, 100)
                .unwrap();
            one_final.finish_message(&mut out, 100).unwrap();
            assert_eq!(out, b"a");
            let payload = [0x4b, 0x04, 0x00, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
            for cut in 0..=payload.len() {
                let mut c = Codec::new(agreement(15, false));
                let mut out = Vec::new();
                let (a, b) = payload.split_at(cut);
                let result = c
                    .decompress(a, &mut out, 100)
                    .and_then(|()| c.decompress(b, &mut out, 100))
                    .and_then(|()| c.finish_message(&mut out, 100));
                assert_eq!(
                    result,
                    Err(ProtocolError::InvalidCompressedData),
                    "cut at {cut}"
                );
            }
        }

        #[test]
        fn round_trips_with_every_window_and_context_mode() {
            for bits in 8..=15 {
                for reset in [false, true] {
                    let mut tx = Codec::new(agreement(bits, reset));
                    let mut rx = Codec::new(agreement(bits, reset));
                    for i in 0..5 {
                        let msg: Vec<u8> = format!("message {i} ").repeat(200 + i).into_bytes();
                        let mut wire = Vec::new();
                        tx.compress(&msg, &mut wire);
                        let mut plain = Vec::new();
                        for piece in wire.chunks(7) {
                            rx.decompress(piece, &mut plain, 1 << 20).unwrap();
                        }
                        rx.finish_message(&mut plain, 1 << 20).unwrap();
                        assert_eq!(plain, msg, "bits {bits} reset {reset}");
                    }
                }
            }
        }

        #[test]
        fn state_is_allocated_on_first_use_and_freed_without_context_takeover() {
            for reset in [false, true] {
                let mut tx = Codec::new(agreement(15, reset));
                let mut rx = Codec::new(agreement(15, reset));
                assert!(!tx.has_compressor() && !tx.has_decompressor());
                assert!(!rx.has_compressor() && !rx.has_decompressor());
                for i in 0..3 {
                    let msg = format!("message {i} ").repeat(100).into_bytes();
                    let mut wire = Vec::new();
                    tx.compress(&msg, &mut wire);
                    // Only the direction used is allocated.
                    assert!(!tx.has_decompressor());
                    assert_eq!(tx.has_compressor(), !reset, "reset {reset}");
                    let mut plain = Vec::new();
                    rx.decompress(&wire, &mut plain, 1 << 20).unwrap();
                    assert!(rx.has_decompressor(), "allocated while a message arrives");
                    rx.finish_message(&mut plain, 1 << 20).unwrap();
                    assert!(!rx.has_compressor());
                    assert_eq!(rx.has_decompressor(), !reset, "reset {reset}");
                    assert_eq!(plain, msg);
                }
            }
        }

        #[test]
        fn context_takeover_shrinks_repeated_messages() {
            // With context takeover the second copy refers back to the
            // first: the state must survive between messages.
            let msg = b"a message that repeats itself across messages, 0123456789".repeat(4);
            let mut tx = Codec::new(agreement(15, false));
            let (mut first, mut second) = (Vec::new(), Vec::new());
            tx.compress(&msg, &mut first);
            tx.compress(&msg, &mut second);
            assert!(
                second.len() * 2 < first.len(),
                "{} vs {}",
                second.len(),
                first.len()
            );
            let mut rx = Codec::new(agreement(15, false));
            for wire in [&first, &second] {
                let mut plain = Vec::new();
                rx.decompress(wire, &mut plain, 1 << 20).unwrap();
                rx.finish_message(&mut plain, 1 << 20).unwrap();
                assert_eq!(plain, msg);
            }
        }

        #[test]
        fn decompression_bomb_is_bounded() {
            let mut tx = Codec::new(agreement(15, false));
            let mut wire = Vec::new();
            tx.compress(&vec![0u8; 10 << 20], &mut wire);
            assert!(wire.len() < 20_000);
            let mut rx = Codec::new(agreement(15, false));
            let mut plain = Vec::new();
            let err = rx.decompress(&wire, &mut plain, 1 << 20).unwrap_err();
            assert_eq!(err, ProtocolError::MessageTooBig { limit: 1 << 20 });
            assert!(plain.capacity() < (2 << 20), "memory stays near the limit");
        }

        #[test]
        fn garbage_is_invalid_data() {
            let mut rx = Codec::new(agreement(15, false));
            let mut plain = Vec::new();
            let r = rx
                .decompress(&[0xff, 0xff, 0xff, 0xff], &mut plain, 1000)
                .and_then(|()| rx.finish_message(&mut plain, 1000));
            assert_eq!(r, Err(ProtocolError::InvalidCompressedData));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::parse_extensions;

    fn offers(v: &str) -> Vec<ExtensionElement> {
        parse_extensions(&[("Sec-WebSocket-Extensions".into(), v.into())])
    }

    #[test]
    fn server_takes_first_valid_offer() {
        let cfg = DeflateConfig::default();
        let (a, resp) = server_accept(
            &offers("permessage-deflate; foo, permessage-deflate; server_max_window_bits=10"),
            &cfg,
        )
        .unwrap();
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(a.compress_window_bits, 10);
    }

    #[test]
    fn server_declines_invalid_offers() {
        let cfg = DeflateConfig::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert!(server_accept(&offers(bad), &cfg).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_honours_no_context_takeover_and_client_bits() {
        let cfg = DeflateConfig {
            client_max_window_bits: Some(12),
            ..DeflateConfig::default()
        };
        let (a, resp) = server_accept(
            &offers("permessage-deflate; server_no_context_takeover; client_max_window_bits"),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"
        );
        assert!(a.reset_compressor);
        assert!(!a.reset_decompressor);
    }

    #[test]
    fn client_offer_and_check() {
        let cfg = DeflateConfig {
            server_max_window_bits: Some(10),
            ..DeflateConfig::default()
        };
        assert_eq!(
            client_offer(&cfg),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        );
        let a = client_check(
            &offers("permessage-deflate; server_max_window_bits=9; client_max_window_bits=11"),
            &cfg,
        )
        .unwrap();
        assert_eq!(a.compress_window_bits, 11);
        assert!(
            client_check(
                &offers("permessage-deflate; server_max_window_bits=12"),
                &cfg
            )
            .is_err()
        );
        assert!(client_check(&offers("permessage-deflate; client_max_window_bits"), &cfg).is_err());
        assert!(client_check(&offers("permessage-deflate; bogus"), &cfg).is_err());
    }
}
