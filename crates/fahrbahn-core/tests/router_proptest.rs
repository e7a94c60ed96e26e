//! Property test of the router: random join/leave/detach/register/call/
//! yield/cancel/subscribe/publish sequences (and some garbage) over several
//! connections, checked against invariants.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

use std::collections::BTreeSet;

use std::time::Instant;

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::router::{ConnectionId, Router, RouterConfig, RouterEvent};
use fahrbahn_core::wamp::{Dict, Message, Value, client_roles};
use proptest::prelude::*;

fn now() -> Instant {
    Instant::now()
}

const SLOTS: usize = 4;
const PROCEDURES: [&str; 3] = ["p.a", "p.b", "p.c"];
const TOPICS: [&str; 2] = ["t.a", "t.b"];

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Leave(usize),
    Detach(usize),
    Register(usize, usize, u8),
    Unregister(usize, usize),
    Call(usize, usize, bool),
    Answer(usize, usize, u8),
    Cancel(usize, usize, u8),
    Subscribe(usize, usize, bool),
    Unsubscribe(usize, usize),
    Publish(usize, usize, bool, bool),
    Garbage(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SLOTS;
    prop_oneof![
        3 => s.clone().prop_map(Op::Join),
        1 => s.clone().prop_map(Op::Leave),
        1 => s.clone().prop_map(Op::Detach),
        2 => (s.clone(), 0..PROCEDURES.len(), 0u8..3).prop_map(|(a, b, c)| Op::Register(a, b, c)),
        1 => (s.clone(), 0..4usize).prop_map(|(a, b)| Op::Unregister(a, b)),
        4 => (s.clone(), 0..PROCEDURES.len(), any::<bool>()).prop_map(|(a, b, c)| Op::Call(a, b, c)),
        4 => (s.clone(), 0..4usize, 0u8..3).prop_map(|(a, b, c)| Op::Answer(a, b, c)),
        1 => (s.clone(), 0..4usize, 0u8..4).prop_map(|(a, b, c)| Op::Cancel(a, b, c)),
        2 => (s.clone(), 0..TOPICS.len(), any::<bool>()).prop_map(|(a, b, c)| Op::Subscribe(a, b, c)),
        1 => (s.clone(), 0..4usize).prop_map(|(a, b)| Op::Unsubscribe(a, b)),
        2 => (s.clone(), 0..TOPICS.len(), any::<bool>(), any::<bool>())
            .prop_map(|(a, b, c, d)| Op::Publish(a, b, c, d)),
        1 => (s, 0u8..6).prop_map(|(a, b)| Op::Garbage(a, b)),
    ]
}

#[derive(Debug, Default)]
struct Slot {
    conn: Option<ConnectionId>,
    next_request: u64,
    registrations: Vec<u64>,
    subscriptions: Vec<u64>,
    invocations: Vec<u64>,
}

/// The router, the clients' view, and the invariants.
struct Model {
    router: Router,
    slots: Vec<Slot>,
    joined: BTreeSet<ConnectionId>,
    /// Calls made and not answered yet: (caller connection, request).
    pending: BTreeSet<(ConnectionId, u64)>,
    answered: usize,
}

