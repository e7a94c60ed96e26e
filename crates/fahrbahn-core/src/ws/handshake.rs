//! The opening handshake (RFC 6455 section 4): HTTP/1.1 Upgrade request and
//! response, built and parsed with `httparse`.

use base64::Engine as _;

use super::error::HandshakeError;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADERS: usize = 64;

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`.
///
/// ```
/// use fahrbahn_core::ws::accept_key;
/// // RFC 6455 section 1.3.
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// A parsed HTTP request or response head, as seen by the application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeRequest {
    /// The request target (path and query).
    pub path: String,
    /// All request headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
}

impl HandshakeRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn subprotocols(&self) -> Vec<&str> {
        tokens(&self.headers, "sec-websocket-protocol").collect()
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// All comma-separated tokens of every `name` header, trimmed.
pub(crate) fn tokens<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

fn collect_headers(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect()
}

fn http_error(e: httparse::Error) -> HandshakeError {
    HandshakeError::MalformedHttp(e.to_string())
}

/// Checks the head size limit for an incomplete head.
fn check_partial(buf: &[u8], limit: usize) -> Result<(), HandshakeError> {
    if buf.len() > limit {
        Err(HandshakeError::HeadTooLarge { limit })
    } else {
        Ok(())
    }
}

/// A request head that passed the WebSocket checks.
pub(crate) struct ParsedRequest {
    pub(crate) request: HandshakeRequest,
    pub(crate) key: String,
}

/// Parses and checks a client's upgrade request. `Ok(None)`: incomplete.
/// On success also returns the head length.
pub(crate) fn parse_request(
    buf: &[u8],
    limit: usize,
) -> Result<Option<(ParsedRequest, usize)>, HandshakeError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let n = match req.parse(buf).map_err(http_error)? {
        httparse::Status::Partial => return check_partial(buf, limit).map(|()| None),
        httparse::Status::Complete(n) => n,
    };
    if n > limit {
        return Err(HandshakeError::HeadTooLarge { limit });
    }
    if req.method != Some("GET") {
        return Err(HandshakeError::InvalidRequest("method is not GET"));
    }
    if req.version != Some(1) {
        return Err(HandshakeError::InvalidRequest("HTTP version is not 1.1"));
    }
    let headers = collect_headers(req.headers);
    if header(&headers, "host").is_none() {
        return Err(HandshakeError::InvalidRequest("missing Host header"));
    }
    if !has_token(&headers, "upgrade", "websocket") {
        return Err(HandshakeError::InvalidRequest("missing Upgrade: websocket"));
    }
    if !has_token(&headers, "connection", "upgrade") {
        return Err(HandshakeError::InvalidRequest(
            "missing Connection: Upgrade",
        ));
    }
    if header(&headers, "sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = header(&headers, "sec-websocket-key")
        .ok_or(HandshakeError::InvalidRequest("missing Sec-WebSocket-Key"))?
        .to_owned();
    let key_ok = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .is_ok_and(|k| k.len() == 16);
    if !key_ok {
        return Err(HandshakeError::InvalidRequest(
            "Sec-WebSocket-Key is not 16 bytes of base64",
        ));
    }
    let request = HandshakeRequest {
        path: req.path.unwrap_or("/").to_owned(),
        headers,
    };
    Ok(Some((ParsedRequest { request, key }, n)))
}

/// A parsed server response head.
pub(crate) struct ParsedResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
}

/// Parses a server's response head. `Ok(None)`: incomplete.
pub(crate) fn parse_response(
    buf: &[u8],
    limit: usize,
) -> Result<Option<(ParsedResponse, usize)>, HandshakeError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    let n = match resp.parse(buf).map_err(http_error)? {
        httparse::Status::Partial => return check_partial(buf, limit).map(|()| None),
        httparse::Status::Complete(n) => n,
    };
    if n > limit {
        return Err(HandshakeError::HeadTooLarge { limit });
    }
    let status = resp.code.unwrap_or(0);
    let headers = collect_headers(resp.headers);
    Ok(Some((ParsedResponse { status, headers }, n)))
}

/// Checks the parts of a 101 response that do not depend on negotiation.
pub(crate) fn check_response(resp: &ParsedResponse, key: &str) -> Result<(), HandshakeError> {
    if resp.status != 101 {
        return Err(HandshakeError::UnexpectedStatus(resp.status));
    }
    if !has_token(&resp.headers, "upgrade", "websocket") {
        return Err(HandshakeError::InvalidResponse(
            "missing Upgrade: websocket",
        ));
    }
    if !has_token(&resp.headers, "connection", "upgrade") {
        return Err(HandshakeError::InvalidResponse(
            "missing Connection: Upgrade",
        ));
    }
    match header(&resp.headers, "sec-websocket-accept") {
        Some(v) if v == accept_key(key) => Ok(()),
        Some(_) => Err(HandshakeError::AcceptMismatch),
        None => Err(HandshakeError::InvalidResponse(
            "missing Sec-WebSocket-Accept",
        )),
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes a client upgrade request.
pub(crate) struct RequestHead<'a> {
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) key: &'a str,
    pub(crate) origin: Option<&'a str>,
    pub(crate) subprotocols: &'a [String],
    pub(crate) extensions: Option<&'a str>,
    pub(crate) headers: &'a [(String, String)],
}

