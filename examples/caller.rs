//! A WAMP caller: calls `com.example.add2` (see the `callee` example) once
//! a second on a reconnecting component, and shows how an application
//! error arrives. Restart the router under it: calls made while it is
//! away wait for the rejoin (up to 10 s) or fail with a typed error.
//!
//! `cargo run --example caller -- ws://127.0.0.1:8080/ws realm1 [count]`

use std::time::Duration;

use fahrbahn::Error;
use fahrbahn::wamp::Dict;
use fahrbahn::wamp::component::Component;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let component = fahrbahn::tokio::component(Component::builder(&realm).transport(url));
    component.joined().await?;
    for n in 0..count {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        match component
            .call_typed::<_, i64>("com.example.add2", &(n, 3))
            .await
        {
            Ok(sum) => eprintln!("add2({n}, 3) = {sum}"),
            Err(e) => eprintln!("add2({n}, 3) failed: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    match component
        .call("com.example.fail", vec![], Dict::new())
        .await
    {
        Err(Error::Wamp(e)) => eprintln!("com.example.fail raised {e}"),
        other => eprintln!("unexpected: {other:?}"),
    }
    component.stop().await;
    Ok(())
}
