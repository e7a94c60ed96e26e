//! A WAMP publisher: publishes events to `com.example.topic` (see the
//! `subscriber` example) on a reconnecting component, each acknowledged
//! by the router. Restart the router under it: publications wait for the
//! rejoin (up to 10 s) or fail with a typed error.
//!
//! `cargo run --example publisher -- ws://127.0.0.1:8080/ws realm1 [count]`

use fahrbahn::wamp::component::Component;
use fahrbahn::wamp::kwargs;

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let count: i64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let component = fahrbahn::tokio::component(Component::builder(&realm).transport(url));
    component.joined().await?;
    for n in 0..count {
        let published = component
            .publish_with(
                "com.example.topic",
                vec![format!("hello #{n}").into()],
                kwargs([("n", n.into())]),
                kwargs([("acknowledge", true.into())]),
            )
            .await;
        match published {
            Ok(()) => eprintln!("published hello #{n}"),
            Err(e) => eprintln!("hello #{n} not published: {e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    component.stop().await;
    Ok(())
}
