//! The subcommands.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use fahrbahn::Error;
use fahrbahn::tokio::TokioRuntime;
use fahrbahn::wamp::auth::{Credential, CryptosignKey, Kdf, ScramCredential, Secret, ticket};
use fahrbahn::wamp::router::{ListenerConfig, Router, RouterConfig, TransportKind};
use fahrbahn::wamp::{
    ApplicationError, CallResult, Closed, Dict, Invocation, Session, SessionError, SessionOptions,
    Value,
};
use tokio::io::AsyncWriteExt as _;

use crate::args::{
    AuthArgs, CallArgs, Command, Connect, DEFAULT_RS, DEFAULT_WS, HashSecretArgs, KeygenArgs,
    PublishArgs, RegisterArgs, RouterArgs, SubscribeArgs,
};
use crate::json;

/// The error URI `register` returns when its command fails.
pub(crate) const COMMAND_FAILED: &str = "com.fahrbahn.error.command_failed";

/// How long leaving the realm may take before we give up on a clean exit.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);

type Outcome = Result<(), String>;

/// Runs a subcommand (not completions or version).
pub(crate) async fn run(command: Command) -> Outcome {
    match command {
        Command::Router(a) => router(a).await,
        Command::Call(a) => call(a).await,
        Command::Publish(a) => publish(a).await,
        Command::Subscribe(a) => subscribe(a).await,
        Command::Register(a) => register(a).await,
        Command::Keygen(a) => keygen(&a),
        Command::HashSecret(a) => hash_secret(&a),
        Command::Completions(_) | Command::Version => Ok(()),
    }
}

/// Waits for Ctrl-C or SIGTERM. The handlers are installed when this is
/// called (not when first polled), so call it before announcing readiness.
#[cfg(unix)]
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn recv(signal: io::Result<Signal>) {
        match signal {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a handler the default action ends the process.
            Err(_) => std::future::pending().await,
        }
    }
    let term = recv(signal(SignalKind::terminate()));
    let int = recv(signal(SignalKind::interrupt()));
    async move {
        tokio::select! {
            _ = term => {}
            _ = int => {}
        }
    }
}

/// Waits for Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// An I/O error without the trailing " (os error N)".
fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Explains why connecting or joining failed.
fn connect_error(connect: &Connect, error: &Error) -> String {
    let url = &connect.url;
    match error {
        Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
            ) =>
        {
            format!(
                "cannot connect to {url}: {} — is a router running? Start one with `fahrbahn router`",
                io_text(e)
            )
        }
        Error::Io(e) => format!("cannot connect to {url}: {}", io_text(e)),
        Error::Url(_) => error.to_string(),
        Error::Session(SessionError::Aborted { .. }) => {
            format!("cannot join realm {:?} on {url}: {error}", connect.realm)
        }
        _ => format!("cannot connect to {url}: {error}"),
    }
}

/// Explains a failed request, with the error's payload.
fn request_error(what: &str, error: &Error) -> String {
    match error {
        Error::Wamp(e) => {
            let mut text = format!("{what} failed: {e}");
            // A lone string argument is the message, already shown.
            if !matches!(e.args.as_slice(), [] | [Value::String(_)]) {
                text.push_str(&format!("\n  args: {}", json::list_to_json(&e.args)));
            }
            if !e.kwargs.is_empty() {
                text.push_str(&format!("\n  kwargs: {}", json::dict_to_json(&e.kwargs)));
            }
            text
        }
        Error::Io(e) => format!("{what} failed: {}", io_text(e)),
        _ => format!("{what} failed: {error}"),
    }
}

