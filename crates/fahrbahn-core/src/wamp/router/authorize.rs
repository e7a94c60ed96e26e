//! The router's authorization hook: [`Authorizer`] decides, for each CALL,
//! REGISTER, PUBLISH and SUBSCRIBE of a joined session, whether it is
//! allowed and whether the caller or publisher is disclosed.
//! [`StaticAuthorizer`] is the built-in implementation: per realm, roles
//! with per-URI permissions, as Crossbar.io's static authorization.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::matching::{PrefixIndex, WildcardIndex, wildcard_rank};
use crate::wamp::{Dict, SessionId};

/// An action a session asks the router to perform on a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// CALL a procedure.
    Call,
    /// REGISTER a procedure (or a pattern of procedures).
    Register,
    /// PUBLISH to a topic.
    Publish,
    /// SUBSCRIBE to a topic (or a pattern of topics).
    Subscribe,
}

impl Action {
    /// The name Crossbar.io uses: `call`, `register`, `publish`,
    /// `subscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Call => "call",
            Action::Register => "register",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the router knows when it asks an [`Authorizer`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuthorizeContext<'a> {
    /// The session asking.
    pub session: SessionId,
    /// Its realm.
    pub realm: &'a str,
    /// Its authid (from WELCOME).
    pub authid: &'a str,
    /// Its authrole (from WELCOME).
    pub authrole: &'a str,
    /// Its authmethod (from WELCOME).
    pub authmethod: &'a str,
    /// What it asks to do.
    pub action: Action,
    /// The procedure or topic, as sent: for a pattern-based REGISTER or
    /// SUBSCRIBE, the pattern itself (`options.match` says which kind).
    pub uri: &'a str,
    /// The options of the request (`match`, `disclose_me`, …).
    pub options: &'a Dict,
}

/// An [`Authorizer`]'s verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authorization {
    /// The action is performed.
    Allow {
        /// For CALL and PUBLISH: the router adds the caller's
        /// (publisher's) session id, authid and authrole to the INVOCATION
        /// (EVENT) even if the client did not ask with `disclose_me`.
        disclose: bool,
    },
    /// The session gets ERROR `wamp.error.not_authorized` (a PUBLISH only
    /// when it asked for an acknowledgement) and stays.
    Deny,
}

impl Authorization {
    /// Allowed, without disclosure beyond what the client asks for.
    pub const ALLOW: Authorization = Authorization::Allow { disclose: false };

    /// Whether this allows the action.
    pub fn is_allowed(self) -> bool {
        matches!(self, Authorization::Allow { .. })
    }
}

/// Decides what joined sessions may do. Called by the router for every
/// CALL, REGISTER, PUBLISH and SUBSCRIBE whose URI and options are valid,
/// before anything else happens.
///
/// An authorizer whose verdicts depend only on the session, the action,
/// the URI and the match policy says so with
/// [`cacheable`](Self::cacheable): the router then remembers each verdict
/// per session (a bounded cache, dropped when the session leaves) and asks
/// again only for what it has not seen.
///
/// ```
/// use fahrbahn_core::wamp::router::{Action, Authorization, AuthorizeContext, Authorizer};
///
/// /// Only the "admin" role may register; everyone may do the rest.
/// struct AdminsRegister;
/// impl Authorizer for AdminsRegister {
///     fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization {
///         if ctx.action == Action::Register && ctx.authrole != "admin" {
///             Authorization::Deny
///         } else {
///             Authorization::ALLOW
///         }
///     }
///     fn cacheable(&self) -> bool {
///         true
///     }
/// }
/// ```
pub trait Authorizer {
    /// Decides one action.
    fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization;

    /// Whether the router may cache verdicts per (session, action, match
    /// policy, URI). The default is `false`: ask every time.
    fn cacheable(&self) -> bool {
        false
    }
}

/// How a [`Permission`]'s URI matches the URIs of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum UriMatch {
    /// The URI itself.
    #[default]
    Exact,
    /// Every URI starting with it (plain string prefix; `""` matches all).
    Prefix,
    /// Every URI with as many components, where each non-empty component
    /// of the pattern is equal (`com..update` matches `com.user.update`).
    Wildcard,
}

