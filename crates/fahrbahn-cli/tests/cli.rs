//! End-to-end tests of the `fahrbahn` binary against an embedded router
//! started in-process on free ports. Every wait has a timeout, and every
//! child process is killed when its handle drops.

use std::process::Stdio;
use std::time::Duration;

use fahrbahn::tokio::TokioRuntime;
use fahrbahn::wamp::router::Router;
use fahrbahn::wamp::{CallResult, Dict, Session, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_fahrbahn");
const LIMIT: Duration = Duration::from_secs(20);

async fn start_router() -> (Router, String) {
    let router = Router::builder()
        .realm("realm1")
        .websocket("127.0.0.1:0")
        .rawsocket("127.0.0.1:0")
        .start(&TokioRuntime)
        .await
        .expect("router starts");
    let url = router.websocket_url().expect("a websocket listener");
    (router, url)
}

async fn session(url: &str) -> Session {
    timeout(LIMIT, fahrbahn::tokio::session(url, "realm1"))
        .await
        .expect("join in time")
        .expect("join")
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary to completion (within the time limit).
async fn run(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fahrbahn");
    let out = timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fahrbahn {args:?} did not finish in time"))
        .expect("wait");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A long-running `fahrbahn` (subscribe, register, router).
struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn fahrbahn");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for a stderr line containing `needle`.
    async fn stderr_until(&mut self, needle: &str) {
        let found = timeout(LIMIT, async {
            while let Some(line) = self.stderr.next_line().await.expect("read stderr") {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} on stderr in time"));
        assert!(found, "stderr ended without {needle:?}");
    }

    async fn stdout_line(&mut self) -> String {
        timeout(LIMIT, self.stdout.next_line())
            .await
            .expect("a stdout line in time")
            .expect("read stdout")
            .expect("stdout ended")
    }

    /// Sends SIGTERM and expects a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let status = timeout(LIMIT, self.child.wait())
            .await
            .expect("exit after SIGTERM in time")
            .expect("wait");
        assert!(status.success(), "exit status {status:?}");
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_the_result() {
    let (router, url) = start_router().await;
    let callee = session(&url).await;
    callee
        .register("com.example.add2", |inv| async move {
            let (a, b): (i64, i64) = inv.decode()?;
            Ok(CallResult::args(vec![(a + b).into()]))
        })
        .await
        .unwrap();
    callee
        .register("com.example.echo", |inv| async move {
            Ok(CallResult::new(inv.args, inv.kwargs))
        })
        .await
        .unwrap();

    let out = run(&["call", "com.example.add2", "2", "3", "--url", &url]).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "5\n");

    let out = run(&[
        "call",
        "--url",
        &url,
        "--serializer",
        "msgpack",
        "com.example.echo",
        "hello",
        "-1.5",
        "[1, true]",
        "--kwargs",
        r#"{"k": {"$bytes": "AAE="}}"#,
    ])
    .await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(
        json(&out.stdout),
        json(r#"{"args": ["hello", -1.5, [1, true]], "kwargs": {"k": {"$bytes": "AAE="}}}"#)
    );

    // RawSocket works too, with CBOR.
    let rs = router.rawsocket_url().unwrap();
    let out = run(&[
        "call",
        "com.example.echo",
        "x",
        "--url",
        &rs,
        "--serializer",
        "cbor",
    ])
    .await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "\"x\"\n");

    callee.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_errors_exit_1() {
    let (router, url) = start_router().await;
    let out = run(&["call", "com.example.nothing", "--url", &url]).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("wamp.error.no_such_procedure"),
        "stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains("com.example.nothing"));

    let out = run(&["call", "a.b", "--url", &url, "--realm", "nope"]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("wamp.error.no_such_realm"),
        "{}",
        out.stderr
    );
    router.shutdown().await;

    // Nobody listens there any more.
    let out = run(&["call", "a.b", "--url", &url]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&format!("cannot connect to {url}")),
        "stderr: {}",
        out.stderr
    );
    assert!(out.stderr.contains("fahrbahn router"));

    // Usage errors exit 2.
    let out = run(&["call"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("required arguments were not provided") && out.stderr.contains("<URI>"),
        "stderr: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_a_subscriber() {
    let (router, url) = start_router().await;
    let subscriber = session(&url).await;
    let mut events = subscriber.subscribe("com.example.topic").await.unwrap();

    let out = run(&[
        "publish",
        "com.example.topic",
        "1",
        "two",
        "--kwargs",
        r#"{"k": null}"#,
        "--acknowledge",
        "--url",
        &url,
    ])
    .await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);

    let event = timeout(LIMIT, events.next())
        .await
        .expect("event in time")
        .expect("an event");
    assert_eq!(event.args, vec![Value::Int(1), Value::String("two".into())]);
    let mut kwargs = Dict::new();
    kwargs.insert("k".into(), Value::Null);
    assert_eq!(event.kwargs, kwargs);

    // Without --acknowledge the event still arrives (sent before GOODBYE).
    let out = run(&["publish", "com.example.topic", "--url", &url]).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let event = timeout(LIMIT, events.next()).await.unwrap().unwrap();
    assert!(event.args.is_empty());

    drop(events);
    subscriber.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_prints_json_lines() {
    let (router, url) = start_router().await;
    let mut sub = Running::spawn(&["subscribe", "com.example.topic", "--url", &url]);
    sub.stderr_until("subscribed to com.example.topic").await;

    let publisher = session(&url).await;
    let mut kwargs = Dict::new();
    kwargs.insert("b".into(), Value::Bytes(vec![0, 1]));
    publisher
        .publish_with(
            "com.example.topic",
            vec!["hello".into(), 5.into()],
            kwargs,
            [("acknowledge".to_owned(), Value::Bool(true))].into(),
        )
        .await
        .unwrap();
    let line = sub.stdout_line().await;
    assert_eq!(
        json(&line),
        json(r#"{"args": ["hello", 5], "kwargs": {"b": {"$bytes": "AAE="}}}"#)
    );
    publisher
        .publish("com.example.topic", vec![], Dict::new())
        .await
        .unwrap();
    assert_eq!(
        json(&sub.stdout_line().await),
        json(r#"{"args": [], "kwargs": {}}"#)
    );

    sub.terminate().await;
    publisher.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_serves_a_command() {
    let (router, url) = start_router().await;
    let mut reg = Running::spawn(&["register", "com.example.echo", "--url", &url, "--", "echo"]);
    reg.stderr_until("registered com.example.echo").await;
    let mut fail = Running::spawn(&[
        "register",
        "com.example.fail",
        "--url",
        &url,
        "--",
        "sh",
        "-c",
        "echo broken >&2; exit 3",
    ]);
    fail.stderr_until("registered com.example.fail").await;

    let caller = session(&url).await;
    let result = timeout(
        LIMIT,
        caller.call(
            "com.example.echo",
            vec!["hello".into(), 42.into()],
            Dict::new(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(result.args, vec![Value::String("hello 42".into())]);

    let result = timeout(
        LIMIT,
        caller.call("com.example.echo", vec![42.into()], Dict::new()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(result.args, vec![Value::Int(42)]);

    let error = timeout(LIMIT, caller.call("com.example.fail", vec![], Dict::new()))
        .await
        .unwrap()
        .unwrap_err();
    let fahrbahn::Error::Wamp(e) = error else {
        panic!("not an application error: {error}");
    };
    assert_eq!(e.error, "com.fahrbahn.error.command_failed");
    assert_eq!(e.kwargs.get("exit_code"), Some(&Value::Int(3)));
    assert_eq!(
        e.kwargs.get("stderr"),
        Some(&Value::String("broken".into()))
    );

    reg.terminate().await;
    fail.terminate().await;
    // Once the callee left, the procedure is gone.
    let error = timeout(LIMIT, caller.call("com.example.echo", vec![], Dict::new()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.to_string().contains("no_such_procedure"), "{error}");
    caller.leave().await.unwrap();
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_subcommand_serves_until_sigterm() {
    let mut router = Running::spawn(&["router", "--ws", "127.0.0.1:0", "--realm", "realm1"]);
    let banner = router.stdout_line().await;
    assert!(banner.contains("realm1"), "{banner}");
    // Who may do what comes first: a bare router is anonymous and open.
    let access = router.stdout_line().await;
    assert!(
        access.starts_with("anonymous access, no roles: anyone who can reach 127.0.0.1:"),
        "{access}"
    );
    let listening = router.stdout_line().await;
    let url = listening
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {listening:?}"))
        .to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");

    let out = run(&["call", "com.example.nothing", "--url", &url]).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no_such_procedure"), "{}", out.stderr);

    router.terminate().await;
}

/// The status code a WebSocket upgrade with `origin` gets from `addr`.
async fn upgrade_status(addr: &str, origin: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut io = timeout(LIMIT, tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: wamp.2.json\r\nOrigin: {origin}\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 12];
    timeout(LIMIT, io.read_exact(&mut head))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&head[9..12]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_allowed_origin_refuses_other_origins() {
    let mut router = Running::spawn(&[
        "router",
        "--ws",
        "127.0.0.1:0",
        "--allowed-origin",
        "http://127.0.0.1:*",
    ]);
    let url = loop {
        let line = router.stdout_line().await;
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    let addr = url
        .strip_prefix("ws://")
        .and_then(|u| u.strip_suffix("/ws"))
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    assert_eq!(upgrade_status(&addr, "http://127.0.0.1:5173").await, "101");
    assert_eq!(upgrade_status(&addr, "https://evil.org").await, "403");
    router.terminate().await;
}

#[tokio::test]
async fn router_refuses_an_address_beyond_loopback_without_a_config() {
    let out = run(&["router", "--ws", "0.0.0.0:0"]).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("expose = true"), "{}", out.stderr);
}

/// The subcommands, as `fahrbahn --help` lists them.
const SUBCOMMANDS: &[&str] = &[
    "router",
    "call",
    "publish",
    "subscribe",
    "register",
    "keygen",
    "hash-secret",
    "completions",
    "version",
    "help",
];

#[tokio::test]
async fn help_for_every_subcommand() {
    let out = run(&["--help"]).await;
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("Usage: fahrbahn <COMMAND>"),
        "{}",
        out.stdout
    );
    for command in [
        "router",
        "call",
        "publish",
        "subscribe",
        "register",
        "completions",
    ] {
        for args in [
            &[command, "--help"][..],
            &[command, "-h"],
            &["help", command],
        ] {
            let out = run(args).await;
            assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
            assert!(
                out.stdout.contains(&format!("Usage: fahrbahn {command}")),
                "{args:?}: {}",
                out.stdout
            );
        }
    }
    // --help is the long form, -h the summary.
    let long = run(&["register", "--help"]).await.stdout;
    let short = run(&["register", "-h"]).await.stdout;
    assert!(long.contains("com.fahrbahn.error.command_failed"), "{long}");
    assert!(short.contains("see more with '--help'"), "{short}");
    // Aliases.
    let out = run(&["pub", "--help"]).await;
    assert!(
        out.stdout.contains("Usage: fahrbahn publish"),
        "{}",
        out.stdout
    );

    for args in [&["--version"][..], &["-V"], &["version"]] {
        let out = run(args).await;
        assert_eq!(out.code, Some(0), "{args:?}");
        assert_eq!(
            out.stdout,
            format!("fahrbahn {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    let out = run(&["bogus"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("unrecognized subcommand 'bogus'"),
        "{}",
        out.stderr
    );
    // Without a command: the help, as a usage error.
    let out = run(&[]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("Usage: fahrbahn <COMMAND>"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn help_lists_every_subcommand() {
    let out = run(&["--help"]).await;
    assert_eq!(out.code, Some(0));
    let commands = out
        .stdout
        .split("Commands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Commands: section in {}", out.stdout))
        .split("\n\n")
        .next()
        .unwrap();
    let listed: Vec<&str> = commands
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(listed, SUBCOMMANDS, "{}", out.stdout);
    // `help` says the same.
    assert_eq!(run(&["help"]).await.stdout, out.stdout);
}

#[tokio::test]
async fn typos_get_suggestions() {
    let out = run(&["cal", "com.example.add2", "2", "3"]).await;
    assert_eq!(out.code, Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("unrecognized subcommand 'cal'")
            && out.stderr.contains("a similar subcommand exists: 'call'"),
        "{}",
        out.stderr
    );
    let out = run(&["subscibe", "t"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("similar subcommand") && out.stderr.contains("'subscribe'"),
        "{}",
        out.stderr
    );
    let out = run(&["call", "a.b", "--envelop"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("a similar argument exists: '--envelope'"),
        "{}",
        out.stderr
    );
    let out = run(&["subscribe", "t", "--match", "prefx"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("[possible values: exact, prefix, wildcard]"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn completions_for_every_shell() {
    let out = run(&["completions", "bash"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("_fahrbahn()"), "{}", out.stdout);
    assert!(
        out.stdout.contains("complete -F _fahrbahn"),
        "{}",
        out.stdout
    );
    for command in SUBCOMMANDS {
        assert!(out.stdout.contains(command), "bash script lacks {command}");
    }
    // Options and their values are completed too.
    for word in [
        "--serializer",
        "msgpack",
        "--kwargs",
        "--unix-ws",
        "wildcard",
    ] {
        assert!(out.stdout.contains(word), "bash script lacks {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]).await;
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        for command in ["router", "subscribe", "register", "completions"] {
            assert!(
                out.stdout.contains(command),
                "{shell} script lacks {command}"
            );
        }
    }
    let out = run(&["completions", "tcsh"]).await;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("possible values"), "{}", out.stderr);
    let out = run(&["completions"]).await;
    assert_eq!(out.code, Some(2));
}

/// The bash script, sourced into bash, completes subcommands and values.
#[tokio::test]
async fn bash_completion_completes() {
    let script = run(&["completions", "bash"]).await.stdout;
    let complete = |words: &'static str| {
        let script = script.clone();
        async move {
            let program = format!(
                "{script}\nCOMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _fahrbahn fahrbahn \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\""
            );
            let out = Command::new("bash")
                .args(["--norc", "--noprofile", "-c", &program])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            match timeout(LIMIT, out).await.expect("bash in time") {
                Ok(out) => {
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
                }
                // No bash here: nothing to check.
                Err(_) => None,
            }
        }
    };
    let Some(reply) = complete("fahrbahn su").await else {
        return;
    };
    assert_eq!(reply, "subscribe sub");
    assert_eq!(
        complete("fahrbahn call com.x --serializer ''")
            .await
            .unwrap(),
        "json msgpack cbor"
    );
    assert_eq!(
        complete("fahrbahn router --unix-").await.unwrap(),
        "--unix-ws --unix-rs"
    );
}

#[tokio::test]
async fn keygen_writes_a_key_pair() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keygen");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("client.key");
    let key_arg = key.to_str().unwrap();
    let out = run(&["keygen", key_arg]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let public = out.stdout.trim();
    assert_eq!(public.len(), 64, "{public}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let read = fahrbahn::wamp::auth::CryptosignKey::from_openssh(&text).unwrap();
    assert_eq!(read.public_key_hex(), public);
    let pub_file = std::fs::read_to_string(dir.join("client.key.pub")).unwrap();
    assert_eq!(pub_file.trim(), public);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // never over an existing key
    let again = run(&["keygen", key_arg]).await;
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("cannot create"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
}

#[tokio::test]
async fn an_authmethod_needs_its_credential() {
    let out = run(&[
        "call",
        "a.b",
        "--authmethod",
        "scram",
        "--url",
        "ws://127.0.0.1:9/ws",
    ])
    .await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("--authmethod scram needs --password"),
        "{}",
        out.stderr
    );
    let out = run(&["call", "a.b", "--ticket", "env:FAHRBAHN_TEST_SURELY_UNSET"]).await;
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("FAHRBAHN_TEST_SURELY_UNSET"),
        "{}",
        out.stderr
    );
}

/// Runs the binary with `input` on its stdin.
async fn run_with_stdin(args: &[&str], input: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fahrbahn");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = timeout(LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fahrbahn {args:?} did not finish in time"))
        .expect("wait");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `hash-secret` output goes into a router's configuration, and the CLI
/// then authenticates with the secrets against that router.
#[tokio::test]
async fn hash_secret_output_configures_a_router() {
    // Cheap parameters: the defaults (19 MiB) are slow in a debug build.
    let cheap = ["--memory", "64", "--iterations", "1"];
    let ticket = run_with_stdin(
        &[&["hash-secret", "ticket"][..], &cheap].concat(),
        "tkt-secret\n",
    )
    .await;
    assert_eq!(ticket.code, Some(0), "{}", ticket.stderr);
    let phc = ticket.stdout.trim();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    assert!(!ticket.stdout.contains("tkt-secret"));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hash-secret");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "scram-pw\n").unwrap();
    let source = format!("file:{}", password.display());
    let scram = run(&[&["hash-secret", "scram", "--secret", &source][..], &cheap].concat()).await;
    assert_eq!(scram.code, Some(0), "{}", scram.stderr);
    let scram_line = scram.stdout.trim();
    assert!(
        scram_line
            .starts_with("scram = { kdf = \"argon2id-13\", iterations = 1, memory = 64, salt = \""),
        "{scram_line}"
    );
    // The secret itself is refused on the command line.
    let literal = run(&["hash-secret", "ticket", "--secret", "tkt-secret"]).await;
    assert_eq!(literal.code, Some(2), "{}", literal.stderr);

    let toml = format!(
        r#"
        [[listener]]
        transport = "websocket"
        address = "127.0.0.1:0"
        auth = ["ticket", "scram"]

        [[principal]]
        realm = "realm1"
        authid = "t"
        role = "user"
        ticket = '{phc}'

        [[principal]]
        realm = "realm1"
        authid = "s"
        role = "user"
        {scram_line}
        "#
    );
    let config = fahrbahn::wamp::router::RouterConfig::from_toml(&toml).unwrap();
    let router = Router::builder()
        .config(config)
        .start(&TokioRuntime)
        .await
        .unwrap();
    let url = router.websocket_url().unwrap();
    let ticket_file = dir.join("ticket");
    std::fs::write(&ticket_file, "tkt-secret\n").unwrap();
    let ticket_source = format!("file:{}", ticket_file.display());
    for args in [
        ["--authid", "t", "--ticket", ticket_source.as_str()],
        ["--authid", "s", "--password", source.as_str()],
    ] {
        // Joined: the router answers the call (nobody registered it).
        let out = run(&[&["call", "com.example.nothing", "--url", &url][..], &args].concat()).await;
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("wamp.error.no_such_procedure"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let wrong = run(&[
        "call",
        "com.example.nothing",
        "--url",
        &url,
        "--authid",
        "t",
        "--ticket",
        "nope",
    ])
    .await;
    assert_eq!(wrong.code, Some(1));
    assert!(
        wrong.stderr.contains("wamp.error.not_authorized"),
        "{}",
        wrong.stderr
    );
    router.shutdown().await;
}

/// With principals in the configuration, the command line's listeners need
/// `--auth`; with it the router starts and says what each accepts.
#[tokio::test]
async fn router_listeners_of_the_command_line_need_auth_with_principals() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("router-auth");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.toml");
    std::fs::write(
        &config,
        "[[principal]]\nrealm = \"realm1\"\nauthid = \"a\"\nrole = \"user\"\nwampcra = { secret = \"s\" }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = run(&["router", "--config", config, "--rs", "127.0.0.1:0"]).await;
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("auth = ["), "{}", out.stderr);
    let mut router = Running::spawn(&[
        "router",
        "--config",
        config,
        "--rs",
        "127.0.0.1:0",
        "--auth",
        "wampcra,anonymous",
    ]);
    // The banner, then the access line.
    let banner = router.stdout_line().await;
    assert!(banner.starts_with("fahrbahn router"), "{banner}");
    let access = router.stdout_line().await;
    assert!(
        access.starts_with("authentication (rs://127.0.0.1:")
            && access.contains(": wampcra, anonymous)"),
        "{access}"
    );
    router.terminate().await;
}
