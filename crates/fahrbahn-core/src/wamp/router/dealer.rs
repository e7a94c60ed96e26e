//! The dealer's registration table and pending calls of one realm.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::matching::{MatchPolicy, PrefixIndex, WildcardIndex, wildcard_rank};
use crate::Rng;
use crate::wamp::{Dict, IdGenerator, Value};

/// How a CALL picks among the callees of a (shared) registration: the
/// REGISTER option `invoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvokePolicy {
    /// One callee only (the default): a second REGISTER is refused.
    Single,
    /// The callees in turn.
    RoundRobin,
    /// A callee drawn with the router's RNG.
    Random,
    /// The callee that registered first.
    First,
    /// The callee that registered last.
    Last,
    /// Our extension: the callee with the fewest pending invocations of
    /// this registration (ties: the one that registered first).
    LeastBusy,
}

impl InvokePolicy {
    /// The REGISTER option `invoke` (absent: `single`).
    pub(crate) fn from_options(options: &Dict) -> Result<Self, String> {
        match options.get("invoke") {
            None => Ok(Self::Single),
            Some(Value::String(s)) => match s.as_str() {
                "single" => Ok(Self::Single),
                "roundrobin" => Ok(Self::RoundRobin),
                "random" => Ok(Self::Random),
                "first" => Ok(Self::First),
                "last" => Ok(Self::Last),
                "leastbusy" => Ok(Self::LeastBusy),
                other => Err(format!(
                    "invocation policy {other:?} is unknown: use single, roundrobin, random, first, last or leastbusy"
                )),
            },
            Some(v) => Err(format!(
                "option \"invoke\" must be a string, got {}",
                v.kind()
            )),
        }
    }

    /// The name used in the `invoke` option.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::RoundRobin => "roundrobin",
            Self::Random => "random",
            Self::First => "first",
            Self::Last => "last",
            Self::LeastBusy => "leastbusy",
        }
    }
}

/// One callee of a registration.
#[derive(Debug)]
pub(crate) struct Callee {
    pub(crate) session: u64,
    /// At most this many pending invocations (REGISTER option
    /// `concurrency`); `None`: no limit.
    pub(crate) concurrency: Option<u64>,
    /// Its pending invocations of this registration.
    pub(crate) pending: u64,
}

impl Callee {
    fn has_room(&self) -> bool {
        self.concurrency.is_none_or(|n| self.pending < n)
    }
}

/// One registered procedure (or procedure pattern) and its callees, in
/// the order they registered.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) procedure: String,
    pub(crate) policy: MatchPolicy,
    pub(crate) invoke: InvokePolicy,
    pub(crate) callees: Vec<Callee>,
    /// The next index for `roundrobin`.
    cursor: usize,
}

/// Why a REGISTER is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterRefusal {
    /// The procedure has a `single` registration.
    AlreadyExists,
    /// The procedure is registered with another invocation policy.
    PolicyConflict(InvokePolicy),
}

/// A CALL routed to a callee as an INVOCATION, not yet answered.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) caller: u64,
    pub(crate) call_request: u64,
    pub(crate) callee: u64,
    /// The registration the call was routed by.
    pub(crate) registration: u64,
    /// The caller asked for progressive results.
    pub(crate) receive_progress: bool,
    /// A `kill` CANCEL was forwarded; the callee's answer ends the call.
    pub(crate) interrupted: bool,
    /// The caller still streams input (progressive call invocations): its
    /// CALLs with this request id go to the same invocation.
    pub(crate) streaming: bool,
    /// When the call times out (CALL option `timeout`).
    pub(crate) deadline: Option<Instant>,
}

/// The registrations and pending calls of a realm.
#[derive(Debug, Default)]
pub(crate) struct Dealer {
    regs: BTreeMap<u64, Registration>,
    /// Per policy: procedure → registration id.
    keys: [BTreeMap<String, u64>; 3],
    /// The `prefix` registrations, for lookup.
    prefix: PrefixIndex,
    /// The `wildcard` registrations, for lookup.
    wildcard: WildcardIndex,
    /// Invocation request id → call.
    invocations: BTreeMap<u64, Invocation>,
    /// (caller session, CALL request id) → invocation request id.
    calls: BTreeMap<(u64, u64), u64>,
    /// Caller session → how many of its calls are pending.
    pending_by_caller: BTreeMap<u64, usize>,
    /// The call timeouts: (deadline, invocation id).
    deadlines: BTreeSet<(Instant, u64)>,
    /// Per caller, the request ids of its streaming calls that ended
    /// before their last part (answered, canceled, timed out): their
    /// further parts are dropped until the last one. At most
    /// [`ENDED_STREAMS_PER_CALLER`] each, the oldest forgotten first.
    ended_streams: BTreeMap<u64, std::collections::VecDeque<u64>>,
}

