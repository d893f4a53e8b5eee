//! access database semantics (FEATURE(`access_db'), docs/sendmail-compat.md §4).
//!
//! Mirrors the cf/m4/proto.m4 rulesets: `D` (LookUpDomain), `A` (LookUpAddress), `F`/`U`
//! (LookUpFull/LookUpUser) chained by SearchList, and the result handling of check_relay,
//! check_mail and check_rcpt's blacklist. A lookup error is returned as [`MapError`] and never
//! taken as "not found", so the caller can apply `-T<TMPF>` with [`temp_failure_reply`].

use crate::maps::{Map, MapError};
use crate::reply::Rejection;

/// The LHS prefix `Tag:` (docs/sendmail-compat.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    Connect,
    From,
    To,
    Spam,
    GreetPause,
    ClientRate,
    ClientConn,
    SrvFeatures,
    Compat,
    Qgrp,
}

impl Tag {
    pub const ALL: [Tag; 10] = [
        Tag::Connect,
        Tag::From,
        Tag::To,
        Tag::Spam,
        Tag::GreetPause,
        Tag::ClientRate,
        Tag::ClientConn,
        Tag::SrvFeatures,
        Tag::Compat,
        Tag::Qgrp,
    ];

    /// The tag as written in access files and the spec, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Connect => "Connect",
            Tag::From => "From",
            Tag::To => "To",
            Tag::Spam => "Spam",
            Tag::GreetPause => "GreetPause",
            Tag::ClientRate => "ClientRate",
            Tag::ClientConn => "ClientConn",
            Tag::SrvFeatures => "Srv_Features",
            Tag::Compat => "Compat",
            Tag::Qgrp => "QGRP",
        }
    }

    /// Parses a tag name, case-insensitively, with or without the trailing `:`.
    pub fn parse(s: &str) -> Option<Tag> {
        let s = s.strip_suffix(':').unwrap_or(s);
        Tag::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// The mark proto.m4 uses for this tag: `+` (tag, then untagged) for the Connect, From and
    /// To lookups of check_relay/check_mail/check_rcpt; `!` (tag only) for the rest.
    pub fn default_mark(self) -> Mark {
        match self {
            Tag::Connect | Tag::From | Tag::To => Mark::TagThenUntagged,
            _ => Mark::TagOnly,
        }
    }

    /// The key prefix, lower-cased because keys are folded (docs/sendmail-compat.md §4.1).
    fn prefix(self) -> String {
        format!("{}:", self.as_str().to_ascii_lowercase())
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an untagged key is tried after the tagged one (docs/sendmail-compat.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// proto.m4's `+`: `Tag:key`, then `key`, before moving to a shorter key.
    TagThenUntagged,
    /// proto.m4's `!`: only `Tag:key`.
    TagOnly,
}

/// The optional FEATURE(`access_db') arguments (docs/sendmail-compat.md §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessOptions {
    /// `skip`: a SKIP value on a host/domain/IP key ends the walk with "no decision".
    pub skip: bool,
    /// `lookupdotdomain`: also try `.parent.domain` for each key of a domain walk.
    pub lookup_dot_domain: bool,
}

/// A parsed RHS (docs/sendmail-compat.md §4.3). Keywords match case-insensitively, as rule tokens do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessValue {
    Ok,
    Relay,
    Reject,
    Discard,
    Skip,
    /// `QUARANTINE:reason` (8.13).
    Quarantine(String),
    /// `ERROR:### text`, `ERROR:D.S.N:### text`, `ERROR:"### text"`.
    Error(Rejection),
    /// `TEMP:` forms of check_compat, parsed like `ERROR:`.
    Temp(Rejection),
    Friend,
    Hater,
    /// A plain decimal number (GreetPause, ClientRate, ClientConn).
    Number(u64),
    /// The deprecated untagged `### text` generic error.
    GenericError(Rejection),
    /// Anything else: Srv_Features letters, queue group names, or (in check_* rulesets) a
    /// generic error text. May be empty.
    Other(String),
}

impl AccessValue {
    /// Classifies a raw RHS.
    pub fn parse(raw: &str) -> AccessValue {
        let v = raw.trim();
        for (word, value) in [
            ("OK", AccessValue::Ok),
            ("RELAY", AccessValue::Relay),
            ("REJECT", AccessValue::Reject),
            ("DISCARD", AccessValue::Discard),
            ("SKIP", AccessValue::Skip),
            ("FRIEND", AccessValue::Friend),
            ("HATER", AccessValue::Hater),
        ] {
            if v.eq_ignore_ascii_case(word) {
                return value;
            }
        }
        if let Some(reason) = strip_prefix_ci(v, "QUARANTINE:") {
            return AccessValue::Quarantine(reason.trim().to_string());
        }
        if let Some(rest) = strip_prefix_ci(v, "ERROR:") {
            return AccessValue::Error(parse_error_rhs(rest));
        }
        if let Some(rest) = strip_prefix_ci(v, "TEMP:") {
            return AccessValue::Temp(parse_error_rhs(rest));
        }
        if !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = v.parse()
        {
            return AccessValue::Number(n);
        }
        if crate::reply::split_smtp_code(v).is_some() {
            return AccessValue::GenericError(Rejection::from_error(None, v));
        }
        AccessValue::Other(v.to_string())
    }

