//! HTTP proxies: `CONNECT` tunnelling (RFC 9110 §9.3.6) with basic proxy
//! authentication, and the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`
//! conventions.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::IpAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use base64::Engine as _;
use futures_io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::runtime::Runtime;

/// How long the proxy may take to answer `CONNECT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a proxy's answer to `CONNECT` (status line and headers) may
/// take, in bytes.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// The most headers a proxy's answer may have.
const MAX_RESPONSE_HEADERS: usize = 64;

/// An HTTP proxy that tunnels with `CONNECT`, optionally with basic
/// authentication. Its `Debug` and `Display` never show the password, and
/// it has no `PartialEq` (nothing compares the password).
///
/// ```
/// use fahrbahn_rt::Proxy;
/// let proxy = Proxy::parse("http://alice:s%40cret@proxy.example:3128").unwrap();
/// assert_eq!((proxy.host(), proxy.port()), ("proxy.example", 3128));
/// assert_eq!(proxy.to_string(), "http://alice:***@proxy.example:3128");
/// assert!(!format!("{proxy:?}").contains("cret"));
/// ```
#[derive(Clone)]
pub struct Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:***@")?;
        }
        write!(f, "{}:{}", bracketed(&self.host), self.port)
    }
}

impl Proxy {
    /// A proxy at `host:port`, without authentication.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            credentials: None,
        }
    }

    /// Parses a proxy URL: `http://[user[:password]@]host[:port][/]`, or
    /// `host[:port]` without a scheme (as the environment variables often
    /// hold). The port defaults to 80; user and password may be
    /// percent-encoded. `https://` proxies (TLS to the proxy itself) are
    /// not supported.
    pub fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &'static str| ProxyError::Url {
            url: redact(url),
            reason,
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(invalid("https:// proxies are not supported; use http://").into());
        } else if url.contains("://") {
            return Err(invalid("the scheme must be http://").into());
        } else {
            url
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| invalid("bad port"))?,
                None if after.is_empty() => 80,
                None => return Err(invalid("bad host or port").into()),
            };
            (h, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| invalid("bad port"))?),
                None => (hostport, 80),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host").into());
        }
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user).ok_or_else(|| invalid("bad percent-encoding"))?;
                let password =
                    percent_decode(password).ok_or_else(|| invalid("bad percent-encoding"))?;
                Some((user, password))
            }
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// Authenticates to the proxy with HTTP basic authentication.
    pub fn with_basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The proxy's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Opens a `CONNECT` tunnel through this proxy to `host:port` and
    /// returns it: a byte stream to the destination, on which to run TLS
    /// (e.g. [`tls_connect_with`](crate::tls_connect_with) with custom
    /// roots) and a WebSocket handshake
    /// ([`WebSocket::connect`](crate::WebSocket::connect)) or a session
    /// ([`Session::join_stream`](crate::Session::join_stream)).
    pub async fn connect<R: Runtime>(
        &self,
        runtime: &R,
        host: &str,
        port: u16,
    ) -> Result<R::TcpStream, Error> {
        dial(runtime, Some(self), host, port).await
    }

    /// The `Proxy-Authorization` header value, if credentials are set.
    fn authorization(&self) -> Option<String> {
        self.credentials.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        })
    }
}