impl RequestHead<'_> {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let path = if self.path.is_empty() { "/" } else { self.path };
        out.extend_from_slice(format!("GET {path} HTTP/1.1\r\n").as_bytes());
        push_header(out, "Host", self.host);
        push_header(out, "Upgrade", "websocket");
        push_header(out, "Connection", "Upgrade");
        push_header(out, "Sec-WebSocket-Key", self.key);
        push_header(out, "Sec-WebSocket-Version", "13");
        if let Some(origin) = self.origin {
            push_header(out, "Origin", origin);
        }
        if !self.subprotocols.is_empty() {
            push_header(out, "Sec-WebSocket-Protocol", &self.subprotocols.join(", "));
        }
        if let Some(ext) = self.extensions {
            push_header(out, "Sec-WebSocket-Extensions", ext);
        }
        for (name, value) in self.headers {
            push_header(out, name, value);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes a `101 Switching Protocols` response.
pub(crate) fn write_accept(
    out: &mut Vec<u8>,
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    headers: &[(String, String)],
) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    push_header(out, "Upgrade", "websocket");
    push_header(out, "Connection", "Upgrade");
    push_header(out, "Sec-WebSocket-Accept", &accept_key(key));
    if let Some(p) = subprotocol {
        push_header(out, "Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        push_header(out, "Sec-WebSocket-Extensions", e);
    }
    for (name, value) in headers {
        push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes an HTTP error response that refuses the upgrade.
pub(crate) fn write_reject(out: &mut Vec<u8>, status: u16, body: &str) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    if status == 426 {
        push_header(out, "Sec-WebSocket-Version", "13");
    }
    push_header(out, "Connection", "close");
    push_header(out, "Content-Type", "text/plain; charset=utf-8");
    push_header(out, "Content-Length", &body.len().to_string());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// One offer or response element of `Sec-WebSocket-Extensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtensionElement {
    pub(crate) name: String,
    pub(crate) params: Vec<(String, Option<String>)>,
}

/// Parses every `Sec-WebSocket-Extensions` header into elements, in order.
pub(crate) fn parse_extensions(headers: &[(String, String)]) -> Vec<ExtensionElement> {
    let mut out = Vec::new();
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
    {
        for element in value.split(',') {
            let mut parts = element.split(';').map(str::trim);
            let Some(name) = parts.next().filter(|n| !n.is_empty()) else {
                continue;
            };
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (
                        k.trim().to_ascii_lowercase(),
                        Some(v.trim().trim_matches('"').to_owned()),
                    ),
                    None => (p.to_ascii_lowercase(), None),
                })
                .collect();
            out.push(ExtensionElement {
                name: name.to_ascii_lowercase(),
                params,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn parses_rfc_request() {
        let (p, n) = parse_request(RFC_REQUEST, 4096).unwrap().unwrap();
        assert_eq!(n, RFC_REQUEST.len());
        assert_eq!(p.request.path, "/chat");
        assert_eq!(p.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(p.request.subprotocols(), ["chat", "superchat"]);
        assert_eq!(p.request.header("ORIGIN"), Some("http://example.com"));
    }

    #[test]
    fn partial_request_needs_more_and_respects_limit() {
        assert!(parse_request(&RFC_REQUEST[..40], 4096).unwrap().is_none());
        assert_eq!(
            parse_request(&RFC_REQUEST[..40], 20).err(),
            Some(HandshakeError::HeadTooLarge { limit: 20 })
        );
    }

    #[test]
    fn rejects_bad_requests() {
        let post = String::from_utf8_lossy(RFC_REQUEST).replace("GET", "POST");
        assert!(matches!(
            parse_request(post.as_bytes(), 4096),
            Err(HandshakeError::InvalidRequest(_))
        ));
        let v8 = String::from_utf8_lossy(RFC_REQUEST).replace("Version: 13", "Version: 8");
        assert_eq!(
            parse_request(v8.as_bytes(), 4096).err(),
            Some(HandshakeError::UnsupportedVersion)
        );
        let nokey = String::from_utf8_lossy(RFC_REQUEST).replace("dGhlIHNhbXBsZSBub25jZQ==", "abc");
        assert!(parse_request(nokey.as_bytes(), 4096).is_err());
        assert!(parse_request(b"\x00\x01garbage\r\n\r\n", 4096).is_err());
    }

    #[test]
    fn response_round_trip() {
        let mut out = Vec::new();
        write_accept(
            &mut out,
            "dGhlIHNhbXBsZSBub25jZQ==",
            Some("chat"),
            None,
            &[],
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        let (resp, n) = parse_response(&out, 4096).unwrap().unwrap();
        assert_eq!(n, out.len());
        check_response(&resp, "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        assert_eq!(
            check_response(&resp, "AAAAAAAAAAAAAAAAAAAAAA=="),
            Err(HandshakeError::AcceptMismatch)
        );
    }

    #[test]
    fn reject_response_has_status_and_length() {
        let mut out = Vec::new();
        write_reject(&mut out, 403, "go away");
        let (resp, n) = parse_response(&out, 4096).unwrap().unwrap();
        assert_eq!(resp.status, 403);
        assert_eq!(&out[n..], b"go away");
    }

    #[test]
    fn parses_extension_offers() {
        let headers = vec![
            (
                "Sec-WebSocket-Extensions".to_owned(),
                "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", permessage-deflate".to_owned(),
            ),
            ("sec-websocket-extensions".to_owned(), "x-foo".to_owned()),
        ];
        let ext = parse_extensions(&headers);
        assert_eq!(ext.len(), 3);
        assert_eq!(ext[0].name, "permessage-deflate");
        assert_eq!(
            ext[0].params,
            vec![
                ("client_max_window_bits".to_owned(), None),
                ("server_max_window_bits".to_owned(), Some("10".to_owned()))
            ]
        );
        assert!(ext[1].params.is_empty());
        assert_eq!(ext[2].name, "x-foo");
    }
}
