//! The attacker's side of the wire, written by hand on blocking std
//! sockets: the client half of the WebSocket handshake and framing, the
//! RawSocket handshake and framing, and WAMP messages in JSON, MessagePack
//! and CBOR (only what the attacks send).
//!
//! This is deliberately not Fahrbahn's own code: an attacker does not play
//! by the rules of our state machines (it never reads, it floods, it
//! stops in the middle of a handshake), and the probe must keep working
//! even if our client had the very bug an attack shows.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a connect or a handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A WAMP serializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serializer {
    Json,
    MsgPack,
    Cbor,
}

impl Serializer {
    #[cfg(test)]
    pub(crate) const ALL: [Self; 3] = [Self::Json, Self::MsgPack, Self::Cbor];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::MsgPack => "msgpack",
            Self::Cbor => "cbor",
        }
    }

    /// The WebSocket subprotocol.
    fn subprotocol(self) -> String {
        format!("wamp.2.{}", self.name())
    }

    /// The RawSocket serializer number.
    fn rawsocket_id(self) -> u8 {
        match self {
            Self::Json => 1,
            Self::MsgPack => 2,
            Self::Cbor => 3,
        }
    }

    /// Encodes a WAMP message.
    pub(crate) fn encode(self, message: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Json => out = serde_json::to_vec(message).unwrap_or_default(),
            Self::MsgPack => msgpack(message, &mut out),
            Self::Cbor => cbor(message, &mut out),
        }
        out
    }

    /// Encodes the WAMP message `head` with one more element appended: a
    /// list of `n` zeros (the cheapest value to send, the dearest to
    /// decode into a tree).
    pub(crate) fn encode_with_zeros(self, head: &[Value], n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * 2 + 64);
        match self {
            Self::Json => {
                let mut text = serde_json::to_string(head).unwrap_or_default();
                text.pop(); // the closing `]`
                text.push_str(",[");
                for i in 0..n {
                    text.push_str(if i == 0 { "0" } else { ",0" });
                }
                text.push_str("]]");
                out = text.into_bytes();
            }
            Self::MsgPack => {
                msgpack_header(&mut out, 0x90, 0xdc, head.len() + 1);
                for value in head {
                    msgpack(value, &mut out);
                }
                msgpack_header(&mut out, 0x90, 0xdc, n);
                out.resize(out.len() + n, 0);
            }
            Self::Cbor => {
                cbor_header(&mut out, 4, (head.len() + 1) as u64);
                for value in head {
                    cbor(value, &mut out);
                }
                cbor_header(&mut out, 4, n as u64);
                out.resize(out.len() + n, 0);
            }
        }
        out
    }

    /// The type code of an encoded WAMP message (its first element), as
    /// far as the attacks need it (codes below 256).
    pub(crate) fn message_type(self, bytes: &[u8]) -> Option<u64> {
        match self {
            Self::Json => serde_json::from_slice::<Value>(bytes)
                .ok()?
                .get(0)?
                .as_u64(),
            Self::MsgPack => {
                let skip = match *bytes.first()? {
                    0x90..=0x9f => 1,
                    0xdc => 3,
                    0xdd => 5,
                    _ => return None,
                };
                match *bytes.get(skip)? {
                    b @ 0..=0x7f => Some(u64::from(b)),
                    0xcc => bytes.get(skip + 1).map(|b| u64::from(*b)),
                    _ => None,
                }
            }
            Self::Cbor => {
                let skip = match *bytes.first()? {
                    0x80..=0x97 => 1,
                    0x98 => 2,
                    0x99 => 3,
                    0x9a => 5,
                    _ => return None,
                };
                match *bytes.get(skip)? {
                    b @ 0..=0x17 => Some(u64::from(b)),
                    0x18 => bytes.get(skip + 1).map(|b| u64::from(*b)),
                    _ => None,
                }
            }
        }
    }
}

fn msgpack_header(out: &mut Vec<u8>, fix: u8, wide: u8, n: usize) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(wide);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn msgpack(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u < 128 {
                    out.push(u as u8);
                } else {
                    out.push(0xcf);
                    out.extend_from_slice(&u.to_be_bytes());
                }
            } else if let Some(i) = n.as_i64() {
                out.push(0xd3);
                out.extend_from_slice(&i.to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        }
        Value::String(s) => {
            if s.len() < 32 {
                out.push(0xa0 | s.len() as u8);
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            msgpack_header(out, 0x90, 0xdc, items.len());
            items.iter().for_each(|item| msgpack(item, out));
        }
        Value::Object(map) => {
            msgpack_header(out, 0x80, 0xde, map.len());
            for (key, item) in map {
                msgpack(&Value::String(key.clone()), out);
                msgpack(item, out);
            }
        }
    }
}

