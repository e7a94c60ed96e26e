//! Accepting WebSocket connections concurrently: each accepted stream runs
//! its server handshake in a task of its own, so a client that connects
//! and then says nothing delays nobody else.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fahrbahn_core::ws::ServerConfig;
use futures_channel::{mpsc, oneshot};
use futures_core::Stream;

use crate::error::Error;
use crate::runtime::{AsyncTimer, BoxFuture, ExecutorHandle, Runtime, TcpListener};
use crate::websocket::WebSocket;

/// Handshakes that may run at once by default (see
/// [`Incoming::set_max_pending`]).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;

/// How long to wait before accepting again after the listener failed
/// (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

type Accepting<S> = BoxFuture<'static, io::Result<(S, SocketAddr)>>;

/// The WebSocket connections arriving on a listener, each handshaken in
/// its own task: a [`Stream`] of finished [`WebSocket`]s (also
/// [`next`](Self::next)).
///
/// Up to [`max_pending`](Self::set_max_pending) handshakes (default
/// [`DEFAULT_MAX_PENDING_HANDSHAKES`], 256) run at once, each bounded by
/// the configuration's `Timeouts::open` (10 s by default); when that many
/// are pending and another connection arrives, the oldest pending
/// handshake is dropped to make room for it, so that clients holding
/// handshakes open (silent or half-sent requests) cannot keep a new
/// client waiting for their timeouts: a handshake that completes within
/// the time `max_pending` new connections take to arrive always gets
/// through. A handshake that fails, times out or is dropped is logged
/// (at debug level); only errors of the listener itself are yielded,
/// after which accepting pauses for 50 ms.
///
/// The handshakes run in tasks spawned on the runtime, so the connections
/// come out in the order their handshakes finish, not the order they
/// were accepted.
///
/// ```no_run
/// # async fn demo<R: fahrbahn_rt::Runtime>(rt: R) -> Result<(), fahrbahn_rt::Error> {
/// use fahrbahn_rt::{Incoming, ServerConfig};
/// let listener = rt.bind_tcp("127.0.0.1:9001".parse().unwrap()).await?;
/// let mut incoming = Incoming::new(&rt, listener, ServerConfig::default());
/// while let Some(next) = incoming.next().await {
///     let Ok(mut ws) = next else { continue };
///     rt.spawn(Box::pin(async move {
///         while let Some(Ok(msg)) = ws.recv().await {
///             if ws.send(msg).await.is_err() {
///                 break;
///             }
///         }
///     }));
/// }
/// # Ok(()) }
/// ```
pub struct Incoming<L: TcpListener> {
    listener: Arc<L>,
    config: ServerConfig,
    exec: ExecutorHandle,
    /// The accept in progress.
    accepting: Option<Accepting<L::Stream>>,
    /// After a listener error: accept again when this fires.
    backoff: Option<Pin<Box<dyn AsyncTimer>>>,
    /// Finished handshakes by id (`None`: failed or dropped); at most
    /// `max_pending` live tasks exist, plus the dropped ones that have not
    /// ended yet, so about that many results wait here.
    done_tx: mpsc::UnboundedSender<Done<L::Stream>>,
    done_rx: mpsc::UnboundedReceiver<Done<L::Stream>>,
    /// The handshakes started and not yet taken from `done_rx` nor
    /// dropped, oldest first, by id; dropping the sender ends that task.
    live: VecDeque<(u64, oneshot::Sender<()>)>,
    /// The id of the next handshake.
    next_id: u64,
    max_pending: usize,
}

/// A handshake task's result: its id, the connection if it succeeded.
type Done<S> = (u64, Option<WebSocket<S>>);

impl<L: TcpListener> fmt::Debug for Incoming<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("pending", &self.live.len())
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

impl<L: TcpListener> Incoming<L> {
    /// Accepts on `listener`, answering each handshake by `config`.
    pub fn new<R: Runtime>(runtime: &R, listener: L, config: ServerConfig) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded();
        Self {
            listener: Arc::new(listener),
            config,
            exec: runtime.handle(),
            accepting: None,
            backoff: None,
            done_tx,
            done_rx,
            live: VecDeque::new(),
            next_id: 0,
            max_pending: DEFAULT_MAX_PENDING_HANDSHAKES,
        }
    }

    /// Sets how many handshakes may run at once (at least 1; default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`]). While that many are pending,
    /// each new connection makes the oldest pending handshake be dropped.
    pub fn set_max_pending(&mut self, max: usize) {
        self.max_pending = max.max(1);
    }

    /// Handshakes running, or finished and not yet taken (not counting
    /// those dropped to make room, which end at their next poll).
    pub fn pending(&self) -> usize {
        self.live.len()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection whose handshake finished; `Err` when the
    /// listener failed (accepting resumes after a pause). Never `None`.
    pub async fn next(&mut self) -> Option<Result<WebSocket<L::Stream>, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn start_handshake(&mut self, stream: L::Stream) {
        if self.live.len() >= self.max_pending {
            if let Some((id, _dropped)) = self.live.pop_front() {
                log::debug!(
                    "{} handshakes pending: dropping the oldest ({id})",
                    self.max_pending
                );
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let (keep, mut dropped) = oneshot::channel::<()>();
        self.live.push_back((id, keep));
        let exec = self.exec.clone();
        let config = self.config.clone();
        let done = self.done_tx.clone();
        self.exec.spawn(Box::pin(async move {
            let mut handshake = std::pin::pin!(WebSocket::accept_on(exec, stream, config));
            let result = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = handshake.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                // Ready only when the Incoming dropped our sender.
                match Pin::new(&mut dropped).poll(cx) {
                    Poll::Ready(_) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            let result = match result {
                Some(Ok(ws)) => Some(ws),
                Some(Err(e)) => {
                    log::debug!("WebSocket handshake failed: {e}");
                    None
                }
                None => None,
            };
            // The receiver is gone when the Incoming was dropped.
            let _ = done.unbounded_send((id, result));
        }));
    }
}

impl<L: TcpListener> Stream for Incoming<L> {
    type Item = Result<WebSocket<L::Stream>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            // 1. Finished handshakes first.
            while let Poll::Ready(Some((id, result))) = Pin::new(&mut this.done_rx).poll_next(cx) {
                // Not there if it was dropped to make room.
                this.live.retain(|(live, _)| *live != id);
                if let Some(ws) = result {
                    return Poll::Ready(Some(Ok(ws)));
                }
            }
            // 2. Accept more; when `max_pending` handshakes run, the new
            // connection takes the place of the oldest.
            if let Some(timer) = &mut this.backoff {
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.backoff = None;
            }
            let accepting = this.accepting.get_or_insert_with(|| {
                let listener = this.listener.clone();
                Box::pin(async move { listener.accept().await })
            });
            match accepting.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => {
                    this.accepting = None;
                    match result {
                        Ok((stream, _)) => this.start_handshake(stream),
                        Err(e) => {
                            log::warn!("accept failed: {e}");
                            let at = this.exec.now() + ACCEPT_BACKOFF;
                            this.backoff = Some(this.exec.new_timer(at));
                            return Poll::Ready(Some(Err(Error::Io(e))));
                        }
                    }
                }
            }
        }
    }
}
