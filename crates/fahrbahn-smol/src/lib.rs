//! smol adapter of Fahrbahn: [`SmolRuntime`] implements
//! [`fahrbahn_rt::Runtime`] with smol's global executor, `async-io` timers
//! and `async-net` sockets. All protocol logic lives in `fahrbahn-rt` and
//! `fahrbahn-core`.
//!
//! ```no_run
//! smol::block_on(async {
//!     let mut ws = fahrbahn_rt::connect(&fahrbahn_smol::SmolRuntime, "ws://127.0.0.1:9001/").await?;
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

/// The smol runtime (tasks go to smol's global executor).
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

/// A bound smol TCP listener.
#[derive(Debug)]
pub struct TcpListener(pub smol::net::TcpListener);

#[derive(Debug)]
struct Timer(smol::Timer);

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().0.set_at(deadline);
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx).map(|_| ())
    }
}

impl fahrbahn_rt::TcpListener for TcpListener {
    type Stream = smol::net::TcpStream;

    fn accept(&self) -> BoxFuture<'_, io::Result<(smol::net::TcpStream, SocketAddr)>> {
        Box::pin(async move {
            let (s, addr) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((s, addr))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A bound smol Unix socket listener.
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixListener(pub smol::net::unix::UnixListener, pub String);

#[cfg(unix)]
impl AnyListener for UnixListener {
    fn accept_any(&self) -> BoxFuture<'_, io::Result<BoxTransport>> {
        Box::pin(async move {
            let (s, _) = self.0.accept().await?;
            Ok(Box::new(s) as BoxTransport)
        })
    }

    fn address(&self) -> String {
        self.1.clone()
    }
}

impl Executor for SmolRuntime {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer(smol::Timer::at(deadline)))
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        smol::spawn(future).detach();
    }
}

impl Runtime for SmolRuntime {
    type TcpStream = smol::net::TcpStream;
    type TcpListener = TcpListener;

    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> BoxFuture<'static, io::Result<smol::net::TcpStream>> {
        let target = format!("{host}:{port}");
        Box::pin(async move {
            let s = smol::net::TcpStream::connect(target.as_str()).await?;
            s.set_nodelay(true)?;
            Ok(s)
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<TcpListener>> {
        Box::pin(async move { Ok(TcpListener(smol::net::TcpListener::bind(addr).await?)) })
    }

    #[cfg(unix)]
    fn bind_unix(&self, path: &str) -> BoxFuture<'static, io::Result<Box<dyn AnyListener>>> {
        let path = path.to_owned();
        Box::pin(async move {
            let l = smol::net::unix::UnixListener::bind(&path)?;
            Ok(Box::new(UnixListener(l, path)) as Box<dyn AnyListener>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &str) -> BoxFuture<'static, io::Result<BoxTransport>> {
        let path = path.to_owned();
        Box::pin(async move {
            let s = smol::net::unix::UnixStream::connect(path).await?;
            Ok(Box::new(s) as BoxTransport)
        })
    }
}
