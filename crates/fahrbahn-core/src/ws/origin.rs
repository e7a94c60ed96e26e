//! Which `Origin`s a WebSocket server accepts: the defence against
//! cross-site WebSocket hijacking (a web page in the user's browser
//! opening a WebSocket to a server the user can reach).

use std::fmt;

/// The origins a server accepts ([`ServerConfig::allowed_origins`](super::ServerConfig::allowed_origins)),
/// as Crossbar.io's `allowed_origins` option.
///
/// - Patterns match the whole `Origin` header, case-insensitively, as
///   sent or with its scheme's default port added (`https://a.example.com`
///   is also tried as `https://a.example.com:443`, so Crossbar.io-style
///   patterns with explicit ports work). `*`
///   stands for any run of characters without `/`: `https://*.example.com`
///   admits every subdomain of `example.com` over HTTPS,
///   `http://127.0.0.1:*` every port on 127.0.0.1. The pattern `*` alone
///   admits every origin, `null` included.
/// - A request without `Origin` is accepted: browsers always send one,
///   other clients (CLI tools, services) usually do not.
/// - The origin `null` (sandboxed frames, `file:` pages, some redirects)
///   is refused unless a pattern is `null` (or `*`).
///
/// A refused request gets HTTP 403.
///
/// ```
/// use fahrbahn_core::ws::AllowedOrigins;
/// let allowed = AllowedOrigins::new(["https://*.example.com", "http://127.0.0.1:*"]);
/// assert!(allowed.admits(Some("https://app.example.com")));
/// assert!(allowed.admits(Some("http://127.0.0.1:5173")));
/// assert!(allowed.admits(None));
/// assert!(!allowed.admits(Some("https://example.org")));
/// assert!(!allowed.admits(Some("https://evil.com/.example.com")));
/// assert!(!allowed.admits(Some("null")));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AllowedOrigins {
    patterns: Vec<String>,
}

impl AllowedOrigins {
    /// These patterns (no pattern: only requests without `Origin`).
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            patterns: patterns
                .into_iter()
                .map(|p| p.into().trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The patterns, lowercased.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a request with this `Origin` header (`None`: without one)
    /// is accepted.
    pub fn admits(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim().to_ascii_lowercase();
        // Also as `scheme://host:port` with the scheme's default port, so
        // that patterns written with it (as Crossbar.io needs them) match.
        let with_port = with_default_port(&origin);
        self.patterns.iter().any(|p| {
            p == "*"
                || glob(p.as_bytes(), origin.as_bytes())
                || with_port
                    .as_ref()
                    .is_some_and(|o| glob(p.as_bytes(), o.as_bytes()))
        })
    }
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.patterns).finish()
    }
}

/// `origin` with the default port of its scheme (`http` 80, `https` 443)
/// when it names none; `None` otherwise.
fn with_default_port(origin: &str) -> Option<String> {
    let (scheme, host) = origin.split_once("://")?;
    let port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    // An IPv6 literal's colons are inside brackets.
    let after_host = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    if after_host.contains(':') || host.is_empty() {
        return None;
    }
    Some(format!("{origin}:{port}"))
}

