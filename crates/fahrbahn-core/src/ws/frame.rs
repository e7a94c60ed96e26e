//! Frame headers (RFC 6455 section 5.2): parsing and writing.

use super::error::ProtocolError;
use super::mask::mask_extend;

/// Frame opcodes defined by RFC 6455.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    pub(crate) fn from_u8(op: u8) -> Result<Self, ProtocolError> {
        Ok(match op {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    pub(crate) fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    pub(crate) fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) fin: bool,
    /// RSV1..RSV3 as the three low bits (RSV1 = 0b100).
    pub(crate) rsv: u8,
    pub(crate) opcode: OpCode,
    pub(crate) mask: Option<[u8; 4]>,
    pub(crate) payload_len: u64,
}

/// The longest possible header: 2 + 8 (length) + 4 (mask).
pub(crate) const MAX_HEADER_LEN: usize = 14;

/// Parses a header at the start of `buf`. `Ok(None)` means more bytes are
/// needed; on success returns the header and its length in bytes.
pub(crate) fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if buf.len() < need {
        return Ok(None);
    }
    let payload_len = match ext {
        0 => u64::from(len7),
        2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        _ => {
            let v = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if v >> 63 != 0 {
                return Err(ProtocolError::InvalidLength);
            }
            v
        }
    };
    let mask = masked.then(|| {
        let at = 2 + ext;
        [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
    });
    let opcode = OpCode::from_u8(b0 & 0x0F)?;
    Ok(Some((
        FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode,
            mask,
            payload_len,
        },
        need,
    )))
}

/// Appends a whole frame (header and payload, masked when `mask` is given)
/// to `out`.
pub(crate) fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.reserve(MAX_HEADER_LEN + payload.len());
    write_header(out, fin, rsv1, opcode, mask, payload.len());
    match mask {
        Some(key) => {
            mask_extend(out, payload, key, 0);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Appends a frame header to `out`.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    len: usize,
) {
    let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.as_u8();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.reserve(MAX_HEADER_LEN);
    out.push(b0);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::mask::apply_mask;

    #[test]
    fn rfc_examples_parse() {
        // RFC 6455 5.7: single-frame unmasked text "Hello".
        let (h, n) = parse_header(&[0x81, 0x05, 0x48]).unwrap().unwrap();
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.mask, None);
        // Masked "Hello".
        let (h, n) = parse_header(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d])
            .unwrap()
            .unwrap();
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        // 256 bytes binary in a single unmasked frame: 0x82 0x7E 0x0100.
        let (h, n) = parse_header(&[0x82, 0x7E, 0x01, 0x00]).unwrap().unwrap();
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        // 64 KiB: 0x82 0x7F 0x0000000000010000.
        let (h, n) = parse_header(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
        // Unmasked ping "Hello": 0x89 0x05.
        let (h, _) = parse_header(&[0x89, 0x05]).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Ping);
    }

    #[test]
    fn incomplete_headers_need_more() {
        assert_eq!(parse_header(&[]), Ok(None));
        assert_eq!(parse_header(&[0x81]), Ok(None));
        assert_eq!(parse_header(&[0x81, 0xFE, 0x00]), Ok(None));
        assert_eq!(parse_header(&[0x81, 0x85, 1, 2, 3]), Ok(None));
    }

    #[test]
    fn bad_headers_are_errors() {
        assert_eq!(
            parse_header(&[0x83, 0x00]),
            Err(ProtocolError::UnknownOpcode(3))
        );
        assert_eq!(
            parse_header(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn reserved_bits_are_reported() {
        let (h, _) = parse_header(&[0xF1, 0x00]).unwrap().unwrap();
        assert_eq!(h.rsv, 0b111);
    }

    #[test]
    fn write_then_parse_round_trips_all_length_forms() {
        for len in [0usize, 125, 126, 65535, 65536, 70000] {
            let payload = vec![0xAB; len];
            let mut out = Vec::new();
            write_frame(
                &mut out,
                true,
                false,
                OpCode::Binary,
                Some([1, 2, 3, 4]),
                &payload,
            );
            let (h, n) = parse_header(&out).unwrap().unwrap();
            assert_eq!(h.payload_len as usize, len);
            let mut body = out[n..].to_vec();
            apply_mask(&mut body, h.mask.unwrap(), 0);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn writes_rfc_hello() {
        let mut out = Vec::new();
        write_frame(
            &mut out,
            true,
            false,
            OpCode::Text,
            Some([0x37, 0xfa, 0x21, 0x3d]),
            b"Hello",
        );
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }
}