fn cbor_header(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[major | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn cbor(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                cbor_header(out, 0, u);
            } else if let Some(i) = n.as_i64() {
                cbor_header(out, 1, (-1 - i) as u64);
            } else {
                out.push(0xfb);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        }
        Value::String(s) => {
            cbor_header(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            cbor_header(out, 4, items.len() as u64);
            items.iter().for_each(|item| cbor(item, out));
        }
        Value::Object(map) => {
            cbor_header(out, 5, map.len() as u64);
            for (key, item) in map {
                cbor(&Value::String(key.clone()), out);
                cbor(item, out);
            }
        }
    }
}

/// A transport to connect with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// WebSocket on the port, at the path.
    WebSocket,
    /// RawSocket on the port.
    RawSocket,
}

/// How to open a connection.
#[derive(Debug, Clone)]
pub(crate) struct Dial {
    pub(crate) port: u16,
    pub(crate) transport: Transport,
    /// WebSocket: the request path.
    pub(crate) path: &'static str,
    /// WAMP serializer (`None`: a WebSocket without subprotocol, for the
    /// echo server).
    pub(crate) serializer: Option<Serializer>,
    /// WebSocket: offer permessage-deflate without context takeover.
    pub(crate) deflate: bool,
    /// RawSocket: the exponent of the largest message we accept, 2^(9+n).
    pub(crate) max_len_exponent: u8,
}

impl Dial {
    /// A WAMP connection with `serializer` over `transport`.
    pub(crate) fn wamp(port: u16, transport: Transport, serializer: Serializer) -> Self {
        Self {
            port,
            transport,
            path: "/ws",
            serializer: Some(serializer),
            deflate: false,
            max_len_exponent: 15,
        }
    }

    /// A plain WebSocket to the echo server.
    pub(crate) fn echo(port: u16) -> Self {
        Self {
            port,
            transport: Transport::WebSocket,
            path: "/",
            serializer: None,
            deflate: false,
            max_len_exponent: 15,
        }
    }
}

/// A TCP connection to 127.0.0.1:`port`.
pub(crate) fn tcp(port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        CONNECT_TIMEOUT,
    )?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One client connection, WebSocket or RawSocket, after its handshake.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    transport: Transport,
    serializer: Serializer,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    /// A fragmented WebSocket message being assembled.
    partial: Vec<u8>,
    /// Whether the server accepted permessage-deflate.
    pub(crate) deflate: bool,
}

/// The WebSocket opening request of `dial`.
pub(crate) fn ws_request(dial: &Dial) -> String {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        dial.path, dial.port
    );
    if let Some(serializer) = dial.serializer {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            serializer.subprotocol()
        ));
    }
    if dial.deflate {
        request.push_str(
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; \
             server_no_context_takeover\r\n",
        );
    }
    request.push_str("\r\n");
    request
}

impl Conn {
    /// Connects and does the handshake.
    pub(crate) fn open(dial: &Dial) -> io::Result<Self> {
        let stream = tcp(dial.port)?;
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        let mut conn = Self {
            stream,
            transport: dial.transport,
            serializer: dial.serializer.unwrap_or(Serializer::Json),
            buf: Vec::new(),
            partial: Vec::new(),
            deflate: false,
        };
        match dial.transport {
            Transport::WebSocket => {
                conn.stream.write_all(ws_request(dial).as_bytes())?;
                let end = loop {
                    if let Some(end) = find(&conn.buf, b"\r\n\r\n") {
                        break end + 4;
                    }
                    conn.fill()?;
                };
                let head = String::from_utf8_lossy(&conn.buf[..end]).into_owned();
                conn.buf.drain(..end);
                conn.deflate = head.to_ascii_lowercase().contains("permessage-deflate");
                if !head.starts_with("HTTP/1.1 101") {
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    return Err(io::Error::other(format!("handshake refused: {line}")));
                }
            }
            Transport::RawSocket => {
                let serializer = dial.serializer.unwrap_or(Serializer::Json);
                conn.stream.write_all(&[
                    0x7f,
                    (dial.max_len_exponent << 4) | serializer.rawsocket_id(),
                    0,
                    0,
                ])?;
                while conn.buf.len() < 4 {
                    conn.fill()?;
                }
                let reply: Vec<u8> = conn.buf.drain(..4).collect();
                if reply[0] != 0x7f || reply[1] & 0x0f == 0 {
                    return Err(io::Error::other(format!(
                        "rawsocket handshake refused: {reply:02x?}"
                    )));
                }
            }
        }
        Ok(conn)
    }