impl UriMatch {
    /// `exact`, `prefix` or `wildcard`.
    pub fn as_str(self) -> &'static str {
        match self {
            UriMatch::Exact => "exact",
            UriMatch::Prefix => "prefix",
            UriMatch::Wildcard => "wildcard",
        }
    }
}

/// What a [`Permission`] allows, and what it discloses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Grants {
    /// CALL the procedures.
    pub call: bool,
    /// REGISTER the procedures.
    pub register: bool,
    /// PUBLISH to the topics.
    pub publish: bool,
    /// SUBSCRIBE to the topics.
    pub subscribe: bool,
    /// Disclose the caller (session, authid, authrole) to the callee in
    /// each INVOCATION of an allowed CALL.
    pub disclose_caller: bool,
    /// Disclose the publisher to the subscribers in each EVENT of an
    /// allowed PUBLISH.
    pub disclose_publisher: bool,
}

impl Grants {
    /// Everything allowed, nothing disclosed.
    pub const ALL: Grants = Grants {
        call: true,
        register: true,
        publish: true,
        subscribe: true,
        disclose_caller: false,
        disclose_publisher: false,
    };

    /// Nothing allowed.
    pub const NONE: Grants = Grants {
        call: false,
        register: false,
        publish: false,
        subscribe: false,
        disclose_caller: false,
        disclose_publisher: false,
    };

    /// The verdict for `action`.
    pub fn authorization(&self, action: Action) -> Authorization {
        let (allowed, disclose) = match action {
            Action::Call => (self.call, self.disclose_caller),
            Action::Register => (self.register, false),
            Action::Publish => (self.publish, self.disclose_publisher),
            Action::Subscribe => (self.subscribe, false),
        };
        if allowed {
            Authorization::Allow { disclose }
        } else {
            Authorization::Deny
        }
    }
}

/// One rule of a [`Role`]: a URI, how it matches, and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permission {
    /// The URI (or prefix, or wildcard pattern).
    pub uri: String,
    /// How `uri` matches.
    pub policy: UriMatch,
    /// What it allows and discloses.
    pub grants: Grants,
}

impl Permission {
    /// A rule.
    ///
    /// ```
    /// use fahrbahn_core::wamp::router::{Grants, Permission, UriMatch};
    /// let mut grants = Grants::NONE;
    /// grants.call = true;
    /// let p = Permission::new("com.example.", UriMatch::Prefix, grants);
    /// assert_eq!(p.uri, "com.example.");
    /// ```
    pub fn new(uri: impl Into<String>, policy: UriMatch, grants: Grants) -> Self {
        Self {
            uri: uri.into(),
            policy,
            grants,
        }
    }
}

/// A role: its permissions, indexed so that deciding an action costs
/// `O(uri length)` however many rules there are.
///
/// Which rule decides (as Crossbar.io's static authorization): an `exact`
/// rule for the URI; else the most specific matching `wildcard` rule (more
/// leading literal components, then more literal components; equally
/// specific ones: the one added first); else the longest matching `prefix`
/// rule; else nothing is allowed. A later rule for the same URI and match
/// replaces an earlier one (and keeps its place).
///
/// ```
/// use fahrbahn_core::wamp::router::{Action, Grants, Permission, Role, UriMatch};
/// let mut read = Grants::NONE;
/// read.call = true;
/// read.subscribe = true;
/// let role = Role::new([Permission::new("com.example.", UriMatch::Prefix, read)]);
/// assert!(role.authorize(Action::Call, "com.example.add2").is_allowed());
/// assert!(!role.authorize(Action::Register, "com.example.add2").is_allowed());
/// assert!(!role.authorize(Action::Call, "com.other.add2").is_allowed());
/// ```
#[derive(Debug, Default)]
pub struct Role {
    permissions: Vec<Permission>,
    exact: HashMap<String, usize>,
    prefix: PrefixIndex,
    wildcard: WildcardIndex,
}

