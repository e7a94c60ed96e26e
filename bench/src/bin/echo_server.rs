//! `echo_server IMPL ADDR`: a WebSocket echo server for the benchmarks.
//!
//! Every server runs on a single-threaded runtime (tokio's current-thread
//! runtime, smol's `LocalExecutor`, async-std with one executor thread),
//! without permessage-deflate, with `TCP_NODELAY`, echoing text and binary
//! messages. `ceiling` is a hand-written server (raw TCP on tokio's
//! current-thread runtime, one unfragmented frame at a time, no UTF-8
//! check, no HTTP validation): the ceiling of the harness rather than a
//! WebSocket library.
//!
//! `echo_server IMPL ADDR --exit-after N` exits (status 0) once N
//! connections have ended: the instruction counts run the server under
//! callgrind, which writes its counts when the process exits.

#![allow(clippy::print_stdout, reason = "a command line tool")]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use bench::{DEFLATE_SERVERS, SERVERS};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, addr) = match args.as_slice() {
        [name, addr] => (name, addr),
        [name, addr, flag, n] if flag == "--exit-after" => {
            let Ok(n) = n.parse::<usize>() else {
                eprintln!("error: --exit-after: `{n}` is not a count");
                return ExitCode::from(2);
            };
            EXIT_AFTER.store(n, Ordering::Relaxed);
            (name, addr)
        }
        _ => {
            eprintln!(
                "usage: echo_server IMPL ADDR [--exit-after N]   (IMPL: {})",
                SERVERS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("error: `{addr}` is not an address like 127.0.0.1:9001");
        return ExitCode::from(2);
    };
    let result = match name.as_str() {
        "fahrbahn-tokio" => tokio_current_thread(fahrbahn_tokio(addr, plain())),
        "fahrbahn-tokio-deflate" => tokio_current_thread(fahrbahn_tokio(addr, deflate())),
        "fahrbahn-smol-deflate" => fahrbahn_smol(addr, deflate()),
        "fahrbahn-smol" => fahrbahn_smol(addr, plain()),
        "fahrbahn-async-std" => fahrbahn_async_std(addr),
        "tokio-tungstenite" => tokio_current_thread(tungstenite(addr)),
        "fastwebsockets" => tokio_current_thread(fastwebsockets(addr)),
        "tokio-websockets" => tokio_current_thread(tokio_websockets(addr)),
        "ceiling" => tokio_current_thread(ceiling::serve(addr)),
        other => {
            eprintln!(
                "error: unknown server `{other}` ({}, {})",
                SERVERS.join(", "),
                DEFLATE_SERVERS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tokio_current_thread(
    server: impl std::future::Future<Output = Result<(), BoxError>>,
) -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(server)
}

/// `--exit-after`: the number of ended connections to exit after (0: never).
static EXIT_AFTER: AtomicUsize = AtomicUsize::new(0);
static ENDED: AtomicUsize = AtomicUsize::new(0);

/// Called by every connection task when it ends.
fn connection_ended() {
    let limit = EXIT_AFTER.load(Ordering::Relaxed);
    if ENDED.fetch_add(1, Ordering::Relaxed) + 1 == limit {
        std::process::exit(0);
    }
}

fn listening(name: &str, addr: SocketAddr) {
    eprintln!("{name} echo server listening on ws://{addr}");
}

// ----- Fahrbahn ---------------------------------------------------------

/// Echoes every message of one Fahrbahn connection (any runtime).
async fn fahrbahn_echo<S>(mut ws: fahrbahn::ws::WebSocket<S>)
where
    S: futures_util::io::AsyncRead + futures_util::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = ws.recv().await {
        if ws.send(msg).await.is_err() {
            break;
        }
    }
    connection_ended();
}

/// The server configuration without permessage-deflate.
fn plain() -> fahrbahn::ws::ServerConfig {
    fahrbahn::ws::ServerConfig::default()
}

/// The server configuration with permessage-deflate at level 1 (soketto's
/// fixed level), accepting the load generator's offer.
fn deflate() -> fahrbahn::ws::ServerConfig {
    let mut deflate = fahrbahn::core::ws::DeflateConfig::default();
    deflate.level = 1;
    let mut config = fahrbahn::ws::ServerConfig::default();
    config.deflate = Some(deflate);
    config
}

async fn fahrbahn_tokio(
    addr: SocketAddr,
    config: fahrbahn::ws::ServerConfig,
) -> Result<(), BoxError> {
    let listener = fahrbahn::tokio::bind(addr).await?;
    listening("fahrbahn-tokio", addr);
    loop {
        let ws = match fahrbahn::tokio::accept(&listener, config.clone()).await {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("handshake failed: {e}");
                continue;
            }
        };
        tokio::spawn(fahrbahn_echo(ws));
    }
}

fn fahrbahn_smol(addr: SocketAddr, config: fahrbahn::ws::ServerConfig) -> Result<(), BoxError> {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let listener = fahrbahn::smol::bind(addr).await?;
        listening("fahrbahn-smol", addr);
        loop {
            let ws = match fahrbahn::smol::accept(&listener, config.clone()).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("handshake failed: {e}");
                    continue;
                }
            };
            ex.spawn(fahrbahn_echo(ws)).detach();
        }
    }))
}

