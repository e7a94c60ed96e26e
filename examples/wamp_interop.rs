//! The Rust side of the WAMP interop suite (`cargo xtask interop`): runs
//! scenarios against a real Crossbar.io router and the AutobahnPython peer
//! `interop/peers/peer.py`, printing `PASS name` / `FAIL name: reason`.
//!
//! ```text
//! wamp_interop --runtime tokio --url ws://127.0.0.1:8080/ws --serializer msgpack \
//!              [--batched] --prefix interop.py.msgpack.ws --realm realm1
//! wamp_interop --auth --runtime tokio --url ws://127.0.0.1:8080/auth --serializer json
//! ```
//!
//! With `--auth` it runs the authentication scenarios instead (no peer
//! needed): every method against the router's auth endpoint, which has the
//! principals of `interop/crossbar/config.json` (see [`auth`]).
//!
//! With `--differential-peer` it is the Rust session of the differential
//! suite's `rust_client` scenario (`interop/differential/`, see
//! [`differential`]):
//!
//! ```text
//! wamp_interop --differential-peer --url ws://127.0.0.1:8080/ws --realm differential --prefix P
//! ```

use std::future::Future;
use std::time::Duration;

use fahrbahn::Error;
use fahrbahn::runtime::Runtime;
use fahrbahn::wamp::{
    CallProgress, CallResult, Dict, Serializer, Session, SessionOptions, Value, kwargs,
};

struct Args {
    runtime: String,
    url: String,
    serializer: Serializer,
    batched: bool,
    prefix: String,
    realm: String,
    auth: bool,
    differential: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: wamp_interop [--auth] --runtime tokio|smol|async-std --url URL --serializer json|msgpack|cbor [--batched] --prefix P [--realm R]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        runtime: "tokio".into(),
        url: String::new(),
        serializer: Serializer::Json,
        batched: false,
        prefix: String::new(),
        realm: "realm1".into(),
        auth: false,
        differential: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--batched" {
            args.batched = true;
            continue;
        }
        if flag == "--auth" {
            args.auth = true;
            continue;
        }
        if flag == "--differential-peer" {
            args.differential = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--runtime" => args.runtime = value,
            "--url" => args.url = value,
            "--serializer" => {
                args.serializer = match value.as_str() {
                    "json" => Serializer::Json,
                    "msgpack" => Serializer::MsgPack,
                    "cbor" => Serializer::Cbor,
                    _ => usage(),
                }
            }
            "--prefix" => args.prefix = value,
            "--realm" => args.realm = value,
            _ => usage(),
        }
    }
    if args.url.is_empty() || (args.prefix.is_empty() && !args.auth) {
        usage();
    }
    args
}

/// The outcome of one scenario.
type Outcome = Result<(), String>;

fn check(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond { Ok(()) } else { Err(what()) }
}

fn err(e: Error) -> String {
    e.to_string()
}

struct Suite<'a, R> {
    rt: &'a R,
    args: &'a Args,
    failed: usize,
}

impl<R: Runtime> Suite<'_, R> {
    fn report(&mut self, name: &str, outcome: Outcome) {
        #[allow(clippy::print_stdout)]
        match outcome {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }

    /// Runs a scenario with a deadline so a hang is a failure.
    async fn run(&mut self, name: &str, scenario: impl Future<Output = Outcome>) {
        let deadline = self
            .rt
            .new_timer(std::time::Instant::now() + Duration::from_secs(20));
        let outcome = race(scenario, deadline)
            .await
            .unwrap_or_else(|| Err("timed out after 20 s".into()));
        self.report(name, outcome);
    }

    fn p(&self, name: &str) -> String {
        format!("{}.{name}", self.args.prefix)
    }
}

/// Polls `f` until it completes or `timer` fires.
async fn race<F: Future<Output = Outcome>>(
    f: F,
    mut timer: std::pin::Pin<Box<dyn fahrbahn::runtime::AsyncTimer>>,
) -> Option<Outcome> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

