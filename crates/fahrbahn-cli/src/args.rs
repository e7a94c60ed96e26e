//! Command line parsing (hand-written: a handful of subcommands and
//! options do not need a framework).

use std::fmt;

use fahrbahn::{Dict, List, Serializer};

use crate::json;

/// The default router URL of the client subcommands.
pub(crate) const DEFAULT_URL: &str = "ws://127.0.0.1:8080/ws";
/// The default realm.
pub(crate) const DEFAULT_REALM: &str = "realm1";
/// The router's default WebSocket address.
pub(crate) const DEFAULT_WS: &str = "127.0.0.1:8080";
/// The router's default RawSocket address.
pub(crate) const DEFAULT_RS: &str = "127.0.0.1:8081";

/// Which help text to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    Main,
    Router,
    Call,
    Publish,
    Subscribe,
    Register,
}

impl Topic {
    fn from_name(name: &str) -> Option<Topic> {
        Some(match name {
            "router" => Topic::Router,
            "call" => Topic::Call,
            "publish" | "pub" => Topic::Publish,
            "subscribe" | "sub" => Topic::Subscribe,
            "register" | "reg" => Topic::Register,
            _ => return None,
        })
    }

    /// The subcommand's name (`fahrbahn` for the top level).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Topic::Main => "",
            Topic::Router => "router",
            Topic::Call => "call",
            Topic::Publish => "publish",
            Topic::Subscribe => "subscribe",
            Topic::Register => "register",
        }
    }

    /// The one-line usage.
    pub(crate) fn usage(self) -> &'static str {
        match self {
            Topic::Main => "fahrbahn <router|call|publish|subscribe|register> [OPTIONS] ...",
            Topic::Router => {
                "fahrbahn router [--config FILE] [--ws ADDR]... [--rs ADDR]... [--realm NAME]..."
            }
            Topic::Call => "fahrbahn call URI [ARGS...] [--kwargs JSON] [OPTIONS]",
            Topic::Publish => {
                "fahrbahn publish TOPIC [ARGS...] [--kwargs JSON] [--acknowledge] [OPTIONS]"
            }
            Topic::Subscribe => "fahrbahn subscribe TOPIC [--match prefix|wildcard] [OPTIONS]",
            Topic::Register => "fahrbahn register URI [OPTIONS] -- COMMAND [ARGS...]",
        }
    }

    /// The full help text.
    pub(crate) fn help(self) -> String {
        let body = match self {
            Topic::Main => MAIN_HELP,
            Topic::Router => ROUTER_HELP,
            Topic::Call => CALL_HELP,
            Topic::Publish => PUBLISH_HELP,
            Topic::Subscribe => SUBSCRIBE_HELP,
            Topic::Register => REGISTER_HELP,
        };
        let connection = match self {
            Topic::Main | Topic::Router => "",
            _ => CONNECTION_HELP,
        };
        format!("Usage: {}\n\n{body}{connection}", self.usage())
    }
}

const MAIN_HELP: &str = "\
The Fahrbahn WAMP command line: run a router, call, publish, subscribe and
register procedures from the shell.

Commands:
  router      Run the embedded WAMP router until Ctrl-C
  call        Call a procedure and print its result as JSON
  publish     Publish an event to a topic
  subscribe   Print each event of a topic as one JSON line until Ctrl-C
  register    Serve a procedure with a shell command until Ctrl-C
  help CMD    Show the help of a command

Options:
  -h, --help     Show this help (or `fahrbahn CMD --help`)
  -V, --version  Show the version

