//! A simulated network for `fahrbahn-rt`'s own tests: a [`Runtime`] whose
//! TCP connections are in-memory pipes with a bounded buffer
//! (`tokio::io::duplex`), on tokio's clock. With `start_paused = true` the
//! clock is simulated: it jumps to the next timer when every task is idle,
//! so deadlines of seconds pass in no wall time, deterministically.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fahrbahn_rt::{AsyncTimer, BoxFuture, Executor, Runtime, TcpListener};
use fahrbahn_tokio::{TokioIo, TokioRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

/// One end of a simulated TCP connection.
pub(crate) type Pipe = TokioIo<DuplexStream>;

/// The simulated network: listeners by port.
#[derive(Clone, Debug, Default)]
pub(crate) struct SimNet {
    listeners: Arc<Mutex<HashMap<u16, mpsc::UnboundedSender<Pipe>>>>,
    next_port: Arc<Mutex<u16>>,
}

/// Bytes a pipe buffers in each direction before the writer must wait.
pub(crate) const PIPE_BUFFER: usize = 16 * 1024;

impl SimNet {
    /// A raw client connection to `port`: the test plays the client.
    pub(crate) fn dial(&self, port: u16) -> io::Result<DuplexStream> {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        let listeners = self.listeners.lock().unwrap();
        let tx = listeners
            .get(&port)
            .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        tx.send(TokioIo(server))
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(client)
    }

    /// A listener on `port` that the test serves by hand.
    pub(crate) fn listen(&self, port: u16) -> mpsc::UnboundedReceiver<Pipe> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners.lock().unwrap().insert(port, tx);
        rx
    }
}

impl Executor for SimNet {
    fn now(&self) -> Instant {
        TokioRuntime.now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        TokioRuntime.new_timer(deadline)
    }

    fn spawn(&self, future: BoxFuture<'static, ()>) {
        TokioRuntime.spawn(future);
    }
}

/// A bound simulated listener.
#[derive(Debug)]
pub(crate) struct SimListener {
    port: u16,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pipe>>,
}

impl TcpListener for SimListener {
    type Stream = Pipe;

    fn accept(&self) -> BoxFuture<'_, io::Result<(Pipe, SocketAddr)>> {
        Box::pin(async move {
            match self.rx.lock().await.recv().await {
                Some(pipe) => Ok((pipe, SocketAddr::from(([10, 0, 0, 2], 40000)))),
                None => Err(io::ErrorKind::NotConnected.into()),
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

impl Runtime for SimNet {
    type TcpStream = Pipe;
    type TcpListener = SimListener;

    fn connect_tcp(&self, _host: &str, port: u16) -> BoxFuture<'static, io::Result<Pipe>> {
        let dialed = self.dial(port).map(TokioIo);
        Box::pin(async move { dialed })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<SimListener>> {
        let port = if addr.port() == 0 {
            let mut next = self.next_port.lock().unwrap();
            *next += 1;
            10_000 + *next
        } else {
            addr.port()
        };
        let rx = self.listen(port);
        Box::pin(async move {
            Ok(SimListener {
                port,
                rx: tokio::sync::Mutex::new(rx),
            })
        })
    }
}

/// A RawSocket JSON client handshake (maximum length exponent 15).
pub(crate) const RAWSOCKET_JSON_HELLO: [u8; 4] = [0x7F, 0xF1, 0, 0];

/// Writes one RawSocket message frame.
pub(crate) async fn send_frame(io: &mut DuplexStream, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    io.write_all(&[0, len[1], len[2], len[3]]).await.unwrap();
    io.write_all(payload).await.unwrap();
}

/// Reads one RawSocket frame's payload (`None` at end of stream).
pub(crate) async fn read_frame(io: &mut DuplexStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await.ok()?;
    let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await.ok()?;
    Some(payload)
}

/// Reads until end of stream; returns what was read.
pub(crate) async fn read_to_end(io: &mut DuplexStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = io.read_to_end(&mut all).await;
    all
}