async fn run_suite<R: Runtime>(rt: R, args: Args) -> usize {
    let mut suite = Suite {
        rt: &rt,
        args: &args,
        failed: 0,
    };
    if args.auth {
        auth::run(&mut suite).await;
        return suite.failed;
    }
    let codec = fahrbahn::wamp::Codec {
        serializer: args.serializer,
        batched: args.batched,
    };
    let options = SessionOptions::new(args.realm.clone()).serializer(codec);
    let session = match Session::connect_with(&rt, &args.url, options).await {
        Ok(s) => s,
        Err(e) => {
            suite.report("join", Err(e.to_string()));
            return suite.failed;
        }
    };
    let expected = Some(codec);
    suite.report(
        "join",
        check(session.codec() == expected, || {
            format!("negotiated {:?}, wanted {expected:?}", session.codec())
        }),
    );
    let s = &session;
    let unique = format!("interop.rust.{}", s.id());

    let add2 = suite.p("add2");
    suite
        .run("call_python_procedure", async {
            let sum: i64 = s.call_typed(&add2, &(2, 3)).await.map_err(err)?;
            check(sum == 5, || format!("add2(2, 3) = {sum}"))
        })
        .await;

    let call = suite.p("call");
    let mul2 = format!("{unique}.mul2");
    suite
        .run("python_calls_rust_procedure", async {
            let reg = s
                .register(&mul2, |inv| async move {
                    let (x,): (i64,) = inv.decode()?;
                    Ok(CallResult::new(
                        vec![Value::from(x * 2)],
                        kwargs([("by", "rust".into())]),
                    ))
                })
                .await
                .map_err(err)?;
            let result = s
                .call(&call, vec![mul2.as_str().into(), 21.into()], Dict::new())
                .await
                .map_err(err)?;
            s.unregister(reg).await.map_err(err)?;
            check(
                result.args == vec![Value::from(42)]
                    && result.kwargs.get("by") == Some(&"rust".into()),
                || format!("got {result:?}"),
            )
        })
        .await;

    let error = suite.p("error");
    suite
        .run("application_error_with_payload", async {
            match s.call(&error, vec![], Dict::new()).await {
                Err(Error::Wamp(e)) => check(
                    e.error == "com.example.error.custom"
                        && e.args == vec![Value::from(1), Value::from("two")]
                        && e.kwargs
                            == kwargs([("kw1", 3.into()), ("kw2", Value::List(vec![4.into()]))]),
                    || format!("got {e:?}"),
                ),
                other => Err(format!("expected an application error, got {other:?}")),
            }
        })
        .await;

    let echo = suite.p("echo");
    suite
        .run("binary_1mib_round_trip", async {
            let blob: Vec<u8> = (0..(1u32 << 20))
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let r = s
                .call(
                    &echo,
                    vec![Value::Bytes(blob.clone())],
                    kwargs([("tag", "blob".into())]),
                )
                .await
                .map_err(err)?;
            check(
                r.args.first().and_then(Value::as_bytes) == Some(blob.as_slice())
                    && r.kwargs.get("tag") == Some(&"blob".into()),
                || {
                    format!(
                        "echo returned {} args, first is {:?}",
                        r.args.len(),
                        r.args.first().map(Value::kind)
                    )
                },
            )
        })
        .await;

    suite
        .run("typed_struct_travels_as_kwargs", async {
            #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
            struct Order {
                item: String,
                qty: u32,
            }
            let order = Order {
                item: "tea".into(),
                qty: 2,
            };
            // P.echo is `def echo(*args, **kwargs)`: the struct's fields
            // arrive as Python keyword arguments and come back as kwargs.
            let raw = s
                .call(
                    &echo,
                    fahrbahn::wamp::to_payload(&order).map_err(err)?.0,
                    fahrbahn::wamp::to_payload(&order).map_err(err)?.1,
                )
                .await
                .map_err(err)?;
            check(
                raw.args.is_empty() && raw.kwargs.contains_key("qty"),
                || format!("echo returned {raw:?}"),
            )?;
            let back: Order = s.call_typed(&echo, &order).await.map_err(err)?;
            check(back == order, || format!("got {back:?}"))
        })
        .await;

    let countdown = suite.p("countdown");
    suite
        .run("progressive_results_from_python", async {
            let mut results = s
                .call_progressive(&countdown, vec![3.into()], Dict::new(), Dict::new())
                .map_err(err)?;
            let mut progress = Vec::new();
            let mut last = None;
            while let Some(item) = results.next().await {
                match item.map_err(err)? {
                    CallProgress::Progress(r) => progress.push(r.args),
                    CallProgress::Final(r) => last = Some(r),
                }
            }
            let last = last.ok_or("no final result")?;
            check(
                progress == vec![vec![Value::from(3)], vec![2.into()], vec![1.into()]]
                    && last.args == vec![Value::from("liftoff")]
                    && last.kwargs.get("progressive_sent") == Some(&3.into()),
                || format!("progress {progress:?}, final {last:?}"),
            )
        })
        .await;

    let call_progressive = suite.p("call_progressive");
    let count = format!("{unique}.count");
    suite
        .run("python_receives_rust_progressive_results", async {
            let reg = s
                .register(&count, |inv| async move {
                    let n: i64 = inv.decode()?;
                    for i in 0..n {
                        inv.send_progress(CallResult::args(vec![i.into()]))
                            .map_err(|e| {
                                fahrbahn::wamp::ApplicationError::new("interop.error.gone")
                                    .with_args(vec![e.to_string().into()])
                            })?;
                    }
                    Ok(CallResult::args(vec![n.into()]))
                })
                .await
                .map_err(err)?;
            let result = s
                .call(
                    &call_progressive,
                    vec![count.as_str().into(), 3.into()],
                    Dict::new(),
                )
                .await
                .map_err(err)?;
            s.unregister(reg).await.map_err(err)?;
            let expected = vec![
                Value::List(vec![
                    Value::List(vec![0.into()]),
                    Value::List(vec![1.into()]),
                    Value::List(vec![2.into()]),
                ]),
                Value::from(3),
            ];
            check(result.args == expected, || format!("got {result:?}"))
        })
        .await;

    let missing = suite.p("no_such_thing");
    suite
        .run("missing_procedure", async {
            match s.call(&missing, vec![], Dict::new()).await {
                Err(Error::Wamp(e)) => check(e.error == "wamp.error.no_such_procedure", || {
                    e.error.clone()
                }),
                other => Err(format!(
                    "expected wamp.error.no_such_procedure, got {other:?}"
                )),
            }
        })
        .await;

    let publish = suite.p("publish");
    let topic = format!("{unique}.topic");
    suite
        .run("python_publishes_rust_subscribes", async {
            let mut sub = s.subscribe(&topic).await.map_err(err)?;
            s.call(
                &publish,
                vec![topic.as_str().into(), "hello".into(), 7.into()],
                kwargs([("k", "v".into())]),
            )
            .await
            .map_err(err)?;
            let event = sub.next().await.ok_or("subscription ended")?;
            sub.unsubscribe().await.map_err(err)?;
            check(
                event.args == vec![Value::from("hello"), Value::from(7)]
                    && event.kwargs == kwargs([("k", "v".into())]),
                || format!("got {event:?}"),
            )
        })
        .await;

    let rust_events = suite.p("rust_events");
    let received = suite.p("received");
    suite
        .run("rust_publishes_python_subscribes", async {
            let marker = format!("from-rust-{}", s.id());
            s.publish_with(
                &rust_events,
                vec![marker.as_str().into(), Value::Bytes(vec![0, 1, 2, 255])],
                kwargs([("n", 1.into())]),
                kwargs([("acknowledge", true.into())]),
            )
            .await
            .map_err(err)?;
            // The Python peer's state is only observable by asking it: poll
            // `received`, each round a full RPC round trip (no timer between
            // rounds), until the event shows up. The scenario's deadline
            // (`Suite::run`) is the failure bound, not a fixed poll budget.
            loop {
                let r = s.call(&received, vec![], Dict::new()).await.map_err(err)?;
                let events = r
                    .args
                    .first()
                    .and_then(Value::as_list)
                    .cloned()
                    .unwrap_or_default();
                let found = events.iter().any(|e| {
                    let args = e.get("args").and_then(Value::as_list);
                    args.and_then(|a| a.first()).and_then(Value::as_str) == Some(marker.as_str())
                        && args.and_then(|a| a.get(1)).and_then(Value::as_bytes)
                            == Some(&[0, 1, 2, 255][..])
                        && e.get("kwargs").and_then(|k| k.get("n")) == Some(&1.into())
                });
                if found {
                    return Ok(());
                }
            }
        })
        .await;

    suite
        .run("goodbye", async {
            s.leave().await.map_err(err)?;
            let info = s.close_info().ok_or("no close info")?;
            check(info.error.is_none() && s.is_closed(), || {
                format!("closed with {info:?}")
            })
        })
        .await;
    suite.failed
}