Client commands connect with --url (default ws://127.0.0.1:8080/ws),
--realm (default realm1) and --serializer (json, msgpack or cbor).
Arguments are JSON when they parse as JSON, otherwise strings.
";

const ROUTER_HELP: &str = "\
Runs the embedded WAMP router, prints the URLs it listens on, and serves
until Ctrl-C or SIGTERM, then says GOODBYE to every session and stops.
Without --config and without listeners it listens on ws://127.0.0.1:8080/ws
(WebSocket) and rs://127.0.0.1:8081 (RawSocket) for realm realm1.

Options:
  --config FILE      Read a TOML configuration (realms, listeners, limits)
  --ws ADDR          Add a WebSocket listener on ADDR (e.g. 0.0.0.0:8080;
                     port 0 picks a free port); repeatable
  --rs ADDR          Add a RawSocket listener on ADDR; repeatable
  --unix-ws PATH     Add a WebSocket listener on a Unix socket; repeatable
  --unix-rs PATH     Add a RawSocket listener on a Unix socket; repeatable
  --realm NAME       Serve realm NAME (replaces the default realm1; adds to
                     the realms of --config); repeatable
  -h, --help         Show this help
";

const CALL_HELP: &str = "\
Calls procedure URI and prints the result as JSON on stdout: the value
itself when there is exactly one positional result and no keyword results,
`null` when there is none, otherwise {\"args\": [...], \"kwargs\": {...}}.
An error (e.g. wamp.error.no_such_procedure) is printed on stderr and the
exit status is 1.

Each ARG is JSON if it parses as JSON (5, true, null, [1,2], {\"a\":1},
'\"5\"'), otherwise the text as a string. Use -- before arguments that
start with a dash.

Options:
  --kwargs JSON      Keyword arguments (a JSON object)
  --envelope         Always print {\"args\": [...], \"kwargs\": {...}}
  -h, --help         Show this help
";

const PUBLISH_HELP: &str = "\
Publishes an event to TOPIC. Each ARG is JSON if it parses as JSON,
otherwise the text as a string.

Options:
  --kwargs JSON      Keyword payload (a JSON object)
  --acknowledge      Wait until the router accepted the publication and
                     report its error if it did not
  -h, --help         Show this help
";

const SUBSCRIBE_HELP: &str = "\
Subscribes to TOPIC and prints each event as one JSON line on stdout,
{\"args\": [...], \"kwargs\": {...}}, until Ctrl-C or SIGTERM.

Options:
  --match POLICY     exact (default), prefix or wildcard
  --details          Add the event details (publisher, topic...) as \"details\"
  -h, --help         Show this help
";

const REGISTER_HELP: &str = "\
Registers procedure URI and serves it with COMMAND until Ctrl-C or SIGTERM.
Each invocation runs COMMAND with the invocation's positional arguments
appended (strings as they are, other values as JSON text), and with
{\"args\": [...], \"kwargs\": {...}} as JSON on its stdin. Its stdout,
trimmed, is the result (JSON if it parses, otherwise a string; nothing for
empty output). A non-zero exit returns the error
com.fahrbahn.error.command_failed with the exit code and stderr.

Options (before COMMAND):
  --match POLICY     exact (default), prefix or wildcard
  -h, --help         Show this help
";

const CONNECTION_HELP: &str = "
Connection:
  --url URL          Router URL: ws://, wss://, rs://, rss:// or unix:PATH
                     (default ws://127.0.0.1:8080/ws)
  --realm NAME       Realm to join (default realm1)
  --serializer NAME  json (default), msgpack or cbor
";

/// Where and how client subcommands connect.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Connect {
    pub(crate) url: String,
    pub(crate) realm: String,
    pub(crate) serializer: Serializer,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            realm: DEFAULT_REALM.to_owned(),
            serializer: Serializer::Json,
        }
    }
}

/// `fahrbahn router`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RouterArgs {
    pub(crate) config: Option<String>,
    pub(crate) websocket: Vec<String>,
    pub(crate) rawsocket: Vec<String>,
    pub(crate) unix_websocket: Vec<String>,
    pub(crate) unix_rawsocket: Vec<String>,
    pub(crate) realms: Vec<String>,
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

/// `fahrbahn call`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallArgs {
    pub(crate) connect: Connect,
    pub(crate) procedure: String,
    pub(crate) args: List,
    pub(crate) kwargs: Dict,
    pub(crate) envelope: bool,
}

/// `fahrbahn publish`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PublishArgs {
    pub(crate) connect: Connect,
    pub(crate) topic: String,
    pub(crate) args: List,
    pub(crate) kwargs: Dict,
    pub(crate) acknowledge: bool,
}

/// `fahrbahn subscribe`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubscribeArgs {
    pub(crate) connect: Connect,
    pub(crate) topic: String,
    pub(crate) match_policy: Option<String>,
    pub(crate) details: bool,
}

/// `fahrbahn register`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegisterArgs {
    pub(crate) connect: Connect,
    pub(crate) procedure: String,
    pub(crate) match_policy: Option<String>,
    pub(crate) command: Vec<String>,
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Help(Topic),
    Version,
    Router(RouterArgs),
    Call(CallArgs),
    Publish(PublishArgs),
    Subscribe(SubscribeArgs),
    Register(RegisterArgs),
}

