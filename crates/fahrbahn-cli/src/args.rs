//! Command line parsing with clap (derive API).
//!
//! Two things the old hand-written parser accepted that clap does not
//! express directly are handled by [`normalize`] before clap sees the
//! arguments:
//!
//! - options given before the subcommand name apply to it
//!   (`fahrbahn --url rs://host:8081 call a.b` is `fahrbahn call a.b --url
//!   rs://host:8081`);
//! - a positional `ARG` of `call`/`publish` that starts with a dash but is a
//!   JSON number (`-1`, `-2.5e-3`) is an argument, not an option.

use std::ffi::OsString;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use fahrbahn::wamp::auth::Secret;
use fahrbahn::wamp::{Dict, Serializer, Value};

use crate::json;

/// The default router URL of the client subcommands.
pub(crate) const DEFAULT_URL: &str = "ws://127.0.0.1:8080/ws";
/// The default realm.
pub(crate) const DEFAULT_REALM: &str = "realm1";
/// The router's default WebSocket address.
pub(crate) const DEFAULT_WS: &str = "127.0.0.1:8080";
/// The router's default RawSocket address.
pub(crate) const DEFAULT_RS: &str = "127.0.0.1:8081";

/// Marks a positional argument [`normalize`] found to be a negative JSON
/// number. No real argument starts with NUL (command lines are C strings).
const NUMBER_MARK: char = '\0';

/// The Fahrbahn WAMP command line: run a router, call, publish, subscribe
/// and register procedures from the shell.
#[derive(Debug, Parser)]
#[command(
    name = "fahrbahn",
    version,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "\
Client commands connect with --url (default ws://127.0.0.1:8080/ws),
--realm (default realm1) and --serializer (json, msgpack or cbor); options
may also come before the command name. Arguments are JSON when they parse
as JSON, otherwise strings."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub(crate) enum Command {
    /// Run the embedded WAMP router until Ctrl-C
    ///
    /// Runs the embedded WAMP router, prints the URLs it listens on, and serves
    /// until Ctrl-C or SIGTERM, then says GOODBYE to every session and stops.
    /// Without --config and without listeners it listens on
    /// ws://127.0.0.1:8080/ws (WebSocket) and rs://127.0.0.1:8081 (RawSocket)
    /// for realm realm1.
    Router(RouterArgs),
    /// Call a procedure and print its result as JSON
    ///
    /// Calls procedure URI and prints the result as JSON on stdout: the value
    /// itself when there is exactly one positional result and no keyword
    /// results, `null` when there is none, otherwise {"args": [...], "kwargs":
    /// {...}}. An error (e.g. wamp.error.no_such_procedure) is printed on stderr
    /// and the exit status is 1.
    ///
    /// Each ARG is JSON if it parses as JSON (5, true, null, [1,2], {"a":1},
    /// '"5"'), otherwise the text as a string. Use -- before arguments that
    /// start with a dash (negative numbers need none).
    Call(CallArgs),
    /// Publish an event to a topic
    ///
    /// Publishes an event to TOPIC. Each ARG is JSON if it parses as JSON,
    /// otherwise the text as a string.
    #[command(visible_alias = "pub")]
    Publish(PublishArgs),
    /// Print each event of a topic as one JSON line until Ctrl-C
    ///
    /// Subscribes to TOPIC and prints each event as one JSON line on stdout,
    /// {"args": [...], "kwargs": {...}}, until Ctrl-C or SIGTERM.
    #[command(visible_alias = "sub")]
    Subscribe(SubscribeArgs),
    /// Serve a procedure with a shell command until Ctrl-C
    ///
    /// Registers procedure URI and serves it with COMMAND until Ctrl-C or
    /// SIGTERM. Each invocation runs COMMAND with the invocation's positional
    /// arguments appended (strings as they are, other values as JSON text), and
    /// with {"args": [...], "kwargs": {...}} as JSON on its stdin. Its stdout,
    /// trimmed, is the result (JSON if it parses, otherwise a string; nothing
    /// for empty output). A non-zero exit returns the error
    /// com.fahrbahn.error.command_failed with the exit code and stderr.
    ///
    /// Options go before COMMAND: everything from COMMAND on is the command's
    /// (`--` before it is optional).
    #[command(visible_alias = "reg")]
    Register(RegisterArgs),
    /// Write a new cryptosign (Ed25519) key pair
    ///
    /// Writes a new Ed25519 private key to FILE (OpenSSH format, mode 0600;
    /// an existing file is not overwritten) and its public key in hex to
    /// FILE.pub, and prints the public key: list it in the router's
    /// authorized keys, and connect with `--private-key FILE`.
    Keygen(KeygenArgs),
    /// Print the stored form of a ticket or SCRAM password for the router's config
    ///
    /// Reads the secret from stdin (its first line; stdin must not be a
    /// terminal, which would echo it: pipe it in) or from --secret
    /// env:NAME / file:PATH, and prints what a `[[principal]]` of the
    /// router's TOML configuration holds: for `ticket` the argon2id PHC hash
    /// (the value of `ticket = "..."`), for `scram` the `scram = { ... }`
    /// line (kdf, iterations, memory, salt, stored-key, server-key). The
    /// secret itself is never printed.
    HashSecret(HashSecretArgs),
    /// Print a shell completion script to stdout
    ///
    /// Prints the completion script for SHELL to stdout, e.g.
    /// `fahrbahn completions bash > ~/.local/share/bash-completion/completions/fahrbahn`.
    Completions(CompletionsArgs),
    /// Print the version
    Version,
}

