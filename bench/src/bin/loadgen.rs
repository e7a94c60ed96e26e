//! `loadgen`: a closed-loop WebSocket echo load generator.
//!
//! ```text
//! loadgen --addr 127.0.0.1:9001 --connections 16 --size 1024 --kind binary \
//!         --warmup 1 --duration 10
//! ```
//!
//! Opens N connections (hand-written client: fixed upgrade request,
//! precomputed masked frame), each of which keeps one message in flight:
//! send, read the whole echo, check it, send again. After the warm-up it
//! prints `window start`, counts the echoes over the window, prints
//! `window end` and then one line
//! `result messages=M secs=S rate=R errors=E` (rate in messages per second).
//!
//! With `--idle`, it only opens and upgrades the N connections, prints
//! `idle open connections=N`, and keeps them open and silent for the
//! duration (the xtask reads the server's resident memory meanwhile).
//!
//! With `--messages M`, every connection echoes exactly M messages and is
//! then closed (without a close frame: the TCP connection ends), and the
//! line `result messages=..` follows; no window lines are printed. This is
//! the fixed workload of the instruction counts.
//!
//! With `--deflate`, it offers permessage-deflate (no context takeover),
//! sends JSON text compressed once up front, and inflates and checks every
//! echo.
//!
//! It runs on tokio's current-thread runtime: one OS thread, so pinning it
//! to one core bounds its share of the machine. Exit status 1 when a
//! connection failed or nothing was echoed.

#![allow(clippy::print_stdout, reason = "a command line tool")]

use std::cell::Cell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bench::{
    DEFLATE_OFFER, OP_BINARY, OP_TEXT, extended_len_bytes, json_payload, masked_frame, parse_head,
    payload, payload_len, upgrade_request_with,
};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error>;

const USAGE: &str = "usage: loadgen --addr HOST:PORT [--connections N] [--size BYTES] \
                     [--kind binary|text] [--warmup SECS] [--duration SECS] \
                     [--idle | --messages M] [--deflate]";

