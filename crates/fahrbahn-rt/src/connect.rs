//! Connecting by URL: `ws://` over TCP, `wss://` over TLS (rustls).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use fahrbahn_core::ws::ClientConfig;
use futures_io::{AsyncRead, AsyncWrite};

use crate::error::{Error, TlsError, UrlError};
use crate::proxy::ProxyConfig;
use crate::runtime::Runtime;
use crate::websocket::WebSocket;

/// A `ws://` or `wss://` URL, split into what the connection needs.
///
/// ```
/// use fahrbahn_rt::WsUrl;
/// let url = WsUrl::parse("wss://example.com/chat?room=1").unwrap();
/// assert!(url.secure);
/// assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("example.com", 443, "/chat?room=1"));
/// assert!(WsUrl::parse("http://example.com").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`.
    pub secure: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (default 80 / 443).
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl WsUrl {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let (secure, rest) = if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
                expected: "ws:// or wss://",
            }
            .into());
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        if authority.contains('@') {
            return Err(UrlError::UserInfo {
                url: url.to_owned(),
            }
            .into());
        }
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| UrlError::Authority {
                url: url.to_owned(),
            })?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, url)?,
                None if after.is_empty() => default_port,
                None => {
                    return Err(UrlError::Authority {
                        url: url.to_owned(),
                    }
                    .into());
                }
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), parse_port(p, url)?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost {
                url: url.to_owned(),
            }
            .into());
        }
        Ok(Self {
            secure,
            host,
            port,
            path,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let default_port = if self.secure { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, UrlError> {
    p.parse().map_err(|_| UrlError::Port {
        url: url.to_owned(),
        port: p.to_owned(),
    })
}

/// A TCP stream, or TLS over one.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream<S> {
    /// Plain TCP.
    Plain(S),
    /// TLS (rustls).
    #[cfg(feature = "tls")]
    Tls(Box<futures_rustls::client::TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// Connects to a `ws://` or `wss://` URL with default settings.
pub async fn connect<R: Runtime>(
    runtime: &R,
    url: &str,
) -> Result<WebSocket<MaybeTlsStream<R::TcpStream>>, Error> {
    connect_with(runtime, url, ClientConfig::default()).await
}

/// Connects to a URL with `config` (its `host` and `path` are taken from
/// the URL), through the proxy the environment names
/// ([`ProxyConfig::Env`]: `http_proxy`/`https_proxy`, `no_proxy`); see
/// [`connect_via`] to choose.
pub async fn connect_with<R: Runtime>(
    runtime: &R,
    url: &str,
    config: ClientConfig,
) -> Result<WebSocket<MaybeTlsStream<R::TcpStream>>, Error> {
    connect_via(runtime, url, config, &ProxyConfig::Env).await
}

/// [`connect_with`] with the proxy settings given: e.g.
/// [`ProxyConfig::Off`] to connect directly whatever the environment
/// says, or [`ProxyConfig::Always`] for a proxy of the application's own.
///
/// ```no_run
/// # async fn demo<R: fahrbahn_rt::Runtime>(rt: &R) -> Result<(), fahrbahn_rt::Error> {
/// use fahrbahn_rt::{ClientConfig, Proxy, ProxyConfig, connect_via};
/// let proxy = Proxy::parse("http://user:secret@proxy.example:3128")?;
/// let ws = connect_via(rt, "wss://echo.example/", ClientConfig::default(), &ProxyConfig::Always(proxy)).await?;
/// # Ok(()) }
/// ```
pub async fn connect_via<R: Runtime>(
    runtime: &R,
    url: &str,
    mut config: ClientConfig,
    proxy: &ProxyConfig,
) -> Result<WebSocket<MaybeTlsStream<R::TcpStream>>, Error> {
    let url = WsUrl::parse(url)?;
    config.host = url.host_header();
    config.path = url.path.clone();
    let proxy = proxy.proxy_for(true, url.secure, &url.host, url.port)?;
    let tcp = crate::proxy::dial(runtime, proxy.as_ref(), &url.host, url.port).await?;
    let stream = if url.secure {
        tls_stream(&url.host, tcp).await?
    } else {
        MaybeTlsStream::Plain(tcp)
    };
    WebSocket::connect(runtime, stream, config).await
}

/// TLS-connects over `tcp` with the default roots (webpki-roots).
#[cfg(feature = "tls")]
pub(crate) async fn tls_stream<S: AsyncRead + AsyncWrite + Unpin>(
    host: &str,
    tcp: S,
) -> Result<MaybeTlsStream<S>, Error> {
    use std::sync::{Arc, OnceLock};

    use futures_rustls::rustls;
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    tls_connect_with(config.clone(), host, tcp).await
}

/// TLS-connects over `tcp` with a caller-provided rustls configuration
/// (custom roots, client certificates).
#[cfg(feature = "tls")]
pub async fn tls_connect_with<S: AsyncRead + AsyncWrite + Unpin>(
    config: std::sync::Arc<futures_rustls::rustls::ClientConfig>,
    host: &str,
    tcp: S,
) -> Result<MaybeTlsStream<S>, Error> {
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        TlsError::ServerName {
            host: host.to_owned(),
        }
    })?;
    let stream = futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(MaybeTlsStream::Tls(Box::new(stream)))
}

#[cfg(not(feature = "tls"))]
pub(crate) async fn tls_stream<S>(_host: &str, _tcp: S) -> Result<MaybeTlsStream<S>, Error> {
    Err(TlsError::Disabled.into())
}