/// Where and how client subcommands connect.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Connect {
    /// Router URL: ws://, wss://, rs://, rss:// or unix:PATH
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL, allow_hyphen_values = true)]
    pub(crate) url: String,
    /// Realm to join
    #[arg(long, value_name = "NAME", default_value = DEFAULT_REALM, allow_hyphen_values = true)]
    pub(crate) realm: String,
    /// WAMP serializer
    #[arg(
        long,
        value_name = "NAME",
        default_value = "json",
        value_parser = serializer(),
        ignore_case = true,
        allow_hyphen_values = true
    )]
    pub(crate) serializer: Serializer,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            realm: DEFAULT_REALM.to_owned(),
            serializer: Serializer::Json,
            auth: AuthArgs::default(),
        }
    }
}

/// How client subcommands authenticate. A secret (`--ticket`, `--secret`,
/// `--password`) is given as `env:NAME` (read from the environment
/// variable NAME), `file:PATH` (the file's first line) or literally (visible
/// to other users in the process list: prefer the other two).
#[derive(Debug, Clone, Default, PartialEq, Args)]
#[command(next_help_heading = "Authentication")]
pub(crate) struct AuthArgs {
    /// Authentication id (HELLO authid)
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub(crate) authid: Option<String>,
    /// Role to ask for (HELLO authrole)
    #[arg(long, value_name = "ROLE", allow_hyphen_values = true)]
    pub(crate) authrole: Option<String>,
    /// Method to offer (repeat for several, in order of preference; default:
    /// every method whose credential is given)
    #[arg(long, value_name = "METHOD", value_parser = PossibleValuesParser::new(["ticket", "wampcra", "cryptosign", "scram"]))]
    pub(crate) authmethod: Vec<String>,
    /// Ticket for `ticket`: env:NAME, file:PATH or the ticket
    #[arg(long, value_name = "SOURCE", value_parser = secret_arg, allow_hyphen_values = true)]
    pub(crate) ticket: Option<Secret>,
    /// Secret for `wampcra` (salt, iterations and key length come from the
    /// router): env:NAME, file:PATH or the secret
    #[arg(long, value_name = "SOURCE", value_parser = secret_arg, allow_hyphen_values = true)]
    pub(crate) secret: Option<Secret>,
    /// Ed25519 private key file for `cryptosign` (OpenSSH, raw 32/64 bytes
    /// or a hex seed); default: $WAMP_PRIVATE_KEY (a hex seed or a file)
    #[arg(long = "private-key", value_name = "FILE", allow_hyphen_values = true)]
    pub(crate) private_key: Option<std::path::PathBuf>,
    /// Password for `scram`: env:NAME, file:PATH or the password
    #[arg(long, value_name = "SOURCE", value_parser = secret_arg, allow_hyphen_values = true)]
    pub(crate) password: Option<Secret>,
}

/// A secret option: `env:NAME`, `file:PATH` or the secret itself.
fn secret_arg(arg: &str) -> Result<Secret, String> {
    if let Some(name) = arg.strip_prefix("env:") {
        return std::env::var(name)
            .map(Secret::new)
            .map_err(|_| format!("the environment variable {name} is not set (or not UTF-8)"));
    }
    if let Some(path) = arg.strip_prefix("file:") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let text = Secret::new(text);
        return Ok(Secret::new(
            text.expose().lines().next().unwrap_or_default(),
        ));
    }
    Ok(Secret::new(arg))
}