    /// The number of a GreetPause/ClientRate/ClientConn value.
    pub fn as_number(&self) -> Option<u64> {
        match self {
            AccessValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// True for the `{Accept}` class (OK, RELAY).
    pub fn is_accept(&self) -> bool {
        matches!(self, AccessValue::Ok | AccessValue::Relay)
    }
}

/// `ERROR:` text after the colon: `D.S.N:text` gives `$@ D.S.N $: text`, anything else
/// `$: text` (proto.m4 `R<ERROR:$-.$-.$-:$+>` then `R<ERROR:$+>`).
fn parse_error_rhs(rest: &str) -> Rejection {
    if let Some((dsn, text)) = rest.split_once(':') {
        let dsn = dsn.trim();
        if crate::reply::is_enhanced_code(dsn) && !text.trim().is_empty() {
            return Rejection::from_error(Some(dsn), text);
        }
    }
    Rejection::from_error(None, rest)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// A found entry: the key that matched (folded, tag included) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessHit {
    pub key: String,
    pub raw: String,
    pub value: AccessValue,
}

/// The outcome of check_relay / check_mail / the check_rcpt blacklist for one access result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found (or SKIP, or an entry that these rulesets ignore): default handling.
    Continue,
    /// `OK`: accept, skipping the other checks of that ruleset; no relaying.
    Accept,
    /// `RELAY`: accept and allow relaying.
    Relay,
    /// `DISCARD`: accept and throw the message away.
    Discard,
    /// `QUARANTINE:reason`.
    Quarantine(String),
    /// Reject with this reply (address part attached when the check has one).
    Reject(Rejection),
}

/// `550 5.7.1 Access denied`: REJECT in check_relay / check_mail (confREJECT_MSG default).
pub fn access_denied() -> Rejection {
    Rejection::new(550, "5.7.1", "Access denied")
}

/// `550 5.2.1 <addr>... Mailbox disabled for this recipient`: REJECT in the check_rcpt
/// blacklist (confRCPTREJ_MSG default). `addr` is the RCPT argument as typed.
pub fn mailbox_disabled(addr: &str) -> Rejection {
    Rejection::new(550, "5.2.1", "Mailbox disabled for this recipient").with_addr(addr)
}

/// The reply for a failed lookup under `-T<TMPF>` (docs/sendmail-compat.md §4.1).
pub fn temp_failure_reply(_err: &MapError) -> Rejection {
    Rejection::temp_failure()
}

/// The access table with the FEATURE options; all lookups go through this.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    map: &'a dyn Map,
    opts: AccessOptions,
}

impl<'a> Access<'a> {
    pub fn new(map: &'a dyn Map, opts: AccessOptions) -> Self {
        Self { map, opts }
    }

    pub fn options(&self) -> AccessOptions {
        self.opts
    }

    /// One folded key, no variations.
    pub fn get(&self, key: &str) -> Result<Option<AccessHit>, MapError> {
        let key = key.to_ascii_lowercase();
        Ok(self.map.get(key.as_bytes())?.map(|raw| {
            let raw = String::from_utf8_lossy(&raw).into_owned();
            AccessHit {
                value: AccessValue::parse(&raw),
                key,
                raw,
            }
        }))
    }

    /// `Tag:key`, then (mark `+`, non-empty key) `key`: one step of every proto.m4 lookup.
    fn probe(&self, tag: Tag, mark: Mark, key: &str) -> Result<Option<AccessHit>, MapError> {
        if let Some(hit) = self.get(&format!("{}{key}", tag.prefix()))? {
            return Ok(Some(hit));
        }
        if mark == Mark::TagThenUntagged && !key.is_empty() {
            return self.get(key);
        }
        Ok(None)
    }

    /// The default entry `Tag:` with an empty key (Srv_Features, ClientRate, ClientConn,
    /// GreetPause).
    pub fn default_entry(&self, tag: Tag) -> Result<Option<AccessHit>, MapError> {
        self.get(&tag.prefix())
    }

    /// Host/domain walk "D" with the tag's default mark (docs/sendmail-compat.md §4.4).
    pub fn domain(&self, tag: Tag, domain: &str) -> Result<Option<AccessHit>, MapError> {
        self.domain_marked(tag, tag.default_mark(), domain)
    }

