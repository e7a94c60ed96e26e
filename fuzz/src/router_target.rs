//! The router target: random client operations from several connections,
//! structure-aware (the input is decoded into [`Op`]s with `arbitrary`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use fahrbahn_core::Rng;
use fahrbahn_core::wamp::router::{ConnectionId, Router, RouterConfig, RouterEvent};
use fahrbahn_core::wamp::{Codec, Dict, Message, Serializer, Value, client_roles};

use crate::util::base;

/// Client slots (each one connection at a time).
const SLOTS: usize = 4;
const PROCEDURES: [&str; 3] = ["p.a", "p.b", "p.c"];
const TOPICS: [&str; 3] = ["t.a", "t.b", "t.a.x"];
const REALMS: [&str; 3] = ["realm1", "realm2", "not a uri"];

/// How each slot's client talks to the router: `None` in decoded
/// [`Message`]s (`handle_message`, queued as built), otherwise in bytes of
/// that codec (`handle_connected`; its messages go in through
/// `decode_raw` and `handle_raw_message`, payloads kept encoded, spliced
/// and transcoded between the slots' serializers).
const CODECS: [Option<Codec>; SLOTS] = [
    None,
    Some(Codec::new(Serializer::Json)),
    Some(Codec::batched(Serializer::MsgPack)),
    Some(Codec::new(Serializer::Cbor)),
];

/// A slot index (taken modulo [`SLOTS`]).
type Slot = u8;

/// The router's settings.
#[derive(Debug, Arbitrary)]
struct Setup {
    auto_create_realms: bool,
    /// `outbound_queue`, 1 + this modulo 16: small, so that slow
    /// consumers happen.
    queue: u8,
    seed: u64,
}

/// One step of the clients (or of time).
#[derive(Debug, Arbitrary)]
enum Op {
    /// Attach a connection to the slot (if it has none) and say HELLO.
    Hello(Slot, u8),
    Register(Slot, u8, u8),
    Unregister(Slot, u8),
    Call(Slot, u8, bool),
    /// Answer an invocation: YIELD, progressive YIELD or ERROR.
    Answer(Slot, u8, u8),
    Cancel(Slot, u8, u8),
    Subscribe(Slot, u8, u8),
    Unsubscribe(Slot, u8),
    Publish(Slot, u8, bool, bool),
    Goodbye(Slot),
    /// The transport drops.
    Detach(Slot),
    /// Deliver the messages queued for the slot.
    Deliver(Slot),
    /// Time passes (milliseconds × 16), timers run.
    Advance(u16),
    Garbage(Slot, u8),
    Shutdown,
}

/// A client as the messages delivered to it show it.
#[derive(Debug, Default)]
struct Client {
    conn: Option<ConnectionId>,
    /// It received WELCOME (and no GOODBYE/ABORT since).
    welcomed: bool,
    next_request: u64,
    registrations: Vec<u64>,
    subscriptions: Vec<u64>,
    invocations: Vec<u64>,
}

/// The router, the clients, and the invariants.
struct Model {
    router: Router,
    now: Instant,
    queue: usize,
    clients: Vec<Client>,
    /// Joined sessions as the router's events report them: connection →
    /// realm.
    joined: BTreeMap<ConnectionId, String>,
    /// Calls made by a joined session and not finally answered yet.
    pending: BTreeSet<(ConnectionId, u64)>,
    /// Calls of sessions that left since: answers already queued may
    /// still arrive, but none is owed (a new session on the connection
    /// must not inherit them).
    retired: BTreeSet<(ConnectionId, u64)>,
}

