//! A WAMP subscriber: prints every event on `com.example.topic`, its
//! payload as JSON, until Ctrl-C.
//!
//! `cargo run --example subscriber -- ws://127.0.0.1:8080/ws realm1`

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let session = fahrbahn::tokio::session(&url, &realm).await?;
    let mut events = session.subscribe("com.example.topic").await?;
    eprintln!("subscribed to com.example.topic; Ctrl-C to stop");
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(e) => eprintln!(
                    "event {}: args {} kwargs {}",
                    e.publication,
                    fahrbahn::wamp::Json(&e.args),
                    fahrbahn::wamp::Json(&e.kwargs)
                ),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    session.leave().await
}
