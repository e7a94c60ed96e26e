//! A WAMP subscriber: prints every event on `com.example.topic`, its
//! payload as JSON, until Ctrl-C. The subscription is a component's: it
//! goes on across router restarts, and says where events may be missing.
//!
//! `cargo run --example subscriber -- ws://127.0.0.1:8080/ws realm1`

use fahrbahn::wamp::component::{Component, SubscriptionItem};

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let component = fahrbahn::tokio::component(Component::builder(&realm).transport(url));
    let mut events = component.subscribe("com.example.topic").await?;
    component.joined().await?;
    eprintln!("subscribed to com.example.topic; Ctrl-C to stop");
    loop {
        tokio::select! {
            item = events.next() => match item {
                Some(SubscriptionItem::Event(e)) => eprintln!(
                    "event {}: args {} kwargs {}",
                    e.publication,
                    fahrbahn::wamp::Json(&e.args),
                    fahrbahn::wamp::Json(&e.kwargs)
                ),
                Some(SubscriptionItem::Gap) => {
                    eprintln!("(rejoined: events published meanwhile are missing)")
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    component.stop().await;
    Ok(())
}