/// How many ended streaming calls a caller's late parts are recognised
/// for.
const ENDED_STREAMS_PER_CALLER: usize = 16;

impl Dealer {
    /// Registers (procedure, policy) for `callee` with invocation policy
    /// `invoke`: a new registration, or a new callee of a shared one.
    /// Returns the registration id and whether `callee` was added (false
    /// when it already was a callee of this shared registration).
    pub(crate) fn register(
        &mut self,
        callee: u64,
        procedure: &str,
        policy: MatchPolicy,
        invoke: InvokePolicy,
        concurrency: Option<u64>,
        ids: &mut IdGenerator,
    ) -> Result<(u64, bool), RegisterRefusal> {
        let entry = Callee {
            session: callee,
            concurrency,
            pending: 0,
        };
        if let Some(&id) = self.keys[policy.index()].get(procedure) {
            let Some(reg) = self.regs.get_mut(&id) else {
                return Err(RegisterRefusal::AlreadyExists);
            };
            if reg.invoke == InvokePolicy::Single {
                return Err(RegisterRefusal::AlreadyExists);
            }
            if reg.invoke != invoke {
                return Err(RegisterRefusal::PolicyConflict(reg.invoke));
            }
            if reg.callees.iter().any(|c| c.session == callee) {
                return Ok((id, false));
            }
            reg.callees.push(entry);
            return Ok((id, true));
        }
        let id = loop {
            let id = ids.next();
            if !self.regs.contains_key(&id) {
                break id;
            }
        };
        self.keys[policy.index()].insert(procedure.to_owned(), id);
        match policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                self.prefix.insert(procedure, id);
            }
            MatchPolicy::Wildcard => {
                self.wildcard.insert(procedure, id);
            }
        }
        self.regs.insert(
            id,
            Registration {
                procedure: procedure.to_owned(),
                policy,
                invoke,
                callees: vec![entry],
                cursor: 0,
            },
        );
        Ok((id, true))
    }

    /// The registration id of (procedure, policy), if registered.
    pub(crate) fn find(&self, procedure: &str, policy: MatchPolicy) -> Option<u64> {
        self.keys[policy.index()].get(procedure).copied()
    }

    /// The procedure (or pattern) of registration `id`.
    pub(crate) fn procedure(&self, id: u64) -> Option<&str> {
        self.regs.get(&id).map(|r| r.procedure.as_str())
    }

    /// Removes `callee` from registration `id` (the registration goes with
    /// its last callee); false if it is not a callee of it.
    pub(crate) fn unregister(&mut self, callee: u64, id: u64) -> bool {
        let Some(reg) = self.regs.get_mut(&id) else {
            return false;
        };
        let Some(at) = reg.callees.iter().position(|c| c.session == callee) else {
            return false;
        };
        reg.callees.remove(at);
        if reg.callees.is_empty() {
            self.remove(id);
        }
        debug_assert!(!self.regs.is_empty() || self.index_is_empty());
        true
    }

    /// Removes registration `id` with all its callees; returns the callees.
    pub(crate) fn remove(&mut self, id: u64) -> Vec<u64> {
        let Some(r) = self.regs.remove(&id) else {
            return Vec::new();
        };
        self.keys[r.policy.index()].remove(&r.procedure);
        match r.policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                self.prefix.remove(&r.procedure);
            }
            MatchPolicy::Wildcard => {
                self.wildcard.remove(&r.procedure);
            }
        }
        r.callees.into_iter().map(|c| c.session).collect()
    }

    /// The callee a CALL on registration `id` goes to, by its invocation
    /// policy, among the callees below their `concurrency`: `Ok(session)`,
    /// or `Err(limit)` when every candidate is at its limit (`None` for an
    /// unknown registration).
    pub(crate) fn pick(&mut self, id: u64, rng: &mut Rng) -> Option<Result<u64, u64>> {
        let reg = self.regs.get_mut(&id)?;
        let n = reg.callees.len();
        if n == 0 {
            return None;
        }
        let busy = |c: &Callee| Err(c.concurrency.unwrap_or(0));
        let picked = match reg.invoke {
            InvokePolicy::Single | InvokePolicy::First => {
                let c = &reg.callees[0];
                if c.has_room() { Ok(c.session) } else { busy(c) }
            }
            InvokePolicy::Last => {
                let c = &reg.callees[n - 1];
                if c.has_room() { Ok(c.session) } else { busy(c) }
            }
            InvokePolicy::RoundRobin => {
                let found = (0..n)
                    .map(|k| (reg.cursor + k) % n)
                    .find(|&i| reg.callees[i].has_room());
                match found {
                    Some(i) => {
                        reg.cursor = (i + 1) % n;
                        Ok(reg.callees[i].session)
                    }
                    None => busy(&reg.callees[reg.cursor % n]),
                }
            }
            InvokePolicy::Random => {
                let room: Vec<&Callee> = reg.callees.iter().filter(|c| c.has_room()).collect();
                if room.is_empty() {
                    busy(&reg.callees[0])
                } else {
                    // The modulo bias over at most a few thousand callees
                    // is below 2^-50.
                    let i = (rng.next_u64() % room.len() as u64) as usize;
                    Ok(room[i].session)
                }
            }
            InvokePolicy::LeastBusy => reg
                .callees
                .iter()
                .filter(|c| c.has_room())
                .min_by_key(|c| c.pending)
                .map_or_else(|| busy(&reg.callees[0]), |c| Ok(c.session)),
        };
        Some(picked)
    }

    /// The registration a CALL to `procedure` goes to: an exact one, else
    /// the longest matching prefix, else the most specific wildcard
    /// ([`wildcard_rank`]; ties go to the oldest registration, the lowest
    /// id). The work grows with the procedure's length and the number of
    /// matching patterns, not with the number of registrations.
    pub(crate) fn lookup(&self, procedure: &str) -> Option<(u64, &Registration)> {
        let id = self.lookup_id(procedure).0?;
        self.regs.get(&id).map(|r| (id, r))
    }

    /// The id [`lookup`](Self::lookup) picks, and the number of index
    /// nodes visited.
    fn lookup_id(&self, procedure: &str) -> (Option<u64>, usize) {
        if let Some(&id) = self.keys[MatchPolicy::Exact.index()].get(procedure) {
            return (Some(id), 0);
        }
        let mut longest = None;
        let mut visited = self.prefix.matches(procedure, |id| longest = Some(id));
        if longest.is_some() {
            return (longest, visited);
        }
        let mut best: Option<((usize, usize), std::cmp::Reverse<u64>)> = None;
        visited += self.wildcard.matches(procedure, |id| {
            let rank = self
                .regs
                .get(&id)
                .map_or((0, 0), |r| wildcard_rank(&r.procedure));
            let key = (rank, std::cmp::Reverse(id));
            if best.is_none_or(|b| key > b) {
                best = Some(key);
            }
        });
        (best.map(|(_, std::cmp::Reverse(id))| id), visited)
    }

    /// [`register`](Self::register) with policy `single`.
    #[cfg(test)]
    pub(crate) fn register_single(
        &mut self,
        callee: u64,
        procedure: &str,
        policy: MatchPolicy,
        ids: &mut IdGenerator,
    ) -> Option<u64> {
        self.register(callee, procedure, policy, InvokePolicy::Single, None, ids)
            .ok()
            .map(|(id, _)| id)
    }

    /// The number of index nodes [`lookup`](Self::lookup) visits for
    /// `procedure`.
    #[cfg(test)]
    pub(crate) fn lookup_work(&self, procedure: &str) -> usize {
        self.lookup_id(procedure).1
    }

    /// Whether the matching indexes hold no pattern and no node but their
    /// roots.
    pub(crate) fn index_is_empty(&self) -> bool {
        self.prefix.is_empty()
            && self.wildcard.is_empty()
            && self.prefix.node_count() == 1
            && self.wildcard.node_count() == 1
    }

    /// Records a pending call.
    pub(crate) fn start(&mut self, invocation: u64, call: Invocation) {
        self.calls
            .insert((call.caller, call.call_request), invocation);
        *self.pending_by_caller.entry(call.caller).or_default() += 1;
        if let Some(c) = self.callee_entry(call.registration, call.callee) {
            c.pending += 1;
        }
        if let Some(at) = call.deadline {
            self.deadlines.insert((at, invocation));
        }
        self.invocations.insert(invocation, call);
    }

    fn callee_entry(&mut self, registration: u64, callee: u64) -> Option<&mut Callee> {
        self.regs
            .get_mut(&registration)?
            .callees
            .iter_mut()
            .find(|c| c.session == callee)
    }

    /// The earliest call timeout.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Takes the invocations whose timeout is due at `now` (they stay
    /// pending: end them with [`finish`](Self::finish)).
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<u64> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            due.push(id);
        }
        due
    }

    /// The invocation id of `caller`'s pending CALL `request`.
    pub(crate) fn invocation_of_call(&self, caller: u64, request: u64) -> Option<u64> {
        self.calls.get(&(caller, request)).copied()
    }

    /// Pending invocation `id`, if `callee` is its callee.
    pub(crate) fn invocation_mut(&mut self, id: u64, callee: u64) -> Option<&mut Invocation> {
        self.invocations.get_mut(&id).filter(|i| i.callee == callee)
    }

    /// Any pending invocation `id`.
    pub(crate) fn invocation(&self, id: u64) -> Option<&Invocation> {
        self.invocations.get(&id)
    }

    /// Ends pending invocation `id`.
    pub(crate) fn finish(&mut self, id: u64) -> Option<Invocation> {
        let call = self.invocations.remove(&id)?;
        self.calls.remove(&(call.caller, call.call_request));
        if call.streaming {
            let ended = self.ended_streams.entry(call.caller).or_default();
            if ended.len() >= ENDED_STREAMS_PER_CALLER {
                ended.pop_front();
            }
            ended.push_back(call.call_request);
        }
        if let Some(at) = call.deadline {
            self.deadlines.remove(&(at, id));
        }
        if let Some(c) = self.callee_entry(call.registration, call.callee) {
            c.pending = c.pending.saturating_sub(1);
        }
        if let Some(n) = self.pending_by_caller.get_mut(&call.caller) {
            *n -= 1;
            if *n == 0 {
                self.pending_by_caller.remove(&call.caller);
            }
        }
        Some(call)
    }

    /// Whether CALL `request` of `caller` is a late part of a streaming
    /// call that already ended (to be dropped); the last part (`last`)
    /// forgets the call.
    pub(crate) fn late_part(&mut self, caller: u64, request: u64, last: bool) -> bool {
        let Some(ended) = self.ended_streams.get_mut(&caller) else {
            return false;
        };
        let Some(at) = ended.iter().position(|r| *r == request) else {
            return false;
        };
        if last {
            ended.remove(at);
            if ended.is_empty() {
                self.ended_streams.remove(&caller);
            }
        }
        true
    }

    /// Forgets what is kept for `session` as a caller.
    pub(crate) fn forget_caller(&mut self, session: u64) {
        self.ended_streams.remove(&session);
    }

    /// The pending invocations `session` takes part in, as caller or callee.
    pub(crate) fn invocations_of(&self, session: u64) -> Vec<u64> {
        self.invocations
            .iter()
            .filter(|(_, i)| i.caller == session || i.callee == session)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether an invocation id is in use.
    pub(crate) fn has_invocation(&self, id: u64) -> bool {
        self.invocations.contains_key(&id)
    }

    /// The number of registrations.
    pub(crate) fn registration_count(&self) -> usize {
        self.regs.len()
    }

    /// The number of pending calls `caller` made.
    pub(crate) fn pending_of(&self, caller: u64) -> usize {
        self.pending_by_caller.get(&caller).copied().unwrap_or(0)
    }

    /// The number of pending calls.
    pub(crate) fn pending_count(&self) -> usize {
        self.invocations.len()
    }

    /// Registration `id` (read-only, for the meta API).
    pub(crate) fn registration(&self, id: u64) -> Option<&Registration> {
        self.regs.get(&id)
    }

    /// Every registration, by id (read-only, for the meta API).
    pub(crate) fn registrations(&self) -> impl Iterator<Item = (u64, &Registration)> + '_ {
        self.regs.iter().map(|(id, r)| (*id, r))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The old lookup: a scan of every pattern.
    fn scan(d: &Dealer, procedure: &str) -> Option<u64> {
        d.keys[MatchPolicy::Exact.index()]
            .get(procedure)
            .copied()
            .or_else(|| {
                d.keys[MatchPolicy::Prefix.index()]
                    .iter()
                    .filter(|(p, _)| procedure.starts_with(p.as_str()))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, id)| *id)
            })
            .or_else(|| {
                d.keys[MatchPolicy::Wildcard.index()]
                    .iter()
                    .filter(|(p, _)| MatchPolicy::Wildcard.matches(p, procedure))
                    .map(|(p, id)| (wildcard_rank(p), std::cmp::Reverse(*id)))
                    .max()
                    .map(|(_, std::cmp::Reverse(id))| id)
            })
    }

    fn procedure() -> impl Strategy<Value = String> {
        let component = prop::sample::select(vec!["", "a", "b", "ab", "a-", "c"]);
        (prop::collection::vec(component, 1..5), 0..4usize).prop_map(|(c, cut)| {
            let u = c.join(".");
            u[..u.len().saturating_sub(cut % 2)].to_owned()
        })
    }

    fn policy() -> impl Strategy<Value = MatchPolicy> {
        prop::sample::select(vec![
            MatchPolicy::Exact,
            MatchPolicy::Prefix,
            MatchPolicy::Wildcard,
        ])
    }

    proptest! {
        /// The index picks what the scan picks, through registers and
        /// unregisters; and empties with the table.
        #[test]
        fn lookup_is_the_scan(
            ops in prop::collection::vec((procedure(), policy(), prop::bool::weighted(0.7), any::<prop::sample::Index>()), 0..40),
            procedures in prop::collection::vec(procedure(), 1..8),
        ) {
            let mut ids = IdGenerator::new();
            let mut d = Dealer::default();
            let mut held: Vec<u64> = Vec::new();
            for (p, policy, register, pick) in &ops {
                if *register || held.is_empty() {
                    if let Some(id) = d.register(1, p, *policy, InvokePolicy::Single, None, &mut ids).ok().map(|r| r.0) {
                        held.push(id);
                    }
                } else {
                    let id = held.swap_remove(pick.index(held.len()));
                    prop_assert!(d.unregister(1, id));
                }
                for p in &procedures {
                    prop_assert_eq!(d.lookup(p).map(|(id, _)| id), scan(&d, p), "procedure {:?}", p);
                }
            }
            for id in held {
                prop_assert!(d.unregister(1, id));
            }
            prop_assert_eq!(d.registration_count(), 0);
            prop_assert!(d.index_is_empty());
        }
    }

    /// An unmatched CALL visits as many index nodes among 100 000 patterns
    /// sharing its first components as among a few.
    #[test]
    fn lookup_work_does_not_grow_with_patterns() {
        const PROCEDURE: &str = "com.example.nothing";
        let families = [
            (MatchPolicy::Prefix, "com.example.n"),
            (MatchPolicy::Prefix, "com.example.nothing."),
            (MatchPolicy::Wildcard, "com..x"),
            (MatchPolicy::Wildcard, "..x"),
            (MatchPolicy::Exact, "com.example.nothing.x"),
        ];
        let build = |n: usize| {
            let mut ids = IdGenerator::new();
            let mut d = Dealer::default();
            for i in 0..n {
                let (policy, head) = families[i % families.len()];
                let _ = d.register(
                    1,
                    &format!("{head}{i}"),
                    policy,
                    InvokePolicy::Single,
                    None,
                    &mut ids,
                );
            }
            d
        };
        let small = build(families.len());
        let large = build(100_000);
        assert!(large.lookup(PROCEDURE).is_none());
        let work = large.lookup_work(PROCEDURE);
        assert_eq!(work, small.lookup_work(PROCEDURE));
        let components = PROCEDURE.split('.').count();
        assert!(work <= PROCEDURE.len() + 1 + 2 * components + 1, "{work}");
    }

    #[test]
    fn lookup_precedence() {
        let mut ids = IdGenerator::new();
        let mut d = Dealer::default();
        let w1 = d
            .register_single(1, "a..c", MatchPolicy::Wildcard, &mut ids)
            .unwrap();
        let w2 = d
            .register_single(1, "a.b.", MatchPolicy::Wildcard, &mut ids)
            .unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, w2);
        assert_eq!(d.lookup("a.x.c").unwrap().0, w1);
        let p1 = d
            .register_single(2, "a", MatchPolicy::Prefix, &mut ids)
            .unwrap();
        let p2 = d
            .register_single(2, "a.b", MatchPolicy::Prefix, &mut ids)
            .unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, p2);
        assert_eq!(d.lookup("a.x.c").unwrap().0, p1);
        let e = d
            .register_single(3, "a.b.c", MatchPolicy::Exact, &mut ids)
            .unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, e);
        assert!(
            d.register_single(4, "a.b.c", MatchPolicy::Exact, &mut ids)
                .is_none()
        );
        assert!(!d.unregister(4, e));
        assert!(d.unregister(3, e));
        assert_eq!(d.lookup("a.b.c").unwrap().0, p2);
        assert!(d.lookup("z").is_none());
    }
}
