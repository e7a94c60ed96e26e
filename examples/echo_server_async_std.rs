//! A WebSocket echo server on async-std (discontinued upstream; prefer smol).
//!
//! `cargo run --example echo_server_async_std --features async-std -- 127.0.0.1:9001`

use fahrbahn::ws::{DeflateConfig, ServerConfig};

fn main() -> Result<(), fahrbahn::Error> {
    async_std::task::block_on(async {
        let addr = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "127.0.0.1:9001".into());
        let listener =
            fahrbahn::async_std::bind(addr.parse().expect("an address like 127.0.0.1:9001"))
                .await?;
        eprintln!("echo server listening on ws://{addr}");
        loop {
            let mut config = ServerConfig::default();
            config.deflate = Some(DeflateConfig::default());
            let mut ws = match fahrbahn::async_std::accept(&listener, config).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("handshake failed: {e}");
                    continue;
                }
            };
            async_std::task::spawn(async move {
                while let Some(Ok(msg)) = ws.recv().await {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    })
}
