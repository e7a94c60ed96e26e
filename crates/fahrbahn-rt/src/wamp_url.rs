//! WAMP transport URLs: `ws://`, `wss://` (WebSocket), `rs://`, `rss://`
//! (RawSocket over TCP, plain or TLS) and `unix:` (RawSocket over a Unix
//! socket).

use crate::connect::WsUrl;
use crate::error::{Error, UrlError};

/// Where and how to reach a WAMP router.
///
/// ```
/// use fahrbahn_rt::WampUrl;
/// assert!(matches!(WampUrl::parse("rs://127.0.0.1:8081").unwrap(), WampUrl::RawSocket { port: 8081, secure: false, .. }));
/// assert!(matches!(WampUrl::parse("unix:///tmp/router.sock").unwrap(), WampUrl::Unix { .. }));
/// assert!(matches!(WampUrl::parse("wss://example.com/ws").unwrap(), WampUrl::WebSocket(_)));
/// assert!(WampUrl::parse("http://example.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WampUrl {
    /// WebSocket, plain or TLS.
    WebSocket(WsUrl),
    /// RawSocket over TCP.
    RawSocket {
        /// TLS (`rss://`).
        secure: bool,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// RawSocket over a Unix domain socket.
    Unix {
        /// The socket path.
        path: String,
    },
}

impl WampUrl {
    /// Parses a router URL.
    pub fn parse(url: &str) -> Result<Self, Error> {
        if url.starts_with("ws://") || url.starts_with("wss://") {
            return Ok(WampUrl::WebSocket(WsUrl::parse(url)?));
        }
        if let Some(path) = url
            .strip_prefix("unix://")
            .or_else(|| url.strip_prefix("unix:"))
        {
            if path.is_empty() {
                return Err(UrlError::NoSocketPath {
                    url: url.to_owned(),
                }
                .into());
            }
            return Ok(WampUrl::Unix {
                path: path.to_owned(),
            });
        }
        let (secure, rest) = if let Some(r) = url.strip_prefix("rs://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("rss://") {
            (true, r)
        } else {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
                expected: "ws://, wss://, rs://, rss:// or unix:",
            }
            .into());
        };
        // Reuse the WebSocket URL parser for host and port.
        let scheme = if secure { "wss://" } else { "ws://" };
        let parsed = WsUrl::parse(&format!("{scheme}{}", rest.trim_end_matches('/')))?;
        if !rest.contains(':') || parsed.path != "/" {
            return Err(UrlError::RawSocketShape {
                url: url.to_owned(),
            }
            .into());
        }
        Ok(WampUrl::RawSocket {
            secure,
            host: parsed.host,
            port: parsed.port,
        })
    }
}