/// The credentials of `auth`, in the order of `--authmethod` (default:
/// cryptosign, scram, wampcra, ticket: those given).
fn credentials(auth: &AuthArgs) -> Result<Vec<Credential>, String> {
    let key = match (&auth.private_key, std::env::var("WAMP_PRIVATE_KEY")) {
        (Some(path), _) => Some(read_key(path)?),
        (None, Ok(value)) if !value.is_empty() => Some(
            CryptosignKey::from_seed_hex(&value)
                .or_else(|_| read_key(std::path::Path::new(&value)))
                .map_err(|e| format!("$WAMP_PRIVATE_KEY: {e}"))?,
        ),
        _ => None,
    };
    let methods: Vec<&str> = if auth.authmethod.is_empty() {
        vec!["cryptosign", "scram", "wampcra", "ticket"]
    } else {
        auth.authmethod.iter().map(String::as_str).collect()
    };
    let explicit = !auth.authmethod.is_empty();
    let mut out = Vec::new();
    for method in methods {
        let credential = match method {
            "cryptosign" => key.clone().map(Credential::Cryptosign),
            "scram" => auth
                .password
                .clone()
                .map(|password| Credential::Scram { password }),
            "wampcra" => auth
                .secret
                .clone()
                .map(|secret| Credential::WampCra { secret }),
            "ticket" => auth.ticket.clone().map(Credential::Ticket),
            _ => None,
        };
        match credential {
            Some(c) => out.push(c),
            None if explicit => {
                let flag = match method {
                    "cryptosign" => "--private-key (or $WAMP_PRIVATE_KEY)",
                    "scram" => "--password",
                    "wampcra" => "--secret",
                    _ => "--ticket",
                };
                return Err(format!("--authmethod {method} needs {flag}"));
            }
            None => {}
        }
    }
    Ok(out)
}

/// `fahrbahn keygen`: a key pair from the OS's entropy, written to the
/// file (0600, never over an existing one) and FILE.pub.
fn keygen(a: &KeygenArgs) -> Outcome {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let key = CryptosignKey::from_seed(&seed);
    seed.fill(0);
    let text = key.to_openssh(&a.comment).map_err(|e| e.to_string())?;
    let public = key.public_key_hex();
    let path = &a.file;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {}", path.display(), io_text(&e)))?;
    file.write_all(text.expose().as_bytes())
        .map_err(|e| format!("cannot write {}: {}", path.display(), io_text(&e)))?;
    let mut pub_path = path.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = std::path::PathBuf::from(pub_path);
    std::fs::write(&pub_path, format!("{public}\n"))
        .map_err(|e| format!("cannot write {}: {}", pub_path.display(), io_text(&e)))?;
    println!("{public}");
    Ok(())
}

/// `fahrbahn hash-secret`: the stored form of a ticket or SCRAM password,
/// with a salt from the OS's entropy.
fn hash_secret(a: &HashSecretArgs) -> Outcome {
    use std::io::{BufRead, IsTerminal};
    let secret = match &a.secret {
        Some(s) => s.clone(),
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                return Err("stdin is a terminal, which would echo the secret: pipe it in (e.g. `read -rs S && printf '%s' \"$S\" | fahrbahn hash-secret ticket`) or give --secret env:NAME or file:PATH".into());
            }
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read stdin: {}", io_text(&e)))?;
            let line = Secret::new(line);
            Secret::new(line.expose().trim_end_matches(['\n', '\r']))
        }
    };
    if secret.expose().is_empty() {
        return Err("the secret is empty".into());
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let mut rng = fahrbahn::core::Rng::from_entropy_bytes(seed);
    let memory = a.memory.unwrap_or(19 * 1024);
    let out = match a.method.as_str() {
        "ticket" => {
            let params = ticket::Params::new(memory, a.iterations.unwrap_or(2), 1, None)
                .map_err(|e| format!("argon2 parameters: {e}"))?;
            ticket::hash_ticket_with(&secret, &mut rng, params).map_err(|e| e.to_string())?
        }
        _ => {
            let kdf = match a.kdf.as_str() {
                "pbkdf2" => Kdf::Pbkdf2 {
                    iterations: a.iterations.unwrap_or(600_000),
                },
                _ => Kdf::Argon2id13 {
                    iterations: a.iterations.unwrap_or(2),
                    memory,
                },
            };
            let credential =
                ScramCredential::generate(&secret, kdf, &mut rng).map_err(|e| e.to_string())?;
            fahrbahn::wamp::router::ScramConfig::from_credential(&credential).to_toml()
        }
    };
    println!("{out}");
    Ok(())
}

