//! Tokio adapter of Fahrbahn: [`TokioRuntime`] implements
//! [`fahrbahn_rt::Runtime`]; all protocol logic lives in `fahrbahn-rt` and
//! `fahrbahn-core`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fahrbahn_rt::Error> {
//! let mut ws = fahrbahn_rt::connect(&fahrbahn_tokio::TokioRuntime, "ws://127.0.0.1:9001/").await?;
//! ws.send("hello").await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use fahrbahn_rt::{AnyListener, AsyncTimer, BoxFuture, BoxTransport, Executor, Runtime};
use tokio::io::ReadBuf;

/// The tokio runtime (the ambient one: call from inside a tokio runtime).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

/// A tokio byte stream seen through the `futures-io` traits.
#[derive(Debug)]
pub struct TokioIo<T>(pub T);

/// A tokio TCP stream seen through the `futures-io` traits.
pub type TcpStream = TokioIo<tokio::net::TcpStream>;

/// A bound tokio TCP listener.
#[derive(Debug)]
pub struct TcpListener(pub tokio::net::TcpListener);

#[derive(Debug)]
struct Timer(Pin<Box<tokio::time::Sleep>>);

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().0.as_mut().reset(deadline.into());
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.as_mut().poll(cx)
    }
}

impl<T: tokio::io::AsyncRead + Unpin> futures_io::AsyncRead for TokioIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.get_mut().0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> futures_io::AsyncWrite for TokioIo<T> {
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
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl fahrbahn_rt::TcpListener for TcpListener {
    type Stream = TcpStream;

    fn accept(&self) -> BoxFuture<'_, io::Result<(TcpStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, addr) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((TokioIo(s), addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A bound tokio Unix socket listener.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener(pub tokio::net::UnixListener, pub String);

#[cfg(unix)]
impl AnyListener for UnixListener {
    fn accept_any(&self) -> BoxFuture<'_, io::Result<BoxTransport>> {
        Box::pin(async move {
            let (s, _) = self.0.accept().await?;
            Ok(Box::new(TokioIo(s)) as BoxTransport)
        })
    }

    fn address(&self) -> String {
        self.1.clone()
    }
}

impl Executor for TokioRuntime {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(Box::pin(tokio::time::sleep_until(deadline.into()))))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        tokio::spawn(future);
    }

    fn yield_now(&self, cx: &mut std::task::Context<'_>) {
        // tokio's own yield: the wake is deferred until after the
        // scheduler has polled for I/O, so the connections whose sockets
        // became ready meanwhile run first. Polled once and dropped: the
        // deferred wake stays registered.
        let mut yielding = std::pin::pin!(tokio::task::yield_now());
        let _ = std::future::Future::poll(yielding.as_mut(), cx);
    }
}

impl Runtime for TokioRuntime {
    type TcpStream = TcpStream;
    type TcpListener = TcpListener;

    fn connect_tcp(&self, host: &str, port: u16) -> BoxFuture<'static, io::Result<TcpStream>> {
        let host = host.to_owned();
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            s.set_nodelay(true)?;
            Ok(TokioIo(s))
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<TcpListener>> {
        Box::pin(async move { Ok(TcpListener(tokio::net::TcpListener::bind(addr).await?)) })
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: &str) -> BoxFuture<'static, io::Result<Box<dyn AnyListener>>> {
        let path = path.to_owned();
        Box::pin(async move {
            let l = tokio::net::UnixListener::bind(&path)?;
            Ok(Box::new(UnixListener(l, path)) as Box<dyn AnyListener>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &str) -> BoxFuture<'static, io::Result<BoxTransport>> {
        let path = path.to_owned();
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok(Box::new(TokioIo(s)) as BoxTransport)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;

    use fahrbahn_rt::Executor;

    use super::TokioRuntime;

    /// The driver's yield: the task is polled again (tokio defers the wake
    /// past its I/O poll, but does wake it).
    #[tokio::test]
    async fn yield_now_polls_the_task_again() {
        let rt = TokioRuntime;
        let mut polls = 0;
        poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                rt.yield_now(cx);
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        assert_eq!(polls, 2);
    }
}
