//! A WAMP caller: calls `com.example.add2` (see the `callee` example) and
//! shows how an application error arrives.
//!
//! `cargo run --example caller -- ws://127.0.0.1:8080/ws realm1`

use fahrbahn::Error;
use fahrbahn::wamp::Dict;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let session = fahrbahn::tokio::session(&url, &realm).await?;
    let sum: i64 = session.call_typed("com.example.add2", &(2, 3)).await?;
    eprintln!("add2(2, 3) = {sum}");
    match session.call("com.example.fail", vec![], Dict::new()).await {
        Err(Error::Wamp(e)) => eprintln!("com.example.fail raised {e}"),
        other => eprintln!("unexpected: {other:?}"),
    }
    session.leave().await
}