    /// Host/domain walk "D": `a.b.example.com`, `b.example.com`, `example.com`, `com`
    /// (optionally with `.b.example.com` style keys), or for `[1.2.3.4]` the bracketed prefixes
    /// `[1.2.3]`, `[1.2]`, `[1]`. One trailing dot is ignored, as the rulesets strip it.
    pub fn domain_marked(
        &self,
        tag: Tag,
        mark: Mark,
        domain: &str,
    ) -> Result<Option<AccessHit>, MapError> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let mut key = domain.to_ascii_lowercase();
        while !key.is_empty() {
            let bracketed = key.starts_with('[') && key.ends_with(']');
            let mut hit = self.probe(tag, mark, &key)?;
            if hit.is_none()
                && self.opts.lookup_dot_domain
                && !bracketed
                && let Some((_, parent)) = key.split_once('.').filter(|(_, p)| !p.is_empty())
            {
                hit = self.probe(tag, mark, &format!(".{parent}"))?;
            }
            if let Some(hit) = hit {
                return Ok(self.unless_skipped(hit));
            }
            key = match if bracketed {
                shorten_bracketed(&key)
            } else {
                drop_first_label(&key)
            } {
                Some(k) => k,
                None => break,
            };
        }
        Ok(None)
    }

    /// IP walk "A" with the tag's default mark (docs/sendmail-compat.md §4.4).
    pub fn address(&self, tag: Tag, addr: &str) -> Result<Option<AccessHit>, MapError> {
        self.address_marked(tag, tag.default_mark(), addr)
    }

    /// IP walk "A": `192.168.212.5`, `192.168.212`, `192.168`, `192` (whole octets only);
    /// `IPv6:a:b::c` keys lose the last `::group` or `:group` each step.
    pub fn address_marked(
        &self,
        tag: Tag,
        mark: Mark,
        addr: &str,
    ) -> Result<Option<AccessHit>, MapError> {
        let mut key = addr.trim().to_ascii_lowercase();
        while !key.is_empty() {
            if let Some(hit) = self.probe(tag, mark, &key)? {
                return Ok(self.unless_skipped(hit));
            }
            key = match shorten_address(&key) {
                Some(k) => k,
                None => break,
            };
        }
        Ok(None)
    }

    /// A client: "D" on its name, then "A" on its address; only "A" when the name is empty
    /// (check_relay order, docs/sendmail-compat.md §4.4; also GreetPause and Srv_Features).
    pub fn client(
        &self,
        tag: Tag,
        client_name: &str,
        client_addr: &str,
    ) -> Result<Option<AccessHit>, MapError> {
        if !client_name.trim().is_empty()
            && let Some(hit) = self.domain(tag, client_name.trim())?
        {
            return Ok(Some(hit));
        }
        self.address(tag, client_addr)
    }

    /// Like [`Access::client`], then the `Tag:` default entry (srv_features, greet_pause).
    pub fn client_or_default(
        &self,
        tag: Tag,
        client_name: &str,
        client_addr: &str,
    ) -> Result<Option<AccessHit>, MapError> {
        self.batched(|a| match a.client(tag, client_name, client_addr)? {
            Some(hit) => Ok(Some(hit)),
            None => a.default_entry(tag),
        })
    }

    /// E-mail address lookup (SearchList `F`, `U`, `D`; docs/sendmail-compat.md §4.4):
    /// 1. `user+detail@domain`, `user+*@domain`, `user@domain`;
    /// 2. when `user_forms`: `user+detail@`, `user+*@`, `user@`;
    /// 3. the domain walk.
    ///
    /// Each key is tried tagged then untagged (per the mark) before the next one. An address
    /// without `@` gets only the `user@` forms. Angle brackets and a trailing dot are ignored.
    pub fn email(
        &self,
        tag: Tag,
        address: &str,
        user_forms: bool,
    ) -> Result<Option<AccessHit>, MapError> {
        let mark = tag.default_mark();
        let address = strip_angle(address);
        let (local, domain) = match address.rsplit_once('@') {
            Some((l, d)) => (l, Some(d.strip_suffix('.').unwrap_or(d))),
            None => (address, None),
        };
        if local.is_empty() {
            return match domain {
                Some(d) => self.domain_marked(tag, mark, d),
                None => Ok(None),
            };
        }
        if let Some(domain) = domain.filter(|d| !d.is_empty()) {
            for l in plus_variants(local) {
                if let Some(hit) =
                    self.probe(tag, mark, &format!("{l}@{domain}").to_ascii_lowercase())?
                {
                    return Ok(Some(hit));
                }
            }
        }
        if user_forms || domain.is_none_or(str::is_empty) {
            for l in plus_variants(local) {
                if let Some(hit) = self.probe(tag, mark, &format!("{l}@").to_ascii_lowercase())? {
                    return Ok(Some(hit));
                }
            }
        }
        match domain.filter(|d| !d.is_empty()) {
            Some(d) => self.domain_marked(tag, mark, d),
            None => Ok(None),
        }
    }

    /// check_relay's access part: `Connect:` D on the name, then A on the address.
    pub fn check_relay(&self, client_name: &str, client_addr: &str) -> Result<Verdict, MapError> {
        self.batched(|a| {
            let hit = a.client(Tag::Connect, client_name, client_addr)?;
            Ok(verdict(hit.as_ref(), Check::Relay, None, a.opts))
        })
    }

    /// Runs a walk with all of its keys asked for at once when the map is remote: one round
    /// trip per check ([`crate::maps::batched`]).
    fn batched<T>(&self, walk: impl Fn(&Access<'_>) -> Result<T, MapError>) -> Result<T, MapError> {
        let opts = self.opts;
        crate::maps::batched(self.map, |m| walk(&Access::new(m, opts)))
    }

    /// check_mail's access part for the MAIL argument `sender` as typed (e.g. `<a@b>`). The null
    /// sender `<>` is never looked up: RFC 1123 requires accepting it.
    pub fn check_mail(&self, sender: &str) -> Result<Verdict, MapError> {
        if strip_angle(sender).is_empty() {
            return Ok(Verdict::Continue);
        }
        self.batched(|a| {
            let hit = a.email(Tag::From, sender, true)?;
            Ok(verdict(hit.as_ref(), Check::Mail, Some(sender), a.opts))
        })
    }

    /// check_rcpt's blacklist_recipients part for the RCPT argument as typed. `user@` forms are
    /// tried only when the domain is local (class w) or absent.
    pub fn check_rcpt(&self, rcpt: &str, domain_is_local: bool) -> Result<Verdict, MapError> {
        self.batched(|a| {
            let hit = a.email(Tag::To, rcpt, domain_is_local)?;
            Ok(verdict(hit.as_ref(), Check::Rcpt, Some(rcpt), a.opts))
        })
    }

    /// Rcpt_ok's access part: does the `To:` domain walk say RELAY for this domain?
    pub fn relay_to_domain(&self, domain: &str) -> Result<bool, MapError> {
        self.batched(|a| {
            Ok(a.domain(Tag::To, domain)?
                .is_some_and(|h| h.value == AccessValue::Relay))
        })
    }

    /// Relay_ok's access part: `Connect:` A on the client address, then D on the client name,
    /// says RELAY.
    pub fn relay_from_client(
        &self,
        client_name: &str,
        client_addr: &str,
    ) -> Result<bool, MapError> {
        let is_relay = |h: Option<AccessHit>| h.is_some_and(|h| h.value == AccessValue::Relay);
        self.batched(|a| {
            if is_relay(a.address(Tag::Connect, client_addr)?) {
                return Ok(true);
            }
            Ok(!client_name.trim().is_empty() && is_relay(a.domain(Tag::Connect, client_name)?))
        })
    }

    fn unless_skipped(&self, hit: AccessHit) -> Option<AccessHit> {
        (!(self.opts.skip && hit.value == AccessValue::Skip)).then_some(hit)
    }
}

/// Which ruleset interprets an access result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// check_relay (connection).
    Relay,
    /// check_mail (MAIL FROM).
    Mail,
    /// check_rcpt with blacklist_recipients (RCPT TO).
    Rcpt,
}

