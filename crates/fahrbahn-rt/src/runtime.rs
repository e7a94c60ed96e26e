//! The `Runtime` trait: what the driver needs from an async runtime.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A byte stream of any runtime, usable where the concrete type does not
/// matter.
pub trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// A type-erased [`Transport`].
pub type BoxTransport = Box<dyn Transport>;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A timer that can be moved to a new deadline (like quinn's `AsyncTimer`).
pub trait AsyncTimer: Send + Debug + 'static {
    /// Moves the deadline.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A listener of any kind (TCP, Unix), type-erased.
pub trait AnyListener: Send + Sync + 'static {
    /// Waits for the next connection.
    fn accept_any(&self) -> BoxFuture<'_, io::Result<BoxTransport>>;
    /// Where it listens, for display (`127.0.0.1:8080`, `/tmp/router.sock`).
    fn address(&self) -> String;
}

impl<L: TcpListener> AnyListener for L {
    fn accept_any(&self) -> BoxFuture<'_, io::Result<BoxTransport>> {
        Box::pin(async move {
            let (stream, _) = self.accept().await?;
            Ok(Box::new(stream) as BoxTransport)
        })
    }

    fn address(&self) -> String {
        self.local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|e| format!("<{e}>"))
    }
}

/// A bound TCP listener of some runtime.
pub trait TcpListener: Send + Sync + 'static {
    /// The accepted stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection.
    fn accept(&self) -> BoxFuture<'_, io::Result<(Self::Stream, SocketAddr)>>;
    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// The object-safe half of a [`Runtime`]: its clock, timers and tasks.
///
/// `fahrbahn-rt` reads the time only through [`now`](Self::now) and waits
/// only on [`new_timer`](Self::new_timer), so a runtime with a simulated
/// clock (e.g. tokio with `tokio::time::pause()`) runs the whole stack on
/// simulated time. The async layer keeps it as an [`ExecutorHandle`].
pub trait Executor: Send + Sync + Debug + 'static {
    /// The current time on this runtime's clock.
    fn now(&self) -> Instant;
    /// A timer that fires at `deadline` (on the same clock as
    /// [`now`](Self::now)).
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;
    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<'static, ()>);
    /// Arranges for the task of `cx` to be polled again after the other
    /// tasks that are ready on this runtime have had their turn, including
    /// those waiting for I/O readiness. The driver calls it (and returns
    /// `Pending`) when one poll has read a bounded amount of input that
    /// made no event, so that a peer flooding one connection cannot hold
    /// the executor's thread.
    ///
    /// The default wakes the task at once (`cx.waker().wake_by_ref()`); a
    /// runtime that polls I/O only when its run queue is empty or every
    /// few dozen tasks (tokio) should defer the wake past that poll.
    fn yield_now(&self, cx: &mut std::task::Context<'_>) {
        cx.waker().wake_by_ref();
    }
}

/// A shared, type-erased [`Executor`].
pub type ExecutorHandle = std::sync::Arc<dyn Executor>;

/// An async runtime, as the driver sees it: the [`Executor`] (clock,
/// timers, tasks) plus TCP and Unix sockets.
///
/// Implemented by `fahrbahn-tokio`, `fahrbahn-smol` and `fahrbahn-async-std`;
/// each implementation is a few dozen lines. Streams use the `futures-io`
/// traits.
pub trait Runtime: Executor + Clone {
    /// A connected TCP stream.
    type TcpStream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A TCP listener whose connections are `TcpStream`s.
    type TcpListener: TcpListener<Stream = Self::TcpStream>;

    /// This runtime as a shared [`ExecutorHandle`].
    fn handle(&self) -> ExecutorHandle {
        std::sync::Arc::new(self.clone())
    }
    /// Connects to `host:port` (host may be a name or an address).
    fn connect_tcp(&self, host: &str, port: u16)
    -> BoxFuture<'static, io::Result<Self::TcpStream>>;
    /// Binds a listener.
    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Self::TcpListener>>;
    /// Binds a Unix domain socket listener (default: unsupported).
    fn bind_unix(&self, path: &str) -> BoxFuture<'static, io::Result<Box<dyn AnyListener>>> {
        let path = path.to_owned();
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("Unix sockets are not supported on this runtime ({path})"),
            ))
        })
    }
    /// Connects to a Unix domain socket (default: unsupported).
    fn connect_unix(&self, path: &str) -> BoxFuture<'static, io::Result<BoxTransport>> {
        let path = path.to_owned();
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("Unix sockets are not supported on this runtime ({path})"),
            ))
        })
    }
}
