//! A WebSocket client on async-std (discontinued upstream; prefer smol).
//!
//! `cargo run --example echo_client_async_std --features async-std -- ws://127.0.0.1:9001`

use fahrbahn::ws::{CloseCode, Message};

fn main() -> Result<(), fahrbahn::Error> {
    async_std::task::block_on(async {
        let url = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
        let mut ws = fahrbahn::async_std::connect(&url).await?;
        for text in ["hello", "from", "fahrbahn"] {
            ws.send(Message::text(text)).await?;
            if let Some(reply) = ws.recv().await {
                eprintln!("echo: {:?}", reply?);
            }
        }
        ws.close(CloseCode::NORMAL, "done").await
    })
}