/// `fahrbahn router`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub(crate) struct RouterArgs {
    /// Read a TOML configuration (realms, listeners, limits, roles,
    /// principals, allowed origins)
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub(crate) config: Option<String>,
    /// Add a WebSocket listener on ADDR (e.g. 127.0.0.1:8080; port 0 picks
    /// a free port; an address beyond loopback needs a --config listener
    /// with `expose = true`); repeatable
    #[arg(long = "ws", value_name = "ADDR", allow_hyphen_values = true)]
    pub(crate) websocket: Vec<String>,
    /// Add a RawSocket listener on ADDR; repeatable
    #[arg(long = "rs", value_name = "ADDR", allow_hyphen_values = true)]
    pub(crate) rawsocket: Vec<String>,
    /// Add a WebSocket listener on a Unix socket; repeatable
    #[arg(long = "unix-ws", value_name = "PATH", allow_hyphen_values = true)]
    pub(crate) unix_websocket: Vec<String>,
    /// Add a RawSocket listener on a Unix socket; repeatable
    #[arg(long = "unix-rs", value_name = "PATH", allow_hyphen_values = true)]
    pub(crate) unix_rawsocket: Vec<String>,
    /// Serve realm NAME (replaces the default realm1; adds to the realms of
    /// --config); repeatable
    #[arg(long = "realm", value_name = "NAME", allow_hyphen_values = true)]
    pub(crate) realms: Vec<String>,
    /// Accept WebSocket requests only from this Origin (exact, or with `*`,
    /// e.g. https://*.example.com or http://127.0.0.1:*) on the WebSocket
    /// listeners of the command line; requests without Origin are always
    /// accepted; repeatable
    #[arg(
        long = "allowed-origin",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    pub(crate) allowed_origins: Vec<String>,
    /// Authentication methods the listeners of the command line accept
    /// (anonymous, ticket, wampcra, cryptosign, scram; the principals come
    /// from --config); repeatable or comma-separated. Needed once --config
    /// has principals (e.g. --auth anonymous keeps them anonymous)
    #[arg(long = "auth", value_name = "METHOD", value_delimiter = ',', value_parser = PossibleValuesParser::new(["anonymous", "ticket", "wampcra", "cryptosign", "scram"]))]
    pub(crate) auth: Vec<String>,
}

impl RouterArgs {
    /// Whether any listener was given on the command line.
    pub(crate) fn has_listeners(&self) -> bool {
        !(self.websocket.is_empty()
            && self.rawsocket.is_empty()
            && self.unix_websocket.is_empty()
            && self.unix_rawsocket.is_empty())
    }
}

/// The positional and keyword payload of `call` and `publish`.
#[derive(Debug, Clone, PartialEq, Args)]
pub(crate) struct Payload {
    /// Positional arguments: JSON, or else strings
    #[arg(value_name = "ARGS", value_parser = json_arg)]
    pub(crate) args: Vec<Value>,
    /// Keyword arguments (a JSON object)
    #[arg(
        long,
        value_name = "JSON",
        value_parser = json_kwargs,
        default_value = "{}",
        hide_default_value = true,
        allow_hyphen_values = true
    )]
    pub(crate) kwargs: Dict,
}

/// `fahrbahn call`.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(args_override_self = true)]
pub(crate) struct CallArgs {
    /// The procedure to call
    #[arg(value_name = "URI", value_parser = unmarked)]
    pub(crate) procedure: String,
    #[command(flatten)]
    pub(crate) payload: Payload,
    /// Always print {"args": [...], "kwargs": {...}}
    #[arg(long)]
    pub(crate) envelope: bool,
    #[command(flatten)]
    pub(crate) connect: Connect,
}

/// `fahrbahn publish`.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(args_override_self = true)]
pub(crate) struct PublishArgs {
    /// The topic to publish to
    #[arg(value_name = "TOPIC", value_parser = unmarked)]
    pub(crate) topic: String,
    #[command(flatten)]
    pub(crate) payload: Payload,
    /// Wait until the router accepted the publication and report its error
    /// if it did not
    #[arg(long)]
    pub(crate) acknowledge: bool,
    #[command(flatten)]
    pub(crate) connect: Connect,
}

