//! A WAMP callee: registers `com.example.add2` and `com.example.fail`, then
//! serves calls until Ctrl-C.
//!
//! `cargo run --example callee -- ws://127.0.0.1:8080/ws realm1`

use fahrbahn::wamp::{ApplicationError, CallResult, Value};

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let session = fahrbahn::tokio::session(&url, &realm).await?;
    eprintln!("joined session {}", session.id());
    session
        .register("com.example.add2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a + b).into()]))
        })
        .await?;
    session
        .register("com.example.fail", |_inv| async move {
            Err(ApplicationError::new("com.example.error.failed")
                .with_args(vec![Value::from("this procedure always fails")]))
        })
        .await?;
    eprintln!("registered com.example.add2 and com.example.fail; Ctrl-C to stop");
    tokio::signal::ctrl_c().await.ok();
    session.leave().await
}
