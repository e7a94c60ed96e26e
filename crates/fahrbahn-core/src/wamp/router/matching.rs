//! URI matching policies of subscriptions and registrations: `exact`
//! (the default), `prefix` (plain string prefix) and `wildcard` (empty
//! components match any one component).

use std::collections::HashMap;

use crate::wamp::{Dict, Value, is_valid_uri, is_valid_uri_pattern};

/// How a subscription's topic or a registration's procedure matches URIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum MatchPolicy {
    Exact,
    Prefix,
    Wildcard,
}

impl MatchPolicy {
    /// The `match` option of SUBSCRIBE/REGISTER; `Err` holds a message for
    /// the client.
    pub(crate) fn from_options(options: &Dict) -> Result<Self, String> {
        match options.get("match") {
            None => Ok(Self::Exact),
            Some(Value::String(s)) => match s.as_str() {
                "exact" => Ok(Self::Exact),
                "prefix" => Ok(Self::Prefix),
                "wildcard" => Ok(Self::Wildcard),
                other => Err(format!(
                    "unknown match policy {other:?}: use \"exact\", \"prefix\" or \"wildcard\""
                )),
            },
            Some(v) => Err(format!(
                "option \"match\" must be a string, got {}",
                v.kind()
            )),
        }
    }

    /// Index into per-policy tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Exact => 0,
            Self::Prefix => 1,
            Self::Wildcard => 2,
        }
    }

    /// Whether `uri` is acceptable as a topic/procedure under this policy
    /// (loose URI rules; patterns may have empty components, not be empty).
    pub(crate) fn is_valid(self, uri: &str) -> bool {
        match self {
            Self::Exact => is_valid_uri(uri, false),
            Self::Prefix | Self::Wildcard => !uri.is_empty() && is_valid_uri_pattern(uri, false),
        }
    }

    /// Whether `pattern` (registered under this policy) matches `uri`: the
    /// rule itself, which the indexes implement; the tests' oracle, and
    /// the scan over retained events.
    pub(crate) fn matches(self, pattern: &str, uri: &str) -> bool {
        match self {
            Self::Exact => pattern == uri,
            Self::Prefix => uri.starts_with(pattern),
            Self::Wildcard => wildcard_matches(pattern, uri),
        }
    }
}

/// Same number of components, and every non-empty pattern component equal.
pub(crate) fn wildcard_matches(pattern: &str, uri: &str) -> bool {
    let mut p = pattern.split('.');
    let mut u = uri.split('.');
    loop {
        match (p.next(), u.next()) {
            (None, None) => return true,
            (Some(pc), Some(uc)) if pc.is_empty() || pc == uc => {}
            _ => return false,
        }
    }
}

/// How specific a wildcard pattern is, for choosing among several matching
/// registrations: more leading non-empty components first, then more
/// non-empty components overall.
pub(crate) fn wildcard_rank(pattern: &str) -> (usize, usize) {
    let leading = pattern.split('.').take_while(|c| !c.is_empty()).count();
    let total = pattern.split('.').filter(|c| !c.is_empty()).count();
    (leading, total)
}

/// Index of `prefix` patterns: a radix tree (path-compressed byte trie)
/// over the pattern strings, nodes in an arena. Matching `uri` walks one
/// path, `O(uri.len())` byte comparisons, whatever the number of patterns;
/// the matches come out shortest first, which is also their string order.
///
/// Removing a pattern removes its node and merges a node left with one
/// child and no pattern into that child, so the tree only ever holds
/// nodes that end a pattern or branch; when it holds no pattern, it holds
/// nothing but an empty root.
#[derive(Debug)]
pub(crate) struct PrefixIndex {
    /// Node 0 is the root (empty label); freed nodes are listed in `free`.
    nodes: Vec<PrefixNode>,
    free: Vec<usize>,
    patterns: usize,
}