/// A command line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError {
    pub(crate) topic: Topic,
    pub(crate) message: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}\n\nUsage: {}\n",
            self.message,
            self.topic.usage()
        )?;
        match self.topic {
            Topic::Main => write!(f, "Run `fahrbahn --help` for more."),
            t => write!(f, "Run `fahrbahn {} --help` for more.", t.name()),
        }
    }
}

/// Options that take a value (to find the subcommand after leading
/// options, e.g. `fahrbahn --url rs://host:8081 call ...`).
const VALUE_OPTIONS: &[&str] = &[
    "--url",
    "--realm",
    "--serializer",
    "--kwargs",
    "--match",
    "--config",
    "--ws",
    "--rs",
    "--unix-ws",
    "--unix-rs",
];

/// Parses the arguments after the program name.
pub(crate) fn parse<I, S>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    // Find the subcommand, skipping leading options (moved after it).
    let mut leading = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help(Topic::Main)),
            "-V" | "--version" => return Ok(Command::Version),
            a if a.starts_with('-') => {
                leading.push(a.to_owned());
                if VALUE_OPTIONS.contains(&a) {
                    if let Some(v) = args.get(i + 1) {
                        leading.push(v.clone());
                        i += 1;
                    }
                }
            }
            _ => break,
        }
        i += 1;
    }
    let Some(name) = args.get(i) else {
        return Err(usage(Topic::Main, "no command given"));
    };
    let mut rest = leading;
    rest.extend(args[i + 1..].iter().cloned());
    if name == "help" {
        return match rest.first() {
            None => Ok(Command::Help(Topic::Main)),
            Some(n) => Topic::from_name(n)
                .map(Command::Help)
                .ok_or_else(|| usage(Topic::Main, format!("unknown command {n:?}"))),
        };
    }
    if name == "version" {
        return Ok(Command::Version);
    }
    let Some(topic) = Topic::from_name(name) else {
        return Err(usage(Topic::Main, format!("unknown command {name:?}")));
    };
    Parser::new(topic, rest).run()
}

fn usage(topic: Topic, message: impl Into<String>) -> UsageError {
    UsageError {
        topic,
        message: message.into(),
    }
}

/// Whether `arg` is positional although it starts with `-` (a negative
/// number such as `-1` or `-2.5e3`).
fn is_negative_number(arg: &str) -> bool {
    arg.len() > 1
        && arg.starts_with('-')
        && matches!(
            serde_json::from_str::<serde_json::Value>(arg),
            Ok(serde_json::Value::Number(_))
        )
}

enum Token {
    /// `--name` or `--name=value` (value inline).
    Option(String, Option<String>),
    /// A positional argument.
    Positional(String),
    /// Everything from here on is positional (after `--`).
    Rest(Vec<String>),
}

struct Parser {
    topic: Topic,
    args: std::vec::IntoIter<String>,
}

impl Parser {
    fn new(topic: Topic, args: Vec<String>) -> Self {
        Self {
            topic,
            args: args.into_iter(),
        }
    }

    fn err(&self, message: impl Into<String>) -> UsageError {
        usage(self.topic, message)
    }

    fn next_token(&mut self) -> Option<Token> {
        let arg = self.args.next()?;
        if arg == "--" {
            return Some(Token::Rest(self.args.by_ref().collect()));
        }
        if arg == "-h" {
            return Some(Token::Option("--help".into(), None));
        }
        if arg.starts_with("--") {
            return Some(match arg.split_once('=') {
                Some((name, value)) => Token::Option(name.to_owned(), Some(value.to_owned())),
                None => Token::Option(arg, None),
            });
        }
        if arg.starts_with('-') && arg.len() > 1 && !is_negative_number(&arg) {
            return Some(Token::Option(arg, None));
        }
        Some(Token::Positional(arg))
    }

    fn value(&mut self, name: &str, inline: Option<String>) -> Result<String, UsageError> {
        match inline {
            Some(v) => Ok(v),
            None => self
                .args
                .next()
                .ok_or_else(|| self.err(format!("{name} needs a value"))),
        }
    }

