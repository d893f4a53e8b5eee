//! virtusertable semantics (FEATURE(`virtusertable'), docs/sendmail-compat.md §5).
//!
//! The caller decides whether the domain qualifies (class w or VirtHost, §5.1); this module
//! does the seven-step lookup of §5.2, the `%n` substitution of §5.3 and the result handling of
//! §5.4. Keys are folded to lower case for the lookup; `%0`–`%9` keep the case of the address.

use crate::maps::{Map, MapError};
use crate::reply::Rejection;

/// What a matched entry means (docs/sendmail-compat.md §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtResult {
    /// Re-parse this address (local user, another virtual address, or a remote forward). This
    /// includes the bare `550 text` form, which sendmail reads as an address.
    Address(String),
    /// An `error:` value: reject with `reply`. `status` is the `$@` part (a D.S.N or a word such
    /// as `nouser`), kept for the delivery status; it does not change the SMTP reply text.
    Error { reply: Rejection, status: String },
}

/// A matched entry: the key that matched, the raw value, and the value after substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtHit {
    pub key: String,
    pub raw: String,
    pub expanded: String,
    pub result: VirtResult,
}

/// One step of the lookup order: the key and its `%1`.. arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub args: Vec<String>,
}

/// The keys tried for `local@domain`, in order (docs/sendmail-compat.md §5.2). Keys are not yet folded.
pub fn candidates(local: &str, domain: &str) -> Vec<Candidate> {
    let cand = |key: String, args: &[&str]| Candidate {
        key,
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    // `+` splits at its first occurrence; proto.m4's `$+ + $*` needs a non-empty user part.
    let Some((user, detail)) = local.split_once('+').filter(|(u, _)| !u.is_empty()) else {
        return vec![
            cand(format!("{local}@{domain}"), &[local]),
            cand(format!("@{domain}"), &[local]),
        ];
    };
    let plus_detail = format!("+{detail}");
    let args = [user, detail, plus_detail.as_str()];
    let mut out = vec![cand(format!("{local}@{domain}"), &[local])];
    if !detail.is_empty() {
        out.push(cand(format!("{user}++@{domain}"), &args));
    }
    out.push(cand(format!("{user}+*@{domain}"), &args));
    out.push(cand(format!("{user}@{domain}"), &args));
    if !detail.is_empty() {
        out.push(cand(format!("++@{domain}"), &args));
    }
    out.push(cand(format!("+*@{domain}"), &args));
    out.push(cand(format!("@{domain}"), &args));
    out
}

/// Looks `local@domain` up; first match wins (docs/sendmail-compat.md §5.2). A trailing dot on the
/// domain is ignored. A map error is returned, never taken as "no match".
pub fn lookup(map: &dyn Map, local: &str, domain: &str) -> Result<Option<VirtHit>, MapError> {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return Ok(None);
    }
    let reply_addr = format!("<{local}@{domain}>");
    let cands = candidates(local, domain);
    let keys: Vec<String> = cands.iter().map(|c| c.key.to_ascii_lowercase()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    // One round trip for a map in a backend; a map file stops at the first hit.
    if let Some((i, raw)) = map.get_first(&refs)? {
        let cand = &cands[i];
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let args: Vec<&str> = cand.args.iter().map(String::as_str).collect();
        let expanded = expand(&raw, &cand.key, &args);
        let result = interpret(&expanded, &reply_addr);
        return Ok(Some(VirtHit {
            key: cand.key.clone(),
            raw,
            expanded,
            result,
        }));
    }
    Ok(None)
}

/// [`lookup`] for `local@domain` given as one string (angle brackets allowed). An address
/// without `@` has no domain and therefore no virtusertable entry.
pub fn lookup_address(map: &dyn Map, address: &str) -> Result<Option<VirtHit>, MapError> {
    let a = address.trim();
    let a = a
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(a);
    match a.rsplit_once('@') {
        Some((local, domain)) => lookup(map, local, domain),
        None => Ok(None),
    }
}

/// map_rewrite: `%0` is the key, `%1`..`%9` the arguments (missing → empty), `%%` is `%`,
/// `%x` for a non-digit x stays `%x`, a trailing lone `%` stays (docs/sendmail-compat.md §5.3).
pub fn expand(value: &str, key: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None | Some('%') => out.push('%'),
            Some(d @ '0'..='9') => {
                let n = usize::from(d as u8 - b'0');
                let arg = if n == 0 {
                    Some(key)
                } else {
                    args.get(n - 1).copied()
                };
                out.push_str(arg.unwrap_or(""));
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
}

/// Interprets an (expanded) value (docs/sendmail-compat.md §5.4). `addr` is attached to error replies
/// (the address looked up, e.g. `<joe@bar.com>`; callers may replace it with the RCPT argument
/// as typed via [`Rejection::with_addr`]).
pub fn interpret(value: &str, addr: &str) -> VirtResult {
    match parse_error(value) {
        Some((status, text)) => VirtResult::Error {
            reply: Rejection::from_error(Some(&status), text).with_addr(addr),
            status,
        },
        None => VirtResult::Address(value.trim().to_string()),
    }
}

/// The two proto.m4 rules, in order:
/// `R< error : $-.$-.$- : $+ >` → `$@ D.S.N $: text`, and
/// `R< error : $- $+ >` → `$@ dequote(word) $: text`.
/// Both need non-empty text; otherwise the value is an address.
fn parse_error(value: &str) -> Option<(String, &str)> {
    let v = value.trim_start();
    let rest = v.get(..5).filter(|h| h.eq_ignore_ascii_case("error"))?;
    let rest = v
        .get(rest.len()..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some((dsn, text)) = rest.split_once(':')
        && is_dotted_triple(dsn.trim())
        && !text.trim().is_empty()
    {
        return Some((dsn.trim().to_string(), text));
    }
    let (word, text) = split_word(rest)?;
    (!text.trim().is_empty()).then_some((word, text))
}

/// `$-.$-.$-`: three single tokens joined by dots (any tokens, as the rule does not check
/// digits; [`Rejection::from_error`] only uses it as a D.S.N when it is one).
fn is_dotted_triple(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').map(str::trim).collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| crate::maps::access::is_single_token(p))
}

/// `$-`: one token. A quoted string is one token and is dequoted; otherwise the word ends at
/// a blank or an operator character, as sendmail's tokenizer would end it.
fn split_word(s: &str) -> Option<(String, &str)> {
    if let Some(inner) = s.strip_prefix('"') {
        let end = inner.find('"')?;
        return Some((inner.get(..end)?.to_string(), inner.get(end + 1..)?));
    }
    let end = s
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || ".:%@!^/[]+()<>,;\\\"".contains(c))
        .map_or(s.len(), |(i, _)| i);
    let word = s.get(..end)?;
    if word.is_empty() {
        // An operator character is a token of its own.
        let first = s.chars().next()?;
        return Some((first.to_string(), s.get(first.len_utf8()..)?));
    }
    Some((word.to_string(), s.get(end..)?))
}

/// A warning for values that do not do what they seem to, for makemap and doctor; `None` when
/// the value is fine.
pub fn lint_value(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return Some("empty value: the entry matches but gives no address".into());
    }
    if crate::reply::split_smtp_code(v).is_some()
        || (v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!(
            "`{v}` looks like an SMTP reply but lacks `error:`; sendmail treats it as an address \
             (write `error:nouser {v}` or `error:5.1.1:{v}`)"
        ));
    }
    let looks_like_error = v.get(..6).is_some_and(|h| h.eq_ignore_ascii_case("error:"));
    if looks_like_error && parse_error(v).is_none() {
        return Some(format!(
            "`{v}` has `error:` but no reply text; sendmail treats it as an address"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{FailingMap, MemMap};

    /// The cf/README example table (docs/sendmail-compat.md §5.4), plus `@bar.org %1%3` (§5.3).
    fn readme() -> MemMap {
        MemMap::from_pairs([
            ("info@foo.com", "foo-info"),
            ("info@bar.com", "bar-info"),
            ("joe@bar.com", "error:nouser 550 No such user here"),
            ("jax@bar.com", "error:5.7.0:550 Address invalid"),
            ("@baz.org", "jane@example.net"),
            ("@foo.org", "%1@example.com"),
            ("@bar.org", "%1%3"),
        ])
    }

    fn get(m: &dyn Map, addr: &str) -> Option<VirtResult> {
        lookup_address(m, addr).ok().flatten().map(|h| h.result)
    }

    fn address(s: &str) -> Option<VirtResult> {
        Some(VirtResult::Address(s.into()))
    }

    fn reply_line(r: Option<VirtResult>) -> String {
        match r {
            Some(VirtResult::Error { reply, .. }) => reply.line(),
            other => panic!("not an error: {other:?}"),
        }
    }

    // cf/README "virtusertable" example (docs/sendmail-compat.md §5.4): `info@foo.com foo-info`.
    #[test]
    fn readme_plain_forward() {
        assert_eq!(get(&readme(), "info@foo.com"), address("foo-info"));
        assert_eq!(get(&readme(), "<INFO@Foo.COM>"), address("foo-info"));
    }

    // cf/README "virtusertable" example (docs/sendmail-compat.md §5.4): `joe@bar.com error:nouser 550 No such user here`.
    #[test]
    fn readme_nouser_550() {
        let r = get(&readme(), "joe@bar.com");
        assert!(matches!(&r, Some(VirtResult::Error { status, .. }) if status == "nouser"));
        assert_eq!(
            reply_line(r),
            "550 5.0.0 <joe@bar.com>... No such user here"
        );
    }

    // cf/README "virtusertable" example (docs/sendmail-compat.md §5.4): `jax@bar.com error:5.7.0:550 Address invalid`.
    #[test]
    fn readme_dsn_form() {
        assert_eq!(
            reply_line(get(&readme(), "jax@bar.com")),
            "550 5.7.0 <jax@bar.com>... Address invalid"
        );
    }

    // cf/README "virtusertable" example (docs/sendmail-compat.md §5.4): `@baz.org jane@example.net` catch-all.
    #[test]
    fn readme_catch_all() {
        assert_eq!(
            get(&readme(), "anyone@baz.org"),
            address("jane@example.net")
        );
        assert_eq!(get(&readme(), "a+b@baz.org"), address("jane@example.net"));
    }

    // cf/README "virtusertable" example (docs/sendmail-compat.md §5.4): `@foo.org %1@example.com` (case of %1 kept).
    #[test]
    fn readme_percent_one() {
        assert_eq!(get(&readme(), "Bob@foo.org"), address("Bob@example.com"));
        // With +detail, %1 is the user part without the detail.
        assert_eq!(get(&readme(), "bob+x@foo.org"), address("bob@example.com"));
    }

    // docs/sendmail-compat.md §5.3: `@bar.org %1%3` keeps +detail on a catch-all.
    #[test]
    fn readme_keep_detail() {
        assert_eq!(get(&readme(), "bob+list@bar.org"), address("bob+list"));
        assert_eq!(get(&readme(), "bob@bar.org"), address("bob"));
        assert_eq!(get(&readme(), "bob+@bar.org"), address("bob+"));
    }

    // docs/sendmail-compat.md §5.2: the seven-step order with +detail.
    #[test]
    fn order_with_detail() {
        let keys: Vec<String> = candidates("u+x", "d").into_iter().map(|c| c.key).collect();
        assert_eq!(
            keys,
            ["u+x@d", "u++@d", "u+*@d", "u@d", "++@d", "+*@d", "@d"]
        );
        let c = candidates("u+x", "d");
        assert_eq!(c[0].args, ["u+x"]);
        assert_eq!(c[1].args, ["u", "x", "+x"]);
        // Empty detail: the `++` steps are skipped.
        let keys: Vec<String> = candidates("u+", "d").into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["u+@d", "u+*@d", "u@d", "+*@d", "@d"]);
        // No +: two steps.
        let keys: Vec<String> = candidates("u", "d").into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["u@d", "@d"]);
        // Leading +: no user part, so no +detail steps.
        let keys: Vec<String> = candidates("+x", "d").into_iter().map(|c| c.key).collect();
        assert_eq!(keys, ["+x@d", "@d"]);
    }

    // docs/sendmail-compat.md §5.2: `+` needs a non-empty detail, `*` also matches an empty one.
    #[test]
    fn plus_wildcards() {
        let m = MemMap::from_pairs([("++@d.example", "plus"), ("+*@d.example", "star")]);
        assert_eq!(get(&m, "u+x@d.example"), address("plus"));
        assert_eq!(get(&m, "u+@d.example"), address("star"));
        assert_eq!(get(&m, "u@d.example"), None);
        let m = MemMap::from_pairs([("u+*@d.example", "%1 %2 %3 %4 %0")]);
        assert_eq!(get(&m, "u+x@d.example"), address("u x +x  u+*@d.example"));
        // First match wins: the literal address before everything else.
        let m = MemMap::from_pairs([("u+x@d.example", "literal"), ("u@d.example", "user")]);
        assert_eq!(get(&m, "u+x@d.example"), address("literal"));
        assert_eq!(get(&m, "u+y@d.example"), address("user"));
    }

    // docs/sendmail-compat.md §5.3: %% , %x, missing args, trailing %.
    #[test]
    fn substitutions() {
        assert_eq!(expand("%1-%2-%9", "k", &["a"]), "a--");
        assert_eq!(expand("100%%", "k", &[]), "100%");
        assert_eq!(expand("%x%", "k", &[]), "%x%");
        assert_eq!(expand("%0", "key", &[]), "key");
        assert_eq!(expand("é%1ü", "k", &["ö"]), "éöü");
        assert_eq!(expand("", "k", &[]), "");
    }

    // docs/sendmail-compat.md §5.4: error: without a 3-digit code gives 553 5.3.0; 4xx is temporary.
    #[test]
    fn error_forms() {
        let m = MemMap::from_pairs([
            ("a@d.example", "error:nouser User unknown"),
            ("b@d.example", "error:tempfail 451 try later"),
            ("c@d.example", "ERROR:\"5.1.1\" 550 gone"),
            ("e@d.example", "error:nouser"),
            ("f@d.example", "error : 5.2.2 : 452 full"),
            ("g@d.example", "error:nouser \"550 a   b\""),
            ("h@d.example", "error:nouser 550 5.1.1 own code"),
        ]);
        assert_eq!(
            reply_line(get(&m, "a@d.example")),
            "553 5.3.0 <a@d.example>... User unknown"
        );
        match get(&m, "b@d.example") {
            Some(VirtResult::Error { reply, .. }) => {
                assert!(reply.is_temporary());
                assert_eq!(reply.line(), "451 4.0.0 try later");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            reply_line(get(&m, "c@d.example")),
            "550 5.1.1 <c@d.example>... gone"
        );
        // No text: not an error, an address.
        assert_eq!(get(&m, "e@d.example"), address("error:nouser"));
        assert_eq!(reply_line(get(&m, "f@d.example")), "452 5.2.2 full");
        assert_eq!(
            reply_line(get(&m, "g@d.example")),
            "550 5.0.0 <g@d.example>... a   b"
        );
        assert_eq!(
            reply_line(get(&m, "h@d.example")),
            "550 5.1.1 <h@d.example>... own code"
        );
    }

    // docs/sendmail-compat.md §5.4: a bare `550 text` is an address, and lint_value flags it.
    #[test]
    fn bare_550_is_an_address() {
        // The seed guide's line (fixtures README) and the fixture's corrected form.
        let guide = MemMap::from_pairs([("@example2.com", "550 error-message")]);
        assert_eq!(get(&guide, "x@example2.com"), address("550 error-message"));
        let fixture = MemMap::from_pairs([("@example2.com", "error:nouser 550 error-message")]);
        assert_eq!(
            reply_line(get(&fixture, "x@example2.com")),
            "550 5.0.0 <x@example2.com>... error-message"
        );
        let w = lint_value("550 error-message").unwrap_or_default();
        assert!(
            w.contains("lacks `error:`") && w.contains("sendmail treats it as an address"),
            "{w}"
        );
        assert!(lint_value("550").is_some());
        assert!(lint_value("error:nouser 550 error-message").is_none());
        assert!(lint_value("error:5.7.0:550 Address invalid").is_none());
        assert!(lint_value("foo-info").is_none());
        assert!(lint_value("%1%3").is_none());
        assert!(lint_value("error:nouser").is_some());
        assert!(lint_value("").is_some());
    }

    // docs/sendmail-compat.md §5.2 with the seed virtusertable.
    #[test]
    fn seed_table() {
        let m = MemMap::from_pairs([
            ("who@example1.com", "who@overthere.com"),
            ("@example1.com", "example"),
            ("@example2.com", "error:nouser 550 error-message"),
        ]);
        assert_eq!(get(&m, "who@example1.com"), address("who@overthere.com"));
        assert_eq!(get(&m, "Who+x@EXAMPLE1.com."), address("who@overthere.com"));
        assert_eq!(get(&m, "else@example1.com"), address("example"));
        assert_eq!(get(&m, "x@example3.com"), None);
    }

    // Edge cases: no @, empty parts, FailingMap propagation.
    #[test]
    fn edges() {
        let m = readme();
        assert_eq!(get(&m, "nobody"), None);
        assert_eq!(get(&m, "x@"), None);
        assert_eq!(get(&m, "@baz.org"), address("jane@example.net"));
        assert_eq!(get(&m, ""), None);
        assert!(lookup_address(&FailingMap, "a@b").is_err());
        assert!(lookup(&FailingMap, "a+b", "c").is_err());
        let hit = lookup_address(&m, "bob@foo.org").ok().flatten();
        assert_eq!(
            hit.map(|h| (h.key, h.raw)),
            Some(("@foo.org".into(), "%1@example.com".into()))
        );
    }
}