fn fahrbahn_async_std(addr: SocketAddr) -> Result<(), BoxError> {
    // One executor thread (async-std reads this when its runtime starts).
    if std::env::var_os("ASYNC_STD_THREAD_COUNT").is_none() {
        // SAFETY: nothing else runs yet: no other thread reads or writes
        // the environment.
        unsafe { std::env::set_var("ASYNC_STD_THREAD_COUNT", "1") };
    }
    async_std::task::block_on(async {
        let listener = fahrbahn::async_std::bind(addr).await?;
        listening("fahrbahn-async-std", addr);
        loop {
            let ws =
                match fahrbahn::async_std::accept(&listener, fahrbahn::ws::ServerConfig::default())
                    .await
                {
                    Ok(ws) => ws,
                    Err(e) => {
                        eprintln!("handshake failed: {e}");
                        continue;
                    }
                };
            async_std::task::spawn(fahrbahn_echo(ws));
        }
    })
}

// ----- peers ------------------------------------------------------------

async fn tungstenite(addr: SocketAddr) -> Result<(), BoxError> {
    use futures_util::{SinkExt as _, StreamExt as _};

    let listener = tokio::net::TcpListener::bind(addr).await?;
    listening("tokio-tungstenite", addr);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut ws = match tokio_tungstenite::accept_async(stream).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("handshake failed: {e}");
                    return;
                }
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
            connection_ended();
        });
    }
}

async fn fastwebsockets(addr: SocketAddr) -> Result<(), BoxError> {
    use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};

    async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = FragmentCollector::new(fut.await?);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
    }

    async fn upgrade(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            if let Err(e) = echo(fut).await
                && !matches!(
                    e,
                    WebSocketError::UnexpectedEOF | WebSocketError::IoError(_)
                )
            {
                eprintln!("connection failed: {e}");
            }
            connection_ended();
        });
        Ok(response)
    }

    let listener = tokio::net::TcpListener::bind(addr).await?;
    listening("fastwebsockets", addr);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = http1::Builder::new()
                .serve_connection(io, service_fn(upgrade))
                .with_upgrades();
            if let Err(e) = conn.await {
                eprintln!("http connection failed: {e}");
            }
        });
    }
}

async fn tokio_websockets(addr: SocketAddr) -> Result<(), BoxError> {
    use futures_util::{SinkExt as _, StreamExt as _};

    let listener = tokio::net::TcpListener::bind(addr).await?;
    listening("tokio-websockets", addr);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut ws = match tokio_websockets::ServerBuilder::new().accept(stream).await {
                Ok((_request, ws)) => ws,
                Err(e) => {
                    eprintln!("handshake failed: {e}");
                    return;
                }
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
            connection_ended();
        });
    }
}

// ----- the harness ceiling ----------------------------------------------

mod ceiling {
    use std::net::SocketAddr;

    use bench::{OP_CLOSE, apply_mask, extended_len_bytes, parse_head, payload_len, write_header};
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpStream;

    use super::BoxError;

    /// Raw TCP on tokio's current-thread runtime, one task per connection.
    pub(super) async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        super::listening("ceiling", addr);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = connection(stream).await
                    && e.kind() != std::io::ErrorKind::UnexpectedEof
                    && e.kind() != std::io::ErrorKind::ConnectionReset
                {
                    eprintln!("connection failed: {e}");
                }
                super::connection_ended();
            });
        }
    }

    async fn connection(stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let mut stream = BufReader::with_capacity(64 << 10, stream);
        // The upgrade request: only the key matters.
        let mut key = None;
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("sec-websocket-key")
            {
                key = Some(value.trim().to_owned());
            }
        }
        let key = key.ok_or_else(|| std::io::Error::other("no Sec-WebSocket-Key"))?;
        let accept = fahrbahn_core::ws::accept_key(&key);
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.get_mut().write_all(response.as_bytes()).await?;
        let mut out = Vec::with_capacity(64 << 10);
        loop {
            let mut head = [0; 2];
            stream.read_exact(&mut head).await?;
            let (_fin, opcode, masked, len7) = parse_head(head);
            let mut ext = [0; 8];
            let ext = &mut ext[..extended_len_bytes(len7)];
            stream.read_exact(ext).await?;
            let len = payload_len(len7, ext) as usize;
            let mut key = [0; 4];
            if masked {
                stream.read_exact(&mut key).await?;
            }
            out.clear();
            write_header(&mut out, opcode, len, None);
            let start = out.len();
            out.resize(start + len, 0);
            stream.read_exact(&mut out[start..]).await?;
            if masked {
                apply_mask(&mut out[start..], key);
            }
            stream.get_mut().write_all(&out).await?;
            if opcode == OP_CLOSE {
                return Ok(());
            }
        }
    }
}
