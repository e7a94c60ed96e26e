//! The WAMP v2 messages (basic and advanced profile) as a typed enum, and
//! their array form (`[type, …]`).

use super::error::DecodeError;
use super::id::MAX_ID;
use super::value::{Dict, List, Value};

/// A WAMP v2 message.
///
/// IDs are `u64` (WAMP IDs are in `[1, 2^53]`). `args` and `kwargs` are the
/// optional positional and keyword payloads: `None` and an empty list/dict
/// are the same on the wire (the encoder omits them, keeping `args` as `[]`
/// when `kwargs` is present), and decoding yields `None` for both.
///
/// ```
/// use fahrbahn_core::wamp::{Dict, Message, Value};
///
/// let call = Message::Call {
///     request: 7814135,
///     options: Dict::new(),
///     procedure: "com.myapp.ping".into(),
///     args: None,
///     kwargs: None,
/// };
/// assert_eq!(call.name(), "CALL");
/// assert_eq!(call.message_type(), Message::CALL);
/// let v = call.to_value();
/// assert_eq!(
///     v,
///     Value::List(vec![48.into(), 7814135.into(), Value::Dict(Dict::new()), "com.myapp.ping".into()])
/// );
/// assert_eq!(Message::from_value(v).unwrap(), call);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `[HELLO, Realm|uri, Details|dict]`
    Hello {
        /// The realm to join.
        realm: String,
        /// Roles, authentication methods, …
        details: Dict,
    },
    /// `[WELCOME, Session|id, Details|dict]`
    Welcome {
        /// The session ID.
        session: u64,
        /// Router roles, auth info, …
        details: Dict,
    },
    /// `[ABORT, Details|dict, Reason|uri]`
    Abort {
        /// Details, e.g. a `message`.
        details: Dict,
        /// Why, e.g. `wamp.error.no_such_realm`.
        reason: String,
    },
    /// `[CHALLENGE, AuthMethod|string, Extra|dict]`
    Challenge {
        /// The authentication method.
        authmethod: String,
        /// Method-specific data.
        extra: Dict,
    },
    /// `[AUTHENTICATE, Signature|string, Extra|dict]`
    Authenticate {
        /// The signature for the challenge.
        signature: String,
        /// Method-specific data.
        extra: Dict,
    },
    /// `[GOODBYE, Details|dict, Reason|uri]`
    Goodbye {
        /// Details, e.g. a `message`.
        details: Dict,
        /// Why, e.g. `wamp.close.normal`.
        reason: String,
    },
    /// `[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Arguments|list, ArgumentsKw|dict]`
    Error {
        /// The type code of the request that failed (e.g. [`Message::CALL`]).
        request_type: u64,
        /// The request ID of the request that failed.
        request: u64,
        /// Details.
        details: Dict,
        /// The error URI.
        error: String,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[PUBLISH, Request|id, Options|dict, Topic|uri, Arguments|list, ArgumentsKw|dict]`
    Publish {
        /// Request ID.
        request: u64,
        /// Options, e.g. `acknowledge`.
        options: Dict,
        /// The topic.
        topic: String,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[PUBLISHED, PUBLISH.Request|id, Publication|id]`
    Published {
        /// The PUBLISH request ID.
        request: u64,
        /// The publication ID.
        publication: u64,
    },
    /// `[SUBSCRIBE, Request|id, Options|dict, Topic|uri]`
    Subscribe {
        /// Request ID.
        request: u64,
        /// Options, e.g. `match`.
        options: Dict,
        /// The topic or topic pattern.
        topic: String,
    },
    /// `[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]`
    Subscribed {
        /// The SUBSCRIBE request ID.
        request: u64,
        /// The subscription ID.
        subscription: u64,
    },
    /// `[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]`
    Unsubscribe {
        /// Request ID.
        request: u64,
        /// The subscription ID.
        subscription: u64,
    },
    /// `[UNSUBSCRIBED, UNSUBSCRIBE.Request|id]` or, for a router-initiated
    /// revocation (advanced profile), `[UNSUBSCRIBED, 0, Details|dict]`.
    Unsubscribed {
        /// The UNSUBSCRIBE request ID (0 for a revocation).
        request: u64,
        /// Revocation details (`subscription`, `reason`).
        details: Option<Dict>,
    },
    /// `[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict, PUBLISH.Arguments|list, PUBLISH.ArgumentsKw|dict]`
    Event {
        /// The subscription ID.
        subscription: u64,
        /// The publication ID.
        publication: u64,
        /// Details, e.g. `publisher`, `topic`.
        details: Dict,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[CALL, Request|id, Options|dict, Procedure|uri, Arguments|list, ArgumentsKw|dict]`
    Call {
        /// Request ID.
        request: u64,
        /// Options, e.g. `timeout`, `receive_progress`.
        options: Dict,
        /// The procedure.
        procedure: String,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[CANCEL, CALL.Request|id, Options|dict]` (advanced profile)
    Cancel {
        /// The CALL request ID.
        request: u64,
        /// Options, e.g. `mode`.
        options: Dict,
    },
    /// `[RESULT, CALL.Request|id, Details|dict, YIELD.Arguments|list, YIELD.ArgumentsKw|dict]`
    Result {
        /// The CALL request ID.
        request: u64,
        /// Details, e.g. `progress`.
        details: Dict,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[REGISTER, Request|id, Options|dict, Procedure|uri]`
    Register {
        /// Request ID.
        request: u64,
        /// Options, e.g. `match`, `invoke`.
        options: Dict,
        /// The procedure or procedure pattern.
        procedure: String,
    },
    /// `[REGISTERED, REGISTER.Request|id, Registration|id]`
    Registered {
        /// The REGISTER request ID.
        request: u64,
        /// The registration ID.
        registration: u64,
    },
    /// `[UNREGISTER, Request|id, REGISTERED.Registration|id]`
    Unregister {
        /// Request ID.
        request: u64,
        /// The registration ID.
        registration: u64,
    },
    /// `[UNREGISTERED, UNREGISTER.Request|id]` or, for a router-initiated
    /// revocation (advanced profile), `[UNREGISTERED, 0, Details|dict]`.
    Unregistered {
        /// The UNREGISTER request ID (0 for a revocation).
        request: u64,
        /// Revocation details (`registration`, `reason`).
        details: Option<Dict>,
    },
    /// `[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, CALL.Arguments|list, CALL.ArgumentsKw|dict]`
    Invocation {
        /// Request ID (router-scope, distinct from the CALL's).
        request: u64,
        /// The registration ID.
        registration: u64,
        /// Details, e.g. `caller`, `procedure`.
        details: Dict,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
    /// `[INTERRUPT, INVOCATION.Request|id, Options|dict]` (advanced profile)
    Interrupt {
        /// The INVOCATION request ID.
        request: u64,
        /// Options, e.g. `mode`.
        options: Dict,
    },
    /// `[YIELD, INVOCATION.Request|id, Options|dict, Arguments|list, ArgumentsKw|dict]`
    Yield {
        /// The INVOCATION request ID.
        request: u64,
        /// Options, e.g. `progress`.
        options: Dict,
        /// Positional payload.
        args: Option<List>,
        /// Keyword payload.
        kwargs: Option<Dict>,
    },
}

/// One element of a message's array form, borrowed.
#[derive(Clone, Copy)]
pub(crate) enum Elem<'a> {
    Int(u64),
    Str(&'a str),
    Dict(&'a Dict),
    List(&'a List),
}

static EMPTY_LIST: List = Vec::new();

/// Appends `args`/`kwargs` as the spec requires: nothing when both are
/// empty, `args` alone, or `args` (possibly `[]`) then `kwargs`.
fn push_payload<'a>(out: &mut Vec<Elem<'a>>, args: &'a Option<List>, kwargs: &'a Option<Dict>) {
    let args = args.as_ref().filter(|a| !a.is_empty());
    match kwargs.as_ref().filter(|k| !k.is_empty()) {
        Some(kw) => {
            out.push(Elem::List(args.unwrap_or(&EMPTY_LIST)));
            out.push(Elem::Dict(kw));
        }
        None => {
            if let Some(a) = args {
                out.push(Elem::List(a));
            }
        }
    }
}

impl Message {
    /// HELLO type code.
    pub const HELLO: u64 = 1;
    /// WELCOME type code.
    pub const WELCOME: u64 = 2;
    /// ABORT type code.
    pub const ABORT: u64 = 3;
    /// CHALLENGE type code.
    pub const CHALLENGE: u64 = 4;
    /// AUTHENTICATE type code.
    pub const AUTHENTICATE: u64 = 5;
    /// GOODBYE type code.
    pub const GOODBYE: u64 = 6;
    /// ERROR type code.
    pub const ERROR: u64 = 8;
    /// PUBLISH type code.
    pub const PUBLISH: u64 = 16;
    /// PUBLISHED type code.
    pub const PUBLISHED: u64 = 17;
    /// SUBSCRIBE type code.
    pub const SUBSCRIBE: u64 = 32;
    /// SUBSCRIBED type code.
    pub const SUBSCRIBED: u64 = 33;
    /// UNSUBSCRIBE type code.
    pub const UNSUBSCRIBE: u64 = 34;
    /// UNSUBSCRIBED type code.
    pub const UNSUBSCRIBED: u64 = 35;
    /// EVENT type code.
    pub const EVENT: u64 = 36;
    /// CALL type code.
    pub const CALL: u64 = 48;
    /// CANCEL type code.
    pub const CANCEL: u64 = 49;
    /// RESULT type code.
    pub const RESULT: u64 = 50;
    /// REGISTER type code.
    pub const REGISTER: u64 = 64;
    /// REGISTERED type code.
    pub const REGISTERED: u64 = 65;
    /// UNREGISTER type code.
    pub const UNREGISTER: u64 = 66;
    /// UNREGISTERED type code.
    pub const UNREGISTERED: u64 = 67;
    /// INVOCATION type code.
    pub const INVOCATION: u64 = 68;
    /// INTERRUPT type code.
    pub const INTERRUPT: u64 = 69;
    /// YIELD type code.
    pub const YIELD: u64 = 70;

    /// The message type code (element 0), e.g. 48 for CALL.
    pub fn message_type(&self) -> u64 {
        match self {
            Message::Hello { .. } => Self::HELLO,
            Message::Welcome { .. } => Self::WELCOME,
            Message::Abort { .. } => Self::ABORT,
            Message::Challenge { .. } => Self::CHALLENGE,
            Message::Authenticate { .. } => Self::AUTHENTICATE,
            Message::Goodbye { .. } => Self::GOODBYE,
            Message::Error { .. } => Self::ERROR,
            Message::Publish { .. } => Self::PUBLISH,
            Message::Published { .. } => Self::PUBLISHED,
            Message::Subscribe { .. } => Self::SUBSCRIBE,
            Message::Subscribed { .. } => Self::SUBSCRIBED,
            Message::Unsubscribe { .. } => Self::UNSUBSCRIBE,
            Message::Unsubscribed { .. } => Self::UNSUBSCRIBED,
            Message::Event { .. } => Self::EVENT,
            Message::Call { .. } => Self::CALL,
            Message::Cancel { .. } => Self::CANCEL,
            Message::Result { .. } => Self::RESULT,
            Message::Register { .. } => Self::REGISTER,
            Message::Registered { .. } => Self::REGISTERED,
            Message::Unregister { .. } => Self::UNREGISTER,
            Message::Unregistered { .. } => Self::UNREGISTERED,
            Message::Invocation { .. } => Self::INVOCATION,
            Message::Interrupt { .. } => Self::INTERRUPT,
            Message::Yield { .. } => Self::YIELD,
        }
    }

    /// The message name in the spec's spelling, e.g. "CALL".
    pub fn name(&self) -> &'static str {
        type_name(self.message_type()).unwrap_or("UNKNOWN")
    }

    /// The name of message type `code` ("CALL" for 48), if WAMP defines it.
    ///
    /// ```
    /// use fahrbahn_core::wamp::Message;
    /// assert_eq!(Message::type_name(Message::YIELD), Some("YIELD"));
    /// assert_eq!(Message::type_name(7), None);
    /// ```
    pub fn type_name(code: u64) -> Option<&'static str> {
        type_name(code)
    }

    /// The elements of the array form, after the type code.
    pub(crate) fn elements(&self) -> Vec<Elem<'_>> {
        use Elem::{Dict as D, Int as I, Str as S};
        let mut out = Vec::with_capacity(6);
        match self {
            Message::Hello { realm, details } => out.extend([S(realm), D(details)]),
            Message::Welcome { session, details } => out.extend([I(*session), D(details)]),
            Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
                out.extend([D(details), S(reason)])
            }
            Message::Challenge { authmethod, extra } => out.extend([S(authmethod), D(extra)]),
            Message::Authenticate { signature, extra } => out.extend([S(signature), D(extra)]),
            Message::Error {
                request_type,
                request,
                details,
                error,
                args,
                kwargs,
            } => {
                out.extend([I(*request_type), I(*request), D(details), S(error)]);
                push_payload(&mut out, args, kwargs);
            }
            Message::Publish {
                request,
                options,
                topic,
                args,
                kwargs,
            } => {
                out.extend([I(*request), D(options), S(topic)]);
                push_payload(&mut out, args, kwargs);
            }
            Message::Published {
                request,
                publication,
            } => out.extend([I(*request), I(*publication)]),
            Message::Subscribe {
                request,
                options,
                topic,
            } => out.extend([I(*request), D(options), S(topic)]),
            Message::Subscribed {
                request,
                subscription,
            }
            | Message::Unsubscribe {
                request,
                subscription,
            } => out.extend([I(*request), I(*subscription)]),
            Message::Unsubscribed { request, details }
            | Message::Unregistered { request, details } => {
                out.push(I(*request));
                if let Some(d) = details {
                    out.push(D(d));
                }
            }
            Message::Event {
                subscription,
                publication,
                details,
                args,
                kwargs,
            } => {
                out.extend([I(*subscription), I(*publication), D(details)]);
                push_payload(&mut out, args, kwargs);
            }
            Message::Call {
                request,
                options,
                procedure,
                args,
                kwargs,
            } => {
                out.extend([I(*request), D(options), S(procedure)]);
                push_payload(&mut out, args, kwargs);
            }
            Message::Cancel { request, options } | Message::Interrupt { request, options } => {
                out.extend([I(*request), D(options)])
            }
            Message::Result {
                request,
                details: options,
                args,
                kwargs,
            }
            | Message::Yield {
                request,
                options,
                args,
                kwargs,
            } => {
                out.extend([I(*request), D(options)]);
                push_payload(&mut out, args, kwargs);
            }
            Message::Register {
                request,
                options,
                procedure,
            } => out.extend([I(*request), D(options), S(procedure)]),
            Message::Registered {
                request,
                registration,
            }
            | Message::Unregister {
                request,
                registration,
            } => out.extend([I(*request), I(*registration)]),
            Message::Invocation {
                request,
                registration,
                details,
                args,
                kwargs,
            } => {
                out.extend([I(*request), I(*registration), D(details)]);
                push_payload(&mut out, args, kwargs);
            }
        }
        out
    }

    /// The array form `[type, …]` as a [`Value`].
    pub fn to_value(&self) -> Value {
        let mut list = vec![Value::from(self.message_type())];
        list.extend(self.elements().into_iter().map(|e| match e {
            Elem::Int(i) => Value::from(i),
            Elem::Str(s) => Value::from(s),
            Elem::Dict(d) => Value::Dict(d.clone()),
            Elem::List(l) => Value::List(l.clone()),
        }));
        Value::List(list)
    }

    /// Parses and validates the array form: the arity, every element's
    /// type, and ID ranges (request IDs in `[1, 2^53]`, other IDs in
    /// `[0, 2^53]`; UNSUBSCRIBED and UNREGISTERED allow request 0 for
    /// revocations). URIs are only checked to be strings: whether a URI is
    /// acceptable is the receiving session's decision (it answers with
    /// `wamp.error.invalid_uri`, not a protocol violation).
    ///
    /// ```
    /// use fahrbahn_core::wamp::{DecodeError, Message, Value};
    /// let bad = Value::List(vec![48.into(), 1.into(), Value::Dict(Default::default()), 5.into()]);
    /// let err = Message::from_value(bad).unwrap_err();
    /// assert_eq!(err.to_string(), "CALL: element 3 (procedure) must be a string, got integer");
    /// ```
    pub fn from_value(value: Value) -> Result<Message, DecodeError> {
        let list = match value {
            Value::List(l) => l,
            other => {
                return Err(DecodeError::NotAList {
                    found: other.kind(),
                });
            }
        };
        let code = match list.first() {
            None => return Err(DecodeError::Empty),
            Some(v) => v
                .as_u64()
                .ok_or(DecodeError::InvalidType { found: v.kind() })?,
        };
        let (name, min, max) = arity(code).ok_or(DecodeError::UnknownType(code))?;
        let len = list.len();
        if len < min || len > max {
            return Err(DecodeError::Arity {
                message: name,
                len,
                min,
                max,
            });
        }
        let mut r = Reader {
            message: name,
            index: 0,
            items: list.into_iter(),
        };
        r.next(); // the type code
        let msg = match code {
            Self::HELLO => Message::Hello {
                realm: r.string("realm")?,
                details: r.dict("details")?,
            },
            Self::WELCOME => Message::Welcome {
                session: r.id("session", 0)?,
                details: r.dict("details")?,
            },
            Self::ABORT => Message::Abort {
                details: r.dict("details")?,
                reason: r.string("reason")?,
            },
            Self::CHALLENGE => Message::Challenge {
                authmethod: r.string("authmethod")?,
                extra: r.dict("extra")?,
            },
            Self::AUTHENTICATE => Message::Authenticate {
                signature: r.string("signature")?,
                extra: r.dict("extra")?,
            },
            Self::GOODBYE => Message::Goodbye {
                details: r.dict("details")?,
                reason: r.string("reason")?,
            },
            Self::ERROR => Message::Error {
                request_type: r.uint("request type")?,
                request: r.id("request", 1)?,
                details: r.dict("details")?,
                error: r.string("error")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::PUBLISH => Message::Publish {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
                topic: r.string("topic")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::PUBLISHED => Message::Published {
                request: r.id("request", 1)?,
                publication: r.id("publication", 0)?,
            },
            Self::SUBSCRIBE => Message::Subscribe {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
                topic: r.string("topic")?,
            },
            Self::SUBSCRIBED => Message::Subscribed {
                request: r.id("request", 1)?,
                subscription: r.id("subscription", 0)?,
            },
            Self::UNSUBSCRIBE => Message::Unsubscribe {
                request: r.id("request", 1)?,
                subscription: r.id("subscription", 0)?,
            },
            Self::UNSUBSCRIBED => Message::Unsubscribed {
                request: r.id("request", 0)?,
                details: r.opt_dict("details")?,
            },
            Self::EVENT => Message::Event {
                subscription: r.id("subscription", 0)?,
                publication: r.id("publication", 0)?,
                details: r.dict("details")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::CALL => Message::Call {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
                procedure: r.string("procedure")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::CANCEL => Message::Cancel {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
            },
            Self::RESULT => Message::Result {
                request: r.id("request", 1)?,
                details: r.dict("details")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::REGISTER => Message::Register {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
                procedure: r.string("procedure")?,
            },
            Self::REGISTERED => Message::Registered {
                request: r.id("request", 1)?,
                registration: r.id("registration", 0)?,
            },
            Self::UNREGISTER => Message::Unregister {
                request: r.id("request", 1)?,
                registration: r.id("registration", 0)?,
            },
            Self::UNREGISTERED => Message::Unregistered {
                request: r.id("request", 0)?,
                details: r.opt_dict("details")?,
            },
            Self::INVOCATION => Message::Invocation {
                request: r.id("request", 1)?,
                registration: r.id("registration", 0)?,
                details: r.dict("details")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            Self::INTERRUPT => Message::Interrupt {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
            },
            Self::YIELD => Message::Yield {
                request: r.id("request", 1)?,
                options: r.dict("options")?,
                args: r.args()?,
                kwargs: r.kwargs()?,
            },
            _ => return Err(DecodeError::UnknownType(code)),
        };
        Ok(msg)
    }
}

fn type_name(code: u64) -> Option<&'static str> {
    arity(code).map(|(name, _, _)| name)
}

/// Name, fewest and most elements (type code included) of message `code`.
pub(crate) fn arity(code: u64) -> Option<(&'static str, usize, usize)> {
    Some(match code {
        Message::HELLO => ("HELLO", 3, 3),
        Message::WELCOME => ("WELCOME", 3, 3),
        Message::ABORT => ("ABORT", 3, 3),
        Message::CHALLENGE => ("CHALLENGE", 3, 3),
        Message::AUTHENTICATE => ("AUTHENTICATE", 3, 3),
        Message::GOODBYE => ("GOODBYE", 3, 3),
        Message::ERROR => ("ERROR", 5, 7),
        Message::PUBLISH => ("PUBLISH", 4, 6),
        Message::PUBLISHED => ("PUBLISHED", 3, 3),
        Message::SUBSCRIBE => ("SUBSCRIBE", 4, 4),
        Message::SUBSCRIBED => ("SUBSCRIBED", 3, 3),
        Message::UNSUBSCRIBE => ("UNSUBSCRIBE", 3, 3),
        Message::UNSUBSCRIBED => ("UNSUBSCRIBED", 2, 3),
        Message::EVENT => ("EVENT", 4, 6),
        Message::CALL => ("CALL", 4, 6),
        Message::CANCEL => ("CANCEL", 3, 3),
        Message::RESULT => ("RESULT", 3, 5),
        Message::REGISTER => ("REGISTER", 4, 4),
        Message::REGISTERED => ("REGISTERED", 3, 3),
        Message::UNREGISTER => ("UNREGISTER", 3, 3),
        Message::UNREGISTERED => ("UNREGISTERED", 2, 3),
        Message::INVOCATION => ("INVOCATION", 4, 6),
        Message::INTERRUPT => ("INTERRUPT", 3, 3),
        Message::YIELD => ("YIELD", 3, 5),
        _ => return None,
    })
}

/// Walks the elements of a message list, producing typed errors.
struct Reader {
    message: &'static str,
    index: usize,
    items: std::vec::IntoIter<Value>,
}

impl Reader {
    fn next(&mut self) -> Option<Value> {
        let v = self.items.next();
        if v.is_some() {
            self.index += 1;
        }
        v
    }

    fn err(&self, name: &'static str, expected: &'static str, found: String) -> DecodeError {
        DecodeError::Element {
            message: self.message,
            index: self.index - 1,
            name,
            expected,
            found,
        }
    }

    /// A required element (the arity check guarantees it is there).
    fn required(&mut self, name: &'static str) -> Result<Value, DecodeError> {
        match self.next() {
            Some(v) => Ok(v),
            None => {
                self.index += 1;
                Err(self.err(name, "present", "the end of the message".into()))
            }
        }
    }

    fn uint(&mut self, name: &'static str) -> Result<u64, DecodeError> {
        let v = self.required(name)?;
        match v {
            Value::Int(i) if i >= 0 => Ok(i as u64),
            Value::UInt(u) => Ok(u),
            Value::Int(i) => Err(self.err(name, "a non-negative integer", i.to_string())),
            other => Err(self.err(name, "a non-negative integer", other.kind().into())),
        }
    }

    fn id(&mut self, name: &'static str, min: u64) -> Result<u64, DecodeError> {
        let expected = if min == 0 {
            "an ID in [0, 2^53]"
        } else {
            "an ID in [1, 2^53]"
        };
        let v = self.required(name)?;
        let found = match v {
            Value::Int(i) => match u64::try_from(i) {
                Ok(u) if (min..=MAX_ID).contains(&u) => return Ok(u),
                _ => i.to_string(),
            },
            Value::UInt(u) => u.to_string(),
            other => other.kind().into(),
        };
        Err(self.err(name, expected, found))
    }

    fn string(&mut self, name: &'static str) -> Result<String, DecodeError> {
        match self.required(name)? {
            Value::String(s) => Ok(s),
            other => Err(self.err(name, "a string", other.kind().into())),
        }
    }

    fn dict(&mut self, name: &'static str) -> Result<Dict, DecodeError> {
        match self.required(name)? {
            Value::Dict(d) => Ok(d),
            other => Err(self.err(name, "a dict", other.kind().into())),
        }
    }

    fn opt_dict(&mut self, name: &'static str) -> Result<Option<Dict>, DecodeError> {
        match self.next() {
            None => Ok(None),
            Some(Value::Dict(d)) => Ok(Some(d)),
            Some(other) => Err(self.err(name, "a dict", other.kind().into())),
        }
    }

    fn args(&mut self) -> Result<Option<List>, DecodeError> {
        match self.next() {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l).filter(|l| !l.is_empty())),
            Some(other) => Err(self.err("arguments", "a list", other.kind().into())),
        }
    }

    fn kwargs(&mut self) -> Result<Option<Dict>, DecodeError> {
        match self.next() {
            None => Ok(None),
            Some(Value::Dict(d)) => Ok(Some(d).filter(|d| !d.is_empty())),
            Some(other) => Err(self.err("argumentskw", "a dict", other.kind().into())),
        }
    }
}