fn dict(entries: &[(&str, Value)]) -> Dict {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// The payload of every YIELD and application ERROR (values every
/// serializer carries exactly).
fn answer_payload() -> (Option<Vec<Value>>, Option<Dict>) {
    (
        Some(vec!["r".into(), Value::Bytes(vec![0, 255]), (-1.5).into()]),
        Some(dict(&[("k", Value::List(vec![u64::MAX.into()]))])),
    )
}

/// `max_pending_calls_per_session` of the fuzzed router: small, so that
/// the limit is reached.
const MAX_PENDING_CALLS: usize = 8;

impl Model {
    fn new(setup: &Setup) -> Self {
        let mut config = RouterConfig::with_realm("realm1");
        config.auto_create_realms = setup.auto_create_realms;
        config.outbound_queue = 1 + usize::from(setup.queue % 16);
        config.max_pending_calls_per_session = MAX_PENDING_CALLS;
        // The ERRORs that end a client's own calls are queued even over
        // `outbound_queue` (they never make it a slow consumer), and there
        // are at most `max_pending_calls_per_session` of them.
        let queue = config.outbound_queue + MAX_PENDING_CALLS;
        Self {
            router: Router::new(config, Rng::from_seed(setup.seed)),
            now: base(),
            queue,
            clients: (0..SLOTS).map(|_| Client::default()).collect(),
            joined: BTreeMap::new(),
            pending: BTreeSet::new(),
            retired: BTreeSet::new(),
        }
    }

    fn slot(&self, conn: ConnectionId) -> usize {
        self.clients
            .iter()
            .position(|c| c.conn == Some(conn))
            .unwrap_or_else(|| panic!("the router speaks of {conn}, which is not attached"))
    }

    /// Delivers the messages queued for `conn`, checking each.
    fn deliver(&mut self, conn: ConnectionId) {
        while let Some(msg) = self.router.poll_transmit_to(conn) {
            self.receive(conn, msg);
        }
    }

    fn receive(&mut self, conn: ConnectionId, msg: Message) {
        let slot = self.slot(conn);
        let client = &mut self.clients[slot];
        match msg {
            Message::Welcome { .. } => {
                assert!(!client.welcomed, "WELCOME to a client with a session");
                client.welcomed = true;
            }
            Message::Goodbye { .. } | Message::Abort { .. } => {
                client.welcomed = false;
                client.registrations.clear();
                client.subscriptions.clear();
                client.invocations.clear();
            }
            other => {
                assert!(
                    client.welcomed,
                    "{} to {conn}, which has no session",
                    other.name()
                );
                match other {
                    Message::Registered { registration, .. } => {
                        client.registrations.push(registration)
                    }
                    Message::Subscribed { subscription, .. }
                        if !client.subscriptions.contains(&subscription) =>
                    {
                        client.subscriptions.push(subscription);
                    }
                    Message::Invocation {
                        request,
                        args,
                        kwargs,
                        ..
                    } => {
                        // Payloads arrive as sent, whatever the
                        // serializers of the two sides.
                        assert_eq!((args, kwargs), (Some(vec![1.into()]), None));
                        client.invocations.push(request)
                    }
                    Message::Event { args, kwargs, .. } => {
                        assert_eq!((args, kwargs), (Some(vec!["x".into()]), None));
                    }
                    Message::Result {
                        request,
                        details,
                        args,
                        kwargs,
                    } => {
                        assert_eq!(
                            (args, kwargs),
                            answer_payload(),
                            "RESULT {details:?} for call {request} of slot {slot}"
                        );
                        let call = (conn, request);
                        assert!(
                            self.pending.contains(&call) || self.retired.contains(&call),
                            "RESULT for call {request} of {conn}, which is not pending"
                        );
                        if details.get("progress").and_then(Value::as_bool) != Some(true) {
                            self.pending.remove(&call);
                            self.retired.remove(&call);
                        }
                    }
                    Message::Error {
                        request_type: Message::CALL,
                        request,
                        error,
                        args,
                        kwargs,
                        ..
                    } => {
                        assert!(
                            error != "app.error" || (args, kwargs) == answer_payload(),
                            "an application ERROR's payload changed"
                        );
                        assert!(
                            self.pending.remove(&(conn, request))
                                || self.retired.remove(&(conn, request)),
                            "ERROR for call {request} of {conn}, which is not pending"
                        );
                    }
                    Message::Challenge { .. } => panic!("CHALLENGE from the anonymous router"),
                    _ => {}
                }
            }
        }
    }

    /// Handles the router's events like a serving layer (a transport to
    /// close gets its queue delivered, then is detached), and checks the
    /// router's counters against them.
    fn events(&mut self) {
        while let Some(event) = self.router.poll_event() {
            match event {
                RouterEvent::Joined { conn, realm, .. } => {
                    self.slot(conn);
                    assert!(
                        self.joined.insert(conn, realm).is_none(),
                        "{conn} joined twice"
                    );
                }
                RouterEvent::Left { conn, .. } => {
                    assert!(self.joined.remove(&conn).is_some(), "{conn} left unjoined");
                    let (gone, kept) = std::mem::take(&mut self.pending)
                        .into_iter()
                        .partition(|(c, _)| *c == conn);
                    self.pending = kept;
                    self.retired.extend::<BTreeSet<_>>(gone);
                }
                RouterEvent::CloseTransport { conn, .. } => {
                    self.deliver(conn);
                    self.detach(conn);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        assert_eq!(self.router.session_count(), self.joined.len());
        let attached = self.clients.iter().filter(|c| c.conn.is_some()).count();
        assert_eq!(self.router.connection_count(), attached);
        for client in &self.clients {
            if let Some(conn) = client.conn {
                assert_eq!(
                    self.router.session_of(conn).is_some(),
                    self.joined.contains_key(&conn),
                    "session_of({conn}) disagrees with the events"
                );
                assert!(
                    self.router.queued(conn) <= self.queue,
                    "{} messages queued for {conn}, over the limit of {}",
                    self.router.queued(conn),
                    self.queue
                );
            }
        }
        let realms: Vec<String> = self.router.realms().map(str::to_owned).collect();
        for realm in &realms {
            let stats = self.router.realm_stats(realm).expect("a listed realm");
            let sessions = self.joined.values().filter(|r| *r == realm).count();
            assert_eq!(stats.sessions, sessions, "sessions of {realm}");
        }
        for realm in self.joined.values() {
            assert!(
                realms.contains(realm),
                "a session in the unknown realm {realm}"
            );
        }
    }

    fn detach(&mut self, conn: ConnectionId) {
        self.router.detach(conn);
        let slot = self.slot(conn);
        self.clients[slot] = Client {
            next_request: self.clients[slot].next_request,
            ..Client::default()
        };
    }

    fn send(&mut self, slot: usize, msg: Message) {
        if let Some(conn) = self.clients[slot].conn {
            if let Message::Call { request, .. } = &msg {
                if self.joined.contains_key(&conn) {
                    self.pending.insert((conn, *request));
                }
            }
            match CODECS[slot] {
                None => self.router.handle_message(self.now, conn, msg),
                Some(codec) => {
                    let mut bytes = Vec::new();
                    codec.encode(&msg, &mut bytes);
                    for raw in codec.decode_raw(bytes).expect("an encoded message decodes") {
                        self.router.handle_raw_message(self.now, conn, raw);
                    }
                }
            }
        }
    }

    fn request(&mut self, slot: usize) -> u64 {
        self.clients[slot].next_request += 1;
        self.clients[slot].next_request
    }

    fn apply(&mut self, op: &Op) {
        let s = |slot: &Slot| usize::from(*slot) % SLOTS;
        match op {
            Op::Hello(slot, realm) => {
                let slot = s(slot);
                if self.clients[slot].conn.is_none() {
                    let conn = self.router.attach(self.now);
                    if let Some(codec) = CODECS[slot] {
                        self.router.handle_connected(self.now, conn, codec, None);
                    }
                    self.clients[slot].conn = Some(conn);
                }
                let realm = REALMS[usize::from(*realm) % REALMS.len()];
                let details = dict(&[("roles", Value::Dict(client_roles()))]);
                self.send(
                    slot,
                    Message::Hello {
                        realm: realm.into(),
                        details,
                    },
                );
            }
            Op::Register(slot, procedure, kind) => {
                let slot = s(slot);
                let request = self.request(slot);
                let (options, procedure) = match kind % 4 {
                    0 => (Dict::new(), PROCEDURES[usize::from(*procedure) % 3]),
                    1 => (dict(&[("match", "prefix".into())]), "p."),
                    2 => (dict(&[("match", "wildcard".into())]), "p.."),
                    _ => (dict(&[("match", "bogus".into())]), "p.a"),
                };
                let procedure = procedure.into();
                let msg = Message::Register {
                    request,
                    options,
                    procedure,
                };
                self.send(slot, msg);
            }
            Op::Unregister(slot, k) => {
                let slot = s(slot);
                let request = self.request(slot);
                let regs = &mut self.clients[slot].registrations;
                let registration = if regs.is_empty() {
                    424_242
                } else {
                    regs.remove(usize::from(*k) % regs.len())
                };
                let msg = Message::Unregister {
                    request,
                    registration,
                };
                self.send(slot, msg);
            }
            Op::Call(slot, procedure, progress) => {
                let slot = s(slot);
                let request = self.request(slot);
                let msg = Message::Call {
                    request,
                    options: dict(&[("receive_progress", (*progress).into())]),
                    procedure: PROCEDURES[usize::from(*procedure) % 3].into(),
                    args: Some(vec![1.into()]),
                    kwargs: None,
                };
                self.send(slot, msg);
            }
            Op::Answer(slot, k, kind) => {
                let slot = s(slot);
                let invocations = &mut self.clients[slot].invocations;
                if invocations.is_empty() {
                    return;
                }
                let i = usize::from(*k) % invocations.len();
                let kind = kind % 3;
                let request = if kind == 1 {
                    invocations[i]
                } else {
                    invocations.remove(i)
                };
                let msg = if kind == 2 {
                    Message::Error {
                        request_type: Message::INVOCATION,
                        request,
                        details: Dict::new(),
                        error: "app.error".into(),
                        args: answer_payload().0,
                        kwargs: answer_payload().1,
                    }
                } else {
                    Message::Yield {
                        request,
                        options: dict(&[("progress", (kind == 1).into())]),
                        args: answer_payload().0,
                        kwargs: answer_payload().1,
                    }
                };
                self.send(slot, msg);
            }
            Op::Cancel(slot, k, mode) => {
                let slot = s(slot);
                let Some(conn) = self.clients[slot].conn else {
                    return;
                };
                let mine: Vec<u64> = self
                    .pending
                    .iter()
                    .filter(|(c, _)| *c == conn)
                    .map(|(_, r)| *r)
                    .collect();
                let request = if mine.is_empty() {
                    999_999
                } else {
                    mine[usize::from(*k) % mine.len()]
                };
                let options = match mode % 4 {
                    0 => Dict::new(),
                    1 => dict(&[("mode", "skip".into())]),
                    2 => dict(&[("mode", "kill".into())]),
                    _ => dict(&[("mode", "killnowait".into())]),
                };
                self.send(slot, Message::Cancel { request, options });
            }
            Op::Subscribe(slot, topic, kind) => {
                let slot = s(slot);
                let request = self.request(slot);
                let (options, topic) = match kind % 3 {
                    0 => (Dict::new(), TOPICS[usize::from(*topic) % 3]),
                    1 => (dict(&[("match", "prefix".into())]), "t."),
                    _ => (dict(&[("match", "wildcard".into())]), "t..x"),
                };
                let topic = topic.into();
                let msg = Message::Subscribe {
                    request,
                    options,
                    topic,
                };
                self.send(slot, msg);
            }
            Op::Unsubscribe(slot, k) => {
                let slot = s(slot);
                let request = self.request(slot);
                let subs = &mut self.clients[slot].subscriptions;
                let subscription = if subs.is_empty() {
                    424_242
                } else {
                    subs.remove(usize::from(*k) % subs.len())
                };
                let msg = Message::Unsubscribe {
                    request,
                    subscription,
                };
                self.send(slot, msg);
            }
            Op::Publish(slot, topic, exclude_me, acknowledge) => {
                let slot = s(slot);
                let request = self.request(slot);
                let msg = Message::Publish {
                    request,
                    options: dict(&[
                        ("exclude_me", (*exclude_me).into()),
                        ("acknowledge", (*acknowledge).into()),
                    ]),
                    topic: TOPICS[usize::from(*topic) % 3].into(),
                    args: Some(vec!["x".into()]),
                    kwargs: None,
                };
                self.send(slot, msg);
            }
            Op::Goodbye(slot) => self.send(
                s(slot),
                Message::Goodbye {
                    details: Dict::new(),
                    reason: "wamp.close.normal".into(),
                },
            ),
            Op::Detach(slot) => {
                if let Some(conn) = self.clients[s(slot)].conn {
                    self.detach(conn);
                }
            }
            Op::Deliver(slot) => {
                if let Some(conn) = self.clients[s(slot)].conn {
                    self.deliver(conn);
                }
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(*ms) * 16);
                if self.router.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.router.handle_timeout(self.now);
                }
                if let Some(t) = self.router.poll_timeout() {
                    assert!(t > self.now, "a timer due at {t:?} did not run");
                }
            }
            Op::Garbage(slot, kind) => {
                let msg = match kind % 6 {
                    0 => Message::Event {
                        subscription: 1,
                        publication: 1,
                        details: Dict::new(),
                        args: None,
                        kwargs: None,
                    },
                    1 => Message::Result {
                        request: 1,
                        details: Dict::new(),
                        args: None,
                        kwargs: None,
                    },
                    2 => Message::Welcome {
                        session: 1,
                        details: Dict::new(),
                    },
                    3 => Message::Authenticate {
                        signature: String::new(),
                        extra: Dict::new(),
                    },
                    4 => Message::Yield {
                        request: 987_654,
                        options: Dict::new(),
                        args: None,
                        kwargs: None,
                    },
                    _ => Message::Abort {
                        details: Dict::new(),
                        reason: "wamp.close.normal".into(),
                    },
                };
                self.send(s(slot), msg);
            }
            Op::Shutdown => self.router.shutdown(self.now, "fuzz"),
        }
        self.events();
    }

    /// Delivers everything, the callees answering every invocation, until
    /// the router is quiet.
    fn settle(&mut self) {
        for _ in 0..64 {
            let mut any = false;
            for slot in 0..SLOTS {
                if let Some(conn) = self.clients[slot].conn {
                    self.deliver(conn);
                    self.events();
                }
                let invocations = std::mem::take(&mut self.clients[slot].invocations);
                for request in invocations {
                    any = true;
                    let msg = Message::Yield {
                        request,
                        options: Dict::new(),
                        args: answer_payload().0,
                        kwargs: answer_payload().1,
                    };
                    self.send(slot, msg);
                    self.events();
                }
            }
            if !any {
                return;
            }
        }
        panic!("the router does not settle");
    }
}

/// The router core fed operations of several clients: the input is
/// decoded (with `arbitrary`) into the router's settings and a list of
/// operations — attach/hello, register, call, yield, subscribe, publish,
/// goodbye, detach, deliver, advance time, garbage, shutdown — that become
/// [`Message`]s.
///
/// Invariants: no panic; the router's session and connection counts,
/// `session_of` and each realm's session count agree with its
/// `Joined`/`Left` events; no connection's queue exceeds
/// `outbound_queue` plus the ERRORs ending its own calls (at most
/// `max_pending_calls_per_session`); only a client with a session gets messages other
/// than WELCOME/GOODBYE/ABORT, and WELCOME only without one; a call gets
/// RESULTs and at most one final answer, and only while it is pending; no
/// timer stays due after `handle_timeout`; once the callees answer
/// everything, every call of a joined session is answered and no call is
/// pending; once every transport drops, nothing is left.
pub fn router(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    // Replaying an input by hand (not under AFL++), FAHRBAHN_FUZZ_DEBUG=1
    // prints the operations it decodes to.
    let debug = !cfg!(fuzzing) && std::env::var_os("FAHRBAHN_FUZZ_DEBUG").is_some();
    if debug {
        eprintln!("{setup:?}");
    }
    let mut model = Model::new(&setup);
    let mut steps = 0;
    while !u.is_empty() && steps < 256 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        if debug {
            eprintln!("{op:?}");
        }
        model.apply(&op);
        steps += 1;
    }
    model.settle();
    let joined: Vec<ConnectionId> = model.joined.keys().copied().collect();
    let unanswered: Vec<_> = model
        .pending
        .iter()
        .filter(|(conn, _)| joined.contains(conn))
        .collect();
    assert!(unanswered.is_empty(), "unanswered calls: {unanswered:?}");
    for slot in 0..SLOTS {
        if let Some(conn) = model.clients[slot].conn {
            model.detach(conn);
            model.events();
        }
    }
    // Leaving is reported as events too.
    model.events();
    assert_eq!(model.router.session_count(), 0);
    assert_eq!(model.router.connection_count(), 0);
    let realms: Vec<String> = model.router.realms().map(str::to_owned).collect();
    for realm in realms {
        let stats = model.router.realm_stats(&realm).expect("a listed realm");
        assert_eq!(
            (
                stats.sessions,
                stats.subscriptions,
                stats.registrations,
                stats.pending_calls
            ),
            (0, 0, 0, 0),
            "{realm} keeps state with no session"
        );
    }
}