/// `fahrbahn subscribe`.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(args_override_self = true)]
pub(crate) struct SubscribeArgs {
    /// The topic to subscribe to
    #[arg(value_name = "TOPIC", allow_negative_numbers = true)]
    pub(crate) topic: String,
    /// Match policy [default: exact]
    #[arg(long = "match", value_name = "POLICY", value_parser = match_policy(), allow_hyphen_values = true)]
    pub(crate) match_policy: Option<String>,
    /// Add the event details (publisher, topic...) as "details"
    #[arg(long)]
    pub(crate) details: bool,
    #[command(flatten)]
    pub(crate) connect: Connect,
}

/// `fahrbahn register`.
#[derive(Debug, Clone, PartialEq, Args)]
#[command(args_override_self = true)]
pub(crate) struct RegisterArgs {
    /// The procedure to register
    #[arg(value_name = "URI", allow_negative_numbers = true)]
    pub(crate) procedure: String,
    /// Match policy [default: exact]
    #[arg(long = "match", value_name = "POLICY", value_parser = match_policy(), allow_hyphen_values = true)]
    pub(crate) match_policy: Option<String>,
    /// The command (and its arguments) that serves each invocation
    #[arg(
        value_name = "COMMAND",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_negative_numbers = true
    )]
    pub(crate) command: Vec<String>,
    #[command(flatten)]
    pub(crate) connect: Connect,
}

/// `fahrbahn keygen`.
#[derive(Debug, Clone, PartialEq, Args)]
pub(crate) struct KeygenArgs {
    /// The private key file to write (the public key goes to FILE.pub)
    #[arg(value_name = "FILE")]
    pub(crate) file: std::path::PathBuf,
    /// Comment stored in the OpenSSH key
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "fahrbahn",
        allow_hyphen_values = true
    )]
    pub(crate) comment: String,
}

/// `fahrbahn hash-secret`.
#[derive(Debug, Clone, PartialEq, Args)]
pub(crate) struct HashSecretArgs {
    /// What the secret is for
    #[arg(value_name = "METHOD", value_parser = PossibleValuesParser::new(["ticket", "scram"]))]
    pub(crate) method: String,
    /// Where the secret comes from: env:NAME or file:PATH (default: stdin)
    #[arg(long, value_name = "SOURCE", value_parser = secret_source, allow_hyphen_values = true)]
    pub(crate) secret: Option<Secret>,
    /// SCRAM key derivation function
    #[arg(long, value_name = "KDF", default_value = "argon2id-13", value_parser = PossibleValuesParser::new(["argon2id-13", "pbkdf2"]))]
    pub(crate) kdf: String,
    /// argon2 passes or PBKDF2 rounds (default: 2 for argon2id-13 and the
    /// ticket hash, 600000 for pbkdf2)
    #[arg(long, value_name = "N")]
    pub(crate) iterations: Option<u32>,
    /// argon2 memory in KiB (default 19456, 19 MiB)
    #[arg(long, value_name = "KIB")]
    pub(crate) memory: Option<u32>,
}

/// A secret source that is never the secret itself: `env:NAME` or
/// `file:PATH`.
fn secret_source(arg: &str) -> Result<Secret, String> {
    if arg.starts_with("env:") || arg.starts_with("file:") {
        secret_arg(arg)
    } else {
        Err(
            "give env:NAME or file:PATH (or pipe the secret to stdin), never the secret itself"
                .into(),
        )
    }
}

/// `fahrbahn completions`.
#[derive(Debug, Clone, PartialEq, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// The match policies of `subscribe` and `register`.
fn match_policy() -> PossibleValuesParser {
    PossibleValuesParser::new(["exact", "prefix", "wildcard"])
}

/// A positional `ARG`: JSON, or else the text as a string.
fn json_arg(arg: &str) -> Result<Value, String> {
    Ok(json::parse_arg(&unmarked(arg)?))
}

/// A positional argument of `call` or `publish`, without the mark of
/// [`normalize`].
fn unmarked(arg: &str) -> Result<String, String> {
    Ok(arg.strip_prefix(NUMBER_MARK).unwrap_or(arg).to_owned())
}

/// `--kwargs`: a JSON object.
fn json_kwargs(arg: &str) -> Result<Dict, String> {
    json::parse_kwargs(arg)
}