#[derive(Debug, Default)]
struct PrefixNode {
    /// The bytes on the edge from the parent.
    label: Box<[u8]>,
    /// The id of the pattern ending here.
    value: Option<u64>,
    /// First byte of the child's label → child, sorted by that byte.
    children: Vec<(u8, usize)>,
}

impl PrefixNode {
    fn child(&self, first: u8) -> Option<usize> {
        self.children
            .binary_search_by_key(&first, |&(b, _)| b)
            .ok()
            .map(|i| self.children[i].1)
    }

    fn set_child(&mut self, first: u8, child: usize) {
        match self.children.binary_search_by_key(&first, |&(b, _)| b) {
            Ok(i) => self.children[i].1 = child,
            Err(i) => self.children.insert(i, (first, child)),
        }
    }

    fn remove_child(&mut self, first: u8) {
        if let Ok(i) = self.children.binary_search_by_key(&first, |&(b, _)| b) {
            self.children.remove(i);
        }
    }
}

impl Default for PrefixIndex {
    fn default() -> Self {
        Self {
            nodes: vec![PrefixNode::default()],
            free: Vec::new(),
            patterns: 0,
        }
    }
}

impl PrefixIndex {
    fn alloc(&mut self, node: PrefixNode) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn release(&mut self, i: usize) {
        self.nodes[i] = PrefixNode::default();
        self.free.push(i);
    }

    /// Adds `pattern` with `id`; the id it replaces, if it was there.
    pub(crate) fn insert(&mut self, pattern: &str, id: u64) -> Option<u64> {
        let mut n = 0;
        let mut rest = pattern.as_bytes();
        loop {
            let Some(&first) = rest.first() else {
                let old = self.nodes[n].value.replace(id);
                if old.is_none() {
                    self.patterns += 1;
                }
                return old;
            };
            let Some(c) = self.nodes[n].child(first) else {
                let leaf = self.alloc(PrefixNode {
                    label: rest.into(),
                    value: Some(id),
                    children: Vec::new(),
                });
                self.nodes[n].set_child(first, leaf);
                self.patterns += 1;
                return None;
            };
            let label = &self.nodes[c].label;
            let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
            if common < label.len() {
                // Split the edge: n → mid (label[..common]) → c (the rest).
                let (head, tail): (Box<[u8]>, Box<[u8]>) =
                    (label[..common].into(), label[common..].into());
                let mid = self.alloc(PrefixNode {
                    label: head,
                    value: None,
                    children: vec![(tail[0], c)],
                });
                self.nodes[c].label = tail;
                self.nodes[n].set_child(first, mid);
                n = mid;
            } else {
                n = c;
            }
            rest = &rest[common..];
        }
    }

    /// Removes `pattern`; its id, if it was there.
    pub(crate) fn remove(&mut self, pattern: &str) -> Option<u64> {
        // The path from the root to the pattern's node.
        let mut path = vec![0];
        let mut rest = pattern.as_bytes();
        while let Some(&first) = rest.first() {
            let c = self.nodes[*path.last()?].child(first)?;
            rest = rest.strip_prefix(&*self.nodes[c].label)?;
            path.push(c);
        }
        let n = *path.last()?;
        let id = self.nodes[n].value.take()?;
        self.patterns -= 1;
        // Drop what is no longer needed, bottom up.
        while path.len() > 1 {
            let n = path.pop().unwrap_or_default();
            let parent = path.last().copied().unwrap_or_default();
            let node = &self.nodes[n];
            if node.value.is_some() {
                break;
            }
            let first = node.label[0];
            match node.children.len() {
                0 => {
                    self.nodes[parent].remove_child(first);
                    self.release(n);
                }
                1 => {
                    let child = node.children[0].1;
                    let mut label = node.label.to_vec();
                    label.extend_from_slice(&self.nodes[child].label);
                    self.nodes[child].label = label.into();
                    self.nodes[parent].set_child(first, child);
                    self.release(n);
                    break;
                }
                _ => break,
            }
        }
        if self.patterns == 0 {
            debug_assert_eq!(self.node_count(), 1, "prefix index nodes left behind");
            // Give the memory back.
            *self = Self::default();
        }
        Some(id)
    }