/// The authentication scenarios: our client with each method against the
/// router's auth endpoint (the principals of `interop/crossbar/config.json`).
mod auth {
    use fahrbahn::Error;
    use fahrbahn::runtime::Runtime;
    use fahrbahn::wamp::auth::{Credential, CryptosignKey, Secret};
    use fahrbahn::wamp::{Session, SessionError, SessionOptions};

    use super::{Suite, check};

    /// The seed of `cs-user`'s key (authorized).
    const CS_SEED: &str = "c997d2deeccd7445918409bd47a68b11b0a5203c633b5aa8646539fbda14ddc7";
    /// A key the router does not know.
    const OTHER_SEED: &str = "bf12e47cf299df3aecfd8fcde731f44ef48da11f1aae3e765821be4b334ae0f6";

    fn ticket(s: &str) -> Credential {
        Credential::Ticket(Secret::new(s))
    }

    fn cra(s: &str) -> Credential {
        Credential::WampCra {
            secret: Secret::new(s),
        }
    }

    fn scram(s: &str) -> Credential {
        Credential::Scram {
            password: Secret::new(s),
        }
    }

    fn cs(seed: &str) -> Credential {
        Credential::Cryptosign(CryptosignKey::from_seed_hex(seed).expect("a valid seed"))
    }

