//! WAMP URI syntax checks (WAMP v2, "Relaxed/Loose URIs" and "Strict URIs").
//!
//! A URI is a dot-separated list of components. The *strict* rule allows
//! only `[0-9a-z_]` in components; the *loose* rule allows anything but
//! whitespace, `.` and `#`. Patterns for wildcard registrations and
//! subscriptions may also contain *empty* components (`com..ping`).

/// Whether `c` may appear in a component under the given rule.
fn component_char_ok(c: char, strict: bool) -> bool {
    if strict {
        matches!(c, '0'..='9' | 'a'..='z' | '_')
    } else {
        !(c.is_whitespace() || c == '.' || c == '#')
    }
}

fn component_ok(component: &str, strict: bool) -> bool {
    component.chars().all(|c| component_char_ok(c, strict))
}

/// Whether `uri` is a valid WAMP URI: one or more non-empty components
/// separated by dots.
///
/// Strict: `^([0-9a-z_]+\.)*([0-9a-z_]+)$`;
/// loose: `^([^\s\.#]+\.)*([^\s\.#]+)$`.
///
/// ```
/// use fahrbahn_core::wamp::is_valid_uri;
/// assert!(is_valid_uri("com.myapp.ping", true));
/// assert!(!is_valid_uri("com.myapp.Ping", true));
/// assert!(is_valid_uri("com.myapp.Ping", false));
/// assert!(!is_valid_uri("com..ping", false));
/// assert!(!is_valid_uri("", false));
/// ```
pub fn is_valid_uri(uri: &str, strict: bool) -> bool {
    uri.split('.')
        .all(|c| !c.is_empty() && component_ok(c, strict))
}

/// Whether `pattern` is a valid URI pattern for prefix or wildcard
/// matching: like [`is_valid_uri`], but components may be empty (a wildcard
/// component, or a trailing dot of a prefix).
///
/// Strict: `^(([0-9a-z_]+\.)|\.)*([0-9a-z_]+)?$`;
/// loose: `^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?$`. As the regular expressions
/// say, the empty string matches.
///
/// ```
/// use fahrbahn_core::wamp::is_valid_uri_pattern;
/// assert!(is_valid_uri_pattern("com..ping", true));
/// assert!(is_valid_uri_pattern("com.myapp.", true));
/// assert!(!is_valid_uri_pattern("com. .ping", false));
/// ```
pub fn is_valid_uri_pattern(pattern: &str, strict: bool) -> bool {
    pattern.split('.').all(|c| component_ok(c, strict))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_rule() {
        for ok in [
            "a",
            "com.myapp.ping",
            "wamp.error.no_such_procedure",
            "a1.b_2.c3",
        ] {
            assert!(is_valid_uri(ok, true), "{ok}");
            assert!(is_valid_uri(ok, false), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "A.b",
            "a-b",
            "a b",
            "a#b",
            "ä",
            "com.myapp.Ping",
        ] {
            assert!(!is_valid_uri(bad, true), "{bad:?}");
        }
    }

    #[test]
    fn loose_rule() {
        for ok in ["com.myapp.Ping", "a-b.c", "ä.ö", "x:y/z", "A"] {
            assert!(is_valid_uri(ok, false), "{ok}");
        }
        for bad in ["", "a..b", "a.", ".a", "a b", "a\tb", "a#b", "a.\u{a0}"] {
            assert!(!is_valid_uri(bad, false), "{bad:?}");
        }
    }

    #[test]
    fn patterns() {
        for ok in [
            "",
            ".",
            "..",
            "com..ping",
            "com.myapp.",
            ".myapp.ping",
            "com.myapp.ping",
        ] {
            assert!(is_valid_uri_pattern(ok, true), "{ok:?}");
            assert!(is_valid_uri_pattern(ok, false), "{ok:?}");
        }
        assert!(!is_valid_uri_pattern("com..Ping", true));
        assert!(is_valid_uri_pattern("com..Ping", false));
        for bad in ["a b..c", "a#.b", "a. .b"] {
            assert!(!is_valid_uri_pattern(bad, false), "{bad:?}");
            assert!(!is_valid_uri_pattern(bad, true), "{bad:?}");
        }
    }
}
