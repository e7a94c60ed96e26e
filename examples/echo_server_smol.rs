//! A WebSocket echo server on smol.
//!
//! `cargo run --example echo_server_smol --features smol -- 127.0.0.1:9001`

use fahrbahn::ws::{DeflateConfig, ServerConfig};

fn main() -> Result<(), fahrbahn::Error> {
    smol::block_on(async {
        let addr = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "127.0.0.1:9001".into());
        let listener =
            fahrbahn::smol::bind(addr.parse().expect("an address like 127.0.0.1:9001")).await?;
        eprintln!("echo server listening on ws://{addr}");
        let mut config = ServerConfig::default();
        config.deflate = Some(DeflateConfig::default());
        // Every handshake runs in its own task: a client that connects and
        // says nothing delays nobody.
        let mut incoming = fahrbahn::smol::incoming(listener, config);
        while let Some(next) = incoming.next().await {
            let mut ws = match next {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    continue;
                }
            };
            smol::spawn(async move {
                while let Some(Ok(msg)) = ws.recv().await {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
        Ok(())
    })
}