impl Role {
    /// A role with these rules.
    pub fn new(permissions: impl IntoIterator<Item = Permission>) -> Self {
        let mut role = Role::default();
        for p in permissions {
            role.add(p);
        }
        role
    }

    /// Adds a rule (replacing one for the same URI and match).
    pub fn add(&mut self, permission: Permission) {
        let index = self.permissions.len();
        let id = index as u64;
        let replaced = match permission.policy {
            UriMatch::Exact => self
                .exact
                .insert(permission.uri.clone(), index)
                .map(|i| i as u64),
            UriMatch::Prefix => self.prefix.insert(&permission.uri, id),
            UriMatch::Wildcard => self.wildcard.insert(&permission.uri, id),
        };
        if let Some(old) = replaced {
            // Keep indexes stable: the old slot gets the new rule.
            let old = old as usize;
            let slot = &mut self.permissions[old];
            *slot = permission;
            match slot.policy {
                UriMatch::Exact => {
                    self.exact.insert(slot.uri.clone(), old);
                }
                UriMatch::Prefix => {
                    self.prefix.insert(&slot.uri, old as u64);
                }
                UriMatch::Wildcard => {
                    self.wildcard.insert(&slot.uri, old as u64);
                }
            }
            return;
        }
        self.permissions.push(permission);
    }

    /// The rules, in the order added (replaced ones in place).
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The rule that decides `uri`, if any.
    pub fn rule_for(&self, uri: &str) -> Option<&Permission> {
        if let Some(&i) = self.exact.get(uri) {
            return Some(&self.permissions[i]);
        }
        let mut best: Option<(usize, (usize, usize))> = None;
        self.wildcard.matches(uri, |id| {
            let i = id as usize;
            let rank = wildcard_rank(&self.permissions[i].uri);
            // Equally specific: the rule added first.
            if best.is_none_or(|(b, r)| rank > r || (rank == r && i < b)) {
                best = Some((i, rank));
            }
        });
        if let Some((i, _)) = best {
            return Some(&self.permissions[i]);
        }
        // Prefix matches come shortest first: the last is the longest.
        let mut longest = None;
        self.prefix.matches(uri, |id| longest = Some(id as usize));
        longest.map(|i| &self.permissions[i])
    }

    /// The verdict for `action` on `uri`.
    pub fn authorize(&self, action: Action, uri: &str) -> Authorization {
        self.rule_for(uri)
            .map_or(Authorization::Deny, |p| p.grants.authorization(action))
    }
}

/// Static authorization: per realm, roles with per-URI permissions.
///
/// - A realm without roles lets every session do everything (zero setup).
/// - A realm with roles denies by default: a session may do what its
///   authrole's rules allow, and a session whose authrole is not defined
///   in the realm may do nothing.
///
/// ```
/// use fahrbahn_core::wamp::router::{Grants, Permission, Role, StaticAuthorizer, UriMatch};
/// let mut authorizer = StaticAuthorizer::new();
/// authorizer.add_role("realm1", "user", Role::new([Permission::new("", UriMatch::Prefix, Grants::ALL)]));
/// assert!(authorizer.has_roles("realm1"));
/// assert!(!authorizer.has_roles("realm2"));
/// ```
#[derive(Debug, Default)]
pub struct StaticAuthorizer {
    realms: BTreeMap<String, BTreeMap<String, Role>>,
}

impl StaticAuthorizer {
    /// No roles anywhere: everything is allowed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines (or replaces) role `name` in `realm`; from then on the realm
    /// denies by default.
    pub fn add_role(&mut self, realm: &str, name: &str, role: Role) {
        self.realms
            .entry(realm.to_owned())
            .or_default()
            .insert(name.to_owned(), role);
    }

    /// Whether `realm` has roles (and so denies by default).
    pub fn has_roles(&self, realm: &str) -> bool {
        self.realms.contains_key(realm)
    }

    /// Whether no realm has roles.
    pub fn is_empty(&self) -> bool {
        self.realms.is_empty()
    }

    /// Role `name` of `realm`, if defined.
    pub fn role(&self, realm: &str, name: &str) -> Option<&Role> {
        self.realms.get(realm)?.get(name)
    }
}

