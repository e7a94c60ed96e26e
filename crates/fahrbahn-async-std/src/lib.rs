//! async-std adapter of Fahrbahn: [`AsyncStdRuntime`] implements
//! [`fahrbahn_rt::Runtime`].
//!
//! **async-std is discontinued upstream** (its authors recommend smol).
//! This adapter is kept deliberately thin — tasks, sockets and the
//! `async-io` timers async-std itself uses — so existing async-std
//! applications keep working; new code should use `fahrbahn-smol` or
//! `fahrbahn-tokio`.
//!
//! ```no_run
//! async_std::task::block_on(async {
//!     let mut ws = fahrbahn_rt::connect(&fahrbahn_async_std::AsyncStdRuntime, "ws://127.0.0.1:9001/").await?;
//!     ws.send("hello").await?;
//!     Ok::<_, fahrbahn_rt::Error>(())
//! }).unwrap();
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use fahrbahn_rt::{AnyListener, AsyncTimer, BoxFuture, BoxTransport, Executor, Runtime};
use futures_io::{AsyncRead, AsyncWrite};

/// The async-std runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

/// An async-std stream whose `poll_close` really shuts down the write side
/// (async-std's own only flushes, so the peer would never see FIN).
#[derive(Debug)]
pub struct ShutdownOnClose<T>(pub T);

/// An async-std TCP stream (see [`ShutdownOnClose`]).
pub type TcpStream = ShutdownOnClose<async_std::net::TcpStream>;

/// async-std streams that can shut down their write side.
pub trait ShutdownWrite {
    /// Shuts down the write side.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl ShutdownWrite for async_std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl ShutdownWrite for async_std::os::unix::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ShutdownOnClose<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + ShutdownWrite + Unpin> AsyncWrite for ShutdownOnClose<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(Pin::new(&mut this.0).poll_flush(cx))?;
        match this.0.shutdown_write() {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// A bound async-std TCP listener.
#[derive(Debug)]
pub struct TcpListener(pub async_std::net::TcpListener);

#[derive(Debug)]
struct Timer(async_io::Timer);

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().0.set_at(deadline);
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

impl fahrbahn_rt::TcpListener for TcpListener {
    type Stream = TcpStream;

    fn accept(&self) -> BoxFuture<'_, io::Result<(TcpStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, addr) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((ShutdownOnClose(s), addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A bound async-std Unix socket listener.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener(pub async_std::os::unix::net::UnixListener, pub String);

#[cfg(unix)]
impl AnyListener for UnixListener {
    fn accept_any(&self) -> BoxFuture<'_, io::Result<BoxTransport>> {
        Box::pin(async move {
            let (s, _) = self.0.accept().await?;
            Ok(Box::new(ShutdownOnClose(s)) as BoxTransport)
        })
    }

    fn address(&self) -> String {
        self.1.clone()
    }
}

impl Executor for AsyncStdRuntime {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(async_io::Timer::at(deadline)))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        async_std::task::spawn(future);
    }
}

impl Runtime for AsyncStdRuntime {
    type TcpStream = TcpStream;
    type TcpListener = TcpListener;

    fn connect_tcp(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<TcpStream>> {
        let target = format!("{host}:{port}");
        Box::pin(async move {
            let s = async_std::net::TcpStream::connect(target.as_str()).await?;
            s.set_nodelay(true)?;
            Ok(ShutdownOnClose(s))
        })
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: &str) -> BoxFuture<'static, io::Result<Box<dyn AnyListener>>> {
        let path = path.to_owned();
        Box::pin(async move {
            let l = async_std::os::unix::net::UnixListener::bind(&path).await?;
            Ok(Box::new(UnixListener(l, path)) as Box<dyn AnyListener>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &str) -> BoxFuture<'static, io::Result<BoxTransport>> {
        let path = path.to_owned();
        Box::pin(async move {
            let s = async_std::os::unix::net::UnixStream::connect(path).await?;
            Ok(Box::new(ShutdownOnClose(s)) as BoxTransport)
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<TcpListener>> {
        Box::pin(async move { Ok(TcpListener(async_std::net::TcpListener::bind(addr).await?)) })
    }
}