/// The proxy settings of the `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`
/// conventions, read from the environment ([`from_env`](Self::from_env))
/// or given ([`ProxyConfig::Settings`]), and the rules that pick a proxy
/// for a destination ([`proxy_for`](Self::proxy_for)).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ProxyEnv {
    /// The proxy for `ws://` (`http_proxy`, `HTTP_PROXY`).
    pub http_proxy: Option<String>,
    /// The proxy for `wss://` (`https_proxy`, `HTTPS_PROXY`).
    pub https_proxy: Option<String>,
    /// Destinations reached directly (`no_proxy`, `NO_PROXY`).
    pub no_proxy: Option<String>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyEnv")
            .field("http_proxy", &self.http_proxy.as_deref().map(redact))
            .field("https_proxy", &self.https_proxy.as_deref().map(redact))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyEnv {
    /// Settings from explicit values.
    pub fn new(
        http_proxy: Option<String>,
        https_proxy: Option<String>,
        no_proxy: Option<String>,
    ) -> Self {
        Self {
            http_proxy,
            https_proxy,
            no_proxy,
        }
    }

    /// Reads the process environment (see [`from_vars`](Self::from_vars)).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `var` (a name in, its value out): for
    /// each of `http_proxy`, `https_proxy` and `no_proxy` the lowercase
    /// name first, then the uppercase one; an empty value counts as
    /// unset.
    ///
    /// ```
    /// use fahrbahn_rt::ProxyEnv;
    /// let env = ProxyEnv::from_vars(|name| match name {
    ///     "HTTP_PROXY" => Some("http://upper:3128".into()),
    ///     "http_proxy" => Some("http://lower:3128".into()),
    ///     "NO_PROXY" => Some("internal.example".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(env.http_proxy.as_deref(), Some("http://lower:3128"));
    /// assert_eq!(env.https_proxy, None);
    /// assert_eq!(env.no_proxy.as_deref(), Some("internal.example"));
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let read = |lower: &str, upper: &str| {
            var(lower)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| var(upper).filter(|v| !v.trim().is_empty()))
        };
        Self {
            http_proxy: read("http_proxy", "HTTP_PROXY"),
            https_proxy: read("https_proxy", "HTTPS_PROXY"),
            no_proxy: read("no_proxy", "NO_PROXY"),
        }
    }

    /// The proxy for a WebSocket connection to `host:port` (`secure` for
    /// `wss://`), or `None` to connect directly:
    ///
    /// - loopback destinations (`localhost`, `*.localhost`, `127.0.0.0/8`,
    ///   `::1`) are always reached directly;
    /// - a destination matching `no_proxy` is reached directly: entries are
    ///   separated by commas; `*` matches everything; a name matches
    ///   itself and its subdomains (`example.com` and `.example.com` both
    ///   match `a.example.com`); an IP address matches itself, a CIDR block
    ///   (`10.0.0.0/8`) the addresses in it; `entry:port` matches that
    ///   port only;
    /// - otherwise `https_proxy` for `wss://`, `http_proxy` for `ws://`.
    ///
    /// ```
    /// use fahrbahn_rt::ProxyEnv;
    /// let env = ProxyEnv::new(
    ///     Some("http://proxy:3128".into()),
    ///     None,
    ///     Some("internal.example, 10.0.0.0/8".into()),
    /// );
    /// assert!(env.proxy_for(false, "router.example", 80).unwrap().is_some());
    /// assert!(env.proxy_for(false, "a.internal.example", 80).unwrap().is_none());
    /// assert!(env.proxy_for(false, "10.1.2.3", 80).unwrap().is_none());
    /// assert!(env.proxy_for(false, "localhost", 8080).unwrap().is_none());
    /// assert!(env.proxy_for(true, "router.example", 443).unwrap().is_none()); // no https_proxy
    /// ```
    pub fn proxy_for(&self, secure: bool, host: &str, port: u16) -> Result<Option<Proxy>, Error> {
        let url = if secure {
            &self.https_proxy
        } else {
            &self.http_proxy
        };
        let Some(url) = url else {
            return Ok(None);
        };
        if is_loopback(host) {
            return Ok(None);
        }
        if let Some(list) = &self.no_proxy {
            if no_proxy_matches(list, host, port) {
                return Ok(None);
            }
        }
        Proxy::parse(url).map(Some)
    }
}

/// Which proxy a connection goes through.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ProxyConfig {
    /// The process environment's `http_proxy`, `https_proxy` and
    /// `no_proxy` (either case), read at each connect, by the rules of
    /// [`ProxyEnv::proxy_for`]. The default. Applies to `ws://` and
    /// `wss://`; RawSocket URLs connect directly.
    #[default]
    Env,
    /// Given settings, by the same rules as [`Env`](Self::Env) (e.g. from
    /// the application's own configuration).
    Settings(ProxyEnv),
    /// This proxy for every TCP connection (`ws://`, `wss://`, `rs://`,
    /// `rss://`), loopback included.
    Always(Proxy),
    /// No proxy: connect directly.
    Off,
}

impl ProxyConfig {
    /// The proxy for a connection to `host:port`; `websocket` tells
    /// WebSocket URLs from RawSocket ones.
    pub(crate) fn proxy_for(
        &self,
        websocket: bool,
        secure: bool,
        host: &str,
        port: u16,
    ) -> Result<Option<Proxy>, Error> {
        match self {
            ProxyConfig::Off => Ok(None),
            ProxyConfig::Always(p) => Ok(Some(p.clone())),
            // Loopback is decided before the environment is read: tests
            // and local tools never depend on the host's proxy settings.
            ProxyConfig::Env if websocket && is_loopback(host) => Ok(None),
            ProxyConfig::Env if websocket => ProxyEnv::from_env().proxy_for(secure, host, port),
            ProxyConfig::Settings(env) if websocket => env.proxy_for(secure, host, port),
            ProxyConfig::Env | ProxyConfig::Settings(_) => Ok(None),
        }
    }
}

