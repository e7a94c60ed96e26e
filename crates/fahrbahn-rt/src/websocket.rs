//! The user-facing WebSocket type over any `futures-io` byte stream.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use fahrbahn_core::Rng;
use fahrbahn_core::ws::{
    Accept, ClientConfig, CloseCode, Closed, Connection, Event, Handshake, HandshakeRequest,
    Message, SendError, ServerConfig,
};
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_sink::Sink;

use crate::driver::{Driver, Side};
use crate::error::Error;
use crate::runtime::{ExecutorHandle, Runtime};

/// Queue this much output before [`Sink::poll_ready`] waits for the
/// transport.
const SINK_HIGH_WATER: usize = 256 << 10;

pub(crate) fn os_rng() -> Rng {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        log::warn!("no OS entropy available; falling back to a time-based seed");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return Rng::from_seed(t ^ u64::from(std::process::id()));
    }
    Rng::from_entropy_bytes(seed)
}

/// An open WebSocket connection over the byte stream `S`.
///
/// Receive with [`recv`](Self::recv) or as a [`Stream`] of messages; send
/// with [`send`](Self::send) or as a [`Sink`]; [`close`](Self::close) for a
/// graceful close; [`split`](Self::split) into halves for separate tasks.
/// Pings are answered automatically.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Inner<S>,
    handshake: Handshake,
}

/// The driver plus how the connection ended; shared by the split halves.
#[derive(Debug)]
struct Inner<S> {
    driver: Driver<S, Connection>,
    /// How the connection ended, once [`Event::Closed`] was seen.
    closed: Option<Closed>,
    /// The end was reported to the application.
    done: bool,
}

/// Decides on a server handshake request: `Ok(Accept)` to accept it, or
/// `Err((status, body))` to reject it with that HTTP status.
pub type RequestCallback<'a> =
    &'a mut (dyn FnMut(&HandshakeRequest) -> Result<Accept, (u16, String)> + Send);

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Runs the client handshake over an established stream.
    pub async fn connect<R: Runtime>(
        runtime: &R,
        io: S,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let now = runtime.now();
        let conn = Connection::client(config, os_rng(), now);
        Self::handshake(Driver::new(io, conn, runtime.handle()), None).await
    }

    /// Runs the server handshake over an accepted stream (e.g. from any
    /// listener, or a TLS stream), accepting by `config`.
    pub async fn accept<R: Runtime>(
        runtime: &R,
        io: S,
        config: ServerConfig,
    ) -> Result<Self, Error> {
        Self::accept_inner(runtime, io, config, None).await
    }

    /// Like [`accept`](Self::accept), but `decide` sees the request first
    /// and accepts (choosing subprotocol and headers) or rejects it with an
    /// HTTP status.
    pub async fn accept_with<R: Runtime>(
        runtime: &R,
        io: S,
        mut config: ServerConfig,
        decide: RequestCallback<'_>,
    ) -> Result<Self, Error> {
        config.defer_accept = true;
        Self::accept_inner(runtime, io, config, Some(decide)).await
    }

    /// The server handshake on an executor handle (for tasks that have no
    /// `Runtime` value, like those of [`Incoming`](crate::Incoming)).
    pub(crate) async fn accept_on(
        exec: ExecutorHandle,
        io: S,
        config: ServerConfig,
    ) -> Result<Self, Error> {
        let conn = Connection::server(config, os_rng(), exec.now());
        Self::handshake(Driver::new(io, conn, exec), None).await
    }

    async fn accept_inner<R: Runtime>(
        runtime: &R,
        io: S,
        config: ServerConfig,
        decide: Option<RequestCallback<'_>>,
    ) -> Result<Self, Error> {
        let now = runtime.now();
        let conn = Connection::server(config, os_rng(), now);
        Self::handshake(Driver::new(io, conn, runtime.handle()), decide).await
    }

    async fn handshake(
        mut driver: Driver<S, Connection>,
        mut decide: Option<RequestCallback<'_>>,
    ) -> Result<Self, Error> {
        loop {
            match poll_fn(|cx| driver.poll_event(cx)).await? {
                Event::Connected(handshake) => {
                    return Ok(Self {
                        inner: Inner {
                            driver,
                            closed: None,
                            done: false,
                        },
                        handshake,
                    });
                }
                Event::Request(request) => {
                    let verdict = match decide.as_mut() {
                        Some(decide) => decide(&request),
                        None => Ok(Accept::default()),
                    };
                    match verdict {
                        Ok(accept) => {
                            let now = driver.now();
                            driver.conn.accept(now, accept)?
                        }
                        Err((status, body)) => driver.conn.reject(status, &body)?,
                    }
                }
                Event::Closed(closed) => {
                    poll_fn(|cx| driver.poll_finish(cx)).await;
                    return Err(closed_error(closed));
                }
                other => log::debug!("ignoring {other:?} during the handshake"),
            }
        }
    }

    /// The outcome of the opening handshake (subprotocol, extensions, the
    /// peer's headers).
    pub fn handshake_info(&self) -> &Handshake {
        &self.handshake
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.handshake.subprotocol.as_deref()
    }

    /// Sets the read-side high-water mark (default 1 MiB): reading pauses
    /// while more than `bytes` of what the connection answered on its own
    /// to the peer's input (pongs, the close reply) is queued and unsent,
    /// so a peer that does not read cannot make us buffer without bound.
    /// Reading resumes as soon as the output drains below the mark.
    /// Messages the application sends do not count: [`send`](Self::send)
    /// and the [`Sink`] wait for the transport instead.
    pub fn set_read_high_water(&mut self, bytes: usize) {
        self.inner.driver.set_high_water(bytes);
    }

    /// Bytes queued for the peer and not yet written to the transport.
    pub fn queued_output(&self) -> usize {
        self.inner.driver.queued_output()
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<&Closed> {
        self.inner.closed.as_ref()
    }

    /// The next message; `None` once the connection closed cleanly, an
    /// error once if it ended abnormally.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message (see [`recv`](Self::recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.inner.poll_recv(cx)
    }

    /// Sends a message and waits until it is written to the transport.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.inner.driver.conn.send(message.into())?;
        self.flush().await
    }

    /// Sends a ping (its pong is consumed by [`recv`](Self::recv)).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.inner.driver.conn.ping(payload)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.driver.poll_write_out(cx, Side::Writer)).await?;
        Ok(())
    }

    /// Closes gracefully: sends a close frame, waits for the peer's (data
    /// arriving meanwhile is dropped) and ends the transport.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_close(cx, code, reason)).await
    }

    /// Splits into a reading and a writing half that can live in different
    /// tasks.
    pub fn split(self) -> (WsReader<S>, WsWriter<S>) {
        let shared = Arc::new(Shared(Mutex::new(self.inner)));
        (
            WsReader {
                shared: shared.clone(),
            },
            WsWriter { shared },
        )
    }
}