/// A cryptosign key from a file.
fn read_key(path: &std::path::Path) -> Result<CryptosignKey, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {}", path.display(), io_text(&e)))?;
    CryptosignKey::from_file_contents(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

async fn connect(connect: &Connect) -> Result<Session, String> {
    let mut options = SessionOptions::new(connect.realm.as_str()).serializer(connect.serializer);
    for credential in credentials(&connect.auth)? {
        options = options.credential(credential);
    }
    if let Some(authid) = &connect.auth.authid {
        options = options.authid(authid.clone());
    }
    if let Some(authrole) = &connect.auth.authrole {
        options = options.authrole(authrole.clone());
    }
    fahrbahn::tokio::session_with(&connect.url, options)
        .await
        .map_err(|e| connect_error(connect, &e))
}

/// Leaves the realm, without waiting forever for a router that does not
/// answer.
async fn leave(session: &Session) {
    let _ = tokio::time::timeout(LEAVE_TIMEOUT, session.leave()).await;
}

/// Describes how a session ended while we were waiting on it.
fn session_ended(closed: Closed) -> String {
    match closed.error {
        Some(e) => format!("the session ended: {e}"),
        None => format!("the router ended the session ({})", closed.reason),
    }
}

fn write_line(out: &mut impl io::Write, json: &serde_json::Value) -> io::Result<()> {
    writeln!(out, "{json}")?;
    out.flush()
}

async fn call(a: CallArgs) -> Outcome {
    let session = connect(&a.connect).await?;
    let result = session
        .call(&a.procedure, a.payload.args, a.payload.kwargs)
        .await;
    leave(&session).await;
    let result = result.map_err(|e| request_error(&format!("call {}", a.procedure), &e))?;
    let output = if a.envelope {
        json::envelope(&result.args, &result.kwargs)
    } else {
        json::call_output(&result.args, &result.kwargs)
    };
    write_line(&mut io::stdout().lock(), &output).map_err(|e| format!("cannot print: {e}"))
}

async fn publish(a: PublishArgs) -> Outcome {
    let session = connect(&a.connect).await?;
    let mut options = Dict::new();
    if a.acknowledge {
        options.insert("acknowledge".into(), Value::Bool(true));
    }
    let result = session
        .publish_with(&a.topic, a.payload.args, a.payload.kwargs, options)
        .await;
    leave(&session).await;
    result.map_err(|e| request_error(&format!("publish to {}", a.topic), &e))
}

fn match_options(policy: Option<&str>) -> Dict {
    let mut options = Dict::new();
    if let Some(p) = policy.filter(|p| *p != "exact") {
        options.insert("match".into(), Value::String(p.to_owned()));
    }
    options
}

async fn subscribe(a: SubscribeArgs) -> Outcome {
    let stop = shutdown_signal();
    let session = connect(&a.connect).await?;
    let mut subscription = session
        .subscribe_with(&a.topic, match_options(a.match_policy.as_deref()))
        .await
        .map_err(|e| request_error(&format!("subscribe to {}", a.topic), &e))?;
    eprintln!(
        "subscribed to {} on {} (realm {}); Ctrl-C to stop",
        a.topic, a.connect.url, a.connect.realm
    );
    tokio::pin!(stop);
    let outcome = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            event = subscription.next() => {
                let Some(event) = event else {
                    break Err(session_ended(session.closed().await));
                };
                let mut line = json::envelope(&event.args, &event.kwargs);
                if a.details {
                    if let serde_json::Value::Object(map) = &mut line {
                        map.insert("details".into(), json::dict_to_json(&event.details));
                    }
                }
                if write_line(&mut io::stdout().lock(), &line).is_err() {
                    // stdout closed (e.g. `| head -1`): done.
                    break Ok(());
                }
            }
        }
    };
    drop(subscription);
    leave(&session).await;
    outcome
}

async fn register(a: RegisterArgs) -> Outcome {
    let stop = shutdown_signal();
    let session = connect(&a.connect).await?;
    let command = Arc::new(a.command);
    let procedure = Arc::new(a.procedure.clone());
    session
        .register_with(
            &a.procedure,
            match_options(a.match_policy.as_deref()),
            move |inv| {
                let command = command.clone();
                let procedure = procedure.clone();
                async move {
                    let result = run_command(&command, inv).await;
                    if let Err(e) = &result {
                        eprintln!("invocation of {procedure} failed: {e}");
                    }
                    result
                }
            },
        )
        .await
        .map_err(|e| request_error(&format!("register {}", a.procedure), &e))?;
    eprintln!(
        "registered {} on {} (realm {}); Ctrl-C to stop",
        a.procedure, a.connect.url, a.connect.realm
    );
    tokio::pin!(stop);
    let outcome = tokio::select! {
        _ = &mut stop => Ok(()),
        closed = session.closed() => Err(session_ended(closed)),
    };
    leave(&session).await;
    outcome
}