/// What went wrong with an HTTP proxy. The proxy is named without its
/// password.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL (from the settings or the environment) is invalid.
    Url {
        /// The URL, password hidden.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The proxy could not be reached.
    Unreachable {
        /// The proxy.
        proxy: String,
        /// Why.
        source: io::Error,
    },
    /// The proxy wants (other) credentials: `407 Proxy Authentication
    /// Required`.
    AuthenticationRequired {
        /// The proxy.
        proxy: String,
        /// Whether credentials were sent (and refused).
        sent_credentials: bool,
    },
    /// The proxy refused to open the tunnel (a status other than 2xx).
    Refused {
        /// The proxy.
        proxy: String,
        /// The destination asked for (`host:port`).
        target: String,
        /// The HTTP status.
        status: u16,
        /// The status line's reason phrase.
        reason: String,
    },
    /// The proxy's answer is not HTTP, too large, or followed by data.
    BadResponse {
        /// The proxy.
        proxy: String,
        /// What was wrong.
        detail: String,
    },
    /// The proxy did not answer `CONNECT` in time (10 s).
    Timeout {
        /// The proxy.
        proxy: String,
    },
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Url { url, reason } => write!(f, "invalid proxy URL {url:?}: {reason}"),
            ProxyError::Unreachable { proxy, source } => {
                write!(f, "cannot reach the proxy {proxy}: {source}")
            }
            ProxyError::AuthenticationRequired {
                proxy,
                sent_credentials: true,
            } => write!(
                f,
                "the proxy {proxy} refused the credentials (407): check the user and password"
            ),
            ProxyError::AuthenticationRequired { proxy, .. } => write!(
                f,
                "the proxy {proxy} requires authentication (407): give a user and password (http://user:password@host:port)"
            ),
            ProxyError::Refused {
                proxy,
                target,
                status,
                reason,
            } => write!(
                f,
                "the proxy {proxy} refused to tunnel to {target}: {status} {reason}"
            ),
            ProxyError::BadResponse { proxy, detail } => {
                write!(f, "the proxy {proxy} answered CONNECT wrongly: {detail}")
            }
            ProxyError::Timeout { proxy } => write!(
                f,
                "the proxy {proxy} did not answer CONNECT within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Unreachable { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Self {
        Error::Proxy(e)
    }
}

/// Connects to `host:port`, through `proxy` when there is one (the
/// returned stream is then the established tunnel).
pub(crate) async fn dial<R: Runtime>(
    runtime: &R,
    proxy: Option<&Proxy>,
    host: &str,
    port: u16,
) -> Result<R::TcpStream, Error> {
    let Some(proxy) = proxy else {
        return Ok(runtime.connect_tcp(host, port).await?);
    };
    log::debug!("connecting to {host}:{port} through the proxy {proxy}");
    let mut stream = runtime
        .connect_tcp(&proxy.host, proxy.port)
        .await
        .map_err(|source| ProxyError::Unreachable {
            proxy: proxy.to_string(),
            source,
        })?;
    let mut timer = runtime.new_timer(runtime.now() + CONNECT_TIMEOUT);
    {
        let mut exchange = pin!(tunnel(&mut stream, proxy, host, port));
        poll_fn(|cx| {
            if let Poll::Ready(r) = exchange.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(ProxyError::Timeout {
                    proxy: proxy.to_string(),
                }
                .into())),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
    }
    Ok(stream)
}

/// The `CONNECT` exchange on a stream connected to the proxy.
async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), Error> {
    let target = format!("{}:{port}", bracketed(host));
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.authorization() {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&auth);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    write_all(stream, request.as_bytes()).await?;
    let bad = |detail: String| ProxyError::BadResponse {
        proxy: proxy.to_string(),
        detail,
    };
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let n = poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_read(cx, &mut chunk)).await?;
        if n == 0 {
            return Err(bad("the connection closed before the answer ended".into()).into());
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(len)) => {
                // The client speaks first in the tunnel (WebSocket,
                // RawSocket and TLS all do): anything after the answer is
                // a broken proxy.
                if len != head.len() {
                    return Err(bad("data followed the answer to CONNECT".into()).into());
                }
                let status = response.code.unwrap_or(0);
                let reason = response.reason.unwrap_or("").to_owned();
                return match status {
                    200..=299 => Ok(()),
                    407 => Err(ProxyError::AuthenticationRequired {
                        proxy: proxy.to_string(),
                        sent_credentials: proxy.credentials.is_some(),
                    }
                    .into()),
                    _ => Err(ProxyError::Refused {
                        proxy: proxy.to_string(),
                        target,
                        status,
                        reason,
                    }
                    .into()),
                };
            }
            Ok(httparse::Status::Partial) if head.len() > MAX_RESPONSE_HEAD => {
                return Err(bad(format!(
                    "the answer is longer than {MAX_RESPONSE_HEAD} bytes"
                ))
                .into());
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(bad(format!("not an HTTP answer ({e})")).into()),
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_write(cx, buf)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
    }
    poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_flush(cx)).await
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// A proxy URL with its password hidden (whether or not it parses).
fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `host:port` matches the `no_proxy` list.
fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let ip = host.parse::<IpAddr>().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (entry, entry_port) = split_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            let entry = entry
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
                return net
                    .parse::<IpAddr>()
                    .ok()
                    .zip(bits.parse::<u8>().ok())
                    .is_some_and(|(net, bits)| in_cidr(ip, net, bits));
            }
            if let (Some(ip), Ok(entry_ip)) = (ip, entry.parse::<IpAddr>()) {
                return ip == entry_ip;
            }
            host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// `entry` without a `:port` suffix, and the port (IPv6 addresses only
