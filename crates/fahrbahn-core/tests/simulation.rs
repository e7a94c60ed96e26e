//! Deterministic full-stack simulation: many WAMP client sessions
//! ([`ClientConnection`]) and one router core, each client joined to its
//! own router-side transport ([`ServerConnection`]) by in-memory byte pipes
//! (see `sim/mod.rs` for the network, the faults and the serving glue).
//!
//! Proptest draws scenarios — register, call, yield, error, progressive
//! results, cancel, subscribe, publish (with and without acknowledge and
//! `exclude_me`), unsubscribe, leave, cut connections, clients that stop
//! reading — and a seed for everything random in the network (delays,
//! reordering across connections, chunking, cut points). A model of each
//! client checks, as events arrive and once the simulation quiesces:
//!
//! 1. every request (call, acknowledged publish, (un)register,
//!    (un)subscribe) gets exactly one final answer, or the session ends
//!    with a typed error (or because it left) — never silence while the
//!    session is alive; results reach the call they answer;
//! 2. no EVENT reaches a session that is not subscribed to its topic, and
//!    a publisher gets its own events only with `exclude_me: false`; an
//!    event for a subscription acknowledged before the PUBLISH was sent
//!    reaches a subscriber that stays;
//! 3. once every session is gone (left or cut) and the simulation has
//!    quiesced, the router is empty (no sessions, connections,
//!    subscriptions, registrations or pending calls);
//! 4. a client that stops reading and is flooded is disconnected as a
//!    slow consumer; no session ends with a protocol violation;
//! 5. nothing panics.
//!
//! At the end it prints `simulation: N scenarios` (and aggregate counts)
//! on stderr, and writes `N` to `$CARGO_TARGET_TMPDIR/simulation-scenarios.txt`.
#![allow(clippy::disallowed_methods)] // tests take a base instant from the clock

mod sim;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fahrbahn_core::Rng;
use fahrbahn_core::wamp::error::{
    ERROR_CANCELED, ERROR_NO_SUCH_PROCEDURE, ERROR_NO_SUCH_REGISTRATION,
    ERROR_NO_SUCH_SUBSCRIPTION, ERROR_PROCEDURE_ALREADY_EXISTS,
};
use fahrbahn_core::wamp::router::{CloseReason, Router, RouterConfig};
use fahrbahn_core::wamp::{
    ApplicationError, Closed, Dict, RegistrationId, RequestId, RequestKind, SessionError,
    SessionEvent, SubscriptionId, Value,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};
use sim::{Faults, Phase, TRANSPORTS, World, below, transport_name};

const REALM: &str = "sim.realm";
const PROCEDURES: [&str; 3] = ["sim.p0", "sim.p1", "sim.p2"];
/// Topics 0 and 1 are exact; subscribing to topic 2 is a prefix
/// subscription `sim.t` (matching both).
const TOPICS: [&str; 2] = ["sim.t0", "sim.t1"];
const PREFIX: &str = "sim.t";
/// A procedure nobody registers: a client that stops reading floods
/// itself with its errors.
const NOWHERE: &str = "sim.nowhere";
const APP_ERROR: &str = "sim.error.app";
const MAX_CLIENTS: usize = 5;