/// Runs `command` for one invocation (see `fahrbahn register --help`).
pub(crate) async fn run_command(
    command: &[String],
    inv: Invocation,
) -> Result<CallResult, ApplicationError> {
    let (program, fixed) = command.split_first().ok_or_else(|| {
        ApplicationError::new(COMMAND_FAILED).with_args(vec!["no command configured".into()])
    })?;
    let input = json::envelope(&inv.args, &inv.kwargs).to_string();
    let mut child = tokio::process::Command::new(program)
        .args(fixed)
        .args(inv.args.iter().map(json::value_to_arg))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            ApplicationError::new(COMMAND_FAILED).with_args(vec![
                format!("cannot run {program}: {}", io_text(&e)).into(),
            ])
        })?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // The command may not read its input (e.g. `echo`): ignore
            // a closed pipe.
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
    };
    let (_, output) = tokio::join!(feed, child.wait_with_output());
    let output = output.map_err(|e| {
        ApplicationError::new(COMMAND_FAILED)
            .with_args(vec![format!("{program} failed: {}", io_text(&e)).into()])
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let status = match output.status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "was killed by a signal".to_owned(),
        };
        let mut message = format!("{program} {status}");
        if !stderr.is_empty() {
            message.push_str(&format!(": {stderr}"));
        }
        let mut kwargs = Dict::new();
        kwargs.insert(
            "exit_code".into(),
            output.status.code().map_or(Value::Null, Value::from),
        );
        kwargs.insert("stderr".into(), Value::String(stderr));
        return Err(ApplicationError::new(COMMAND_FAILED)
            .with_args(vec![message.into()])
            .with_kwargs(kwargs));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout.trim();
    Ok(if stdout.is_empty() {
        CallResult::default()
    } else {
        CallResult::args(vec![json::parse_output(stdout)])
    })
}

