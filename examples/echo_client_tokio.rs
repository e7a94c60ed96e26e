//! A WebSocket client on tokio: sends a few messages to an echo server and
//! prints the replies, then closes gracefully.
//!
//! `cargo run --example echo_client_tokio -- ws://127.0.0.1:9001`

use fahrbahn::ws::{CloseCode, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), fahrbahn::Error> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let mut ws = fahrbahn::tokio::connect(&url).await?;
    for text in ["hello", "from", "fahrbahn"] {
        ws.send(Message::text(text)).await?;
        if let Some(reply) = ws.recv().await {
            eprintln!("echo: {:?}", reply?);
        }
    }
    ws.close(CloseCode::NORMAL, "done").await
}