fn closed_error(closed: Closed) -> Error {
    match closed.error {
        Some(e) => Error::WebSocket(e),
        None => Error::Send(SendError::Closed),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if let Some(closed) = &self.closed {
                if self.driver.poll_finish(cx).is_pending() {
                    return Poll::Pending;
                }
                self.done = true;
                return Poll::Ready(closed.error.clone().map(|e| Err(Error::WebSocket(e))));
            }
            match self.driver.poll_event(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::Io(e))));
                }
                Poll::Ready(Ok(Event::Message(m))) => return Poll::Ready(Some(Ok(m))),
                Poll::Ready(Ok(Event::Closed(closed))) => self.closed = Some(closed),
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        code: CloseCode,
        reason: &str,
    ) -> Poll<Result<(), Error>> {
        if self.driver.conn.is_open() {
            let now = self.driver.now();
            self.driver.conn.close(now, code, reason)?;
        }
        loop {
            match self.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(Some(Ok(_))) => {}
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

fn sink_ready<S: AsyncRead + AsyncWrite + Unpin>(
    driver: &mut Driver<S, Connection>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    if driver.pending_output() >= SINK_HIGH_WATER {
        std::task::ready!(driver.poll_write_out(cx, Side::Writer))?;
    }
    Poll::Ready(Ok(()))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_ready(&mut self.get_mut().inner.driver, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Ok(self.get_mut().inner.driver.conn.send(item)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(std::task::ready!(
            self.get_mut().inner.driver.poll_write_out(cx, Side::Writer)
        )?))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.inner.poll_close(cx, CloseCode::NORMAL, "")
    }
}

#[derive(Debug)]
struct Shared<S>(Mutex<Inner<S>>);

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reading half of a split [`WebSocket`]; it also runs the timers and
/// answers pings.
#[derive(Debug)]
pub struct WsReader<S> {
    shared: Arc<Shared<S>>,
}

/// The writing half of a split [`WebSocket`].
#[derive(Debug)]
pub struct WsWriter<S> {
    shared: Arc<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsReader<S> {
    /// The next message (see [`WebSocket::recv`]).
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.shared.lock().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsReader<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsWriter<S> {
    /// Sends a message and waits until it is written.
    pub async fn send(&mut self, message: impl Into<Message>) -> Result<(), Error> {
        self.shared.lock().driver.conn.send(message.into())?;
        poll_fn(|cx| self.shared.lock().driver.poll_write_out(cx, Side::Writer)).await?;
        Ok(())
    }

    /// Starts the closing handshake; the reading half sees the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        {
            let mut inner = self.shared.lock();
            let now = inner.driver.now();
            inner.driver.conn.close(now, code, reason)?;
        }
        poll_fn(|cx| self.shared.lock().driver.poll_write_out(cx, Side::Writer)).await?;
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WsWriter<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        sink_ready(&mut self.shared.lock().driver, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Ok(self.shared.lock().driver.conn.send(item)?)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(std::task::ready!(
            self.shared.lock().driver.poll_write_out(cx, Side::Writer)
        )?))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        let driver = &mut inner.driver;
        if driver.conn.is_open() {
            let now = driver.now();
            driver.conn.close(now, CloseCode::NORMAL, "")?;
        }
        Poll::Ready(Ok(std::task::ready!(
            driver.poll_write_out(cx, Side::Writer)
        )?))
    }
}