async fn router(a: RouterArgs) -> Outcome {
    let stop = shutdown_signal();
    let mut config = match &a.config {
        Some(path) => RouterConfig::from_file(path).map_err(|e| e.to_string())?,
        None => RouterConfig::default(),
    };
    if !a.realms.is_empty() {
        if a.config.is_none() {
            config.realms.clear();
        }
        for realm in &a.realms {
            if !config.realms.contains(realm) {
                config.realms.push(realm.clone());
            }
        }
    }
    let defaults = config.listeners.is_empty() && !a.has_listeners();
    let realms = config.realms.clone();
    let mut builder = Router::builder().config(config);
    // The listeners of the command line, with --auth; the WebSocket ones
    // with --allowed-origin.
    let cli = |listener: ListenerConfig| {
        let mut listener = listener;
        if !a.auth.is_empty() {
            listener.auth = Some(a.auth.clone());
        }
        if !a.allowed_origins.is_empty() && listener.transport == TransportKind::WebSocket {
            listener.allowed_origins = Some(a.allowed_origins.clone());
        }
        listener
    };
    let mut listeners = Vec::new();
    if defaults {
        listeners.push(ListenerConfig::tcp(TransportKind::WebSocket, DEFAULT_WS));
        listeners.push(ListenerConfig::tcp(TransportKind::RawSocket, DEFAULT_RS));
    }
    for addr in &a.websocket {
        listeners.push(ListenerConfig::tcp(TransportKind::WebSocket, addr.as_str()));
    }
    for addr in &a.rawsocket {
        listeners.push(ListenerConfig::tcp(TransportKind::RawSocket, addr.as_str()));
    }
    for path in &a.unix_websocket {
        listeners.push(ListenerConfig::unix(
            TransportKind::WebSocket,
            path.as_str(),
        ));
    }
    for path in &a.unix_rawsocket {
        listeners.push(ListenerConfig::unix(
            TransportKind::RawSocket,
            path.as_str(),
        ));
    }
    for listener in listeners {
        builder = builder.listener(cli(listener));
    }
    let router = builder
        .start(&TokioRuntime)
        .await
        .map_err(|e| match &e {
            Error::Io(io) if io.kind() == io::ErrorKind::AddrInUse => format!(
                "cannot start the router: {} — is another router running? Pick other addresses with --ws/--rs",
                io_text(io)
            ),
            Error::Io(io) => format!("cannot start the router: {}", io_text(io)),
            _ => format!("cannot start the router: {e}"),
        })?;
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(
            out,
            "fahrbahn router {} serving realm{} {}",
            env!("CARGO_PKG_VERSION"),
            if realms.len() == 1 { "" } else { "s" },
            realms.join(", ")
        );
        let _ = writeln!(out, "{}", router.access());
        for listener in router.listeners() {
            let _ = writeln!(out, "listening on {}", listener.url());
        }
        let _ = out.flush();
    }
    stop.await;
    eprintln!("shutting down…");
    router.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::DEFAULT_REALM;

    fn inv(args: Vec<Value>) -> Invocation {
        Invocation::new(args, Dict::new(), Dict::new())
    }

    fn cmd(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn command_output_is_the_result() {
        let r = run_command(&cmd(&["echo"]), inv(vec!["hello".into(), Value::Int(5)]))
            .await
            .unwrap();
        assert_eq!(r.args, vec![Value::String("hello 5".into())]);
        let r = run_command(&cmd(&["echo"]), inv(vec![Value::Int(5)]))
            .await
            .unwrap();
        assert_eq!(r.args, vec![Value::Int(5)]);
        let r = run_command(&cmd(&["true"]), inv(vec![])).await.unwrap();
        assert!(r.args.is_empty());
    }

    #[tokio::test]
    async fn command_gets_json_on_stdin() {
        let mut i = inv(vec![Value::Int(1)]);
        i.kwargs.insert("k".into(), "v".into());
        let r = run_command(&cmd(&["sh", "-c", "cat"]), i).await.unwrap();
        let Value::Dict(d) = &r.args[0] else {
            panic!("not a dict: {r:?}");
        };
        assert_eq!(d["args"], Value::List(vec![Value::Int(1)]));
        assert_eq!(d["kwargs"].get("k"), Some(&Value::String("v".into())));
    }

    #[tokio::test]
    async fn failing_command_is_an_error() {
        let e = run_command(&cmd(&["sh", "-c", "echo oops >&2; exit 3"]), inv(vec![]))
            .await
            .unwrap_err();
        assert_eq!(e.error, COMMAND_FAILED);
        assert_eq!(e.kwargs["exit_code"], Value::Int(3));
        assert_eq!(e.kwargs["stderr"], Value::String("oops".into()));
        assert!(e.to_string().contains("exited with code 3: oops"));
        let e = run_command(&cmd(&["/nonexistent/program"]), inv(vec![]))
            .await
            .unwrap_err();
        assert_eq!(e.error, COMMAND_FAILED);
        assert!(e.to_string().contains("cannot run"));
    }

    #[test]
    fn readable_connect_errors() {
        let c = Connect::default();
        let refused = Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let text = connect_error(&c, &refused);
        assert!(text.starts_with("cannot connect to ws://127.0.0.1:8080/ws: "));
        assert!(text.contains("is a router running?"));
        assert!(text.contains("`fahrbahn router`"));
        let e = Error::Wamp(
            ApplicationError::new("wamp.error.no_such_procedure")
                .with_args(vec!["no callee".into()]),
        );
        assert_eq!(
            request_error("call a.b", &e),
            "call a.b failed: wamp.error.no_such_procedure: no callee"
        );
        let mut kw = Dict::new();
        kw.insert("x".into(), Value::Int(1));
        let e = Error::Wamp(ApplicationError::new("app.error").with_kwargs(kw));
        assert_eq!(
            request_error("call a.b", &e),
            "call a.b failed: app.error\n  kwargs: {\"x\":1}"
        );
        assert_eq!(DEFAULT_REALM, c.realm);
    }
}
