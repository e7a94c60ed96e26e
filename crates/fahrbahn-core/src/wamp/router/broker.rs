//! The broker's subscription table of one realm.

use std::collections::{BTreeMap, BTreeSet};

use super::matching::MatchPolicy;
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
            }
        }
        removed
    }

    /// The subscriptions whose topic or pattern matches `topic`, exact
    /// first.
    pub(crate) fn matching<'a>(
        &'a self,
        topic: &'a str,
    ) -> impl Iterator<Item = (u64, &'a Subscription)> + 'a {
        let exact = self.keys[MatchPolicy::Exact.index()].get(topic).copied();
        let prefix = self.keys[MatchPolicy::Prefix.index()]
            .iter()
            .filter(move |(p, _)| MatchPolicy::Prefix.matches(p, topic))
            .map(|(_, id)| *id);
        let wildcard = self.keys[MatchPolicy::Wildcard.index()]
            .iter()
            .filter(move |(p, _)| MatchPolicy::Wildcard.matches(p, topic))
            .map(|(_, id)| *id);
        exact
            .into_iter()
            .chain(prefix)
            .chain(wildcard)
            .filter_map(|id| self.subs.get(&id).map(|s| (id, s)))
    }

    /// The id of the subscription for (topic, policy), if there is one.
    pub(crate) fn find(&self, topic: &str, policy: MatchPolicy) -> Option<u64> {
        self.keys[policy.index()].get(topic).copied()
    }

    /// The topic (or pattern) of subscription `id`.
    pub(crate) fn topic(&self, id: u64) -> Option<&str> {
        self.subs.get(&id).map(|s| s.topic.as_str())
    }

    /// The number of subscriptions.
    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