    /// Calls `found` with the id of every pattern that is a prefix of
    /// `uri`, shortest first; returns the number of nodes visited.
    pub(crate) fn matches(&self, uri: &str, mut found: impl FnMut(u64)) -> usize {
        let mut n = 0;
        let mut rest = uri.as_bytes();
        let mut visited = 1;
        loop {
            if let Some(id) = self.nodes[n].value {
                found(id);
            }
            let Some(&first) = rest.first() else {
                return visited;
            };
            let Some(c) = self.nodes[n].child(first) else {
                return visited;
            };
            let Some(tail) = rest.strip_prefix(&*self.nodes[c].label) else {
                return visited;
            };
            visited += 1;
            rest = tail;
            n = c;
        }
    }

    /// The number of patterns.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.patterns
    }

    /// Whether it holds no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// The number of nodes in use, the root included.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

/// Index of `wildcard` patterns: a trie over the patterns' components
/// (split on '.'), where an empty component is the node's wildcard child.
/// Matching `uri` follows, at each of its components, the child of that
/// name and the wildcard child: with `k` components at most `2^k` paths,
/// and only as many nodes as there are pattern prefixes that match the
/// URI's first components, not the number of patterns. Nodes in an arena;
/// a node that ends no pattern and has no children is removed.
#[derive(Debug)]
pub(crate) struct WildcardIndex {
    /// Node 0 is the root; freed nodes are listed in `free`.
    nodes: Vec<WildcardNode>,
    free: Vec<usize>,
    patterns: usize,
}

#[derive(Debug, Default)]
struct WildcardNode {
    /// The id of the pattern ending here.
    value: Option<u64>,
    /// Non-empty component → child.
    children: HashMap<Box<str>, usize>,
    /// The child for an empty (wildcard) component.
    wild: Option<usize>,
}

impl WildcardNode {
    fn child(&self, component: &str) -> Option<usize> {
        if component.is_empty() {
            self.wild
        } else {
            self.children.get(component).copied()
        }
    }

    fn is_unused(&self) -> bool {
        self.value.is_none() && self.wild.is_none() && self.children.is_empty()
    }
}

impl Default for WildcardIndex {
    fn default() -> Self {
        Self {
            nodes: vec![WildcardNode::default()],
            free: Vec::new(),
            patterns: 0,
        }
    }
}

impl WildcardIndex {
    /// Adds `pattern` with `id`; the id it replaces, if it was there.
    pub(crate) fn insert(&mut self, pattern: &str, id: u64) -> Option<u64> {
        let mut n = 0;
        for component in pattern.split('.') {
            n = match self.nodes[n].child(component) {
                Some(c) => c,
                None => {
                    let c = match self.free.pop() {
                        Some(i) => i,
                        None => {
                            self.nodes.push(WildcardNode::default());
                            self.nodes.len() - 1
                        }
                    };
                    if component.is_empty() {
                        self.nodes[n].wild = Some(c);
                    } else {
                        self.nodes[n].children.insert(component.into(), c);
                    }
                    c
                }
            };
        }
        let old = self.nodes[n].value.replace(id);
        if old.is_none() {
            self.patterns += 1;
        }
        old
    }

    /// Removes `pattern`; its id, if it was there.
    pub(crate) fn remove(&mut self, pattern: &str) -> Option<u64> {
        let components: Vec<&str> = pattern.split('.').collect();
        let mut path = vec![0];
        for component in &components {
            path.push(self.nodes[*path.last()?].child(component)?);
        }
        let id = self.nodes[*path.last()?].value.take()?;
        self.patterns -= 1;
        // Drop the nodes left unused, bottom up.
        for (depth, component) in components.iter().enumerate().rev() {
            let n = path[depth + 1];
            if !self.nodes[n].is_unused() {
                break;
            }
            let parent = &mut self.nodes[path[depth]];
            if component.is_empty() {
                parent.wild = None;
            } else {
                parent.children.remove(*component);
            }
            self.nodes[n] = WildcardNode::default();
            self.free.push(n);
        }
        if self.patterns == 0 {
            debug_assert_eq!(self.node_count(), 1, "wildcard index nodes left behind");
            *self = Self::default();
        }
        Some(id)
    }