/// Interprets a found value as proto.m4's Basic_check_relay, Basic_check_mail or the check_rcpt
/// blacklist does. `addr` (the MAIL/RCPT argument as typed) is attached to rejections.
pub fn verdict(
    hit: Option<&AccessHit>,
    check: Check,
    addr: Option<&str>,
    opts: AccessOptions,
) -> Verdict {
    let Some(hit) = hit else {
        return Verdict::Continue;
    };
    let with_addr = |r: Rejection| match addr {
        Some(a) => r.with_addr(a),
        None => r,
    };
    match &hit.value {
        // In the blacklist, {Accept} and (enabled) SKIP mean "no match"; elsewhere they accept.
        AccessValue::Ok | AccessValue::Relay if check == Check::Rcpt => Verdict::Continue,
        AccessValue::Skip if check == Check::Rcpt && opts.skip => Verdict::Continue,
        AccessValue::Ok => Verdict::Accept,
        AccessValue::Relay => Verdict::Relay,
        AccessValue::Discard => Verdict::Discard,
        AccessValue::Quarantine(reason) => Verdict::Quarantine(reason.clone()),
        AccessValue::Reject => match check {
            Check::Rcpt => Verdict::Reject(mailbox_disabled(addr.unwrap_or(""))),
            _ => Verdict::Reject(with_addr(access_denied())),
        },
        AccessValue::Error(r) | AccessValue::Temp(r) | AccessValue::GenericError(r) => {
            Verdict::Reject(with_addr(r.clone()))
        }
        // An empty value matches none of the rules (`R<$+>` needs a token).
        AccessValue::Other(s) if s.is_empty() => Verdict::Continue,
        // Generic error: any other value is the `$#error $:` text.
        _ => Verdict::Reject(with_addr(Rejection::from_error(None, &hit.raw))),
    }
}

/// `local`, then for `user+detail`: `user+*`, `user` (split at the first `+`; `user` must be
/// non-empty, as proto.m4's `$+ + $*` requires).
fn plus_variants(local: &str) -> Vec<String> {
    let mut out = vec![local.to_string()];
    if let Some((user, _detail)) = local.split_once('+').filter(|(u, _)| !u.is_empty()) {
        out.push(format!("{user}+*"));
        out.push(user.to_string());
    }
    out
}

fn strip_angle(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .trim()
}

/// `a.b.example.com` → `b.example.com`; the TLD is the last key (proto.m4 `<$+.$+>`).
fn drop_first_label(key: &str) -> Option<String> {
    key.split_once('.')
        .filter(|(first, rest)| !first.is_empty() && !rest.is_empty())
        .map(|(_, rest)| rest.to_string())
}

/// `[1.2.3.4]` → `[1.2.3]`; `[a::b]` → `[a]`; `[a:b]` → `[a]` (proto.m4 D's bracket rules).
fn shorten_bracketed(key: &str) -> Option<String> {
    let inner = key.strip_prefix('[')?.strip_suffix(']')?;
    shorten_tail(inner, &["."])
        .or_else(|| shorten_tail(inner, &["::", ":"]))
        .map(|s| format!("[{s}]"))
}

/// The A walk: drop the last `::group`, else `:group`, else `.octet`.
fn shorten_address(key: &str) -> Option<String> {
    shorten_tail(key, &["::", ":", "."]).map(str::to_string)
}

/// Drops `<sep><token>` from the end for the first separator that fits, where `<token>` is one
/// sendmail token (`$-`) and something non-empty remains before it (`$+`).
fn shorten_tail<'k>(key: &'k str, seps: &[&str]) -> Option<&'k str> {
    seps.iter().find_map(|sep| {
        let (head, tail) = key.rsplit_once(sep)?;
        (!head.is_empty() && is_single_token(tail)).then_some(head)
    })
}