fn d(entries: &[(&str, Value)]) -> Dict {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

impl Model {
    fn new(seed: u64) -> Self {
        Self {
            router: Router::new(RouterConfig::with_realm("realm1"), Rng::from_seed(seed)),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            joined: BTreeSet::new(),
            pending: BTreeSet::new(),
            answered: 0,
        }
    }

    fn slot_of(&mut self, conn: ConnectionId) -> &mut Slot {
        self.slots
            .iter_mut()
            .find(|s| s.conn == Some(conn))
            .unwrap_or_else(|| panic!("message for {conn}, which is not attached"))
    }

    /// The client's session is gone: forget what it owned.
    fn forget(&mut self, conn: ConnectionId) {
        self.joined.remove(&conn);
        self.pending.retain(|(c, _)| *c != conn);
        if let Some(slot) = self.slots.iter_mut().find(|s| s.conn == Some(conn)) {
            slot.registrations.clear();
            slot.subscriptions.clear();
            slot.invocations.clear();
        }
    }

    fn detach(&mut self, conn: ConnectionId) {
        self.router.detach(conn);
        self.forget(conn);
        if let Some(slot) = self.slots.iter_mut().find(|s| s.conn == Some(conn)) {
            slot.conn = None;
        }
    }

    /// Delivers everything the router produced, checking invariants; acts
    /// on CloseTransport like a serving layer (detach).
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some((conn, msg)) = self.router.poll_outgoing() {
                any = true;
                self.deliver(conn, msg);
            }
            while let Some(event) = self.router.poll_event() {
                any = true;
                match event {
                    RouterEvent::CloseTransport { conn, .. } => self.detach(conn),
                    RouterEvent::Left { conn, .. } => self.forget(conn),
                    RouterEvent::Joined { .. } => {}
                    other => panic!("unexpected event {other:?}"),
                }
            }
            if !any {
                break;
            }
        }
    }

    fn deliver(&mut self, conn: ConnectionId, msg: Message) {
        let joined = self.joined.contains(&conn);
        self.slot_of(conn);
        match msg {
            Message::Welcome { .. } => {
                assert!(!joined, "WELCOME to joined {conn}");
                self.joined.insert(conn);
            }
            Message::Goodbye { .. } | Message::Abort { .. } => self.forget(conn),
            other => {
                assert!(joined, "{} to {conn}, which has no session", other.name());
                match other {
                    Message::Registered { registration, .. } => {
                        self.slot_of(conn).registrations.push(registration)
                    }
                    Message::Subscribed { subscription, .. } => {
                        let s = self.slot_of(conn);
                        if !s.subscriptions.contains(&subscription) {
                            s.subscriptions.push(subscription);
                        }
                    }
                    Message::Invocation { request, .. } => {
                        self.slot_of(conn).invocations.push(request)
                    }
                    Message::Result {
                        request, details, ..
                    } => {
                        assert!(
                            self.pending.contains(&(conn, request)),
                            "RESULT for call {request} of {conn} that is not pending"
                        );
                        if details.get("progress").and_then(Value::as_bool) != Some(true) {
                            self.pending.remove(&(conn, request));
                            self.answered += 1;
                        }
                    }
                    Message::Error {
                        request_type: Message::CALL,
                        request,
                        ..
                    } => {
                        assert!(
                            self.pending.remove(&(conn, request)),
                            "ERROR for call {request} of {conn} that is not pending"
                        );
                        self.answered += 1;
                    }
                    Message::Challenge { .. } => panic!("CHALLENGE from the anonymous router"),
                    _ => {}
                }
            }
        }
    }

    fn send(&mut self, slot: usize, msg: Message) {
        if let Some(conn) = self.slots[slot].conn {
            self.router.handle_message(now(), conn, msg);
        }
    }

    fn request(&mut self, slot: usize) -> u64 {
        self.slots[slot].next_request += 1;
        self.slots[slot].next_request
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Join(s) => {
                if self.slots[s].conn.is_none() {
                    self.slots[s].conn = Some(self.router.attach(now()));
                }
                self.send(
                    s,
                    Message::Hello {
                        realm: "realm1".into(),
                        details: d(&[("roles", Value::Dict(client_roles()))]),
                    },
                );
            }
            Op::Leave(s) => self.send(
                s,
                Message::Goodbye {
                    details: Dict::new(),
                    reason: "wamp.close.normal".into(),
                },
            ),
            Op::Detach(s) => {
                if let Some(conn) = self.slots[s].conn {
                    self.detach(conn);
                }
            }
            Op::Register(s, p, kind) => {
                let request = self.request(s);
                let (options, procedure) = match kind {
                    0 => (Dict::new(), PROCEDURES[p]),
                    1 => (d(&[("match", "prefix".into())]), "p."),
                    _ => (d(&[("match", "wildcard".into())]), "p."),
                };
                self.send(
                    s,
                    Message::Register {
                        request,
                        options,
                        procedure: procedure.into(),
                    },
                );
            }
            Op::Unregister(s, k) => {
                let request = self.request(s);
                let regs = &mut self.slots[s].registrations;
                let registration = if regs.is_empty() {
                    424242
                } else {
                    regs.remove(k % regs.len())
                };
                self.send(
                    s,
                    Message::Unregister {
                        request,
                        registration,
                    },
                );
            }
            Op::Call(s, p, progress) => {
                let request = self.request(s);
                if let Some(conn) = self.slots[s].conn {
                    if self.joined.contains(&conn) {
                        self.pending.insert((conn, request));
                    }
                }
                self.send(
                    s,
                    Message::Call {
                        request,
                        options: d(&[("receive_progress", progress.into())]),
                        procedure: PROCEDURES[p].into(),
                        args: Some(vec![1.into()]),
                        kwargs: None,
                    },
                );
            }
            Op::Answer(s, k, kind) => {
                let invs = &mut self.slots[s].invocations;
                if invs.is_empty() {
                    return;
                }
                let request = if kind == 1 {
                    invs[k % invs.len()]
                } else {
                    invs.remove(k % invs.len())
                };
                let msg = match kind {
                    0 | 1 => Message::Yield {
                        request,
                        options: d(&[("progress", (kind == 1).into())]),
                        args: None,
                        kwargs: None,
                    },
                    _ => Message::Error {
                        request_type: Message::INVOCATION,
                        request,
                        details: Dict::new(),
                        error: "app.error".into(),
                        args: None,
                        kwargs: None,
                    },
                };
                self.send(s, msg);
            }
            Op::Cancel(s, k, mode) => {
                let Some(conn) = self.slots[s].conn else {
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
                    mine[k % mine.len()]
                };
                let options = match mode {
                    0 => Dict::new(),
                    1 => d(&[("mode", "skip".into())]),
                    2 => d(&[("mode", "kill".into())]),
                    _ => d(&[("mode", "killnowait".into())]),
                };
                self.send(s, Message::Cancel { request, options });
            }
            Op::Subscribe(s, t, pattern) => {
                let request = self.request(s);
                let (options, topic) = if pattern {
                    (d(&[("match", "prefix".into())]), "t.")
                } else {
                    (Dict::new(), TOPICS[t])
                };
                self.send(
                    s,
                    Message::Subscribe {
                        request,
                        options,
                        topic: topic.into(),
                    },
                );
            }
            Op::Unsubscribe(s, k) => {
                let request = self.request(s);
                let subs = &mut self.slots[s].subscriptions;
                let subscription = if subs.is_empty() {
                    424242
                } else {
                    subs.remove(k % subs.len())
                };
                self.send(
                    s,
                    Message::Unsubscribe {
                        request,
                        subscription,
                    },
                );
            }
            Op::Publish(s, t, exclude_me, acknowledge) => {
                let request = self.request(s);
                self.send(
                    s,
                    Message::Publish {
                        request,
                        options: d(&[
                            ("exclude_me", exclude_me.into()),
                            ("acknowledge", acknowledge.into()),
                        ]),
                        topic: TOPICS[t].into(),
                        args: None,
                        kwargs: None,
                    },
                );
            }
            Op::Garbage(s, kind) => {
                let msg = match kind {
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
                self.send(s, msg);
            }
        }
        self.drain();
    }

    fn stats(&self) -> (usize, usize, usize, usize) {
        let s = self.router.realm_stats("realm1").unwrap();
        (
            s.sessions,
            s.subscriptions,
            s.registrations,
            s.pending_calls,
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn router_invariants(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = Model::new(seed);
        for op in &ops {
            m.apply(op);
            prop_assert_eq!(m.router.session_count(), m.joined.len());
        }
        // Callees answer everything they were asked: every call of a
        // session still joined is answered exactly once.
        for s in 0..SLOTS {
            let invocations = std::mem::take(&mut m.slots[s].invocations);
            for request in invocations {
                m.send(s, Message::Yield { request, options: Dict::new(), args: None, kwargs: None });
                m.drain();
            }
        }
        prop_assert!(m.pending.is_empty(), "unanswered calls: {:?}", m.pending);
        prop_assert_eq!(m.stats().3, 0);
        // Everyone leaves, one way or another.
        for s in 0..SLOTS {
            if s % 2 == 0 {
                m.apply(&Op::Leave(s));
            }
            m.apply(&Op::Detach(s));
        }
        prop_assert_eq!(m.router.session_count(), 0);
        prop_assert_eq!(m.router.connection_count(), 0);
        prop_assert_eq!(m.stats(), (0, 0, 0, 0));
    }

    #[test]
    fn callees_leaving_cancel_their_calls(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = Model::new(seed);
        for op in &ops {
            m.apply(op);
        }
        // Everyone but slot 0 goes away without answering: slot 0's calls
        // to them fail with wamp.error.canceled; it answers its own
        // invocations (calls to itself) and then nothing is pending.
        for s in 1..SLOTS {
            m.apply(&Op::Detach(s));
        }
        let own = std::mem::take(&mut m.slots[0].invocations);
        for request in own {
            m.send(0, Message::Yield { request, options: Dict::new(), args: None, kwargs: None });
            m.drain();
        }
        prop_assert!(m.pending.is_empty(), "unanswered calls: {:?}", m.pending);
        m.apply(&Op::Detach(0));
        prop_assert_eq!(m.stats(), (0, 0, 0, 0));
    }
}

#[test]
fn model_smoke() {
    let mut m = Model::new(1);
    for op in [
        Op::Join(0),
        Op::Join(1),
        Op::Register(0, 0, 0),
        Op::Call(1, 0, true),
        Op::Answer(0, 0, 1),
        Op::Answer(0, 0, 0),
    ] {
        m.apply(&op);
    }
    assert_eq!(m.answered, 1);
    assert!(m.pending.is_empty());
}