/// Whether `text` matches `pattern`, where `*` is any run of bytes other
/// than `/`. Iterative, with one backtracking point: linear in practice,
/// `O(pattern × text)` at worst (both are short header values).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and where in `text` its run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star.filter(|&(_, st)| text[st] != b'/') {
            // Let the star take one more byte (never a `/`).
            star = Some((sp, st + 1));
            p = sp + 1;
            t = st + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests take a base instant from the clock
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::Rng;
    use crate::ws::{Connection, Event, ServerConfig};

    /// A server with these allowed origins answers a handshake from
    /// `origin`: the status code of its response, and whether it opened.
    fn handshake(allowed: &[&str], origin: Option<&str>, defer: bool) -> (String, bool) {
        let now = Instant::now();
        let config = ServerConfig {
            allowed_origins: Some(AllowedOrigins::new(allowed.iter().copied())),
            defer_accept: defer,
            ..ServerConfig::default()
        };
        let mut conn = Connection::server(config, Rng::from_seed(1), now);
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        let request = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        );
        conn.handle_bytes(now, request.as_bytes());
        let mut requested = false;
        while let Some(event) = conn.poll_event() {
            if matches!(event, Event::Request(_)) {
                requested = true;
            }
        }
        let mut out = Vec::new();
        let _ = conn.poll_transmit(&mut out);
        let head = String::from_utf8_lossy(&out).into_owned();
        let status = head.split(' ').nth(1).unwrap_or("").to_owned();
        let opened = requested || status == "101";
        (status, opened)
    }

    #[test]
    fn servers_refuse_other_origins_before_accepting() {
        for defer in [false, true] {
            let (status, opened) = handshake(
                &["https://app.example.com"],
                Some("https://evil.org"),
                defer,
            );
            assert_eq!((status.as_str(), opened), ("403", false), "defer {defer}");
            let (status, opened) = handshake(
                &["https://app.example.com"],
                Some("https://app.example.com"),
                defer,
            );
            assert!(opened, "defer {defer}: {status}");
            let (_, opened) = handshake(&["https://app.example.com"], None, defer);
            assert!(opened, "defer {defer}");
        }
    }

    #[test]
    fn patterns() {
        let a = AllowedOrigins::new(["https://*.example.com", "http://localhost:*", "null"]);
        assert!(a.admits(Some("https://a.example.com")));
        assert!(a.admits(Some("https://a.b.example.com")));
        assert!(a.admits(Some("HTTPS://A.Example.COM")));
        assert!(!a.admits(Some("https://example.com")));
        assert!(!a.admits(Some("http://a.example.com")));
        assert!(!a.admits(Some("https://a.example.com.evil.org")));
        assert!(a.admits(Some("http://localhost:8080")));
        assert!(!a.admits(Some("http://localhost.evil.org:8080")));
        assert!(a.admits(Some("null")));
        assert!(a.admits(None));
        let exact = AllowedOrigins::new(["https://app.example.com"]);
        assert!(exact.admits(Some("https://app.example.com")));
        assert!(!exact.admits(Some("https://app.example.com:444")));
        assert!(!exact.admits(Some("null")));
        let any = AllowedOrigins::new(["*"]);
        assert!(any.admits(Some("null")));
        assert!(any.admits(Some("https://whatever.org")));
        // Patterns with the default port (as Crossbar.io needs them) match
        // origins without one, and the other way round.
        let ported = AllowedOrigins::new(["https://*.example.com:443", "http://[::1]:*"]);
        assert!(ported.admits(Some("https://app.example.com")));
        assert!(ported.admits(Some("https://app.example.com:443")));
        assert!(!ported.admits(Some("https://app.example.com:8443")));
        assert!(ported.admits(Some("http://[::1]")));
        assert!(ported.admits(Some("http://[::1]:8080")));
        assert!(
            AllowedOrigins::new(["https://a.example.com"]).admits(Some("https://a.example.com"))
        );
        assert!(
            !AllowedOrigins::new(["https://a.example.com"])
                .admits(Some("https://a.example.com:443"))
        );
        let none = AllowedOrigins::new(Vec::<String>::new());
        assert!(!none.admits(Some("http://127.0.0.1:8080")));
        assert!(none.admits(None));
    }

    #[test]
    fn glob_corner_cases() {
        assert!(glob(b"a*", b"a"));
        assert!(glob(b"*b", b"ab"));
        assert!(glob(b"a*b*c", b"aXbYbc"));
        assert!(!glob(b"a*c", b"a/c"));
        assert!(!glob(b"a*", b"a/"));
        assert!(glob(b"**", b"xy"));
        assert!(!glob(b"", b"x"));
        assert!(glob(b"", b""));
    }
}