    impl<R: Runtime> Suite<'_, R> {
        fn options(&self, authid: Option<&str>, credential: Credential) -> SessionOptions {
            let codec = fahrbahn::wamp::Codec {
                serializer: self.args.serializer,
                batched: self.args.batched,
            };
            let mut options = SessionOptions::new(self.args.realm.clone())
                .serializer(codec)
                .credential(credential);
            if let Some(authid) = authid {
                options = options.authid(authid);
            }
            options
        }

        /// Joins and expects to be `authid` with `role` by `method`.
        async fn joins(
            &mut self,
            name: &str,
            authid: Option<&str>,
            credential: Credential,
            expect: (&str, &str, &str),
        ) {
            let options = self.options(authid, credential);
            let (rt, url) = (self.rt, self.args.url.clone());
            self.run(name, async move {
                let session = Session::connect_with(rt, &url, options)
                    .await
                    .map_err(|e| format!("not joined: {e}"))?;
                let auth = session.auth_details();
                let got = (
                    auth.authid.clone().unwrap_or_default(),
                    auth.authrole.clone().unwrap_or_default(),
                    auth.authmethod.clone().unwrap_or_default(),
                );
                session.leave().await.map_err(|e| e.to_string())?;
                let (id, role, method) = expect;
                check(got == (id.into(), role.into(), method.into()), || {
                    format!("welcomed as {got:?}, expected {expect:?}")
                })
            })
            .await;
        }

        /// Joining must be refused with ABORT `reason`.
        async fn refused(
            &mut self,
            name: &str,
            authid: Option<&str>,
            credential: Credential,
            reason: &str,
        ) {
            let options = self.options(authid, credential);
            let (rt, url) = (self.rt, self.args.url.clone());
            self.run(name, async move {
                let got = match Session::connect_with(rt, &url, options).await {
                    Ok(session) => {
                        let _ = session.leave().await;
                        return Err(format!("joined as {:?}", session.auth_details()));
                    }
                    Err(Error::Session(e)) => e.uri().to_owned(),
                    Err(Error::SessionClosed(closed)) => match &closed.error {
                        Some(SessionError::Aborted { reason, .. }) => reason.clone(),
                        _ => closed.reason.clone(),
                    },
                    Err(e) => return Err(format!("failed otherwise: {e}")),
                };
                check(got == reason, || {
                    format!("refused with {got}, expected {reason}")
                })
            })
            .await;
        }
    }

    pub(super) async fn run<R: Runtime>(s: &mut Suite<'_, R>) {
        const DENIED: &str = "wamp.error.not_authorized";
        let t = "ticket";
        s.joins(
            "ticket",
            Some("ticket-user"),
            ticket("ticket-secret"),
            ("ticket-user", "user", t),
        )
        .await;
        s.refused(
            "ticket_wrong_secret",
            Some("ticket-user"),
            ticket("wrong"),
            DENIED,
        )
        .await;
        s.refused(
            "ticket_unknown_authid",
            Some("nobody"),
            ticket("ticket-secret"),
            DENIED,
        )
        .await;
        let m = "wampcra";
        s.joins(
            "wampcra",
            Some("cra-user"),
            cra("cra-secret"),
            ("cra-user", "user", m),
        )
        .await;
        s.refused(
            "wampcra_wrong_secret",
            Some("cra-user"),
            cra("wrong"),
            DENIED,
        )
        .await;
        s.refused(
            "wampcra_unknown_authid",
            Some("nobody"),
            cra("cra-secret"),
            DENIED,
        )
        .await;
        let salted = ("cra-salted", "user", m);
        s.joins(
            "wampcra_salted",
            Some("cra-salted"),
            cra("cra-salted-secret"),
            salted,
        )
        .await;
        s.refused(
            "wampcra_salted_wrong_secret",
            Some("cra-salted"),
            cra("cra-secret"),
            DENIED,
        )
        .await;
        let c = "cryptosign";
        s.joins("cryptosign", None, cs(CS_SEED), ("cs-user", "user", c))
            .await;
        s.joins(
            "cryptosign_with_authid",
            Some("cs-user"),
            cs(CS_SEED),
            ("cs-user", "user", c),
        )
        .await;
        s.refused("cryptosign_unauthorized_key", None, cs(OTHER_SEED), DENIED)
            .await;
        let sc = "scram";
        s.joins(
            "scram",
            Some("scram-user"),
            scram("scram-secret"),
            ("scram-user", "user", sc),
        )
        .await;
        s.refused(
            "scram_wrong_password",
            Some("scram-user"),
            scram("wrong"),
            DENIED,
        )
        .await;
        s.refused(
            "scram_unknown_authid",
            Some("nobody"),
            scram("scram-secret"),
            DENIED,
        )
        .await;
    }
}

