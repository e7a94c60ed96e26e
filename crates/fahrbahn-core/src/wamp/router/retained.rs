//! The retained events of one realm (event retention: PUBLISH with
//! `retain: true`, SUBSCRIBE with `get_retained: true`).

use std::collections::BTreeMap;

use super::Body;
use super::matching::MatchPolicy;
use crate::wamp::Dict;

/// What a retained event costs besides its topic and payload: the
/// details, filters and table entries.
pub(crate) const RETAINED_ENTRY_OVERHEAD: usize = 128;

/// The last retained event of one topic.
#[derive(Debug, Clone)]
pub(crate) struct RetainedEvent {
    /// The publication id it had when it was published.
    pub(crate) publication: u64,
    /// Its EVENT details as published (publisher disclosure, ppt_*, x_*).
    pub(crate) details: Dict,
    /// The PUBLISH's receiver filters, applied to late subscribers too.
    pub(crate) filters: super::handlers::Filters,
    /// Its payload.
    pub(crate) body: Body,
    /// The bytes it is counted as (topic, payload, details, overhead).
    size: usize,
    /// When it was retained (for eviction, oldest first).
    seq: u64,
}

/// The retained events of a realm, at most `limit` bytes: the oldest are
/// dropped to make room for a new one.
#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    by_topic: BTreeMap<String, RetainedEvent>,
    /// seq → topic, oldest first.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    bytes: usize,
}

impl RetainedStore {
    /// Retains `event` for `topic` (replacing the one before), `size`
    /// bytes of payload and details. Oldest events are dropped until it
    /// fits under `limit`; one larger than `limit` alone is not kept.
    /// Whether it was kept.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn retain(
        &mut self,
        topic: &str,
        publication: u64,
        details: Dict,
        filters: super::handlers::Filters,
        body: Body,
        payload_size: usize,
        limit: usize,
    ) -> bool {
        self.remove(topic);
        let size = topic.len() + payload_size + RETAINED_ENTRY_OVERHEAD;
        if size > limit {
            return false;
        }
        while self.bytes + size > limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(ev) = self.by_topic.remove(&oldest) {
                self.bytes -= ev.size;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += size;
        self.order.insert(seq, topic.to_owned());
        self.by_topic.insert(
            topic.to_owned(),
            RetainedEvent {
                publication,
                details,
                filters,
                body,
                size,
                seq,
            },
        );
        true
    }

    fn remove(&mut self, topic: &str) {
        if let Some(old) = self.by_topic.remove(topic) {
            self.bytes -= old.size;
            self.order.remove(&old.seq);
        }
    }

    /// The retained events whose topic matches `pattern` under `policy`,
    /// in topic order.
    pub(crate) fn matching<'a>(
        &'a self,
        pattern: &'a str,
        policy: MatchPolicy,
    ) -> Vec<(&'a str, &'a RetainedEvent)> {
        match policy {
            MatchPolicy::Exact => self
                .by_topic
                .get_key_value(pattern)
                .map(|(t, e)| (t.as_str(), e))
                .into_iter()
                .collect(),
            MatchPolicy::Prefix => self
                .by_topic
                .range(pattern.to_owned()..)
                .take_while(|(t, _)| t.starts_with(pattern))
                .map(|(t, e)| (t.as_str(), e))
                .collect(),
            MatchPolicy::Wildcard => self
                .by_topic
                .iter()
                .filter(|(t, _)| policy.matches(pattern, t))
                .map(|(t, e)| (t.as_str(), e))
                .collect(),
        }
    }

    /// The bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
