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
    OP_BINARY, OP_TEXT, extended_len_bytes, masked_frame, parse_head, payload, payload_len,
    upgrade_request,
};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error>;

const USAGE: &str = "usage: loadgen --addr HOST:PORT [--connections N] [--size BYTES] \
                     [--kind binary|text] [--warmup SECS] [--duration SECS]";

struct Options {
    addr: SocketAddr,
    connections: usize,
    size: usize,
    text: bool,
    warmup: Duration,
    duration: Duration,
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
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Counters shared by the connection tasks (one thread: plain cells).
#[derive(Default)]
struct Shared {
    echoes: Cell<u64>,
    errors: Cell<u64>,
    stop: Cell<bool>,
}

async fn run(options: Options) -> Result<bool, BoxError> {
    let payload = payload(options.size, options.text);
    let opcode = if options.text { OP_TEXT } else { OP_BINARY };
    let frame = Rc::new(masked_frame(opcode, &payload, [0x37, 0xfa, 0x21, 0x3d]));
    let payload = Rc::new(payload);
    let shared = Rc::new(Shared::default());

    // Connect and upgrade every connection before any traffic.
    let mut streams = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let stream = handshake(options.addr)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        streams.push(stream);
    }
    let mut tasks = Vec::with_capacity(streams.len());
    for stream in streams {
        let (frame, payload, shared) = (frame.clone(), payload.clone(), shared.clone());
        tasks.push(tokio::task::spawn_local(async move {
            if let Err(e) = echo_loop(stream, &frame, &payload, opcode, &shared).await {
                if !shared.stop.get() {
                    eprintln!("connection failed: {e}");
                    shared.errors.set(shared.errors.get() + 1);
                }
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

/// Prints a line to stdout at once (xtask times the window by these lines).
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

async fn handshake(addr: SocketAddr) -> Result<BufReader<TcpStream>, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream
        .write_all(upgrade_request(&addr.to_string()).as_bytes())
        .await?;
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    if !status.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {}", status.trim_end()).into());
    }
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err("connection closed during the handshake".into());
        }
        if line == "\r\n" || line == "\n" {
            return Ok(reader);
        }
    }
}

/// Sends `frame`, reads one whole echoed message (possibly fragmented,
/// skipping control frames), checks it, and counts it; until stopped.
async fn echo_loop(
    mut stream: BufReader<TcpStream>,
    frame: &[u8],
    payload: &[u8],
    opcode: u8,
    shared: &Shared,
) -> Result<(), BoxError> {
    let mut message = Vec::with_capacity(payload.len());
    while !shared.stop.get() {
        stream.get_mut().write_all(frame).await?;
        message.clear();
        let mut first_opcode = None;
        loop {
            let mut head = [0; 2];
            stream.read_exact(&mut head).await?;
            let (fin, op, masked, len7) = parse_head(head);
            if masked {
                return Err("the server masked a frame".into());
            }
            let mut ext = [0; 8];
            let ext = &mut ext[..extended_len_bytes(len7)];
            stream.read_exact(ext).await?;
            let len = payload_len(len7, ext) as usize;
            if len > payload.len() - message.len() {
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
        if first_opcode != Some(opcode) || message != payload {
            return Err("the echo differs from the message sent".into());
        }
        shared.echoes.set(shared.echoes.get() + 1);
    }
    Ok(())
}
