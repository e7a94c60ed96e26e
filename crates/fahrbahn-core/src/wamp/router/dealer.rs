//! The dealer's registration table and pending calls of one realm.

use std::collections::BTreeMap;

use super::matching::{MatchPolicy, PrefixIndex, WildcardIndex, wildcard_rank};
use crate::wamp::IdGenerator;

/// One registered procedure (or procedure pattern) and its callee.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) procedure: String,
    pub(crate) policy: MatchPolicy,
    pub(crate) callee: u64,
}

/// A CALL routed to a callee as an INVOCATION, not yet answered.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) caller: u64,
    pub(crate) call_request: u64,
    pub(crate) callee: u64,
    /// The caller asked for progressive results and the callee supports
    /// them.
    pub(crate) receive_progress: bool,
    /// A `kill` CANCEL was forwarded; the callee's answer ends the call.
    pub(crate) interrupted: bool,
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
}

impl Dealer {
    /// Registers (procedure, policy) for `callee`; `None` if it already
    /// exists.
    pub(crate) fn register(
        &mut self,
        callee: u64,
        procedure: &str,
        policy: MatchPolicy,
        ids: &mut IdGenerator,
    ) -> Option<u64> {
        if self.keys[policy.index()].contains_key(procedure) {
            return None;
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
                callee,
            },
        );
        Some(id)
    }

    /// The procedure (or pattern) of registration `id`.
    pub(crate) fn procedure(&self, id: u64) -> Option<&str> {
        self.regs.get(&id).map(|r| r.procedure.as_str())
    }

    /// Removes registration `id` if `callee` owns it.
    pub(crate) fn unregister(&mut self, callee: u64, id: u64) -> bool {
        match self.regs.get(&id) {
            Some(r) if r.callee == callee => {}
            _ => return false,
        }
        if let Some(r) = self.regs.remove(&id) {
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
        }
        debug_assert!(!self.regs.is_empty() || self.index_is_empty());
        true
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
        self.invocations.insert(invocation, call);
    }

    /// Whether `caller` has a pending call with this CALL request id.
    pub(crate) fn call_in_flight(&self, caller: u64, request: u64) -> bool {
        self.calls.contains_key(&(caller, request))
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
        if let Some(n) = self.pending_by_caller.get_mut(&call.caller) {
            *n -= 1;
            if *n == 0 {
                self.pending_by_caller.remove(&call.caller);
            }
        }
        Some(call)
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

    /// The id of the registration for (procedure, policy), if there is one.
    pub(crate) fn find(&self, procedure: &str, policy: MatchPolicy) -> Option<u64> {
        self.keys[policy.index()].get(procedure).copied()
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
                    if let Some(id) = d.register(1, p, *policy, &mut ids) {
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
                d.register(1, &format!("{head}{i}"), policy, &mut ids);
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
            .register(1, "a..c", MatchPolicy::Wildcard, &mut ids)
            .unwrap();
        let w2 = d
            .register(1, "a.b.", MatchPolicy::Wildcard, &mut ids)
            .unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, w2);
        assert_eq!(d.lookup("a.x.c").unwrap().0, w1);
        let p1 = d.register(2, "a", MatchPolicy::Prefix, &mut ids).unwrap();
        let p2 = d.register(2, "a.b", MatchPolicy::Prefix, &mut ids).unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, p2);
        assert_eq!(d.lookup("a.x.c").unwrap().0, p1);
        let e = d
            .register(3, "a.b.c", MatchPolicy::Exact, &mut ids)
            .unwrap();
        assert_eq!(d.lookup("a.b.c").unwrap().0, e);
        assert!(
            d.register(4, "a.b.c", MatchPolicy::Exact, &mut ids)
                .is_none()
        );
        assert!(!d.unregister(4, e));
        assert!(d.unregister(3, e));
        assert_eq!(d.lookup("a.b.c").unwrap().0, p2);
        assert!(d.lookup("z").is_none());
    }
}