// ----- scenarios ----------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Register {
        c: usize,
        proc: usize,
    },
    Unregister {
        c: usize,
        k: usize,
    },
    Call {
        c: usize,
        proc: usize,
        progress: bool,
    },
    /// Answer pending invocation `k`: 0 yield, 1 error, 2 a progressive
    /// result first (when the caller asked for them).
    Answer {
        c: usize,
        k: usize,
        how: u8,
    },
    /// Cancel pending call `k`: mode 0 none, 1 skip, 2 kill, 3 killnowait.
    Cancel {
        c: usize,
        k: usize,
        mode: u8,
    },
    Subscribe {
        c: usize,
        topic: usize,
    },
    Unsubscribe {
        c: usize,
        k: usize,
    },
    Publish {
        c: usize,
        topic: usize,
        ack: bool,
        exclude_me: bool,
    },
    Leave {
        c: usize,
    },
    Cut {
        c: usize,
    },
    StopReading {
        c: usize,
        flood: bool,
    },
    /// Let the network run this many steps.
    Run {
        steps: u8,
    },
    /// Let the network run until nothing is in flight.
    Idle,
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    transports: Vec<u8>,
    ops: Vec<Op>,
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..MAX_CLIENTS;
    let k = 0..4usize;
    prop_oneof![
        3 => (c.clone(), 0..PROCEDURES.len()).prop_map(|(c, proc)| Op::Register { c, proc }),
        1 => (c.clone(), k.clone()).prop_map(|(c, k)| Op::Unregister { c, k }),
        5 => (c.clone(), 0..PROCEDURES.len(), any::<bool>())
            .prop_map(|(c, proc, progress)| Op::Call { c, proc, progress }),
        5 => (c.clone(), k.clone(), 0u8..3).prop_map(|(c, k, how)| Op::Answer { c, k, how }),
        2 => (c.clone(), k.clone(), 0u8..4).prop_map(|(c, k, mode)| Op::Cancel { c, k, mode }),
        3 => (c.clone(), 0..=TOPICS.len()).prop_map(|(c, topic)| Op::Subscribe { c, topic }),
        1 => (c.clone(), k).prop_map(|(c, k)| Op::Unsubscribe { c, k }),
        4 => (c.clone(), 0..TOPICS.len(), any::<bool>(), any::<bool>())
            .prop_map(|(c, topic, ack, exclude_me)| Op::Publish { c, topic, ack, exclude_me }),
        1 => c.clone().prop_map(|c| Op::Leave { c }),
        1 => c.clone().prop_map(|c| Op::Cut { c }),
        1 => (c, any::<bool>()).prop_map(|(c, flood)| Op::StopReading { c, flood }),
        3 => (0u8..40).prop_map(|steps| Op::Run { steps }),
        2 => Just(Op::Idle),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        proptest::collection::vec(0..TRANSPORTS, 2..=MAX_CLIENTS),
        proptest::collection::vec(op(), 0..28),
    )
        .prop_map(|(seed, transports, ops)| Scenario {
            seed,
            transports,
            ops,
        })
}

// ----- the model of each client -----------------------------------------

/// A pending invocation at a callee.
#[derive(Debug)]
struct Invocation {
    request: u64,
    args: Vec<Value>,
    receive_progress: bool,
    progressed: bool,
}

#[derive(Debug, Default)]
struct ClientModel {
    joined: bool,
    closed: Option<Closed>,
    /// We asked to leave.
    left: bool,
    /// It stopped reading (and, with `flooded`, flooded itself).
    stalled: bool,
    flooded: bool,
    /// Requests waiting for their answer.
    pending: BTreeMap<u64, RequestKind>,
    /// Call request → its sequence number (echoed in the answer).
    calls: BTreeMap<u64, u64>,
    /// Register request → procedure; registration → procedure while it
    /// exists (from REGISTERED to UNREGISTERED), and those not being
    /// unregistered (usable for commands).
    register_requests: BTreeMap<u64, usize>,
    registrations: BTreeMap<u64, usize>,
    usable_registrations: Vec<u64>,
    unregister_requests: BTreeMap<u64, u64>,
    /// Subscribe request → topic; subscription → topic (2: the prefix)
    /// from SUBSCRIBED to UNSUBSCRIBED; unsubscribe request → subscription.
    subscribe_requests: BTreeMap<u64, usize>,
    subscriptions: BTreeMap<u64, usize>,
    unsubscribing: BTreeSet<u64>,
    unsubscribe_requests: BTreeMap<u64, u64>,
    /// Every UNSUBSCRIBE sent: (subscription, sequence number then).
    unsubscribed: Vec<(u64, u64)>,
    invocations: Vec<Invocation>,
    /// (publication seq, subscription) received.
    received: BTreeSet<(u64, u64)>,
}

/// An event some subscriber must get, unless its session ends, it
/// unsubscribes, or the publisher's connection is cut or dropped.
#[derive(Debug)]
struct Expected {
    subscriber: usize,
    subscription: u64,
    publisher: usize,
    seq: u64,
}

#[derive(Debug, Default, Clone)]
struct Counts {
    scenarios: u64,
    calls_answered: u64,
    calls_failed: u64,
    events: u64,
    publications: u64,
    slow_consumers: u64,
    cuts: u64,
    deliveries: u64,
    closed_by_error: u64,
    simulated: Duration,
}

