//! A WAMP callee: registers `com.example.add2` and `com.example.fail` on a
//! reconnecting component, then serves calls until Ctrl-C. Restart the
//! router under it: the component rejoins and registers both again.
//!
//! `cargo run --example callee -- ws://127.0.0.1:8080/ws realm1`

use fahrbahn::wamp::component::Component;
use fahrbahn::wamp::{ApplicationError, CallResult, Value};

#[tokio::main]
async fn main() -> Result<(), fahrbahn::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".into());
    let realm = args.next().unwrap_or_else(|| "realm1".into());
    let component = fahrbahn::tokio::component(
        Component::builder(&realm)
            .transport(url)
            .register("com.example.add2", |inv| async move {
                let (a, b): (i64, i64) = inv.decode()?;
                Ok(CallResult::args(vec![(a + b).into()]))
            })
            .register("com.example.fail", |_inv| async move {
                Err(ApplicationError::new("com.example.error.failed")
                    .with_args(vec![Value::from("this procedure always fails")]))
            })
            .on_join(|session| {
                eprintln!(
                    "joined session {}: registered com.example.add2 and com.example.fail",
                    session.id()
                )
            })
            .on_leave(|closed| eprintln!("left ({}); reconnecting", closed.reason)),
    );
    component.joined().await?;
    eprintln!("Ctrl-C to stop");
    tokio::signal::ctrl_c().await.ok();
    component.stop().await;
    Ok(())
}
