//! Echo benchmarks of Fahrbahn against other Rust WebSocket servers.
//!
//! Two programs, run by `cargo xtask bench`:
//! * `echo_server IMPL ADDR`: an echo server on a single-threaded runtime,
//!   for each implementation in [`SERVERS`],
//! * `loadgen`: a closed-loop load generator (N connections, each keeps one
//!   masked message in flight) that counts echoes per second over a fixed
//!   window after a warm-up.
//!
//! The lab that runs them (and `wamp_bench`, the WAMP client), measures and
//! writes the report is the light `bench-lab` crate (`bench/lab/`), which
//! also names the servers ([`SERVERS`], [`DEFLATE_SERVERS`]).
//!
//! This module holds the bits both share: the minimal WebSocket framing of
//! the load generator and of the hand-written `ceiling` server.

pub use bench_lab::matrix::{DEFLATE_LOAD, DEFLATE_SERVERS, SERVERS};

/// The load generator's permessage-deflate offer: no context takeover on
/// either side (soketto compresses every message on its own), default
/// windows.
pub const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// Runs a command line tool's `main` future on tokio's current-thread
/// runtime (one OS thread, so pinning bounds its share of the machine) in a
/// `LocalSet`; errors are printed and give exit status 1.
pub fn run_local<F, E>(main: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<std::process::ExitCode, E>>,
    E: std::fmt::Display,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match tokio::task::LocalSet::new().block_on(&runtime, main) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The WebSocket opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// The WebSocket opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// The WebSocket opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;

/// Appends a final frame header (FIN set, no RSV bits) for `len` payload
/// bytes; with `mask`, sets the mask bit and appends the key.
pub fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// XORs `data` with the masking key (RFC 6455 section 5.3).
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i];
    }
}

/// A whole masked client frame carrying `payload`.
pub fn masked_frame(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    write_header(&mut out, opcode, payload.len(), Some(key));
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
    out
}

/// The parsed fixed part of a frame header: `(fin, opcode, masked, len)`
/// from its first two bytes, plus how many extended length bytes follow.
pub fn parse_head(head: [u8; 2]) -> (bool, u8, bool, u8) {
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let len7 = head[1] & 0x7f;
    (fin, opcode, masked, len7)
}

/// The number of extended length bytes for a 7-bit length field.
pub fn extended_len_bytes(len7: u8) -> usize {
    match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// The payload length from the 7-bit field and its extended bytes.
pub fn payload_len(len7: u8, ext: &[u8]) -> u64 {
    match len7 {
        126 => u64::from(u16::from_be_bytes([ext[0], ext[1]])),
        127 => {
            let mut b = [0; 8];
            b.copy_from_slice(&ext[..8]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

/// The client's upgrade request for `host` (a fixed key: the load generator
/// checks the status only).
pub fn upgrade_request(host: &str) -> String {
    upgrade_request_with(host, None)
}

/// The upgrade request, with a `Sec-WebSocket-Extensions` header when
/// `extensions` is given.
pub fn upgrade_request_with(host: &str, extensions: Option<&str>) -> String {
    let extensions = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extensions}\r\n"
    )
}

/// A text payload of `len` bytes that compresses like real traffic: JSON
/// records with varying numbers.
pub fn json_payload(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 80);
    out.push(b'[');
    let mut i = 0u64;
    while out.len() < len {
        let value = i.wrapping_mul(2_654_435_761) % 100_000;
        out.extend_from_slice(
            format!(
                "{{\"id\":{i},\"sensor\":\"s-{}\",\"value\":{}.{},\"ok\":{}}},",
                i % 97,
                value / 100,
                value % 100,
                !i.is_multiple_of(3)
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// A message payload of `len` bytes: ASCII for text (valid UTF-8), a byte
/// pattern for binary.
pub fn payload(len: usize, text: bool) -> Vec<u8> {
    if text {
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    } else {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_round_trip_and_header_lengths() {
        for len in [0, 20, 125, 126, 1024, 65535, 65536] {
            let data = payload(len, false);
            let frame = masked_frame(OP_BINARY, &data, [1, 2, 3, 4]);
            let (fin, opcode, masked, len7) = parse_head([frame[0], frame[1]]);
            assert!(fin && masked);
            assert_eq!(opcode, OP_BINARY);
            let ext = extended_len_bytes(len7);
            assert_eq!(payload_len(len7, &frame[2..2 + ext]), len as u64);
            let mut body = frame[2 + ext + 4..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, data);
        }
    }
}