struct Sim {
    world: World,
    models: Vec<ClientModel>,
    next_seq: u64,
    expected: Vec<Expected>,
    counts: Counts,
    scenario: String,
    /// The router's `outbound_queue`.
    queue_bound: usize,
}

fn seq_of(args: &[Value]) -> u64 {
    args.first()
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no sequence number in {args:?}"))
}

impl Sim {
    fn new(s: &Scenario, base: Instant) -> Self {
        let mut rng = Rng::from_seed(s.seed);
        let stalls = s.ops.iter().any(|o| matches!(o, Op::StopReading { .. }));
        let mut config = RouterConfig::with_realm(REALM);
        if stalls {
            config.outbound_queue = 4 + below(&mut rng, 12) as usize;
        }
        let faults = Faults {
            chunking: below(&mut rng, 2) == 0,
            pipe_capacity: if stalls {
                256 + below(&mut rng, 512) as usize
            } else {
                1 << 20
            },
        };
        let queue_bound = config.outbound_queue;
        let router = Router::new(config, Rng::from_seed(rng.next_u64()));
        let world_rng = Rng::from_seed(rng.next_u64());
        let mut world = World::new(base, router, world_rng, faults);
        let delays = [0, 1, 5, 40];
        for &kind in &s.transports {
            let ms = delays[below(&mut rng, 4) as usize];
            world.connect(kind, REALM, Duration::from_millis(ms));
        }
        Self {
            models: s
                .transports
                .iter()
                .map(|_| ClientModel::default())
                .collect(),
            world,
            next_seq: 1,
            expected: Vec::new(),
            counts: Counts::default(),
            scenario: format!("{s:?}"),
            queue_bound,
        }
    }

