//! The broker's subscription table of one realm.

use std::collections::{BTreeMap, BTreeSet};

use super::matching::{MatchPolicy, PrefixIndex, WildcardIndex};
use crate::wamp::IdGenerator;

/// One subscription, shared by every session subscribed to the same
/// (topic, policy).
#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) topic: String,
    pub(crate) policy: MatchPolicy,
    pub(crate) subscribers: BTreeSet<u64>,
}

/// The subscriptions of a realm.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    subs: BTreeMap<u64, Subscription>,
    /// Per policy: topic → subscription id.
    keys: [BTreeMap<String, u64>; 3],
    /// The `prefix` subscriptions, for matching.
    prefix: PrefixIndex,
    /// The `wildcard` subscriptions, for matching.
    wildcard: WildcardIndex,
}

impl Broker {
    /// Adds `session` to the subscription for (topic, policy), creating it
    /// if needed; returns its id.
    pub(crate) fn subscribe(
        &mut self,
        session: u64,
        topic: &str,
        policy: MatchPolicy,
        ids: &mut IdGenerator,
    ) -> u64 {
        if let Some(&id) = self.keys[policy.index()].get(topic) {
            if let Some(sub) = self.subs.get_mut(&id) {
                sub.subscribers.insert(session);
                return id;
            }
        }
        let id = loop {
            let id = ids.next();
            if !self.subs.contains_key(&id) {
                break id;
            }
        };
        self.keys[policy.index()].insert(topic.to_owned(), id);
        match policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                self.prefix.insert(topic, id);
            }
            MatchPolicy::Wildcard => {
                self.wildcard.insert(topic, id);
            }
        }
        self.subs.insert(
            id,
            Subscription {
                topic: topic.to_owned(),
                policy,
                subscribers: BTreeSet::from([session]),
            },
        );
        id
    }

    /// Removes `session` from subscription `id`, dropping the subscription
    /// when it has no subscribers left. Whether the session was subscribed.
    pub(crate) fn unsubscribe(&mut self, session: u64, id: u64) -> bool {
        let Some(sub) = self.subs.get_mut(&id) else {
            return false;
        };
        let removed = sub.subscribers.remove(&session);
        if sub.subscribers.is_empty() {
            if let Some(sub) = self.subs.remove(&id) {
                self.keys[sub.policy.index()].remove(&sub.topic);
                match sub.policy {
                    MatchPolicy::Exact => {}
                    MatchPolicy::Prefix => {
                        self.prefix.remove(&sub.topic);
                    }
                    MatchPolicy::Wildcard => {
                        self.wildcard.remove(&sub.topic);
                    }
                }
            }
            debug_assert!(!self.subs.is_empty() || self.index_is_empty());
        }
        removed
    }

    /// The subscriptions whose topic or pattern matches `topic`: the exact
    /// one, then the prefix ones (shortest pattern first), then the
    /// wildcard ones (in pattern string order). The work grows with the
    /// topic's length and the number of matches, not with the number of
    /// subscriptions (see [`PrefixIndex`] and [`WildcardIndex`]).
    pub(crate) fn matching<'a>(
        &'a self,
        topic: &'a str,
    ) -> impl Iterator<Item = (u64, &'a Subscription)> + 'a {
        self.matching_ids(topic)
            .0
            .into_iter()
            .filter_map(|id| self.subs.get(&id).map(|s| (id, s)))
    }

    /// The ids [`matching`](Self::matching) yields, and the number of index
    /// nodes visited.
    fn matching_ids(&self, topic: &str) -> (Vec<u64>, usize) {
        let mut ids: Vec<u64> = self.keys[MatchPolicy::Exact.index()]
            .get(topic)
            .copied()
            .into_iter()
            .collect();
        let mut visited = self.prefix.matches(topic, |id| ids.push(id));
        let first_wildcard = ids.len();
        visited += self.wildcard.matches(topic, |id| ids.push(id));
        ids[first_wildcard..].sort_by(|a, b| self.topic_of(*a).cmp(self.topic_of(*b)));
        (ids, visited)
    }

    fn topic_of(&self, id: u64) -> &str {
        self.topic(id).unwrap_or("")
    }

    /// The number of index nodes [`matching`](Self::matching) visits for
    /// `topic`.
    #[cfg(test)]
    pub(crate) fn matching_work(&self, topic: &str) -> usize {
        self.matching_ids(topic).1
    }

    /// Whether the matching indexes hold no pattern and no node but their
    /// roots.
    pub(crate) fn index_is_empty(&self) -> bool {
        self.prefix.is_empty()
            && self.wildcard.is_empty()
            && self.prefix.node_count() == 1
            && self.wildcard.node_count() == 1
    }

    /// The id of the subscription for (topic, policy), if there is one.
    pub(crate) fn find(&self, topic: &str, policy: MatchPolicy) -> Option<u64> {
        self.keys[policy.index()].get(topic).copied()
    }

    /// The topic (or pattern) of subscription `id`.
    pub(crate) fn topic(&self, id: u64) -> Option<&str> {
        self.subs.get(&id).map(|s| s.topic.as_str())
    }

    /// Subscription `id`.
    pub(crate) fn get(&self, id: u64) -> Option<&Subscription> {
        self.subs.get(&id)
    }

    /// Every subscription, by id.
    pub(crate) fn subscriptions(&self) -> impl Iterator<Item = (u64, &Subscription)> + '_ {
        self.subs.iter().map(|(id, s)| (*id, s))
    }

    /// The number of subscriptions.
    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The old matching: a scan of every pattern, in string order per
    /// policy (exact, prefix, wildcard).
    fn scan(b: &Broker, topic: &str) -> Vec<u64> {
        [
            MatchPolicy::Exact,
            MatchPolicy::Prefix,
            MatchPolicy::Wildcard,
        ]
        .into_iter()
        .flat_map(|policy| {
            b.keys[policy.index()]
                .iter()
                .filter(move |(p, _)| policy.matches(p, topic))
                .map(|(_, id)| *id)
        })
        .collect()
    }

    fn topic() -> impl Strategy<Value = String> {
        let component = prop::sample::select(vec!["", "a", "b", "ab", "a-", "c"]);
        (prop::collection::vec(component, 1..5), 0..4usize).prop_map(|(c, cut)| {
            let u = c.join(".");
            // Sometimes a partial last component, for prefixes.
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
        /// The index finds what the scan finds, in the same order, through
        /// subscribes and unsubscribes; and empties with the table.
        #[test]
        fn matching_is_the_scan(
            ops in prop::collection::vec((0..3u64, topic(), policy(), any::<bool>(), any::<prop::sample::Index>()), 0..40),
            topics in prop::collection::vec(topic(), 1..8),
        ) {
            let mut ids = IdGenerator::new();
            let mut b = Broker::default();
            let mut held: Vec<(u64, u64)> = Vec::new();
            for (session, t, policy, subscribe, pick) in &ops {
                if *subscribe || held.is_empty() {
                    let id = b.subscribe(*session, t, *policy, &mut ids);
                    held.push((*session, id));
                } else {
                    let (session, id) = held.swap_remove(pick.index(held.len()));
                    b.unsubscribe(session, id);
                }
                for t in &topics {
                    let got: Vec<u64> = b.matching(t).map(|(id, _)| id).collect();
                    prop_assert_eq!(got, scan(&b, t), "topic {:?}", t);
                }
            }
            for (session, id) in held {
                b.unsubscribe(session, id);
            }
            prop_assert_eq!(b.len(), 0);
            prop_assert!(b.index_is_empty());
        }
    }

    /// A publish that matches nothing visits as many index nodes among
    /// 100 000 patterns sharing its first components as among one: the
    /// work follows the topic, not the table.
    #[test]
    fn matching_work_does_not_grow_with_patterns() {
        const TOPIC: &str = "com.example.topic";
        let families = [
            (MatchPolicy::Prefix, "com.example.t"),
            (MatchPolicy::Prefix, "com.example.topic."),
            (MatchPolicy::Prefix, ""),
            (MatchPolicy::Wildcard, "com..x"),
            (MatchPolicy::Wildcard, "..x"),
            (MatchPolicy::Wildcard, "com.example.topic.x"),
        ];
        let build = |n: usize| {
            let mut ids = IdGenerator::new();
            let mut b = Broker::default();
            for i in 0..n {
                let (policy, head) = families[i % families.len()];
                b.subscribe(1, &format!("{head}{i}"), policy, &mut ids);
            }
            b
        };
        let small = build(families.len());
        let large = build(100_000);
        assert_eq!(large.matching(TOPIC).count(), 0);
        let work = large.matching_work(TOPIC);
        assert_eq!(work, small.matching_work(TOPIC));
        // At most one radix node per byte and two trie nodes (name and
        // wildcard) per component, plus the roots.
        let components = TOPIC.split('.').count();
        assert!(work <= TOPIC.len() + 1 + 2 * components + 1, "{work}");
        // Matches add their own nodes, nothing more.
        let mut ids = IdGenerator::new();
        let mut b = build(100_000);
        let p = b.subscribe(2, "com.example", MatchPolicy::Prefix, &mut ids);
        let w = b.subscribe(2, "com..topic", MatchPolicy::Wildcard, &mut ids);
        let found: Vec<u64> = b.matching(TOPIC).map(|(id, _)| id).collect();
        assert_eq!(found, [p, w]);
        assert!(b.matching_work(TOPIC) <= work + 2);
    }

    #[test]
    fn shared_ids_and_cleanup() {
        let mut ids = IdGenerator::new();
        let mut b = Broker::default();
        let a = b.subscribe(1, "t", MatchPolicy::Exact, &mut ids);
        assert_eq!(b.subscribe(2, "t", MatchPolicy::Exact, &mut ids), a);
        let p = b.subscribe(2, "t", MatchPolicy::Prefix, &mut ids);
        assert_ne!(a, p);
        assert_eq!(b.matching("t").count(), 2);
        assert_eq!(b.matching("tx").map(|(id, _)| id).collect::<Vec<_>>(), [p]);
        assert!(b.unsubscribe(1, a));
        assert!(!b.unsubscribe(1, a));
        assert!(b.unsubscribe(2, a));
        assert!(b.unsubscribe(2, p));
        assert_eq!(b.len(), 0);
        assert_eq!(b.matching("t").count(), 0);
    }
}