    /// Calls `found` with the id of every pattern that matches `uri` (in
    /// no particular order); returns the number of nodes visited.
    pub(crate) fn matches(&self, uri: &str, mut found: impl FnMut(u64)) -> usize {
        if self.patterns == 0 {
            return 1;
        }
        let components: Vec<&str> = uri.split('.').collect();
        let mut stack = vec![(0, 0)];
        let mut visited = 0;
        while let Some((n, depth)) = stack.pop() {
            visited += 1;
            let node = &self.nodes[n];
            let Some(component) = components.get(depth) else {
                if let Some(id) = node.value {
                    found(id);
                }
                continue;
            };
            if let Some(w) = node.wild {
                stack.push((w, depth + 1));
            }
            if !component.is_empty() {
                if let Some(&c) = node.children.get(*component) {
                    stack.push((c, depth + 1));
                }
            }
        }
        visited
    }

    /// The number of patterns.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.patterns
    }

    /// Whether it holds no pattern.
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// The number of nodes in use, the root included.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// URIs and patterns over a few components, so that they collide.
    fn uri() -> impl Strategy<Value = String> {
        let component = prop::sample::select(vec!["", "a", "b", "ab", "ba", "a-", "c"]);
        prop::collection::vec(component, 1..5).prop_map(|c| c.join("."))
    }

    /// A prefix pattern: a URI cut anywhere (partial last component).
    fn prefix_pattern() -> impl Strategy<Value = String> {
        (uri(), any::<prop::sample::Index>()).prop_map(|(u, i)| {
            let cut = i.index(u.len() + 1);
            u[..cut].to_owned()
        })
    }

    /// Insert (true) or remove (false) a pattern.
    fn ops(pattern: BoxedStrategy<String>) -> impl Strategy<Value = Vec<(bool, String)>> {
        prop::collection::vec((prop::bool::weighted(0.7), pattern), 0..40)
    }

    /// Applies `ops` to an index and to a plain map (the oracle's table),
    /// with the same return values.
    fn apply<I>(
        index: &mut I,
        ops: &[(bool, String)],
        insert: impl Fn(&mut I, &str, u64) -> Option<u64>,
        remove: impl Fn(&mut I, &str) -> Option<u64>,
    ) -> BTreeMap<String, u64> {
        let mut table = BTreeMap::new();
        for (i, (add, pattern)) in ops.iter().enumerate() {
            if *add {
                let id = i as u64 + 1;
                assert_eq!(
                    insert(index, pattern, id),
                    table.insert(pattern.clone(), id)
                );
            } else {
                assert_eq!(remove(index, pattern), table.remove(pattern));
            }
        }
        table
    }

    proptest! {
        #[test]
        fn prefix_index_is_the_scan(ops in ops(prefix_pattern().boxed()), uris in prop::collection::vec(uri(), 1..8)) {
            let mut index = PrefixIndex::default();
            let table = apply(&mut index, &ops, PrefixIndex::insert, PrefixIndex::remove);
            prop_assert_eq!(index.len(), table.len());
            for u in &uris {
                let mut got = Vec::new();
                index.matches(u, |id| got.push(id));
                // The old scan: every pattern, in string order.
                let want: Vec<u64> = table
                    .iter()
                    .filter(|(p, _)| MatchPolicy::Prefix.matches(p, u))
                    .map(|(_, id)| *id)
                    .collect();
                prop_assert_eq!(got, want, "uri {:?}", u);
            }
            for p in table.keys() {
                prop_assert!(index.remove(p).is_some());
            }
            prop_assert_eq!(index.node_count(), 1);
        }

        #[test]
        fn wildcard_index_is_the_scan(ops in ops(uri().boxed()), uris in prop::collection::vec(uri(), 1..8)) {
            let mut index = WildcardIndex::default();
            let table = apply(&mut index, &ops, WildcardIndex::insert, WildcardIndex::remove);
            prop_assert_eq!(index.len(), table.len());
            for u in &uris {
                let mut got = Vec::new();
                index.matches(u, |id| got.push(id));
                got.sort_unstable();
                let mut want: Vec<u64> = table
                    .iter()
                    .filter(|(p, _)| MatchPolicy::Wildcard.matches(p, u))
                    .map(|(_, id)| *id)
                    .collect();
                want.sort_unstable();
                prop_assert_eq!(got, want, "uri {:?}", u);
            }
            for p in table.keys() {
                prop_assert!(index.remove(p).is_some());
            }
            prop_assert_eq!(index.node_count(), 1);
        }
    }

    #[test]
    fn removal_frees_nodes() {
        let mut prefix = PrefixIndex::default();
        let mut wildcard = WildcardIndex::default();
        for p in ["com.a", "com.b.", "x"] {
            prefix.insert(p, 1);
            wildcard.insert(p, 1);
        }
        let (np, nw) = (prefix.node_count(), wildcard.node_count());
        for i in 0..1000 {
            let p = format!("com.a{i}..{}", i % 7);
            prefix.insert(&p, 2);
            wildcard.insert(&p, 2);
        }
        assert!(prefix.node_count() > np && wildcard.node_count() > nw);
        for i in 0..1000 {
            let p = format!("com.a{i}..{}", i % 7);
            assert_eq!(prefix.remove(&p), Some(2));
            assert_eq!(wildcard.remove(&p), Some(2));
            assert_eq!(prefix.remove(&p), None);
        }
        // A radix tree and a trie are the same whatever the history.
        assert_eq!((prefix.node_count(), wildcard.node_count()), (np, nw));
        for p in ["com.a", "com.b.", "x"] {
            prefix.remove(p);
            wildcard.remove(p);
        }
        assert_eq!((prefix.node_count(), wildcard.node_count()), (1, 1));
        assert_eq!((prefix.nodes.capacity(), wildcard.nodes.capacity()), (1, 1));
    }

    #[test]
    fn policies() {
        assert!(MatchPolicy::Exact.matches("a.b", "a.b"));
        assert!(!MatchPolicy::Exact.matches("a.b", "a.b.c"));
        assert!(MatchPolicy::Prefix.matches("a.b", "a.b.c"));
        assert!(MatchPolicy::Prefix.matches("a.b", "a.bc"));
        assert!(!MatchPolicy::Prefix.matches("a.b", "a"));
        assert!(MatchPolicy::Wildcard.matches("a..c", "a.b.c"));
        assert!(MatchPolicy::Wildcard.matches("..", "x.y.z"));
        assert!(!MatchPolicy::Wildcard.matches("a..c", "a.b.c.d"));
        assert!(!MatchPolicy::Wildcard.matches("a..c", "a.b"));
        assert!(!MatchPolicy::Wildcard.matches("a..c", "a.b.d"));
    }

    #[test]
    fn options_and_validity() {
        let mut o = Dict::new();
        assert_eq!(MatchPolicy::from_options(&o), Ok(MatchPolicy::Exact));
        o.insert("match".into(), "wildcard".into());
        assert_eq!(MatchPolicy::from_options(&o), Ok(MatchPolicy::Wildcard));
        o.insert("match".into(), "regex".into());
        assert!(MatchPolicy::from_options(&o).is_err());
        o.insert("match".into(), 1.into());
        assert!(MatchPolicy::from_options(&o).is_err());
        assert!(!MatchPolicy::Exact.is_valid("a..b"));
        assert!(MatchPolicy::Wildcard.is_valid("a..b"));
        assert!(!MatchPolicy::Prefix.is_valid(""));
        assert!(wildcard_rank("a.b..d") > wildcard_rank("a..c.d"));
    }
}