/// `--serializer`: json, msgpack (or messagepack) or cbor, in any case
/// (with `ignore_case`).
fn serializer() -> impl TypedValueParser<Value = Serializer> {
    PossibleValuesParser::new([
        PossibleValue::new("json"),
        PossibleValue::new("msgpack").alias("messagepack"),
        PossibleValue::new("cbor"),
    ])
    // The value as given (any case, or the alias).
    .map(|name| match name.to_ascii_lowercase().as_str() {
        "msgpack" | "messagepack" => Serializer::MsgPack,
        "cbor" => Serializer::Cbor,
        _ => Serializer::Json,
    })
}

/// Parses the arguments after the program name (clap's error for usage
/// errors, and for `--help` and `--version`: see [`clap::Error::exit`]).
pub(crate) fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = normalize(args.into_iter().map(Into::into).collect());
    let argv = std::iter::once(OsString::from("fahrbahn")).chain(args);
    Cli::try_parse_from(argv).map(|cli| cli.command)
}

/// Whether `arg` is positional although it starts with `-` (a negative
/// JSON number such as `-1` or `-2.5e-3`).
fn is_negative_number(arg: &str) -> bool {
    arg.len() > 1
        && arg.starts_with('-')
        && matches!(
            serde_json::from_str::<serde_json::Value>(arg),
            Ok(serde_json::Value::Number(_))
        )
}

/// Whether `arg` (`--name`, without `=value`) is an option of `cmd` that
/// takes a value.
fn takes_value(cmd: &clap::Command, arg: &str) -> bool {
    let Some(name) = arg.strip_prefix("--") else {
        return false;
    };
    cmd.get_arguments()
        .any(|a| a.get_long() == Some(name) && a.get_action().takes_values())
}