/// One sendmail token: non-empty and free of operator characters and blanks.
pub(crate) fn is_single_token(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || ".:%@!^/[]+()<>,;\\\"".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{FailingMap, MemMap};

    /// A map that records every key asked for, to check lookup order.
    struct Recorder {
        inner: MemMap,
        keys: std::sync::Mutex<Vec<String>>,
    }

    impl Recorder {
        fn new(pairs: &[(&str, &str)]) -> Self {
            Self {
                inner: MemMap::from_pairs(pairs.iter().copied()),
                keys: Default::default(),
            }
        }
        fn keys(&self) -> Vec<String> {
            self.keys.lock().map(|k| k.clone()).unwrap_or_default()
        }
    }

    impl Map for Recorder {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
            if let Ok(mut k) = self.keys.lock() {
                k.push(String::from_utf8_lossy(key).into_owned());
            }
            self.inner.get(key)
        }
    }

    fn seed() -> MemMap {
        // The seed's /etc/mail/access (fixtures/seed-etc-mail/access).
        MemMap::from_pairs([
            ("Connect:relay.com", "RELAY"),
            ("Connect:other.com", "OK"),
            ("Connect:192.168", "REJECT"),
            ("To:true.com", "OK"),
            ("From:false@junk.com", "REJECT"),
            ("reject.com", "REJECT"),
        ])
    }

    fn v(raw: &str) -> AccessValue {
        AccessValue::parse(raw)
    }

    // docs/sendmail-compat.md §4.2: tag names as written, parsed case-insensitively.
    #[test]
    fn tags() {
        assert_eq!(Tag::SrvFeatures.as_str(), "Srv_Features");
        assert_eq!(Tag::Qgrp.as_str(), "QGRP");
        assert_eq!(Tag::parse("connect:"), Some(Tag::Connect));
        assert_eq!(Tag::parse("SRV_FEATURES"), Some(Tag::SrvFeatures));
        assert_eq!(Tag::parse("qgrp"), Some(Tag::Qgrp));
        assert_eq!(Tag::parse("TLS_Clt"), None);
        assert_eq!(Tag::parse(""), None);
        for t in Tag::ALL {
            assert_eq!(Tag::parse(t.as_str()), Some(t));
        }
        assert_eq!(Tag::GreetPause.prefix(), "greetpause:");
        assert_eq!(Tag::From.default_mark(), Mark::TagThenUntagged);
        assert_eq!(Tag::Spam.default_mark(), Mark::TagOnly);
    }

    // docs/sendmail-compat.md §4.3: value forms.
    #[test]
    fn values() {
        assert_eq!(v("OK"), AccessValue::Ok);
        assert_eq!(v(" relay "), AccessValue::Relay);
        assert_eq!(v("Reject"), AccessValue::Reject);
        assert_eq!(v("DISCARD"), AccessValue::Discard);
        assert_eq!(v("SKIP"), AccessValue::Skip);
        assert_eq!(v("FRIEND"), AccessValue::Friend);
        assert_eq!(v("hater"), AccessValue::Hater);
        assert_eq!(
            v("QUARANTINE:check it"),
            AccessValue::Quarantine("check it".into())
        );
        assert_eq!(v("5000"), AccessValue::Number(5000));
        assert_eq!(v("5000").as_number(), Some(5000));
        assert_eq!(
            v("99999999999999999999999"),
            AccessValue::Other("99999999999999999999999".into())
        );
        assert_eq!(v("SAPl"), AccessValue::Other("SAPl".into()));
        assert_eq!(v(""), AccessValue::Other(String::new()));
        assert!(v("ok").is_accept() && !v("REJECT").is_accept());
    }

    // docs/sendmail-compat.md §4.3: ERROR forms; §6.3 default enhanced code; §11.1 4xx → 4.0.0.
    #[test]
    fn error_values() {
        let line = |raw: &str| match v(raw) {
            AccessValue::Error(r) | AccessValue::Temp(r) | AccessValue::GenericError(r) => r.line(),
            other => panic!("not an error: {other:?}"),
        };
        assert_eq!(line("ERROR:5.7.1:550 Go away"), "550 5.7.1 Go away");
        assert_eq!(
            line("ERROR:4.2.2:450 mailbox full"),
            "450 4.2.2 mailbox full"
        );
        assert_eq!(line("ERROR:450 mailbox full"), "450 4.0.0 mailbox full");
        assert_eq!(line("ERROR:550 Go away"), "550 5.0.0 Go away");
        assert_eq!(line("error:550 5.7.1 Go away"), "550 5.7.1 Go away");
        assert_eq!(line("ERROR:\"550 Go   away\""), "550 5.0.0 Go   away");
        assert_eq!(line("ERROR:Go away"), "553 5.3.0 Go away");
        // A D.S.N prefix without text is not the D.S.N form.
        assert_eq!(line("ERROR:5.7.1:"), "553 5.3.0 5.7.1:");
        assert_eq!(line("TEMP:451 later"), "451 4.0.0 later");
        assert_eq!(line("550 Generic"), "550 5.0.0 Generic");
        assert_eq!(line("ERROR:"), "553 5.3.0 ");
    }

    // docs/sendmail-compat.md §4.4 D: tag then untagged per key, down to the TLD.
    #[test]
    fn domain_walk_order() {
        let m = Recorder::new(&[]);
        let a = Access::new(&m, AccessOptions::default());
        assert_eq!(
            a.domain(Tag::Connect, "A.B.Example.COM").ok().flatten(),
            None
        );
        assert_eq!(
            m.keys(),
            [
                "connect:a.b.example.com",
                "a.b.example.com",
                "connect:b.example.com",
                "b.example.com",
                "connect:example.com",
                "example.com",
                "connect:com",
                "com",
            ]
        );
    }

    // docs/sendmail-compat.md §4.4 D: lookupdotdomain adds `.parent` keys.
    #[test]
    fn domain_walk_dot_domain() {
        let m = Recorder::new(&[]);
        let opts = AccessOptions {
            lookup_dot_domain: true,
            ..Default::default()
        };
        let a = Access::new(&m, opts);
        assert!(matches!(a.domain(Tag::To, "a.example.com"), Ok(None)));
        assert_eq!(
            m.keys(),
            [
                "to:a.example.com",
                "a.example.com",
                "to:.example.com",
                ".example.com",
                "to:example.com",
                "example.com",
                "to:.com",
                ".com",
                "to:com",
                "com",
            ]
        );
        let m = MemMap::from_pairs([("To:.example.com", "RELAY")]);
        let a = Access::new(&m, opts);
        assert!(a.relay_to_domain("host.example.com").unwrap_or(false));
        // `.example.com` does not cover example.com itself.
        assert!(!a.relay_to_domain("example.com").unwrap_or(true));
    }

    // docs/sendmail-compat.md §4.4: the bare TLD is looked up; matching is on label boundaries.
    #[test]
    fn domain_tld_and_boundaries() {
        let m = MemMap::from_pairs([("Connect:com", "REJECT"), ("example.org", "OK")]);
        let a = Access::new(&m, AccessOptions::default());
        let hit = a.domain(Tag::Connect, "x.y.com").ok().flatten();
        assert_eq!(hit.map(|h| h.key), Some("connect:com".to_string()));
        assert!(matches!(a.domain(Tag::Connect, "badexample.org"), Ok(None)));
        // Untagged fallback for `+` tags, not for `!` tags.
        assert!(matches!(
            a.domain(Tag::Connect, "mail.example.org"),
            Ok(Some(_))
        ));
        assert!(matches!(
            a.domain(Tag::GreetPause, "mail.example.org"),
            Ok(None)
        ));
        // Trailing dot, empty and degenerate keys.
        assert!(matches!(
            a.domain(Tag::Connect, "example.org."),
            Ok(Some(_))
        ));
        assert!(matches!(a.domain(Tag::Connect, ""), Ok(None)));
        assert!(matches!(a.domain(Tag::Connect, "."), Ok(None)));
        // `a..com` gives `.com` and stops there, as proto.m4's `<$+.$+>` does on those tokens.
        assert!(matches!(a.domain(Tag::Connect, "a..com"), Ok(None)));
    }

    // docs/sendmail-compat.md §4.4: `[1.2.3.4]` is shortened inside the brackets.
    #[test]
    fn bracketed_walk() {
        let m = Recorder::new(&[("Connect:[10.1]", "REJECT")]);
        let a = Access::new(&m, AccessOptions::default());
        let hit = a.domain(Tag::Connect, "[10.1.2.3]").ok().flatten();
        assert_eq!(hit.map(|h| h.value), Some(AccessValue::Reject));
        assert_eq!(
            m.keys(),
            [
                "connect:[10.1.2.3]",
                "[10.1.2.3]",
                "connect:[10.1.2]",
                "[10.1.2]",
                "connect:[10.1]"
            ]
        );
        assert_eq!(
            shorten_bracketed("[ipv6:2001:db8::1]").as_deref(),
            Some("[ipv6:2001:db8]")
        );
        assert_eq!(shorten_bracketed("[ipv6:2001]").as_deref(), Some("[ipv6]"));
        assert_eq!(shorten_bracketed("[1]"), None);
        assert_eq!(shorten_bracketed("[]"), None);
    }

    // docs/sendmail-compat.md §4.3/§4.4: SKIP stops the walk only when enabled.
    #[test]
    fn skip_handling() {
        let m = MemMap::from_pairs([
            ("Connect:sub.example.com", "SKIP"),
            ("Connect:example.com", "REJECT"),
        ]);
        let on = Access::new(
            &m,
            AccessOptions {
                skip: true,
                ..Default::default()
            },
        );
        assert!(matches!(
            on.domain(Tag::Connect, "a.sub.example.com"),
            Ok(None)
        ));
        assert!(matches!(
            on.check_relay("a.sub.example.com", ""),
            Ok(Verdict::Continue)
        ));
        let hit = on.domain(Tag::Connect, "other.example.com").ok().flatten();
        assert_eq!(hit.map(|h| h.value), Some(AccessValue::Reject));
        // Not enabled: SKIP is just an unrecognised value, i.e. a generic error text.
        let off = Access::new(&m, AccessOptions::default());
        let hit = off.domain(Tag::Connect, "a.sub.example.com").ok().flatten();
        assert_eq!(hit.as_ref().map(|h| &h.value), Some(&AccessValue::Skip));
        match off.check_relay("a.sub.example.com", "") {
            Ok(Verdict::Reject(r)) => assert_eq!(r.line(), "553 5.3.0 SKIP"),
            other => panic!("{other:?}"),
        }
        // SKIP on an IP key.
        let m = MemMap::from_pairs([("Connect:10.1.2", "SKIP"), ("Connect:10", "REJECT")]);
        let on = Access::new(
            &m,
            AccessOptions {
                skip: true,
                ..Default::default()
            },
        );
        assert!(matches!(on.address(Tag::Connect, "10.1.2.3"), Ok(None)));
        assert!(matches!(on.address(Tag::Connect, "10.9.2.3"), Ok(Some(_))));
    }

    // docs/sendmail-compat.md §4.4 A: whole octets, tag then untagged.
    #[test]
    fn ipv4_walk() {
        let m = Recorder::new(&[]);
        let a = Access::new(&m, AccessOptions::default());
        assert!(matches!(a.address(Tag::Connect, "192.168.212.5"), Ok(None)));
        assert_eq!(
            m.keys(),
            [
                "connect:192.168.212.5",
                "192.168.212.5",
                "connect:192.168.212",
                "192.168.212",
                "connect:192.168",
                "192.168",
                "connect:192",
                "192",
            ]
        );
        // Never CIDR / partial octets.
        let m = MemMap::from_pairs([("Connect:192.16", "REJECT")]);
        let a = Access::new(&m, AccessOptions::default());
        assert!(matches!(a.address(Tag::Connect, "192.168.1.1"), Ok(None)));
        assert!(matches!(a.address(Tag::Connect, ""), Ok(None)));
    }

    // docs/sendmail-compat.md §4.4 A: IPv6 keys shortened by groups; cf/README's /48 example.
    #[test]
    fn ipv6_walk() {
        let m = MemMap::from_pairs([("Connect:IPv6:2002:c0a8:02c7", "RELAY")]);
        let a = Access::new(&m, AccessOptions::default());
        let hit = a
            .address(Tag::Connect, "IPv6:2002:c0a8:02c7:1:2:3:4:5")
            .ok()
            .flatten();
        assert_eq!(
            hit.map(|h| h.key),
            Some("connect:ipv6:2002:c0a8:02c7".to_string())
        );
        let hit = a
            .address(Tag::Connect, "IPv6:2002:c0a8:02c7::1")
            .ok()
            .flatten();
        assert!(hit.is_some());
        assert!(matches!(
            a.address(Tag::Connect, "IPv6:2002:c0a8:02c8::1"),
            Ok(None)
        ));
        assert_eq!(
            shorten_address("ipv6:2001:db8::1").as_deref(),
            Some("ipv6:2001:db8")
        );
        assert_eq!(
            shorten_address("ipv6:2001:db8::1:2").as_deref(),
            Some("ipv6:2001:db8::1")
        );
        assert_eq!(shorten_address("ipv6:::1").as_deref(), Some("ipv6:"));
        assert_eq!(
            shorten_address("ipv6:::ffff:1.2.3.4").as_deref(),
            Some("ipv6:::ffff:1.2.3")
        );
        assert_eq!(shorten_address("ipv6:"), None);
        assert_eq!(shorten_address("192"), None);
    }

    // docs/sendmail-compat.md §4.4 check_mail: F forms, then U forms, then D; tag then untagged each.
    #[test]
    fn sender_order() {
        let m = Recorder::new(&[]);
        let a = Access::new(&m, AccessOptions::default());
        assert!(matches!(
            a.check_mail("<Joe+List@Mail.Example.com.>"),
            Ok(Verdict::Continue)
        ));
        assert_eq!(
            m.keys(),
            [
                "from:joe+list@mail.example.com",
                "joe+list@mail.example.com",
                "from:joe+*@mail.example.com",
                "joe+*@mail.example.com",
                "from:joe@mail.example.com",
                "joe@mail.example.com",
                "from:joe+list@",
                "joe+list@",
                "from:joe+*@",
                "joe+*@",
                "from:joe@",
                "joe@",
                "from:mail.example.com",
                "mail.example.com",
                "from:example.com",
                "example.com",
                "from:com",
                "com",
            ]
        );
    }

    // docs/sendmail-compat.md §4.4: `user@` forms for To: only when the domain is local.
    #[test]
    fn recipient_user_forms_only_local() {
        let m = MemMap::from_pairs([("To:spammer@", "REJECT")]);
        let a = Access::new(&m, AccessOptions::default());
        match a.check_rcpt("<spammer@local.example>", true) {
            Ok(Verdict::Reject(r)) => assert_eq!(
                r.line(),
                "550 5.2.1 <spammer@local.example>... Mailbox disabled for this recipient"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.check_rcpt("<spammer@remote.example>", false),
            Ok(Verdict::Continue)
        ));
        // No domain: only the user forms.
        assert!(matches!(
            a.check_rcpt("spammer", false),
            Ok(Verdict::Reject(_))
        ));
        // +detail reaches user@ through user+*@ and user@.
        assert!(matches!(
            a.check_rcpt("<spammer+x@local.example>", true),
            Ok(Verdict::Reject(_))
        ));
    }

    // docs/sendmail-compat.md §4.4: user+*@domain matches any detail, also an empty one.
    #[test]
    fn plus_star_forms() {
        let m = MemMap::from_pairs([("From:joe+*@example.com", "REJECT")]);
        let a = Access::new(&m, AccessOptions::default());
        assert!(matches!(
            a.check_mail("<joe+a@example.com>"),
            Ok(Verdict::Reject(_))
        ));
        assert!(matches!(
            a.check_mail("<joe+@example.com>"),
            Ok(Verdict::Reject(_))
        ));
        assert!(matches!(
            a.check_mail("<joe@example.com>"),
            Ok(Verdict::Continue)
        ));
        // A local part starting with `+` has no user part to vary.
        assert_eq!(plus_variants("+x"), ["+x"]);
        assert_eq!(plus_variants("a+b+c"), ["a+b+c", "a+*", "a"]);
    }

    // docs/sendmail-compat.md §4.4: a bare word key is a host, not a user.
    #[test]
    fn bare_word_is_host() {
        let m = MemMap::from_pairs([("From:joe", "REJECT")]);
        let a = Access::new(&m, AccessOptions::default());
        assert!(matches!(
            a.check_mail("<joe@example.com>"),
            Ok(Verdict::Continue)
        ));
        assert!(matches!(a.check_mail("<x@joe>"), Ok(Verdict::Reject(_))));
    }

    // docs/sendmail-compat.md §4.4 check_mail; §4.3 REJECT text; seed access file.
    #[test]
    fn seed_check_mail() {
        let m = seed();
        let a = Access::new(&m, AccessOptions::default());
        match a.check_mail("<False@Junk.com>") {
            Ok(Verdict::Reject(r)) => {
                assert_eq!(r.line(), "550 5.7.1 <False@Junk.com>... Access denied")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.check_mail("<true@junk.com>"),
            Ok(Verdict::Continue)
        ));
        // Untagged reject.com applies to From: too (docs/sendmail-compat.md §4.2).
        assert!(matches!(
            a.check_mail("<x@mx.reject.com>"),
            Ok(Verdict::Reject(_))
        ));
        assert!(matches!(a.check_mail("<>"), Ok(Verdict::Continue)));
        assert!(matches!(a.check_mail(""), Ok(Verdict::Continue)));
    }

    // docs/sendmail-compat.md §4.4 check_relay: name D-walk, then addr A-walk; name empty → only A.
    #[test]
    fn seed_check_relay() {
        let m = seed();
        let a = Access::new(&m, AccessOptions::default());
        assert_eq!(
            a.check_relay("mx.relay.com", "10.0.0.1").ok(),
            Some(Verdict::Relay)
        );
        assert_eq!(
            a.check_relay("other.com", "192.168.1.1").ok(),
            Some(Verdict::Accept)
        );
        match a.check_relay("unknown.example", "192.168.1.1") {
            Ok(Verdict::Reject(r)) => assert_eq!(r.line(), "550 5.7.1 Access denied"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            a.check_relay("", "192.168.4.4"),
            Ok(Verdict::Reject(_))
        ));
        assert_eq!(
            a.check_relay("host.reject.com", "10.0.0.1")
                .ok()
                .map(|v| matches!(v, Verdict::Reject(_))),
            Some(true)
        );
        assert_eq!(
            a.check_relay("nobody.example", "10.0.0.1").ok(),
            Some(Verdict::Continue)
        );
        // To:true.com is a To: entry; it does not affect connections.
        assert_eq!(
            a.check_relay("true.com", "10.0.0.1").ok(),
            Some(Verdict::Continue)
        );
        assert!(
            a.relay_from_client("mx.relay.com", "10.1.1.1")
                .unwrap_or(false)
        );
        assert!(!a.relay_from_client("other.com", "10.1.1.1").unwrap_or(true));
        assert!(!a.relay_to_domain("true.com").unwrap_or(true));
    }

    // docs/sendmail-compat.md §4.4: check_relay order records (name first, then address).
    #[test]
    fn check_relay_lookup_order() {
        let m = Recorder::new(&[]);
        let a = Access::new(&m, AccessOptions::default());
        let _ = a.check_relay("h.example", "10.2.3.4");
        let keys = m.keys();
        assert_eq!(keys.first().map(String::as_str), Some("connect:h.example"));
        assert_eq!(keys.get(4).map(String::as_str), Some("connect:10.2.3.4"));
        let m = Recorder::new(&[]);
        let a = Access::new(&m, AccessOptions::default());
        let _ = a.check_relay("  ", "10.2.3.4");
        assert_eq!(
            m.keys().first().map(String::as_str),
            Some("connect:10.2.3.4")
        );
    }

    // docs/sendmail-compat.md §4.3: DISCARD, QUARANTINE, ERROR and generic values in check rulesets.
    #[test]
    fn verdicts() {
        let m = MemMap::from_pairs([
            ("From:d@x.example", "DISCARD"),
            ("From:q@x.example", "QUARANTINE:look"),
            ("From:e@x.example", "ERROR:4.7.1:451 slow down"),
            ("From:g@x.example", "go away"),
            ("From:n@x.example", ""),
            ("To:ok@x.example", "OK"),
            ("To:f@x.example", "FRIEND"),
        ]);
        let a = Access::new(&m, AccessOptions::default());
        assert_eq!(a.check_mail("<d@x.example>").ok(), Some(Verdict::Discard));
        assert_eq!(
            a.check_mail("<q@x.example>").ok(),
            Some(Verdict::Quarantine("look".into()))
        );
        match a.check_mail("<e@x.example>") {
            Ok(Verdict::Reject(r)) => {
                assert!(r.is_temporary());
                assert_eq!(r.line(), "451 4.7.1 slow down");
            }
            other => panic!("{other:?}"),
        }
        match a.check_mail("<g@x.example>") {
            Ok(Verdict::Reject(r)) => assert_eq!(r.line(), "553 5.3.0 <g@x.example>... go away"),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.check_mail("<n@x.example>").ok(), Some(Verdict::Continue));
        // In the blacklist, OK means "no match".
        assert_eq!(
            a.check_rcpt("<ok@x.example>", false).ok(),
            Some(Verdict::Continue)
        );
        assert!(matches!(
            a.check_rcpt("<f@x.example>", false),
            Ok(Verdict::Reject(_))
        ));
    }

    // docs/sendmail-compat.md §4.2: tag-only lookups and the empty-key default (Srv_Features, GreetPause).
    #[test]
    fn tag_only_and_defaults() {
        let m = MemMap::from_pairs([
            ("GreetPause:slow.example", "5000"),
            ("slow.example", "RELAY"),
            ("GreetPause:", "700"),
            ("Srv_Features:10.1", "S"),
            ("ClientRate:", "10"),
        ]);
        let a = Access::new(&m, AccessOptions::default());
        let gp = |n: &str, ip: &str| {
            a.client_or_default(Tag::GreetPause, n, ip)
                .ok()
                .flatten()
                .and_then(|h| h.value.as_number())
        };
        assert_eq!(gp("a.slow.example", "1.2.3.4"), Some(5000));
        assert_eq!(gp("fast.example", "1.2.3.4"), Some(700));
        let sf = a
            .client_or_default(Tag::SrvFeatures, "", "10.1.9.9")
            .ok()
            .flatten();
        assert_eq!(sf.map(|h| h.raw), Some("S".to_string()));
        assert!(matches!(
            a.client(Tag::SrvFeatures, "", "10.2.9.9"),
            Ok(None)
        ));
        let cr = a.default_entry(Tag::ClientRate).ok().flatten();
        assert_eq!(cr.and_then(|h| h.value.as_number()), Some(10));
    }

    // docs/sendmail-compat.md §4.1: a lookup error surfaces (never "not found") and maps to 451 4.3.0.
    #[test]
    fn failing_map_propagates() {
        let a = Access::new(
            &FailingMap,
            AccessOptions {
                skip: true,
                lookup_dot_domain: true,
            },
        );
        assert!(a.domain(Tag::Connect, "a.example").is_err());
        assert!(a.address(Tag::Connect, "1.2.3.4").is_err());
        assert!(a.check_relay("a.example", "1.2.3.4").is_err());
        assert!(a.check_relay("", "1.2.3.4").is_err());
        assert!(a.check_mail("<a@b>").is_err());
        assert!(a.check_rcpt("<a@b>", true).is_err());
        assert!(a.relay_to_domain("b").is_err());
        assert!(a.default_entry(Tag::ClientConn).is_err());
        match a.check_mail("<a@b>") {
            Err(e) => assert_eq!(
                temp_failure_reply(&e).line(),
                "451 4.3.0 Temporary system failure. Please try again later."
            ),
            Ok(v) => panic!("{v:?}"),
        }
        // Null sender needs no lookup, so no error.
        assert!(matches!(a.check_mail("<>"), Ok(Verdict::Continue)));
    }

    // docs/sendmail-compat.md §4.3: the REJECT texts.
    #[test]
    fn default_texts() {
        assert_eq!(access_denied().line(), "550 5.7.1 Access denied");
        assert_eq!(
            mailbox_disabled("<a@b>").line(),
            "550 5.2.1 <a@b>... Mailbox disabled for this recipient"
        );
    }

    // Robustness: odd input never panics.
    #[test]
    fn odd_input() {
        let m = seed();
        let a = Access::new(
            &m,
            AccessOptions {
                skip: true,
                lookup_dot_domain: true,
            },
        );
        for s in [
            "@",
            "@@",
            "<",
            ">",
            "<@>",
            "a@",
            "@b",
            "é@ü.example",
            "[",
            "[]",
            "[.]",
            "...",
            "::",
            "+@",
            "+",
        ] {
            let _ = a.check_mail(s);
            let _ = a.check_rcpt(s, true);
            let _ = a.check_relay(s, s);
        }
        assert!(matches!(
            a.check_mail("<@reject.com>"),
            Ok(Verdict::Reject(_))
        ));
    }
}