/// with a port when bracketed).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(v6) = entry.strip_prefix('[') {
        return match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_rules() {
        let list = "example.com, .corp.example, *.wild.example, 10.0.0.0/8, 192.168.1.5, [::1]:8080, only.example:9000, fd00::/8";
        let m = |host: &str, port: u16| no_proxy_matches(list, host, port);
        assert!(m("example.com", 80));
        assert!(m("EXAMPLE.com.", 80));
        assert!(m("a.example.com", 80));
        assert!(!m("notexample.com", 80));
        assert!(m("corp.example", 80));
        assert!(m("x.corp.example", 80));
        assert!(m("x.wild.example", 80));
        assert!(m("10.200.3.4", 80));
        assert!(!m("11.0.0.1", 80));
        assert!(m("192.168.1.5", 443));
        assert!(!m("192.168.1.6", 443));
        assert!(m("only.example", 9000));
        assert!(!m("only.example", 9001));
        assert!(m("fd12::1", 80));
        assert!(!m("fe80::1", 80));
        assert!(no_proxy_matches("*", "anything", 1));
        assert!(!no_proxy_matches("", "anything", 1));
    }

    #[test]
    fn loopback_is_never_proxied_from_settings() {
        let env = ProxyEnv::new(Some("proxy:3128".into()), Some("proxy:3128".into()), None);
        for host in [
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
        ] {
            assert!(env.proxy_for(false, host, 80).unwrap().is_none(), "{host}");
        }
        let proxy = env.proxy_for(true, "router.example", 443).unwrap().unwrap();
        assert_eq!((proxy.host(), proxy.port()), ("proxy", 3128));
        // `Always` proxies loopback too.
        let always = ProxyConfig::Always(Proxy::new("proxy", 3128));
        assert!(
            always
                .proxy_for(true, true, "localhost", 1)
                .unwrap()
                .is_some()
        );
        // RawSocket URLs take no proxy from the environment's settings.
        let settings = ProxyConfig::Settings(env);
        assert!(
            settings
                .proxy_for(false, false, "router.example", 1)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://[::1]:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 3128));
        assert_eq!(p.to_string(), "http://[::1]:3128");
        let p = Proxy::parse("proxy.example").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 80));
        let p = Proxy::parse("http://bob:p%3Ass@proxy:8080").unwrap();
        assert_eq!(p.authorization().unwrap(), "Basic Ym9iOnA6c3M=");
        for bad in [
            "https://proxy",
            "socks5://proxy:1080",
            "http://:80",
            "http://p:x",
            "http://u:%zz@p",
        ] {
            let e = Proxy::parse(bad).unwrap_err();
            assert!(
                matches!(e, Error::Proxy(ProxyError::Url { .. })),
                "{bad}: {e}"
            );
            assert!(!e.to_string().contains("%zz"), "{e}");
        }
    }
}