/// Rewrites the arguments (after the program name) into what clap parses
/// the way the hand-written parser did; see the module documentation.
fn normalize(mut args: Vec<OsString>) -> Vec<OsString> {
    let cli = Cli::command();
    // Find the subcommand, skipping leading options (moved after it).
    let mut leading = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        match arg {
            "-h" | "--help" | "-V" | "--version" => return vec![arg.into()],
            a if a.starts_with('-') => {
                leading.push(args[i].clone());
                if cli.get_subcommands().any(|s| takes_value(s, a)) {
                    if let Some(value) = args.get(i + 1) {
                        leading.push(value.clone());
                        i += 1;
                    }
                }
            }
            _ => break,
        }
        i += 1;
    }
    if i == args.len() {
        // No subcommand: clap reports the first option.
        return args;
    }
    let rest = args.split_off(i + 1);
    args.drain(..i);
    args.extend(leading);
    args.extend(rest);
    // An unknown subcommand (first now) is clap's to report, with suggestions.
    let sub = args[0].to_str().and_then(|name| cli.find_subcommand(name));
    if let Some(sub) = sub.filter(|s| matches!(s.get_name(), "call" | "publish")) {
        let mut rest = args.iter_mut().skip(1);
        while let Some(arg) = rest.next() {
            let Some(text) = arg.to_str() else { continue };
            if text == "--" {
                break;
            }
            if takes_value(sub, text) {
                rest.next();
            } else if is_negative_number(text) {
                *arg = format!("{NUMBER_MARK}{text}").into();
            }
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn p(args: &[&str]) -> Result<Command, clap::Error> {
        parse(args.iter().copied())
    }

    fn kind(args: &[&str]) -> ErrorKind {
        match p(args) {
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
            Err(e) => e.kind(),
        }
    }

    /// The error's text (without colours).
    fn err(args: &[&str]) -> String {
        match p(args) {
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
            Err(e) => e.render().to_string(),
        }
    }

    fn call(args: &[&str]) -> CallArgs {
        match p(args) {
            Ok(Command::Call(c)) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn auth_options() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = call(&[
            "--authid",
            "alice",
            "call",
            "a.b",
            "--authrole",
            "user",
            "--authmethod",
            "scram",
            "--authmethod",
            "ticket",
            "--ticket",
            "t1",
            "--password",
            "file:Cargo.toml",
            "--private-key",
            "k.key",
        ]);
        let auth = &c.connect.auth;
        assert_eq!(auth.authid.as_deref(), Some("alice"));
        assert_eq!(auth.authrole.as_deref(), Some("user"));
        assert_eq!(auth.authmethod, ["scram", "ticket"]);
        assert_eq!(auth.ticket.as_ref().map(Secret::expose), Some("t1"));
        assert_eq!(
            auth.private_key.as_deref(),
            Some(std::path::Path::new("k.key"))
        );
        // file:PATH is the file's first line (relative to the cwd: use an absolute path)
        let manifest = format!("file:{}", dir.join("Cargo.toml").display());
        let c = call(&["call", "a.b", "--secret", &manifest]);
        assert_eq!(
            c.connect.auth.secret.as_ref().map(Secret::expose),
            Some("[package]")
        );
        // secrets stay out of Debug
        let shown = format!("{:?}", call(&["call", "a.b", "--ticket", "hunter2"]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            kind(&["call", "a.b", "--authmethod", "md5"]),
            ErrorKind::InvalidValue
        );
        assert!(p(&["call", "a.b", "--password", "file:/nonexistent/x"]).is_err());
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn top_level() {
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["-h"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["--version"]), ErrorKind::DisplayVersion);
        assert_eq!(kind(&["-V"]), ErrorKind::DisplayVersion);
        assert_eq!(p(&["version"]).unwrap(), Command::Version);
        assert_eq!(kind(&["help"]), ErrorKind::DisplayHelp);
        // Help and version win over leading options.
        assert_eq!(
            kind(&["--url", "x", "--help", "call"]),
            ErrorKind::DisplayHelp
        );
        assert_eq!(
            kind(&[]),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(kind(&["frobnicate"]), ErrorKind::InvalidSubcommand);
        for args in [&["cal", "a.b"][..], &["--url", "ws://x", "cal", "a.b"]] {
            let e = err(args);
            assert!(e.contains("unrecognized subcommand 'cal'"), "{e}");
            assert!(e.contains("similar subcommand exists: 'call'"), "{e}");
        }
    }

    #[test]
    fn help_per_subcommand() {
        for name in [
            "router",
            "call",
            "publish",
            "subscribe",
            "register",
            "completions",
        ] {
            for args in [&[name, "--help"][..], &[name, "-h"], &["help", name]] {
                let e = p(args).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
                let text = e.render().to_string();
                assert!(text.contains(&format!("Usage: fahrbahn {name}")), "{text}");
            }
        }
        // Help wins over missing arguments.
        assert_eq!(kind(&["call", "--help"]), ErrorKind::DisplayHelp);
        // The aliases.
        let text = p(&["pub", "--help"]).unwrap_err().render().to_string();
        assert!(text.contains("Usage: fahrbahn publish"), "{text}");
    }

    #[test]
    fn call_arguments() {
        let c = call(&["call", "com.example.add2", "2", "3"]);
        assert_eq!(c.procedure, "com.example.add2");
        assert_eq!(c.payload.args, vec![Value::Int(2), Value::Int(3)]);
        assert!(c.payload.kwargs.is_empty());
        assert_eq!(c.connect, Connect::default());
        assert!(!c.envelope);

        let c = call(&[
            "call",
            "com.x",
            "hello",
            "-1",
            "--kwargs",
            r#"{"a": [1]}"#,
            "--url=rs://127.0.0.1:8081",
            "--realm",
            "r2",
            "--serializer",
            "msgpack",
            "--envelope",
            "--",
            "--not-an-option",
        ]);
        assert_eq!(
            c.payload.args,
            vec![
                Value::String("hello".into()),
                Value::Int(-1),
                Value::String("--not-an-option".into())
            ]
        );
        assert_eq!(c.payload.kwargs["a"], Value::List(vec![Value::Int(1)]));
        assert_eq!(c.connect.url, "rs://127.0.0.1:8081");
        assert_eq!(c.connect.realm, "r2");
        assert_eq!(c.connect.serializer, Serializer::MsgPack);
        assert!(c.envelope);
    }

    #[test]
    fn negative_numbers_are_arguments() {
        let c = call(&["call", "a", "-1", "-2.5", "-1e-5", "-1E+2", "-0"]);
        assert_eq!(
            c.payload.args,
            vec![
                Value::Int(-1),
                Value::Float(-2.5),
                Value::Float(-1e-5),
                Value::Float(-100.0),
                json::parse_arg("-0"),
            ]
        );
        let Ok(Command::Publish(pa)) = p(&["publish", "t", "-3"]) else {
            panic!("not a publish");
        };
        assert_eq!(pa.payload.args, vec![Value::Int(-3)]);
        // Even as the URI or TOPIC.
        assert_eq!(call(&["call", "-1", "-2"]).procedure, "-1");
        let Ok(Command::Publish(pa)) = p(&["publish", "-1e-2"]) else {
            panic!("not a publish");
        };
        assert_eq!(pa.topic, "-1e-2");
        let Ok(Command::Subscribe(s)) = p(&["subscribe", "-1"]) else {
            panic!("not a subscribe");
        };
        assert_eq!(s.topic, "-1");
        let Ok(Command::Register(r)) = p(&["register", "-1", "-2", "-3"]) else {
            panic!("not a register");
        };
        assert_eq!(r.procedure, "-1");
        assert_eq!(r.command, ["-2", "-3"]);
        // Not a JSON number: an (unknown) option, as before.
        assert_eq!(kind(&["call", "a", "-1."]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["call", "a", "-x"]), ErrorKind::UnknownArgument);
        // Option values are left alone.
        let c = call(&["call", "a", "--realm", "-1"]);
        assert_eq!(c.connect.realm, "-1");
        assert!(c.payload.args.is_empty());
    }

    #[test]
    fn repeated_options_take_the_last_value() {
        let c = call(&[
            "call",
            "a",
            "--url",
            "ws://x",
            "--url",
            "ws://y",
            "--kwargs",
            r#"{"a":1}"#,
            "--kwargs",
            r#"{"b":2}"#,
            "--envelope",
            "--envelope",
        ]);
        assert_eq!(c.connect.url, "ws://y");
        assert_eq!(c.payload.kwargs.keys().collect::<Vec<_>>(), ["b"]);
        assert!(c.envelope);
    }

    #[test]
    fn serializer_names() {
        for (name, serializer) in [
            ("json", Serializer::Json),
            ("JSON", Serializer::Json),
            ("msgpack", Serializer::MsgPack),
            ("messagepack", Serializer::MsgPack),
            ("cbor", Serializer::Cbor),
        ] {
            assert_eq!(
                call(&["call", "a", "--serializer", name])
                    .connect
                    .serializer,
                serializer
            );
        }
        let e = err(&["call", "a", "--serializer", "xml"]);
        assert!(e.contains("invalid value 'xml'"), "{e}");
        assert!(e.contains("[possible values: json, msgpack, cbor]"), "{e}");
    }

    #[test]
    fn leading_options_apply_to_the_subcommand() {
        let c = call(&[
            "--url",
            "unix:/tmp/r.sock",
            "--serializer=cbor",
            "call",
            "a.b",
        ]);
        assert_eq!(c.connect.url, "unix:/tmp/r.sock");
        assert_eq!(c.connect.serializer, Serializer::Cbor);
        assert_eq!(c.procedure, "a.b");
        let c = call(&["--realm", "r", "call", "a.b", "-1"]);
        assert_eq!(c.connect.realm, "r");
        assert_eq!(c.payload.args, vec![Value::Int(-1)]);
        // Flags too.
        let c = call(&["--envelope", "call", "a.b", "1"]);
        assert!(c.envelope);
        assert_eq!(
            (c.procedure.as_str(), &c.payload.args[..]),
            ("a.b", &[Value::Int(1)][..])
        );
        // Unknown ones are reported by the subcommand.
        let e = err(&["--bogus", "call", "a.b"]);
        assert!(e.contains("unexpected argument '--bogus'"), "{e}");
        assert!(e.contains("Usage: fahrbahn call"), "{e}");
        // Only the subcommand's own options.
        assert_eq!(kind(&["--url", "x", "router"]), ErrorKind::UnknownArgument);
    }

    #[test]
    fn usage_errors() {
        assert_eq!(kind(&["call"]), ErrorKind::MissingRequiredArgument);
        let e = err(&["call"]);
        assert!(e.contains("<URI>"), "{e}");
        assert!(e.contains("Usage: fahrbahn call"), "{e}");
        let e = err(&["call", "a", "--bogus"]);
        assert!(e.contains("unexpected argument '--bogus'"), "{e}");
        let e = err(&["call", "a", "--kwarg", "{}"]);
        assert!(e.contains("similar argument exists: '--kwargs'"), "{e}");
        assert_eq!(kind(&["call", "a", "--url"]), ErrorKind::InvalidValue);
        let e = err(&["call", "a", "--kwargs", "[1]"]);
        assert!(e.contains("--kwargs must be a JSON object"), "{e}");
        assert_eq!(
            kind(&["call", "a", "--acknowledge"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&["publish", "t", "--envelope"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&["publish", "t", "--acknowledge=yes"]),
            ErrorKind::TooManyValues
        );
        assert!(err(&["subscribe"]).contains("<TOPIC>"));
        assert_eq!(kind(&["subscribe", "a", "b"]), ErrorKind::UnknownArgument);
        assert_eq!(
            kind(&["subscribe", "a", "--match", "regex"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(&["router", "extra"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["router", "--url", "x"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["completions", "tcsh"]), ErrorKind::InvalidValue);
    }

    #[test]
    fn publish_arguments() {
        let Ok(Command::Publish(pa)) = p(&["publish", "t.x", "1", "two", "--acknowledge"]) else {
            panic!("not a publish");
        };
        assert_eq!(pa.topic, "t.x");
        assert_eq!(
            pa.payload.args,
            vec![Value::Int(1), Value::String("two".into())]
        );
        assert!(pa.acknowledge);
        assert!(matches!(p(&["pub", "t"]), Ok(Command::Publish(_))));
    }

    #[test]
    fn subscribe_arguments() {
        let Ok(Command::Subscribe(s)) = p(&["subscribe", "t", "--match", "prefix", "--details"])
        else {
            panic!("not a subscribe");
        };
        assert_eq!(s.topic, "t");
        assert_eq!(s.match_policy.as_deref(), Some("prefix"));
        assert!(s.details);
        let Ok(Command::Subscribe(s)) = p(&["sub", "t"]) else {
            panic!("not a subscribe");
        };
        assert_eq!(s.match_policy, None);
        assert!(!s.details);
    }

    #[test]
    fn register_arguments() {
        let Ok(Command::Register(r)) = p(&[
            "register", "com.x", "--realm", "r", "--", "echo", "-n", "--flag",
        ]) else {
            panic!("not a register");
        };
        assert_eq!(r.procedure, "com.x");
        assert_eq!(r.connect.realm, "r");
        assert_eq!(r.command, vec!["echo", "-n", "--flag"]);
        // Without `--`, the second positional starts the command.
        let Ok(Command::Register(r)) = p(&["register", "com.x", "sh", "-c", "exit 1", "--url"])
        else {
            panic!("not a register");
        };
        assert_eq!(r.command, vec!["sh", "-c", "exit 1", "--url"]);
        assert_eq!(r.connect, Connect::default());
        let Ok(Command::Register(r)) = p(&["reg", "--match", "prefix", "com", "true"]) else {
            panic!("not a register");
        };
        assert_eq!(r.match_policy.as_deref(), Some("prefix"));
        assert_eq!(r.command, vec!["true"]);
        assert!(err(&["register", "com.x"]).contains("<COMMAND>"));
        assert_eq!(
            kind(&["register", "com.x", "--"]),
            ErrorKind::MissingRequiredArgument
        );
        assert!(err(&["register"]).contains("<URI>"));
        assert_eq!(
            kind(&["register", "com.x", "--bogus", "echo"]),
            ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn router_arguments() {
        assert_eq!(
            p(&["router"]).unwrap(),
            Command::Router(RouterArgs::default())
        );
        let Ok(Command::Router(r)) = p(&[
            "router",
            "--ws",
            "0.0.0.0:9000",
            "--ws=127.0.0.1:0",
            "--rs",
            "127.0.0.1:9001",
            "--unix-rs",
            "/tmp/r.sock",
            "--realm",
            "a",
            "--realm",
            "b",
            "--config",
            "router.toml",
            "--allowed-origin",
            "http://127.0.0.1:*",
            "--allowed-origin=null",
            "--auth",
            "anonymous,ticket",
            "--auth=scram",
        ]) else {
            panic!("not a router");
        };
        assert_eq!(r.auth, vec!["anonymous", "ticket", "scram"]);
        assert_eq!(r.allowed_origins, vec!["http://127.0.0.1:*", "null"]);
        assert_eq!(r.websocket, vec!["0.0.0.0:9000", "127.0.0.1:0"]);
        assert_eq!(r.rawsocket, vec!["127.0.0.1:9001"]);
        assert_eq!(r.unix_rawsocket, vec!["/tmp/r.sock"]);
        assert_eq!(r.realms, vec!["a", "b"]);
        assert_eq!(r.config.as_deref(), Some("router.toml"));
        assert!(r.has_listeners());
        assert_eq!(
            kind(&["router", "--config", "a", "--config", "b"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["router", "--auth", "password"]),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn completions() {
        assert_eq!(
            p(&["completions", "zsh"]).unwrap(),
            Command::Completions(CompletionsArgs { shell: Shell::Zsh })
        );
    }
}
