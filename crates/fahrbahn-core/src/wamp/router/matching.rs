//! URI matching policies of subscriptions and registrations: `exact`
//! (the default), `prefix` (plain string prefix) and `wildcard` (empty
//! components match any one component).

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

    /// Whether `pattern` (registered under this policy) matches `uri`.
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

#[cfg(test)]
mod tests {
    use super::*;

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