/// The Rust session of the differential suite's `rust_client` scenario:
/// joins, subscribes to `P.to_rust` with `get_retained`, registers
/// `P.rust.add2`, leaves a testament on `P.rust.will`, prints
/// `READY <session id>`, then one line per thing it observes:
/// `EVENT [args, kwargs, details]` (JSON) and, when the subscription ends,
/// `ENDED <revocation reason or null>`. When its stdin closes it exits at
/// once, without GOODBYE (so the router publishes the testament).
mod differential {
    use std::io::{Read, Write};

    use fahrbahn::wamp::{CallResult, Dict, Session, SessionOptions, TestamentScope, Value};

    /// `v` as JSON (bytes as the WAMP JSON binary convention's string).
    fn json(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::String(s) => string(s, out),
            Value::List(l) => {
                out.push('[');
                for (i, x) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json(x, out);
                }
                out.push(']');
            }
            Value::Dict(d) => dict(d, out),
            other => match other.as_u64() {
                Some(n) => out.push_str(&n.to_string()),
                None => string(&format!("{other:?}"), out),
            },
        }
    }

    fn dict(d: &Dict, out: &mut String) {
        out.push('{');
        for (i, (k, x)) in d.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(k, out);
            out.push(':');
            json(x, out);
        }
        out.push('}');
    }

    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn say(line: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    pub(super) async fn run(url: &str, realm: &str, prefix: &str) -> Result<(), fahrbahn::Error> {
        let rt = fahrbahn::tokio::TokioRuntime;
        let session = Session::connect_with(&rt, url, SessionOptions::new(realm)).await?;
        let mut options = Dict::new();
        options.insert("get_retained".into(), Value::Bool(true));
        let mut sub = session
            .subscribe_with(&format!("{prefix}.to_rust"), options)
            .await?;
        session
            .register(&format!("{prefix}.rust.add2"), |inv| async move {
                let sum: u64 = inv.args.iter().filter_map(Value::as_u64).sum();
                Ok(CallResult::args(vec![sum.into()]))
            })
            .await?;
        session
            .add_testament(
                &format!("{prefix}.rust.will"),
                vec!["rust gone".into()],
                Dict::new(),
                Dict::new(),
                TestamentScope::Destroyed,
            )
            .await?;
        // Stdin closed: leave at once, without GOODBYE.
        std::thread::spawn(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            std::process::exit(0);
        });
        say(&format!("READY {}", session.id().0));
        while let Some(event) = sub.next().await {
            let mut line = String::from("EVENT ");
            json(
                &Value::List(vec![
                    Value::List(event.args.clone()),
                    Value::Dict(event.kwargs.clone()),
                    Value::Dict(event.details.clone()),
                ]),
                &mut line,
            );
            say(&line);
        }
        let mut line = String::from("ENDED ");
        match sub.revocation().and_then(|r| r.reason.clone()) {
            Some(reason) => string(&reason, &mut line),
            None => line.push_str("null"),
        }
        say(&line);
        // Wait for stdin to close (the scenario decides when to go).
        std::future::pending::<()>().await;
        Ok(())
    }
}

fn main() {
    let args = parse_args();
    if args.differential {
        let result = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(differential::run(&args.url, &args.realm, &args.prefix));
        if let Err(e) = result {
            eprintln!("differential peer: {e}");
            std::process::exit(1);
        }
        return;
    }
    let failed = match args.runtime.as_str() {
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(run_suite(fahrbahn::tokio::TokioRuntime, args)),
        "smol" => smol::block_on(run_suite(fahrbahn::smol::SmolRuntime, args)),
        "async-std" => {
            async_std::task::block_on(run_suite(fahrbahn::async_std::AsyncStdRuntime, args))
        }
        _ => usage(),
    };
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
