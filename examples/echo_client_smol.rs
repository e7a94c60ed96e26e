//! A WebSocket client on smol.
//!
//! `cargo run --example echo_client_smol --features smol -- ws://127.0.0.1:9001`

use fahrbahn::ws::{CloseCode, Message};

fn main() -> Result<(), fahrbahn::Error> {
    smol::block_on(async {
        let url = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
        let mut ws = fahrbahn::smol::connect(&url).await?;
        for text in ["hello", "from", "fahrbahn"] {
            ws.send(Message::text(text)).await?;
            if let Some(reply) = ws.recv().await {
                eprintln!("echo: {:?}", reply?);
            }
        }
        ws.close(CloseCode::NORMAL, "done").await
    })
}
