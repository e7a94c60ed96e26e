//! The program the Autobahn|Testsuite tests: an echo server or an echo
//! client, on any of the three runtimes, with permessage-deflate.
//!
//! ```text
//! autobahn_testee server --runtime tokio --port 9001
//! autobahn_testee client --runtime smol --url ws://127.0.0.1:9001 --agent fahrbahn-smol
//! ```
//! `cargo xtask autobahn` builds and runs it.

use std::net::SocketAddr;

use fahrbahn::Error;
use fahrbahn::runtime::{Runtime, TcpListener as _};
use fahrbahn::ws::{ClientConfig, DeflateConfig, Limits, ServerConfig, WebSocket};

fn usage() -> ! {
    eprintln!(
        "usage: autobahn_testee server --runtime tokio|smol|async-std --port PORT\n       \
         autobahn_testee client --runtime tokio|smol|async-std --url URL --agent NAME"
    );
    std::process::exit(2)
}

struct Args {
    mode: String,
    runtime: String,
    port: u16,
    url: String,
    agent: String,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_else(|| usage());
    let mut args = Args {
        mode,
        runtime: "tokio".into(),
        port: 9001,
        url: "ws://127.0.0.1:9001".into(),
        agent: "fahrbahn".into(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--runtime" => args.runtime = value,
            "--port" => args.port = value.parse().unwrap_or_else(|_| usage()),
            "--url" => args.url = value,
            "--agent" => args.agent = value,
            _ => usage(),
        }
    }
    args
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_frame_size = 64 << 20;
    limits.max_message_size = 64 << 20;
    limits
}

async fn echo<S: fahrbahn::runtime::AsyncRead + fahrbahn::runtime::AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
) {
    while let Some(Ok(msg)) = ws.recv().await {
        if ws.send(msg).await.is_err() {
            break;
        }
    }
}

async fn serve<R: Runtime>(rt: R, port: u16) -> Result<(), Error> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listener = rt.bind_tcp(addr).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {}", listener.local_addr()?);
    }
    let mut config = ServerConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config.limits = limits();
    // Every handshake runs in its own task.
    let mut incoming = fahrbahn::ws::Incoming::new(&rt, listener, config);
    while let Some(next) = incoming.next().await {
        match next {
            Ok(ws) => rt.spawn(Box::pin(echo(ws))),
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn client_config() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.deflate = Some(DeflateConfig::default());
    config.limits = limits();
    config
}

async fn run_client<R: Runtime>(rt: R, base: String, agent: String) -> Result<(), Error> {
    let mut ws = fahrbahn::ws::connect(&rt, &format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.recv().await {
        Some(Ok(m)) => String::from_utf8_lossy(m.as_bytes())
            .trim()
            .parse()
            .unwrap_or(0),
        _ => 0,
    };
    drop(ws);
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match fahrbahn::ws::connect_with(&rt, &url, client_config()).await {
            Ok(ws) => echo(ws).await,
            Err(e) => eprintln!("case {case}: {e}"),
        }
    }
    let mut ws = fahrbahn::ws::connect(&rt, &format!("{base}/updateReports?agent={agent}")).await?;
    while let Some(Ok(_)) = ws.recv().await {}
    Ok(())
}

async fn main_on<R: Runtime>(rt: R, args: Args) -> Result<(), Error> {
    match args.mode.as_str() {
        "server" => serve(rt, args.port).await,
        "client" => run_client(rt, args.url.trim_end_matches('/').to_owned(), args.agent).await,
        _ => usage(),
    }
}

fn main() {
    let args = parse_args();
    let result = match args.runtime.as_str() {
        "tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(main_on(fahrbahn::tokio::TokioRuntime, args)),
        "smol" => smol::block_on(main_on(fahrbahn::smol::SmolRuntime, args)),
        "async-std" => {
            async_std::task::block_on(main_on(fahrbahn::async_std::AsyncStdRuntime, args))
        }
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