impl Authorizer for StaticAuthorizer {
    fn authorize(&mut self, ctx: &AuthorizeContext<'_>) -> Authorization {
        match self.realms.get(ctx.realm) {
            None => Authorization::ALLOW,
            Some(roles) => roles.get(ctx.authrole).map_or(Authorization::Deny, |role| {
                role.authorize(ctx.action, ctx.uri)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::matching::wildcard_matches;
    use super::*;

    /// URIs and patterns over a few components, so that rules collide.
    fn uri() -> impl Strategy<Value = String> {
        let component = prop::sample::select(vec!["", "a", "b", "ab"]);
        prop::collection::vec(component, 1..5).prop_map(|c| c.join("."))
    }

    fn policy() -> impl Strategy<Value = UriMatch> {
        prop::sample::select(vec![UriMatch::Exact, UriMatch::Prefix, UriMatch::Wildcard])
    }

    /// The rule deciding `uri`, by scanning every rule (the oracle of the
    /// indexed [`Role::rule_for`]); `rules` as [`Role::add`] keeps them.
    fn scan<'a>(rules: &'a [Permission], uri: &str) -> Option<&'a Permission> {
        let of = |m: UriMatch| rules.iter().filter(move |p| p.policy == m);
        if let Some(p) = of(UriMatch::Exact).find(|p| p.uri == uri) {
            return Some(p);
        }
        let wildcard = of(UriMatch::Wildcard)
            .enumerate()
            .filter(|(_, p)| wildcard_matches(&p.uri, uri))
            .max_by_key(|(i, p)| (wildcard_rank(&p.uri), std::cmp::Reverse(*i)))
            .map(|(_, p)| p);
        if wildcard.is_some() {
            return wildcard;
        }
        of(UriMatch::Prefix)
            .filter(|p| uri.starts_with(p.uri.as_str()))
            .max_by_key(|p| p.uri.len())
    }

    proptest! {
        #[test]
        fn the_indexed_role_decides_as_the_scan(
            rules in prop::collection::vec((uri(), policy(), any::<[bool; 4]>()), 0..30),
            uris in prop::collection::vec(uri(), 1..10),
        ) {
            let permissions: Vec<Permission> = rules
                .iter()
                .map(|(u, m, [c, r, p, s])| Permission::new(u.clone(), *m, grants(*c, *r, *p, *s)))
                .collect();
            let role = Role::new(permissions.clone());
            // What `add` keeps: one rule per (URI, match), the last one, in
            // the place of the first.
            let mut kept: Vec<Permission> = Vec::new();
            for p in permissions {
                match kept.iter_mut().find(|k| k.uri == p.uri && k.policy == p.policy) {
                    Some(k) => *k = p,
                    None => kept.push(p),
                }
            }
            prop_assert_eq!(role.permissions(), &kept[..]);
            for u in &uris {
                prop_assert_eq!(role.rule_for(u), scan(&kept, u), "uri {:?}", u);
            }
        }
    }

    fn grants(call: bool, register: bool, publish: bool, subscribe: bool) -> Grants {
        Grants {
            call,
            register,
            publish,
            subscribe,
            ..Grants::NONE
        }
    }

    #[test]
    fn exact_beats_wildcard_beats_longest_prefix() {
        let role = Role::new([
            Permission::new("", UriMatch::Prefix, grants(true, false, false, false)),
            Permission::new(
                "com.example.",
                UriMatch::Prefix,
                grants(false, true, false, false),
            ),
            Permission::new(
                "com..update",
                UriMatch::Wildcard,
                grants(false, false, true, false),
            ),
            Permission::new(
                "com.example.update",
                UriMatch::Wildcard,
                grants(false, false, false, true),
            ),
            Permission::new(
                "com.example.exact",
                UriMatch::Exact,
                grants(true, true, true, true),
            ),
        ]);
        let rule = |uri| role.rule_for(uri).map(|p| p.uri.as_str());
        assert_eq!(rule("com.example.exact"), Some("com.example.exact"));
        // A wildcard rule without empty components matches its URI only,
        // and is more specific than `com..update`.
        assert_eq!(rule("com.example.update"), Some("com.example.update"));
        assert_eq!(rule("com.other.update"), Some("com..update"));
        assert_eq!(rule("com.example.add2"), Some("com.example."));
        assert_eq!(rule("org.foo"), Some(""));
        assert!(role.authorize(Action::Call, "org.foo").is_allowed());
        assert!(!role.authorize(Action::Register, "org.foo").is_allowed());
        assert!(
            role.authorize(Action::Register, "com.example.add2")
                .is_allowed()
        );
        assert!(
            !role
                .authorize(Action::Call, "com.example.add2")
                .is_allowed()
        );
        assert!(
            role.authorize(Action::Publish, "com.other.update")
                .is_allowed()
        );
    }

    #[test]
    fn no_rule_denies() {
        let role = Role::new([Permission::new(
            "com.example.proc",
            UriMatch::Exact,
            Grants::ALL,
        )]);
        assert!(
            role.authorize(Action::Call, "com.example.proc")
                .is_allowed()
        );
        assert!(
            !role
                .authorize(Action::Call, "com.example.proc2")
                .is_allowed()
        );
        assert!(!role.authorize(Action::Call, "com.example").is_allowed());
        assert!(!Role::default().authorize(Action::Call, "a").is_allowed());
    }

    #[test]
    fn a_later_rule_replaces_the_same_uri_and_match() {
        let mut role = Role::new([Permission::new("a.", UriMatch::Prefix, Grants::ALL)]);
        role.add(Permission::new("a.", UriMatch::Prefix, Grants::NONE));
        assert_eq!(role.permissions().len(), 1);
        assert!(!role.authorize(Action::Call, "a.b").is_allowed());
        // Same URI, other match: a separate rule.
        role.add(Permission::new("a.b", UriMatch::Exact, Grants::ALL));
        assert!(role.authorize(Action::Call, "a.b").is_allowed());
        assert!(!role.authorize(Action::Call, "a.c").is_allowed());
    }

    #[test]
    fn disclose_follows_the_action() {
        let mut g = Grants::ALL;
        g.disclose_caller = true;
        assert_eq!(
            g.authorization(Action::Call),
            Authorization::Allow { disclose: true }
        );
        assert_eq!(g.authorization(Action::Publish), Authorization::ALLOW);
        assert_eq!(g.authorization(Action::Register), Authorization::ALLOW);
    }

    #[test]
    fn many_rules_stay_indexed() {
        // 10 000 rules: deciding walks the tries, it does not scan.
        let role = Role::new((0..10_000).map(|i| {
            Permission::new(
                format!("com.example.p{i}."),
                UriMatch::Prefix,
                grants(i % 2 == 0, false, false, false),
            )
        }));
        assert!(
            role.authorize(Action::Call, "com.example.p42.x")
                .is_allowed()
        );
        assert!(
            !role
                .authorize(Action::Call, "com.example.p43.x")
                .is_allowed()
        );
        assert!(!role.authorize(Action::Call, "com.example.q").is_allowed());
    }

    #[test]
    fn static_authorizer_defaults() {
        let mut a = StaticAuthorizer::new();
        let dict = Dict::new();
        let ctx = |realm: &'static str, authrole: &'static str| AuthorizeContext {
            session: SessionId(1),
            realm,
            authid: "x",
            authrole,
            authmethod: "anonymous",
            action: Action::Call,
            uri: "com.example.add2",
            options: &dict,
        };
        // No roles at all: allowed.
        assert!(a.authorize(&ctx("realm1", "anonymous")).is_allowed());
        a.add_role(
            "realm1",
            "user",
            Role::new([Permission::new("", UriMatch::Prefix, Grants::ALL)]),
        );
        assert!(a.authorize(&ctx("realm1", "user")).is_allowed());
        // Roles configured: an undefined authrole may do nothing.
        assert!(!a.authorize(&ctx("realm1", "anonymous")).is_allowed());
        // Another realm without roles keeps allowing.
        assert!(a.authorize(&ctx("realm2", "anonymous")).is_allowed());
    }
}
