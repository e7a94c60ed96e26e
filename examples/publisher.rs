//! A WAMP publisher: publishes five events to `com.example.topic` (see the
//! `subscriber` example), each acknowledged by the router.
//!
//! `cargo run --example publisher -- ws://127.0.0.1:8080/ws realm1`

use fahrbahn::wamp::kwargs;

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let session = fahrbahn::tokio::session(&url, &realm).await?;
    for n in 0..5 {
        session
            .publish_with(
                "com.example.topic",
                vec![format!("hello #{n}").into()],
                kwargs([("n", n.into())]),
                kwargs([("acknowledge", true.into())]),
            )
            .await?;
        eprintln!("published hello #{n}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    session.leave().await
}
