//! The quickest look at Fahrbahn: an echo server and a client in one
//! process, on a free loopback port, with permessage-deflate. Exits 0.
//!
//! `cargo run --example echo`

use fahrbahn::ws::{ClientConfig, CloseCode, DeflateConfig, Message, ServerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), fahrbahn::Error> {
    let listener = fahrbahn::tokio::bind("127.0.0.1:0".parse().expect("valid address")).await?;
    let addr = fahrbahn::runtime::TcpListener::local_addr(&listener)?;
    eprintln!("echo server listening on ws://{addr}");

    let server = tokio::spawn(async move {
        let mut config = ServerConfig::default();
        config.deflate = Some(DeflateConfig::default());
        // Each handshake runs in its own task; this server takes one client.
        let mut incoming = fahrbahn::tokio::incoming(listener, config);
        let mut ws = incoming.next().await.expect("a listener never ends")?;
        while let Some(msg) = ws.recv().await {
            ws.send(msg?).await?;
        }
        eprintln!(
            "server: client closed with {:?}",
            ws.close_info().map(|c| c.code)
        );
        Ok::<_, fahrbahn::Error>(())
    });

    let mut config = ClientConfig::default();
    config.deflate = Some(DeflateConfig::default());
    let mut ws = fahrbahn::tokio::connect_with(&format!("ws://{addr}/echo"), config).await?;
    eprintln!(
        "client: connected, extensions: {}",
        ws.handshake_info().extensions.as_deref().unwrap_or("none")
    );
    for message in [
        Message::text("Hello, Fahrbahn!"),
        Message::binary(vec![0xF0, 0x9F, 0x9A, 0x97]),
        Message::text("κόσμε ".repeat(1000)),
    ] {
        let len = message.len();
        ws.send(message.clone()).await?;
        match ws.recv().await {
            Some(Ok(echo)) if echo == message => eprintln!("client: echoed {len} bytes intact"),
            other => panic!("unexpected reply: {other:?}"),
        }
    }
    ws.close(CloseCode::NORMAL, "bye").await?;
    server.await.expect("server task")?;
    eprintln!("done");
    Ok(())
}