    fn fail(&self, why: String) -> ! {
        panic!("{why}\nscenario: {}", self.scenario)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    // ----- running ------------------------------------------------------

    /// One network step, then the events it produced go through the model.
    fn step(&mut self, timers: bool) -> bool {
        let more = self.world.step(timers);
        // Events may lead to commands (answering an INTERRUPT): send them.
        while self.take_events() {
            self.world.pump();
        }
        more
    }

    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            if !self.step(false) {
                break;
            }
        }
    }

    /// Runs until nothing is in flight (with `timers`: until no timer is
    /// left either).
    fn settle(&mut self, timers: bool) {
        for _ in 0..200_000 {
            if !self.step(timers) {
                return;
            }
        }
        self.fail(format!(
            "the simulation does not quiesce (at {:?})",
            self.world.offset
        ));
    }

    // ----- commands -----------------------------------------------------

    /// Client `c`'s session if it exists and is established.
    fn live(&self, c: usize) -> Option<usize> {
        let c = c % self.models.len();
        let link = &self.world.links[c];
        (link.client_phase == Phase::Running
            && link.client.session().is_established()
            && self.models[c].joined)
            .then_some(c)
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Register { c, proc } => {
                let Some(c) = self.live(c) else { return };
                let r = self.world.links[c]
                    .client
                    .session_mut()
                    .register(PROCEDURES[proc], Dict::new())
                    .expect("register")
                    .0;
                let m = &mut self.models[c];
                m.pending.insert(r, RequestKind::Register);
                m.register_requests.insert(r, proc);
            }
            Op::Unregister { c, k } => {
                let Some(c) = self.live(c) else { return };
                let m = &mut self.models[c];
                if m.usable_registrations.is_empty() {
                    return;
                }
                let reg = m
                    .usable_registrations
                    .remove(k % m.usable_registrations.len());
                let r = self.world.links[c]
                    .client
                    .session_mut()
                    .unregister(RegistrationId(reg))
                    .expect("unregister")
                    .0;
                let m = &mut self.models[c];
                m.pending.insert(r, RequestKind::Unregister);
                m.unregister_requests.insert(r, reg);
            }
            Op::Call { c, proc, progress } => {
                let Some(c) = self.live(c) else { return };
                self.call(c, PROCEDURES[proc], proc, progress);
            }
            Op::Answer { c, k, how } => {
                let Some(c) = self.live(c) else { return };
                if self.models[c].invocations.is_empty() {
                    return;
                }
                let k = k % self.models[c].invocations.len();
                self.answer(c, k, how);
            }
            Op::Cancel { c, k, mode } => {
                let Some(c) = self.live(c) else { return };
                let m = &self.models[c];
                if m.calls.is_empty() {
                    return;
                }
                let request = *m.calls.keys().nth(k % m.calls.len()).expect("a call");
                let mode =
                    [None, Some("skip"), Some("kill"), Some("killnowait")][usize::from(mode)];
                self.world.links[c]
                    .client
                    .session_mut()
                    .cancel(RequestId(request), mode)
                    .expect("cancel");
            }
            Op::Subscribe { c, topic } => {
                let Some(c) = self.live(c) else { return };
                let (uri, options) = if topic < TOPICS.len() {
                    (TOPICS[topic], Dict::new())
                } else {
                    let mut o = Dict::new();
                    o.insert("match".into(), "prefix".into());
                    (PREFIX, o)
                };
                let r = self.world.links[c]
                    .client
                    .session_mut()
                    .subscribe(uri, options)
                    .expect("subscribe")
                    .0;
                let m = &mut self.models[c];
                m.pending.insert(r, RequestKind::Subscribe);
                m.subscribe_requests.insert(r, topic);
            }
            Op::Unsubscribe { c, k } => {
                let Some(c) = self.live(c) else { return };
                let m = &self.models[c];
                if m.subscriptions.is_empty() {
                    return;
                }
                let sub = *m
                    .subscriptions
                    .keys()
                    .nth(k % m.subscriptions.len())
                    .expect("a subscription");
                let r = self.world.links[c]
                    .client
                    .session_mut()
                    .unsubscribe(SubscriptionId(sub))
                    .expect("unsubscribe")
                    .0;
                let m = &mut self.models[c];
                m.pending.insert(r, RequestKind::Unsubscribe);
                m.unsubscribe_requests.insert(r, sub);
                m.unsubscribing.insert(sub);
                m.unsubscribed.push((sub, self.next_seq));
            }
            Op::Publish {
                c,
                topic,
                ack,
                exclude_me,
            } => {
                let Some(c) = self.live(c) else { return };
                self.publish(c, topic, ack, exclude_me);
            }
            Op::Leave { c } => {
                let Some(c) = self.live(c) else { return };
                let now = self.world.now();
                self.world.links[c]
                    .client
                    .session_mut()
                    .leave_normal(now)
                    .expect("leave");
                self.models[c].left = true;
            }
            Op::Cut { c } => {
                let c = c % self.models.len();
                self.world.cut(c);
            }
            Op::StopReading { c, flood } => {
                let Some(c) = self.live(c) else { return };
                if self.models[c].stalled {
                    return;
                }
                self.world.links[c].reading = false;
                self.models[c].stalled = true;
                if flood {
                    self.models[c].flooded = true;
                    // Each call is answered with an ERROR: more than the
                    // pipe (at least 4 bytes each, even deflated), the
                    // glue's batch and the router's queue can hold.
                    let n = self.world.faults.pipe_capacity / 4 + 8 + self.queue_bound + 4;
                    for _ in 0..n {
                        self.call(c, NOWHERE, usize::MAX, false);
                    }
                }
            }
            Op::Run { steps } => self.run(usize::from(steps)),
            Op::Idle => self.settle(false),
        }
        self.world.pump();
        let _ = self.take_events();
    }

    fn call(&mut self, c: usize, uri: &str, proc: usize, progress: bool) {
        let seq = self.seq();
        let mut options = Dict::new();
        if progress {
            options.insert("receive_progress".into(), true.into());
        }
        let args = vec![seq.into(), (proc as u64).into()];
        let r = self.world.links[c]
            .client
            .session_mut()
            .call(uri, args, Dict::new(), options)
            .expect("call")
            .0;
        let m = &mut self.models[c];
        m.pending.insert(r, RequestKind::Call);
        m.calls.insert(r, seq);
    }

    fn answer(&mut self, c: usize, k: usize, how: u8) {
        let inv = &mut self.models[c].invocations[k];
        let request = inv.request;
        let args = inv.args.clone();
        let session = self.world.links[c].client.session_mut();
        if how == 2 && inv.receive_progress && !inv.progressed {
            inv.progressed = true;
            let mut options = Dict::new();
            options.insert("progress".into(), true.into());
            session
                .yield_result(RequestId(request), args, Dict::new(), options)
                .expect("progressive yield");
            return;
        }
        self.models[c].invocations.remove(k);
        if how == 1 {
            session
                .yield_error(
                    RequestId(request),
                    ApplicationError::new(APP_ERROR).with_args(args),
                )
                .expect("yield error");
        } else {
            session
                .yield_result(RequestId(request), args, Dict::new(), Dict::new())
                .expect("yield");
        }
    }

    fn publish(&mut self, c: usize, topic: usize, ack: bool, exclude_me: bool) {
        let seq = self.seq();
        self.counts.publications += 1;
        let mut options = Dict::new();
        if ack {
            options.insert("acknowledge".into(), true.into());
        }
        if !exclude_me {
            options.insert("exclude_me".into(), false.into());
        }
        let args = vec![
            seq.into(),
            TOPICS[topic].into(),
            (c as u64).into(),
            exclude_me.into(),
        ];
        // Who must get it: subscriptions acknowledged before now and not
        // being unsubscribed.
        for (s, m) in self.models.iter().enumerate() {
            if s == c && exclude_me {
                continue;
            }
            for (&sub, &t) in &m.subscriptions {
                if (t == topic || t == TOPICS.len()) && !m.unsubscribing.contains(&sub) {
                    self.expected.push(Expected {
                        subscriber: s,
                        subscription: sub,
                        publisher: c,
                        seq,
                    });
                }
            }
        }
        let r = self.world.links[c]
            .client
            .session_mut()
            .publish(TOPICS[topic], args, Dict::new(), options)
            .expect("publish")
            .0;
        if ack {
            self.models[c].pending.insert(r, RequestKind::Publish);
        }
    }

    // ----- checking events ------------------------------------------------

    /// Checks the events the clients reported; whether there were any.
    fn take_events(&mut self) -> bool {
        let mut any = false;
        for c in 0..self.models.len() {
            while let Some(event) = self.world.links[c].events.pop_front() {
                any = true;
                self.check_event(c, event);
            }
        }
        any
    }

    fn answered(&mut self, c: usize, request: u64, kind: RequestKind, what: &str) {
        let m = &mut self.models[c];
        match m.pending.remove(&request) {
            Some(k) if k == kind => {}
            other => self.fail(format!(
                "client {c}: {what} for {kind:?} request {request}, which is not pending (found {other:?})"
            )),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn check_event(&mut self, c: usize, event: SessionEvent) {
        if self.models[c].closed.is_some() {
            self.fail(format!("client {c}: {event:?} after Closed"));
        }
        match event {
            SessionEvent::Joined { .. } => self.models[c].joined = true,
            SessionEvent::Result {
                request,
                args,
                progress,
                ..
            } => {
                let request = request.0;
                let Some(&seq) = self.models[c].calls.get(&request) else {
                    self.fail(format!("client {c}: RESULT for unknown call {request}"));
                };
                if seq_of(&args) != seq {
                    self.fail(format!(
                        "client {c}: RESULT of call {request} carries {args:?}, not call #{seq}"
                    ));
                }
                if !progress {
                    self.answered(c, request, RequestKind::Call, "RESULT");
                    self.models[c].calls.remove(&request);
                    self.counts.calls_answered += 1;
                } else if !self.models[c].pending.contains_key(&request) {
                    self.fail(format!(
                        "client {c}: progressive RESULT for answered call {request}"
                    ));
                }
            }
            SessionEvent::Failed {
                request,
                kind,
                error,
            } => {
                let request = request.0;
                self.answered(c, request, kind, "ERROR");
                let ok = match kind {
                    RequestKind::Call => {
                        let seq = self.models[c].calls.remove(&request);
                        self.counts.calls_failed += 1;
                        if error.error == APP_ERROR
                            && seq.map(Some) != Some(error.args.first().and_then(Value::as_u64))
                        {
                            self.fail(format!(
                                "client {c}: application error of call {request} carries {:?}, not call #{seq:?}",
                                error.args
                            ));
                        }
                        [APP_ERROR, ERROR_CANCELED, ERROR_NO_SUCH_PROCEDURE]
                            .contains(&error.error.as_str())
                    }
                    RequestKind::Register => {
                        self.models[c].register_requests.remove(&request);
                        error.error == ERROR_PROCEDURE_ALREADY_EXISTS
                    }
                    RequestKind::Unregister => {
                        self.models[c].unregister_requests.remove(&request);
                        error.error == ERROR_NO_SUCH_REGISTRATION
                    }
                    RequestKind::Unsubscribe => {
                        let m = &mut self.models[c];
                        if let Some(sub) = m.unsubscribe_requests.remove(&request) {
                            if !m.unsubscribe_requests.values().any(|s| *s == sub) {
                                m.unsubscribing.remove(&sub);
                            }
                        }
                        error.error == ERROR_NO_SUCH_SUBSCRIPTION
                    }
                    _ => false,
                };
                if !ok {
                    self.fail(format!(
                        "client {c}: unexpected error for {kind:?} {request}: {error:?}"
                    ));
                }
            }
            SessionEvent::Registered {
                request,
                registration,
            } => {
                let request = request.0;
                let registration = registration.0;
                self.answered(c, request, RequestKind::Register, "REGISTERED");
                let m = &mut self.models[c];
                let proc = m
                    .register_requests
                    .remove(&request)
                    .expect("a register request");
                if m.registrations.insert(registration, proc).is_some() {
                    self.fail(format!(
                        "client {c}: registration {registration} given twice"
                    ));
                }
                m.usable_registrations.push(registration);
            }
            SessionEvent::Unregistered { request } => {
                let request = request.0;
                self.answered(c, request, RequestKind::Unregister, "UNREGISTERED");
                let m = &mut self.models[c];
                let reg = m
                    .unregister_requests
                    .remove(&request)
                    .expect("an unregister request");
                m.registrations.remove(&reg);
            }
            SessionEvent::Subscribed {
                request,
                subscription,
            } => {
                let request = request.0;
                let subscription = subscription.0;
                self.answered(c, request, RequestKind::Subscribe, "SUBSCRIBED");
                let m = &mut self.models[c];
                let topic = m
                    .subscribe_requests
                    .remove(&request)
                    .expect("a subscribe request");
                if let Some(old) = m.subscriptions.insert(subscription, topic) {
                    if old != topic {
                        self.fail(format!(
                            "client {c}: subscription {subscription} is for topic {old} and {topic}"
                        ));
                    }
                }
            }
            SessionEvent::Unsubscribed { request } => {
                let request = request.0;
                self.answered(c, request, RequestKind::Unsubscribe, "UNSUBSCRIBED");
                let m = &mut self.models[c];
                let sub = m
                    .unsubscribe_requests
                    .remove(&request)
                    .expect("an unsubscribe request");
                m.subscriptions.remove(&sub);
                if !m.unsubscribe_requests.values().any(|s| *s == sub) {
                    m.unsubscribing.remove(&sub);
                }
            }
            SessionEvent::Published { request, .. } => {
                let request = request.0;
                self.answered(c, request, RequestKind::Publish, "PUBLISHED");
            }
            SessionEvent::Invocation {
                request,
                registration,
                args,
                details,
                ..
            } => {
                let request = request.0;
                let registration = registration.0;
                let m = &mut self.models[c];
                let Some(&proc) = m.registrations.get(&registration) else {
                    self.fail(format!(
                        "client {c}: INVOCATION for registration {registration}, which it does not hold"
                    ));
                };
                if args.get(1).and_then(Value::as_u64) != Some(proc as u64) {
                    self.fail(format!(
                        "client {c}: INVOCATION of procedure {proc} carries {args:?}"
                    ));
                }
                if m.invocations.iter().any(|i| i.request == request) {
                    self.fail(format!("client {c}: INVOCATION {request} twice"));
                }
                m.invocations.push(Invocation {
                    request,
                    args,
                    receive_progress: details.get("receive_progress").and_then(Value::as_bool)
                        == Some(true),
                    progressed: false,
                });
            }
            SessionEvent::Interrupt { request, .. } => {
                let request = request.0;
                // A callee stops the work and says so.
                let m = &mut self.models[c];
                if let Some(k) = m.invocations.iter().position(|i| i.request == request) {
                    m.invocations.remove(k);
                    if let Err(e) = self.world.links[c]
                        .client
                        .session_mut()
                        .yield_error(RequestId(request), ApplicationError::new(ERROR_CANCELED))
                    {
                        self.fail(format!("client {c}: cannot answer INTERRUPT: {e}"));
                    }
                }
            }
            SessionEvent::Event {
                subscription,
                args,
                details,
                ..
            } => {
                let subscription = subscription.0;
                self.counts.events += 1;
                let m = &mut self.models[c];
                let Some(&topic) = m.subscriptions.get(&subscription) else {
                    self.fail(format!(
                        "client {c}: EVENT {args:?} for subscription {subscription}, which it does not hold"
                    ));
                };
                let seq = seq_of(&args);
                let published_to = args.get(1).and_then(Value::as_str).unwrap_or_default();
                let fits = if topic < TOPICS.len() {
                    published_to == TOPICS[topic]
                } else {
                    published_to.starts_with(PREFIX)
                        && details.get("topic").and_then(Value::as_str) == Some(published_to)
                };
                if !fits {
                    self.fail(format!(
                        "client {c}: EVENT {args:?} ({details:?}) on subscription {subscription} to topic #{topic}"
                    ));
                }
                let publisher = args.get(2).and_then(Value::as_u64);
                let exclude_me = args.get(3).and_then(Value::as_bool);
                if publisher == Some(c as u64) && exclude_me != Some(false) {
                    self.fail(format!(
                        "client {c}: got its own event {args:?} despite exclude_me"
                    ));
                }
                if !m.received.insert((seq, subscription)) {
                    self.fail(format!(
                        "client {c}: EVENT #{seq} twice on subscription {subscription}"
                    ));
                }
            }
            SessionEvent::Closed(closed) => {
                let m = &self.models[c];
                let allowed = match &closed.error {
                    None => m.left,
                    Some(SessionError::TransportClosed(_)) => true,
                    Some(SessionError::JoinTimeout(_) | SessionError::LeaveTimeout(_)) => {
                        m.stalled || self.world.links[c].cut
                    }
                    Some(_) => false,
                };
                if !allowed {
                    self.fail(format!("client {c}: session ended with {closed:?}"));
                }
                if closed.error.is_some() {
                    self.counts.closed_by_error += 1;
                }
                let m = &mut self.models[c];
                m.closed = Some(closed);
                m.invocations.clear();
            }
            other => self.fail(format!("client {c}: unexpected {other:?}")),
        }
    }

    // ----- the end ------------------------------------------------------

    fn finish(&mut self) {
        // Clients that stopped reading read again.
        for link in &mut self.world.links {
            link.reading = true;
        }
        // Callees answer until nothing is pending.
        for _ in 0..1000 {
            self.settle(true);
            let mut any = false;
            for c in 0..self.models.len() {
                while self.live(c).is_some() && !self.models[c].invocations.is_empty() {
                    any = true;
                    self.answer(c, 0, 0);
                }
            }
            if !any {
                break;
            }
            self.world.pump();
            let _ = self.take_events();
        }
        self.settle(true);
        // 1. No silence: a session that is still there has every answer.
        for (c, m) in self.models.iter().enumerate() {
            if m.closed.is_none() && !m.pending.is_empty() {
                self.fail(format!(
                    "client {c} ({}): requests {:?} never answered, session alive",
                    transport_name(self.world.links[c].kind),
                    m.pending
                ));
            }
        }
        // 2. No lost events.
        for e in &self.expected {
            let sub = &self.models[e.subscriber];
            let publisher_link = &self.world.links[e.publisher];
            let excused = sub.closed.is_some()
                || sub
                    .unsubscribed
                    .iter()
                    .any(|&(s, at)| s == e.subscription && at >= e.seq)
                || publisher_link.cut
                || !publisher_link.close_reasons.is_empty()
                || self.models[e.publisher].stalled;
            if !excused && !sub.received.contains(&(e.seq, e.subscription)) {
                self.fail(format!(
                    "client {}: missed event #{} from client {} on subscription {}",
                    e.subscriber, e.seq, e.publisher, e.subscription
                ));
            }
        }
        // 4. Slow consumers.
        for (c, m) in self.models.iter().enumerate() {
            let link = &self.world.links[c];
            if m.flooded && !link.cut && !link.close_reasons.contains(&CloseReason::SlowConsumer) {
                self.fail(format!(
                    "client {c} stopped reading and flooded itself, but was not disconnected as a slow consumer ({:?})",
                    link.close_reasons
                ));
            }
        }
        // Everyone leaves.
        for c in 0..self.models.len() {
            if self.live(c).is_some() {
                let now = self.world.now();
                self.world.links[c]
                    .client
                    .session_mut()
                    .leave_normal(now)
                    .expect("leave");
                self.models[c].left = true;
            }
        }
        self.world.pump();
        let _ = self.take_events();
        self.settle(true);
        // 3. The router is empty.
        for (c, m) in self.models.iter().enumerate() {
            let link = &self.world.links[c];
            if m.closed.is_none() || !link.detached || link.client_phase != Phase::Done {
                self.fail(format!(
                    "client {c}: still there after everyone left (closed {:?}, detached {}, {:?}/{:?})",
                    m.closed, link.detached, link.client_phase, link.server_phase
                ));
            }
        }
        let router = &self.world.router;
        let stats = router.realm_stats(REALM).expect("the realm");
        if router.session_count() != 0
            || router.connection_count() != 0
            || stats.sessions != 0
            || stats.subscriptions != 0
            || stats.registrations != 0
            || stats.pending_calls != 0
            || router.poll_timeout().is_some()
        {
            self.fail(format!(
                "router not empty: {} sessions, {} connections, {stats:?}, timeout {:?}",
                router.session_count(),
                router.connection_count(),
                router.poll_timeout()
            ));
        }
        self.counts.slow_consumers += self.world.stats.slow_consumers;
        self.counts.cuts += self.world.stats.cuts;
        self.counts.deliveries += self.world.stats.deliveries;
        self.counts.simulated += self.world.offset;
    }
}

fn run_scenario(s: &Scenario, base: Instant) -> Counts {
    let mut sim = Sim::new(s, base);
    sim.world.pump();
    // Let the sessions join (usually completely).
    if s.seed % 4 == 0 {
        sim.run(usize::try_from(s.seed % 64).unwrap_or(0));
    } else {
        sim.settle(false);
    }
    // Usually some callees and subscribers are there from the start, so
    // that calls and publications find them.
    if s.seed % 8 != 0 {
        let mut setup = Vec::new();
        for c in 0..s.transports.len() {
            let r = sim.world.rng.next_u64();
            if c < PROCEDURES.len() && r % 3 != 0 {
                setup.push(Op::Register { c, proc: c });
            }
            if (r >> 8) % 2 == 0 {
                let topic = ((r >> 16) % 3) as usize;
                setup.push(Op::Subscribe { c, topic });
            }
        }
        for op in &setup {
            sim.apply(op);
        }
        sim.settle(false);
    }
    for op in &s.ops {
        sim.apply(op);
        let steps = below(&mut sim.world.rng, 6) as usize;
        sim.run(steps);
    }
    sim.finish();
    sim.counts.scenarios = 1;
    sim.counts
}

#[test]
fn simulation() {
    let base = Instant::now();
    let cases = std::env::var("SIMULATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // A fixed seed: every run explores the same scenarios (set
    // SIMULATION_SEED to explore others).
    let seed = std::env::var("SIMULATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0F4B_2BA4);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        // Much cheaper than ChaCha in debug builds.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    });
    let total = RefCell::new(Counts::default());
    let result = runner.run(&scenario(), |s| {
        let c = run_scenario(&s, base);
        let mut t = total.borrow_mut();
        t.scenarios += c.scenarios;
        t.calls_answered += c.calls_answered;
        t.calls_failed += c.calls_failed;
        t.events += c.events;
        t.publications += c.publications;
        t.slow_consumers += c.slow_consumers;
        t.cuts += c.cuts;
        t.deliveries += c.deliveries;
        t.closed_by_error += c.closed_by_error;
        t.simulated += c.simulated;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let t = total.into_inner();
    eprintln!(
        "simulation: {} calls answered with a result, {} with an error, {} publications, {} events delivered, \
         {} slow consumers disconnected, {} connections cut, {} sessions ended by a typed error, \
         {} deliveries, {:?} simulated",
        t.calls_answered,
        t.calls_failed,
        t.publications,
        t.events,
        t.slow_consumers,
        t.cuts,
        t.closed_by_error,
        t.deliveries,
        t.simulated,
    );
    eprintln!("simulation: {} scenarios", t.scenarios);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulation-scenarios.txt");
    if let Err(e) = std::fs::write(&path, format!("{}\n", t.scenarios)) {
        eprintln!("simulation: cannot write {}: {e}", path.display());
    }
    assert!(
        t.slow_consumers > 0,
        "no scenario disconnected a slow consumer"
    );
    assert!(t.cuts > 0 && t.events > 0 && t.calls_answered > 0);
}