    fn flag(&self, name: &str, inline: Option<String>) -> Result<(), UsageError> {
        match inline {
            None => Ok(()),
            Some(_) => Err(self.err(format!("{name} takes no value"))),
        }
    }

    /// Handles the connection options; `Ok(false)` if `name` is not one.
    fn connect_option(
        &mut self,
        connect: &mut Connect,
        name: &str,
        inline: Option<String>,
    ) -> Result<bool, UsageError> {
        match name {
            "--url" => connect.url = self.value(name, inline)?,
            "--realm" => connect.realm = self.value(name, inline)?,
            "--serializer" => {
                let v = self.value(name, inline)?;
                connect.serializer = parse_serializer(&v).ok_or_else(|| {
                    self.err(format!(
                        "unknown serializer {v:?}: use json, msgpack or cbor"
                    ))
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn unknown(&self, name: &str) -> UsageError {
        self.err(format!("unknown option {name}"))
    }

    fn match_policy(&mut self, name: &str, inline: Option<String>) -> Result<String, UsageError> {
        let v = self.value(name, inline)?;
        match v.as_str() {
            "exact" | "prefix" | "wildcard" => Ok(v),
            _ => Err(self.err(format!(
                "unknown match policy {v:?}: use exact, prefix or wildcard"
            ))),
        }
    }

    fn run(mut self) -> Result<Command, UsageError> {
        match self.topic {
            Topic::Router => self.router(),
            Topic::Call | Topic::Publish => self.call_or_publish(),
            Topic::Subscribe => self.subscribe(),
            Topic::Register => self.register(),
            Topic::Main => unreachable!("not a subcommand"),
        }
    }

    fn router(&mut self) -> Result<Command, UsageError> {
        let mut r = RouterArgs::default();
        while let Some(token) = self.next_token() {
            match token {
                Token::Option(name, inline) => match name.as_str() {
                    "--help" => return Ok(Command::Help(self.topic)),
                    "--config" => {
                        if r.config.is_some() {
                            return Err(self.err("--config given twice"));
                        }
                        r.config = Some(self.value(&name, inline)?);
                    }
                    "--ws" => r.websocket.push(self.value(&name, inline)?),
                    "--rs" => r.rawsocket.push(self.value(&name, inline)?),
                    "--unix-ws" => r.unix_websocket.push(self.value(&name, inline)?),
                    "--unix-rs" => r.unix_rawsocket.push(self.value(&name, inline)?),
                    "--realm" => r.realms.push(self.value(&name, inline)?),
                    _ => return Err(self.unknown(&name)),
                },
                Token::Positional(p) => {
                    return Err(self.err(format!("unexpected argument {p:?}")));
                }
                Token::Rest(rest) => {
                    if let Some(p) = rest.first() {
                        return Err(self.err(format!("unexpected argument {p:?}")));
                    }
                }
            }
        }
        Ok(Command::Router(r))
    }

    fn call_or_publish(&mut self) -> Result<Command, UsageError> {
        let mut connect = Connect::default();
        let mut positional = Vec::new();
        let mut kwargs = None;
        let mut acknowledge = false;
        let mut envelope = false;
        while let Some(token) = self.next_token() {
            match token {
                Token::Option(name, inline) => {
                    if self.connect_option(&mut connect, &name, inline.clone())? {
                        continue;
                    }
                    match (name.as_str(), self.topic) {
                        ("--help", _) => return Ok(Command::Help(self.topic)),
                        ("--kwargs", _) => {
                            let v = self.value(&name, inline)?;
                            kwargs = Some(json::parse_kwargs(&v).map_err(|e| self.err(e))?);
                        }
                        ("--acknowledge", Topic::Publish) => {
                            self.flag(&name, inline)?;
                            acknowledge = true;
                        }
                        ("--envelope", Topic::Call) => {
                            self.flag(&name, inline)?;
                            envelope = true;
                        }
                        _ => return Err(self.unknown(&name)),
                    }
                }
                Token::Positional(p) => positional.push(p),
                Token::Rest(rest) => positional.extend(rest),
            }
        }
        let mut positional = positional.into_iter();
        let what = if self.topic == Topic::Call {
            "URI"
        } else {
            "TOPIC"
        };
        let uri = positional
            .next()
            .ok_or_else(|| self.err(format!("missing {what}")))?;
        let args: List = positional.map(|a| json::parse_arg(&a)).collect();
        let kwargs = kwargs.unwrap_or_default();
        Ok(if self.topic == Topic::Call {
            Command::Call(CallArgs {
                connect,
                procedure: uri,
                args,
                kwargs,
                envelope,
            })
        } else {
            Command::Publish(PublishArgs {
                connect,
                topic: uri,
                args,
                kwargs,
                acknowledge,
            })
        })
    }

    fn subscribe(&mut self) -> Result<Command, UsageError> {
        let mut connect = Connect::default();
        let mut topic = None;
        let mut match_policy = None;
        let mut details = false;
        while let Some(token) = self.next_token() {
            let positional = match token {
                Token::Option(name, inline) => {
                    if self.connect_option(&mut connect, &name, inline.clone())? {
                        continue;
                    }
                    match name.as_str() {
                        "--help" => return Ok(Command::Help(self.topic)),
                        "--match" => match_policy = Some(self.match_policy(&name, inline)?),
                        "--details" => {
                            self.flag(&name, inline)?;
                            details = true;
                        }
                        _ => return Err(self.unknown(&name)),
                    }
                    continue;
                }
                Token::Positional(p) => vec![p],
                Token::Rest(rest) => rest,
            };
            for p in positional {
                if topic.is_some() {
                    return Err(self.err(format!("unexpected argument {p:?}")));
                }
                topic = Some(p);
            }
        }
        Ok(Command::Subscribe(SubscribeArgs {
            connect,
            topic: topic.ok_or_else(|| self.err("missing TOPIC"))?,
            match_policy,
            details,
        }))
    }

    fn register(&mut self) -> Result<Command, UsageError> {
        let mut connect = Connect::default();
        let mut procedure = None;
        let mut match_policy = None;
        let mut command = Vec::new();
        while let Some(token) = self.next_token() {
            match token {
                Token::Option(name, inline) => {
                    if self.connect_option(&mut connect, &name, inline.clone())? {
                        continue;
                    }
                    match name.as_str() {
                        "--help" => return Ok(Command::Help(self.topic)),
                        "--match" => match_policy = Some(self.match_policy(&name, inline)?),
                        _ => return Err(self.unknown(&name)),
                    }
                }
                Token::Positional(p) if procedure.is_none() => procedure = Some(p),
                // The command starts: everything from here on is its own.
                Token::Positional(p) => {
                    command.push(p);
                    command.extend(self.args.by_ref());
                }
                Token::Rest(rest) => {
                    let mut rest = rest.into_iter();
                    if procedure.is_none() {
                        procedure = rest.next();
                    }
                    command.extend(rest);
                }
            }
        }
        let procedure = procedure.ok_or_else(|| self.err("missing URI"))?;
        if command.is_empty() {
            return Err(self.err("missing COMMAND (after --)"));
        }
        Ok(Command::Register(RegisterArgs {
            connect,
            procedure,
            match_policy,
            command,
        }))
    }
}

fn parse_serializer(name: &str) -> Option<Serializer> {
    match name.to_ascii_lowercase().as_str() {
        "json" => Some(Serializer::Json),
        "msgpack" | "messagepack" => Some(Serializer::MsgPack),
        "cbor" => Some(Serializer::Cbor),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use fahrbahn::Value;

    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().copied())
    }

    fn call(args: &[&str]) -> CallArgs {
        match p(args) {
            Ok(Command::Call(c)) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn top_level() {
        assert_eq!(p(&["--help"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["-h"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert_eq!(p(&["help"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["help", "call"]), Ok(Command::Help(Topic::Call)));
        assert!(p(&[]).unwrap_err().message.contains("no command"));
        let e = p(&["frobnicate"]).unwrap_err();
        assert!(e.message.contains("unknown command"));
        assert!(e.to_string().contains("fahrbahn --help"));
    }

    #[test]
    fn help_per_subcommand() {
        for (name, topic) in [
            ("router", Topic::Router),
            ("call", Topic::Call),
            ("publish", Topic::Publish),
            ("subscribe", Topic::Subscribe),
            ("register", Topic::Register),
        ] {
            assert_eq!(p(&[name, "--help"]), Ok(Command::Help(topic)));
            assert_eq!(p(&[name, "-h"]), Ok(Command::Help(topic)));
            assert!(topic.help().starts_with(&format!("Usage: fahrbahn {name}")));
        }
        // Help wins over missing arguments.
        assert_eq!(p(&["call", "--help"]), Ok(Command::Help(Topic::Call)));
    }

    #[test]
    fn call_arguments() {
        let c = call(&["call", "com.example.add2", "2", "3"]);
        assert_eq!(c.procedure, "com.example.add2");
        assert_eq!(c.args, vec![Value::Int(2), Value::Int(3)]);
        assert!(c.kwargs.is_empty());
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
            c.args,
            vec![
                Value::String("hello".into()),
                Value::Int(-1),
                Value::String("--not-an-option".into())
            ]
        );
        assert_eq!(c.kwargs["a"], Value::List(vec![Value::Int(1)]));
        assert_eq!(c.connect.url, "rs://127.0.0.1:8081");
        assert_eq!(c.connect.realm, "r2");
        assert_eq!(c.connect.serializer, Serializer::MsgPack);
        assert!(c.envelope);
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
    }

    #[test]
    fn usage_errors() {
        let e = p(&["call"]).unwrap_err();
        assert_eq!(e.topic, Topic::Call);
        assert!(e.message.contains("missing URI"));
        assert!(e.to_string().contains("fahrbahn call --help"));
        assert!(
            p(&["call", "a", "--bogus"])
                .unwrap_err()
                .message
                .contains("--bogus")
        );
        assert!(
            p(&["call", "a", "--url"])
                .unwrap_err()
                .message
                .contains("needs a value")
        );
        assert!(
            p(&["call", "a", "--serializer", "xml"])
                .unwrap_err()
                .message
                .contains("xml")
        );
        assert!(
            p(&["call", "a", "--kwargs", "[1]"])
                .unwrap_err()
                .message
                .contains("--kwargs")
        );
        assert!(p(&["call", "a", "--acknowledge"]).is_err());
        assert!(p(&["publish", "t", "--envelope"]).is_err());
        assert!(
            p(&["publish", "t", "--acknowledge=yes"])
                .unwrap_err()
                .message
                .contains("no value")
        );
        assert!(p(&["subscribe"]).unwrap_err().message.contains("TOPIC"));
        assert!(p(&["subscribe", "a", "b"]).is_err());
        assert!(p(&["subscribe", "a", "--match", "regex"]).is_err());
        assert!(p(&["router", "extra"]).is_err());
        assert!(p(&["router", "--url", "x"]).is_err());
    }

    #[test]
    fn publish_arguments() {
        let Ok(Command::Publish(pa)) = p(&["publish", "t.x", "1", "two", "--acknowledge"]) else {
            panic!("not a publish");
        };
        assert_eq!(pa.topic, "t.x");
        assert_eq!(pa.args, vec![Value::Int(1), Value::String("two".into())]);
        assert!(pa.acknowledge);
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
        let Ok(Command::Register(r)) = p(&["register", "com.x", "sh", "-c", "exit 1"]) else {
            panic!("not a register");
        };
        assert_eq!(r.command, vec!["sh", "-c", "exit 1"]);
        assert!(
            p(&["register", "com.x"])
                .unwrap_err()
                .message
                .contains("COMMAND")
        );
        assert!(p(&["register", "com.x", "--"]).is_err());
        assert!(p(&["register"]).unwrap_err().message.contains("URI"));
    }

    #[test]
    fn router_arguments() {
        assert_eq!(p(&["router"]), Ok(Command::Router(RouterArgs::default())));
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
        ]) else {
            panic!("not a router");
        };
        assert_eq!(r.websocket, vec!["0.0.0.0:9000", "127.0.0.1:0"]);
        assert_eq!(r.rawsocket, vec!["127.0.0.1:9001"]);
        assert_eq!(r.unix_rawsocket, vec!["/tmp/r.sock"]);
        assert_eq!(r.realms, vec!["a", "b"]);
        assert_eq!(r.config.as_deref(), Some("router.toml"));
        assert!(r.has_listeners());
        assert!(p(&["router", "--config", "a", "--config", "b"]).is_err());
    }
}