struct Options {
    addr: SocketAddr,
    connections: usize,
    size: usize,
    text: bool,
    warmup: Duration,
    duration: Duration,
    /// Only open the connections and hold them.
    idle: bool,
    /// Echo exactly this many messages per connection, then close.
    messages: Option<u64>,
    /// Offer permessage-deflate and send compressed JSON text.
    deflate: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut addr = None;
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 9001)),
        connections: 16,
        size: 1024,
        text: false,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(10),
        idle: false,
        messages: None,
        deflate: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("bad number of seconds `{v}`"))
        };
        match flag.as_str() {
            "--addr" => addr = Some(value()?.parse().map_err(|e| format!("--addr: {e}"))?),
            "--connections" => {
                options.connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?;
            }
            "--size" => options.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--kind" => {
                options.text = match value()?.as_str() {
                    "text" => true,
                    "binary" => false,
                    other => return Err(format!("--kind: `{other}` is not binary or text")),
                };
            }
            "--warmup" => options.warmup = secs(value()?)?,
            "--duration" => options.duration = secs(value()?)?,
            "--idle" => options.idle = true,
            "--deflate" => options.deflate = true,
            "--messages" => {
                let m = value()?;
                options.messages = Some(
                    m.parse()
                        .ok()
                        .filter(|m| *m > 0)
                        .ok_or_else(|| format!("--messages: bad count `{m}`"))?,
                );
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    options.addr = addr.ok_or("--addr is required")?;
    if options.connections == 0 || options.duration.is_zero() {
        return Err("--connections and --duration must be positive".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    bench::run_local(async move {
        let ok = if options.idle {
            hold_idle(options).await?
        } else if let Some(messages) = options.messages {
            run_count(options, messages).await?
        } else {
            run(options).await?
        };
        Ok::<_, BoxError>(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Counters shared by the connection tasks (one thread: plain cells).
#[derive(Default)]
struct Shared {
    echoes: Cell<u64>,
    errors: Cell<u64>,
    stop: Cell<bool>,
}

async fn run(options: Options) -> Result<bool, BoxError> {
    let work = Rc::new(Workload::new(&options));
    let shared = Rc::new(Shared::default());

    // Connect and upgrade every connection before any traffic.
    let mut streams = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let stream = handshake(options.addr, 64 << 10, options.deflate)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        streams.push(stream);
    }
    let mut tasks = Vec::with_capacity(streams.len());
    for stream in streams {
        let (work, shared) = (work.clone(), shared.clone());
        tasks.push(tokio::task::spawn_local(async move {
            if let Err(e) = echo_loop(stream, &work, &shared, None).await
                && !shared.stop.get()
            {
                eprintln!("connection failed: {e}");
                shared.errors.set(shared.errors.get() + 1);
            }
        }));
    }

    tokio::time::sleep(options.warmup).await;
    let (start, start_count) = (Instant::now(), shared.echoes.get());
    say("window start");
    tokio::time::sleep(options.duration).await;
    let (secs, count) = (start.elapsed().as_secs_f64(), shared.echoes.get());
    say("window end");
    shared.stop.set(true);
    for task in tasks {
        task.abort();
    }
    let messages = count - start_count;
    let errors = shared.errors.get();
    say(&format!(
        "result messages={messages} secs={secs:.3} rate={:.1} errors={errors}",
        messages as f64 / secs
    ));
    Ok(errors == 0 && messages > 0)
}

/// `--idle`: opens the connections, says so, and holds them.
async fn hold_idle(options: Options) -> Result<bool, BoxError> {
    let mut streams = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let stream = handshake(options.addr, 1 << 10, options.deflate)
            .await
            .map_err(|e| format!("connection {i} of {}: {e}", options.connections))?;
        streams.push(stream);
    }
    say(&format!("idle open connections={}", streams.len()));
    tokio::time::sleep(options.duration).await;
    Ok(true)
}

/// `--messages M`: every connection echoes M messages, then closes.
async fn run_count(options: Options, messages: u64) -> Result<bool, BoxError> {
    let work = Rc::new(Workload::new(&options));
    let shared = Rc::new(Shared::default());
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let stream = handshake(options.addr, 64 << 10, options.deflate)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        let (work, shared) = (work.clone(), shared.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let result = echo_loop(stream, &work, &shared, Some(messages));
            if let Err(e) = result.await {
                eprintln!("connection failed: {e}");
                shared.errors.set(shared.errors.get() + 1);
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let (count, errors) = (shared.echoes.get(), shared.errors.get());
    say(&format!(
        "result messages={count} secs={secs:.3} rate={:.1} errors={errors}",
        count as f64 / secs
    ));
    Ok(errors == 0 && count == messages * options.connections as u64)
}

/// Prints a line to stdout at once (xtask times the window by these lines).
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// What every connection sends and expects back.
struct Workload {
    /// The message as sent (uncompressed).
    payload: Vec<u8>,
    /// The whole masked frame, compressed with `--deflate`.
    frame: Vec<u8>,
    opcode: u8,
}

impl Workload {
    fn new(options: &Options) -> Self {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        if options.deflate {
            let payload = json_payload(options.size);
            let mut frame = masked_frame(OP_TEXT, &deflate_message(&payload), key);
            frame[0] |= RSV1;
            return Self {
                payload,
                frame,
                opcode: OP_TEXT,
            };
        }
        let payload = payload(options.size, options.text);
        let opcode = if options.text { OP_TEXT } else { OP_BINARY };
        let frame = masked_frame(opcode, &payload, key);
        Self {
            payload,
            frame,
            opcode,
        }
    }
}

/// The RSV1 bit of the first header byte: a compressed message.
const RSV1: u8 = 0x40;

/// Raw deflate of one message without context takeover, with the trailing
/// `00 00 ff ff` removed (RFC 7692 section 7.2.1).
fn deflate_message(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut z = Compress::new(Compression::new(1), false);
    loop {
        let consumed = z.total_in() as usize;
        out.reserve(4096);
        z.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .expect("deflate into a growing buffer");
        if z.total_in() as usize == data.len() && out.ends_with(&[0, 0, 0xff, 0xff]) {
            break;
        }
    }
    out.truncate(out.len() - 4);
    out
}

/// Inflates one compressed message into `out` (cleared first).
fn inflate_message(z: &mut Decompress, data: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
    out.clear();
    for input in [data, &[0, 0, 0xff, 0xff][..]] {
        let start = z.total_in();
        while ((z.total_in() - start) as usize) < input.len() {
            let consumed = (z.total_in() - start) as usize;
            out.reserve(4096);
            let before = z.total_out();
            z.decompress_vec(&input[consumed..], out, FlushDecompress::Sync)?;
            if z.total_out() == before && (z.total_in() - start) as usize == consumed {
                return Err("inflating the echo made no progress".into());
            }
        }
    }
    Ok(())
}

async fn handshake(
    addr: SocketAddr,
    buffer: usize,
    deflate: bool,
) -> Result<BufReader<TcpStream>, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let offer = deflate.then_some(DEFLATE_OFFER);
    stream
        .write_all(upgrade_request_with(&addr.to_string(), offer).as_bytes())
        .await?;
    let mut reader = BufReader::with_capacity(buffer, stream);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {}", status.trim_end()).into());
    }
    let mut line = String::new();
    let mut agreed = false;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err("connection closed during the handshake".into());
        }
        if line == "\r\n" || line == "\n" {
            if deflate && !agreed {
                return Err("the server did not accept permessage-deflate".into());
            }
            return Ok(reader);
        }
        let lower = line.to_ascii_lowercase();
        agreed |=
            lower.starts_with("sec-websocket-extensions:") && lower.contains("permessage-deflate");
    }
}

/// Sends `frame`, reads one whole echoed message (possibly fragmented,
/// skipping control frames), checks it, and counts it; until stopped or,
/// with a `limit`, until that many were echoed.
async fn echo_loop(
    mut stream: BufReader<TcpStream>,
    work: &Workload,
    shared: &Shared,
    limit: Option<u64>,
) -> Result<(), BoxError> {
    let (frame, payload, opcode) = (&work.frame[..], &work.payload[..], work.opcode);
    let mut message = Vec::with_capacity(payload.len());
    let mut inflater = Decompress::new(false);
    let mut inflated = Vec::new();
    let mut echoed = 0;
    while !shared.stop.get() && limit.is_none_or(|limit| echoed < limit) {
        stream.get_mut().write_all(frame).await?;
        message.clear();
        let mut first_opcode = None;
        let mut compressed = false;
        loop {
            let mut head = [0; 2];
            stream.read_exact(&mut head).await?;
            let (fin, op, masked, len7) = parse_head(head);
            if first_opcode.is_none() && op < 0x8 {
                compressed = head[0] & RSV1 != 0;
            }
            if masked {
                return Err("the server masked a frame".into());
            }
            let mut ext = [0; 8];
            let ext = &mut ext[..extended_len_bytes(len7)];
            stream.read_exact(ext).await?;
            let len = payload_len(len7, ext) as usize;
            if !compressed && len > payload.len() - message.len() {
                return Err(format!("echo longer than the {} bytes sent", payload.len()).into());
            }
            let start = message.len();
            message.resize(start + len, 0);
            stream.read_exact(&mut message[start..]).await?;
            if op >= 0x8 {
                // A control frame (ping, pong, close) between fragments.
                message.truncate(start);
                if op == 0x8 {
                    return Err("the server closed the connection".into());
                }
                continue;
            }
            first_opcode.get_or_insert(op);
            if fin {
                break;
            }
        }
        let got = if compressed {
            inflate_message(&mut inflater, &message, &mut inflated)?;
            &inflated[..]
        } else {
            &message[..]
        };
        if first_opcode != Some(opcode) || got != payload {
            return Err("the echo differs from the message sent".into());
        }
        shared.echoes.set(shared.echoes.get() + 1);
        echoed += 1;
    }
    Ok(())
}