    /// Connects, does the handshake and joins realm `realm` (JSON only
    /// reads the WELCOME; the others check its type code).
    pub(crate) fn join(dial: &Dial, realm: &str) -> io::Result<Self> {
        let mut conn = Self::open(dial)?;
        conn.send(&hello(realm))?;
        let welcome = conn.recv_raw(Instant::now() + CONNECT_TIMEOUT)?;
        match conn.serializer.message_type(&welcome) {
            Some(WELCOME) => Ok(conn),
            other => Err(io::Error::other(format!(
                "HELLO answered with message type {other:?}"
            ))),
        }
    }

    /// The serializer of this connection.
    pub(crate) fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Reads more bytes into the buffer.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 64 << 10];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends a WAMP message (or an echo payload).
    pub(crate) fn send(&mut self, message: &Value) -> io::Result<()> {
        let bytes = self.serializer.encode(message);
        self.send_bytes(&bytes)
    }

    /// Sends one encoded message as one frame.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        let frame = self.frame(bytes);
        self.stream.write_all(&frame)
    }

    /// One data frame carrying `bytes` (text for JSON, binary otherwise).
    pub(crate) fn frame(&self, bytes: &[u8]) -> Vec<u8> {
        match self.transport {
            Transport::WebSocket => {
                let opcode = if self.serializer == Serializer::Json {
                    1
                } else {
                    2
                };
                ws_frame(opcode, bytes)
            }
            Transport::RawSocket => rs_frame(0, bytes),
        }
    }

    /// A ping frame (WebSocket ping or RawSocket PING) with `payload`.
    pub(crate) fn ping_frame(&self, payload: &[u8]) -> Vec<u8> {
        match self.transport {
            Transport::WebSocket => ws_frame(9, payload),
            Transport::RawSocket => rs_frame(1, payload),
        }
    }

    /// Receives the next message and decodes it as JSON.
    pub(crate) fn recv(&mut self, deadline: Instant) -> io::Result<Value> {
        let bytes = self.recv_raw(deadline)?;
        serde_json::from_slice(&bytes).map_err(io::Error::other)
    }

    /// Receives the next message's bytes, answering pings on the way;
    /// `TimedOut` at `deadline` (nothing read so far is lost).
    pub(crate) fn recv_raw(&mut self, deadline: Instant) -> io::Result<Vec<u8>> {
        loop {
            if let Some(message) = self.parse()? {
                return Ok(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.fill() {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ErrorKind::TimedOut.into());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A complete message from the buffer, if there is one.
    fn parse(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.transport {
                Transport::RawSocket => {
                    if self.buf.len() < 4 {
                        return Ok(None);
                    }
                    let len = usize::from(self.buf[1]) << 16
                        | usize::from(self.buf[2]) << 8
                        | usize::from(self.buf[3]);
                    if self.buf.len() < 4 + len {
                        return Ok(None);
                    }
                    let kind = self.buf[0] & 0x07;
                    let payload: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
                    match kind {
                        0 => return Ok(Some(payload)),
                        1 => self.stream.write_all(&rs_frame(2, &payload))?,
                        _ => {}
                    }
                }
                Transport::WebSocket => {
                    let Some((fin, opcode, start, len)) = ws_header(&self.buf) else {
                        return Ok(None);
                    };
                    if self.buf.len() < start + len {
                        return Ok(None);
                    }
                    let payload: Vec<u8> = self.buf.drain(..start + len).skip(start).collect();
                    match opcode {
                        0..=2 => {
                            self.partial.extend_from_slice(&payload);
                            if fin {
                                return Ok(Some(std::mem::take(&mut self.partial)));
                            }
                        }
                        8 => {
                            let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                            return Err(io::Error::new(
                                ErrorKind::ConnectionAborted,
                                format!("closed by the server ({code:?})"),
                            ));
                        }
                        9 => self.stream.write_all(&ws_frame(10, &payload))?,
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Where `needle` starts in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The header of a server (unmasked) WebSocket frame: fin, opcode, where
/// the payload starts, its length.
fn ws_header(buf: &[u8]) -> Option<(bool, u8, usize, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let (start, len) = match b1 & 0x7f {
        126 => (
            4,
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (10, usize::try_from(u64::from_be_bytes(bytes)).ok()?)
        }
        n => (2, usize::from(n)),
    };
    let start = if b1 & 0x80 != 0 { start + 4 } else { start };
    Some((b0 & 0x80 != 0, b0 & 0x0f, start, len))
}

/// A masked client WebSocket frame (FIN set).
pub(crate) fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// A RawSocket frame of `kind` (0 message, 1 PING, 2 PONG).
pub(crate) fn rs_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    frame.extend_from_slice(payload);
    frame
}

pub(crate) const WELCOME: u64 = 2;
pub(crate) const ERROR: u64 = 8;
pub(crate) const SUBSCRIBED: u64 = 33;
pub(crate) const RESULT: u64 = 50;
pub(crate) const REGISTERED: u64 = 65;
pub(crate) const INVOCATION: u64 = 68;

/// HELLO with every client role.
pub(crate) fn hello(realm: &str) -> Value {
    json!([1, realm, {"roles": {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}}])
}

/// SUBSCRIBE to `topic` with `match` policy (`None`: exact).
pub(crate) fn subscribe(request: u64, topic: &str, policy: Option<&str>) -> Value {
    match policy {
        Some(policy) => json!([32, request, {"match": policy}, topic]),
        None => json!([32, request, {}, topic]),
    }
}

/// REGISTER `procedure`.
pub(crate) fn register(request: u64, procedure: &str) -> Value {
    json!([64, request, {}, procedure])
}

/// CALL `procedure` with `args`.
pub(crate) fn call(request: u64, procedure: &str, args: Value) -> Value {
    json!([48, request, {}, procedure, args])
}

/// PUBLISH to `topic` with `args` (no acknowledgement).
pub(crate) fn publish(request: u64, topic: &str, args: Value) -> Value {
    json!([16, request, {}, topic, args])
}

/// The type code and request id of a JSON message.
pub(crate) fn kind(message: &Value) -> (u64, u64) {
    let code = message.get(0).and_then(Value::as_u64).unwrap_or(0);
    let request = if code == ERROR {
        message.get(2)
    } else {
        message.get(1)
    }
    .and_then(Value::as_u64)
    .unwrap_or(0);
    (code, request)
}

/// Writes as much of `pending` as the socket takes right now (the stream
/// is non-blocking); returns how much was written or an error that ends
/// the connection.
pub(crate) fn write_some(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    while !pending.is_empty() {
        match stream.write(pending) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.drain(..n);
                total += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_of_each_serializer() {
        let message = json!([36, 1, 2, {}, [1, "a"]]);
        for serializer in Serializer::ALL {
            let bytes = serializer.encode(&message);
            assert_eq!(serializer.message_type(&bytes), Some(36), "{serializer:?}");
            let big =
                serializer.encode_with_zeros(&[json!(16), json!(1), json!({}), json!("t")], 70_000);
            assert_eq!(serializer.message_type(&big), Some(16), "{serializer:?}");
        }
        let json = Serializer::Json.encode_with_zeros(&[json!(16), json!("t")], 3);
        assert_eq!(json, br#"[16,"t",[0,0,0]]"#);
    }

    #[test]
    fn cbor_and_msgpack_of_known_values() {
        assert_eq!(
            Serializer::Cbor.encode(&json!([1, "ab", {}])),
            [0x83, 1, 0x62, b'a', b'b', 0xa0]
        );
        assert_eq!(
            Serializer::MsgPack.encode(&json!([1, "ab", {}])),
            [0x93, 1, 0xa2, b'a', b'b', 0x80]
        );
        assert_eq!(Serializer::Cbor.encode(&json!(1000)), [0x19, 0x03, 0xe8]);
    }

    #[test]
    fn ws_frames_round_trip_their_header() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let frame = ws_frame(2, &vec![7; len]);
            let (fin, opcode, start, n) = ws_header(&frame).unwrap();
            assert!(fin);
            assert_eq!((opcode, n, frame.len()), (2, len, start + len));
        }
    }
}
