//! Alias expansion at delivery time (docs/sendmail-compat.md §2.2 RHS items, §2.6).
//!
//! The map holds lower-cased alias names and the raw RHS text (continuations joined, whitespace
//! kept). `:include:` files are read through a caller-supplied function so this module stays
//! pure. Expansion follows sendmail's recipient.c: each address is expanded at most once,
//! every final recipient is delivered once, an alias that lists itself delivers to its own
//! mailbox, and an address more than `MaxAliasRecursion` levels deep fails.

use std::collections::HashSet;

use crate::maps::{Map, MapError};
use crate::reply::Rejection;

/// sendmail's default `MaxAliasRecursion` (confMAX_ALIAS_RECURSION).
pub const MAX_ALIAS_RECURSION: usize = 10;

/// One RHS item (docs/sendmail-compat.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AliasItem {
    /// `user`: a local user; may itself be an alias.
    Local(String),
    /// `/path/file`: append to the file (path kept with its leading `/`).
    File(String),
    /// `|command` or `"|command with spaces"`: the command without the `|`.
    Program(String),
    /// `:include:/path`: read more recipients from the file.
    Include(String),
    /// `user@domain`: forward elsewhere (routed by the caller).
    Remote(String),
    /// `\user`: deliver to `user` without further aliasing.
    NoAlias(String),
}

/// Splits an RHS into items at commas outside double quotes, angle brackets and parentheses;
/// items are trimmed (continuation whitespace included) and empty items dropped.
pub fn split_rhs(rhs: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut angle = 0usize;
    let mut paren = 0usize;
    for c in rhs.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => angle += 1,
            '>' if !in_quotes => angle = angle.saturating_sub(1),
            '(' if !in_quotes => paren += 1,
            ')' if !in_quotes => paren = paren.saturating_sub(1),
            ',' if !in_quotes && angle == 0 && paren == 0 => {
                push_item(&mut items, &cur);
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    push_item(&mut items, &cur);
    items
}

fn push_item(items: &mut Vec<String>, item: &str) {
    let t = item.trim();
    if !t.is_empty() {
        items.push(t.to_string());
    }
}

/// Classifies one item. `(comments)` are dropped and `Name <addr>` gives `addr`; a fully
/// quoted item is dequoted first, so `"|prog arg"` is a program and `"/a b"` a file.
pub fn classify(item: &str) -> Option<AliasItem> {
    let item = strip_comments(item);
    let item = route_addr(&item).unwrap_or(&item).trim();
    let unquoted = dequote(item);
    let s = unquoted.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(user) = s.strip_prefix('\\') {
        return Some(AliasItem::NoAlias(dequote(user.trim())));
    }
    if let Some(cmd) = s.strip_prefix('|') {
        return Some(AliasItem::Program(cmd.trim().to_string()));
    }
    if s.starts_with('/') {
        return Some(AliasItem::File(s.to_string()));
    }
    if let Some(path) = s
        .get(..9)
        .filter(|h| h.eq_ignore_ascii_case(":include:"))
        .and_then(|_| s.get(9..))
    {
        return Some(AliasItem::Include(path.trim().to_string()));
    }
    if has_unquoted_at(item) {
        return Some(AliasItem::Remote(s.to_string()));
    }
    Some(AliasItem::Local(s.to_string()))
}

/// [`split_rhs`] then [`classify`].
pub fn parse_rhs(rhs: &str) -> Vec<AliasItem> {
    split_rhs(rhs).iter().filter_map(|i| classify(i)).collect()
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    for c in s.chars() {
        match c {
            '"' if depth == 0 => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '(' if !in_quotes => depth += 1,
            ')' if !in_quotes && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The text inside `<...>` of `Name <addr>`, if any (outside quotes).
fn route_addr(s: &str) -> Option<&str> {
    let mut in_quotes = false;
    let mut open = None;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => open = Some(i + 1),
            '>' if !in_quotes => return open.and_then(|o| s.get(o..i)),
            _ => {}
        }
    }
    None
}

/// Removes double quotes, keeping `\x` as `x` inside them.
fn dequote(s: &str) -> String {
    if !s.contains('"') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut in_quotes = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quotes = !in_quotes,
            '\\' if in_quotes => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

fn has_unquoted_at(s: &str) -> bool {
    let mut in_quotes = false;
    s.chars().any(|c| {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        c == '@' && !in_quotes
    })
}

/// Looks a local name up with the `+detail` rule (docs/sendmail-compat.md §2.6): `user+detail`, then
/// `user+*`, then `user`; with `preserve_detail` only the first. Returns the matched key and
/// the raw RHS. Names are folded, so `Postmaster` finds `postmaster`.
pub fn lookup_alias(
    map: &dyn Map,
    name: &str,
    preserve_detail: bool,
) -> Result<Option<(String, String)>, MapError> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Ok(None);
    }
    let mut keys = vec![name.clone()];
    if !preserve_detail && let Some((user, _)) = name.split_once('+').filter(|(u, _)| !u.is_empty())
    {
        keys.push(format!("{user}+*"));
        keys.push(user.to_string());
    }
    for key in keys {
        if let Some(v) = map.get(key.as_bytes())? {
            return Ok(Some((key, String::from_utf8_lossy(&v).into_owned())));
        }
    }
    Ok(None)
}

/// The `owner-x` alias of list `x` (docs/sendmail-compat.md §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Where delivery errors for the list go: the alias `owner-x`.
    pub errors_to: String,
    /// The envelope sender for the expanded message: the owner's single address, or the
    /// string `owner-x` when its value is a list or a file/program (alias.c checks for any of
    /// `,:/|"`).
    pub envelope_sender: String,
}

/// Finds `owner-<name>`; `None` when the list has no owner alias.
pub fn owner_of(map: &dyn Map, name: &str) -> Result<Option<Owner>, MapError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let owner_alias = format!("owner-{}", name.to_ascii_lowercase());
    let Some(value) = map.get(owner_alias.as_bytes())? else {
        return Ok(None);
    };
    let value = String::from_utf8_lossy(&value);
    let value = value.trim();
    let envelope_sender = if value.is_empty() || value.contains([',', ':', '/', '|', '"']) {
        owner_alias.clone()
    } else {
        value.to_string()
    };
    Ok(Some(Owner {
        errors_to: owner_alias,
        envelope_sender,
    }))
}

/// A final recipient after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// A local mailbox (lower-cased, as the local mailer has no `u` flag; `+detail` kept).
    Local(String),
    File(String),
    Program(String),
    Remote(String),
}

/// An address that could not be expanded; the rest of the expansion goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The address as written (e.g. `deep11`, `:include:/x`).
    pub address: String,
    pub reply: Rejection,
}

/// The result of expanding one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Each final recipient once, in the order first reached.
    pub recipients: Vec<Recipient>,
    pub failures: Vec<Failure>,
    /// Whether the top address was an alias (false: deliver it as it is).
    pub aliased: bool,
}

/// Expansion settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandOptions {
    /// MaxAliasRecursion (default 10).
    pub max_depth: usize,
    /// FEATURE(`preserve_local_plus_detail`): only `user+detail` is looked up.
    pub preserve_detail: bool,
}

impl Default for ExpandOptions {
    fn default() -> Self {
        Self {
            max_depth: MAX_ALIAS_RECURSION,
            preserve_detail: false,
        }
    }
}

/// Reads an `:include:` file: `Ok(text)` or `Err(reason)` such as "No such file or directory".
pub type IncludeReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// `554 5.4.6 aliasing/forwarding loop broken (N aliases deep; M max)`.
pub fn loop_reply(depth: usize, max: usize) -> Rejection {
    Rejection::new(
        554,
        "5.4.6",
        format!("aliasing/forwarding loop broken ({depth} aliases deep; {max} max)"),
    )
}

/// Expands one local address (a name such as `staff` or `\root`). A remote, file or program
/// address is returned as it is.
pub fn expand(
    map: &dyn Map,
    address: &str,
    opts: ExpandOptions,
    include: IncludeReader<'_>,
) -> Result<Expansion, MapError> {
    let mut ex = Expander {
        map,
        opts,
        include,
        expanded: HashSet::new(),
        delivered: HashSet::new(),
        out: Expansion::default(),
    };
    if let Some(item) = classify(address) {
        ex.out.aliased = ex.visit(&item, address.trim(), 0)?;
    }
    Ok(ex.out)
}

struct Expander<'a> {
    map: &'a dyn Map,
    opts: ExpandOptions,
    include: IncludeReader<'a>,
    /// Aliases and include files already expanded: a second visit is a duplicate (loop).
    expanded: HashSet<String>,
    delivered: HashSet<Recipient>,
    out: Expansion,
}

impl Expander<'_> {
    /// Processes one address at alias level `level`; returns whether it was expanded.
    fn visit(&mut self, item: &AliasItem, written: &str, level: usize) -> Result<bool, MapError> {
        if level > self.opts.max_depth {
            self.out.failures.push(Failure {
                address: written.to_string(),
                reply: loop_reply(level, self.opts.max_depth).with_addr(written),
            });
            return Ok(false);
        }
        match item {
            AliasItem::Local(name) => self.visit_local(name, level),
            AliasItem::NoAlias(name) => {
                self.deliver(Recipient::Local(name.to_ascii_lowercase()));
                Ok(false)
            }
            AliasItem::File(p) => {
                self.deliver(Recipient::File(p.clone()));
                Ok(false)
            }
            AliasItem::Program(c) => {
                self.deliver(Recipient::Program(c.clone()));
                Ok(false)
            }
            AliasItem::Remote(a) => {
                self.deliver(Recipient::Remote(a.clone()));
                Ok(false)
            }
            AliasItem::Include(path) => self.visit_include(path, written, level),
        }
    }

    fn visit_local(&mut self, name: &str, level: usize) -> Result<bool, MapError> {
        let folded = name.to_ascii_lowercase();
        let Some((_key, rhs)) = lookup_alias(self.map, &folded, self.opts.preserve_detail)? else {
            self.deliver(Recipient::Local(folded));
            return Ok(false);
        };
        // Duplicate suppression: an alias already expanded in this run adds nothing again.
        // This is what breaks loops such as `a: b` / `b: a`.
        if !self.expanded.insert(format!("alias:{folded}")) {
            return Ok(true);
        }
        for raw in split_rhs(&rhs) {
            let Some(item) = classify(&raw) else { continue };
            // An alias that lists itself delivers to its own mailbox (recipient.c QSELFREF),
            // e.g. `eric: eric, eric-archive`.
            if matches!(&item, AliasItem::Local(n) if n.eq_ignore_ascii_case(&folded)) {
                self.deliver(Recipient::Local(folded.clone()));
                continue;
            }
            self.visit(&item, &raw, level + 1)?;
        }
        Ok(true)
    }

    fn visit_include(&mut self, path: &str, written: &str, level: usize) -> Result<bool, MapError> {
        if !self.expanded.insert(format!("include:{path}")) {
            return Ok(true);
        }
        let text = match (self.include)(path) {
            Ok(t) => t,
            Err(why) => {
                self.out.failures.push(Failure {
                    address: written.to_string(),
                    reply: Rejection::new(550, "5.2.4", format!("Cannot open {path}: {why}"))
                        .with_addr(written),
                });
                return Ok(false);
            }
        };
        // One or more comma-separated addresses per line; `#` in the first column is a comment.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            for raw in split_rhs(line) {
                if let Some(item) = classify(&raw) {
                    self.visit(&item, &raw, level + 1)?;
                }
            }
        }
        Ok(true)
    }

    fn deliver(&mut self, r: Recipient) {
        if self.delivered.insert(r.clone()) {
            self.out.recipients.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{FailingMap, MemMap};

    fn no_include(path: &str) -> Result<String, String> {
        Err(format!("{path}: no include files in this test"))
    }

    fn run(map: &MemMap, addr: &str) -> Expansion {
        match expand(map, addr, ExpandOptions::default(), &no_include) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    fn local(s: &str) -> Recipient {
        Recipient::Local(s.into())
    }

    // docs/sendmail-compat.md §2.2: RHS split respecting quotes and continuation whitespace.
    #[test]
    fn split_items() {
        assert_eq!(
            split_rhs("who@example1.com,\n\t\texample"),
            ["who@example1.com", "example"]
        );
        assert_eq!(
            split_rhs("\"|/bin/prog a,b\", x"),
            ["\"|/bin/prog a,b\"", "x"]
        );
        assert_eq!(split_rhs(" , ,a,, "), ["a"]);
        assert_eq!(split_rhs(""), Vec::<String>::new());
        assert_eq!(
            split_rhs("Doe, John <jd@x> , y"),
            ["Doe", "John <jd@x>", "y"]
        );
        assert_eq!(
            split_rhs("\"Doe, John\" <jd@x>, y"),
            ["\"Doe, John\" <jd@x>", "y"]
        );
        assert_eq!(split_rhs("a (c, d), b"), ["a (c, d)", "b"]);
        assert_eq!(split_rhs("\"unterminated, x"), ["\"unterminated, x"]);
    }

    // docs/sendmail-compat.md §2.2: item classification.
    #[test]
    fn classify_items() {
        assert_eq!(classify("root"), Some(AliasItem::Local("root".into())));
        assert_eq!(
            classify("/var/log/mail.arch"),
            Some(AliasItem::File("/var/log/mail.arch".into()))
        );
        assert_eq!(
            classify("|/usr/bin/vacation joe"),
            Some(AliasItem::Program("/usr/bin/vacation joe".into()))
        );
        assert_eq!(
            classify("\"|/usr/bin/prog with spaces\""),
            Some(AliasItem::Program("/usr/bin/prog with spaces".into()))
        );
        assert_eq!(
            classify("|exit 67"),
            Some(AliasItem::Program("exit 67".into()))
        );
        assert_eq!(
            classify(":include:/etc/mail/staff.list"),
            Some(AliasItem::Include("/etc/mail/staff.list".into()))
        );
        assert_eq!(
            classify(":INCLUDE: /x"),
            Some(AliasItem::Include("/x".into()))
        );
        assert_eq!(
            classify("who@example1.com"),
            Some(AliasItem::Remote("who@example1.com".into()))
        );
        assert_eq!(classify("\\joe"), Some(AliasItem::NoAlias("joe".into())));
        assert_eq!(
            classify("John Doe <jd@example.com>"),
            Some(AliasItem::Remote("jd@example.com".into()))
        );
        assert_eq!(
            classify("jd@example.com (John)"),
            Some(AliasItem::Remote("jd@example.com".into()))
        );
        assert_eq!(classify("\"a@b\""), Some(AliasItem::Local("a@b".into())));
        assert_eq!(
            classify("\"/tmp/a b\""),
            Some(AliasItem::File("/tmp/a b".into()))
        );
        assert_eq!(classify(""), None);
        assert_eq!(classify("  "), None);
        assert_eq!(classify("\"\""), None);
        assert_eq!(classify("()"), None);
        // error: is not special in aliases (docs/sendmail-compat.md §2.2): it is just a name here.
        assert!(matches!(
            classify("error:nouser"),
            Some(AliasItem::Local(_))
        ));
    }

    // docs/sendmail-compat.md §2.6: the seed aliases expand recursively.
    #[test]
    fn seed_aliases() {
        let m = MemMap::from_pairs([
            ("postmaster", "root"),
            ("MAILER-DAEMON", "postmaster"),
            ("abuse", "postmaster"),
            ("staff", "who@example1.com,\n\t\texample"),
        ]);
        let e = run(&m, "MAILER-DAEMON");
        assert!(e.aliased);
        assert_eq!(e.recipients, [local("root")]);
        let e = run(&m, "staff");
        assert_eq!(
            e.recipients,
            [
                Recipient::Remote("who@example1.com".into()),
                local("example")
            ]
        );
        let e = run(&m, "nobody");
        assert!(!e.aliased);
        assert_eq!(e.recipients, [local("nobody")]);
    }

    // docs/sendmail-compat.md §2.6: postmaster is case-insensitive.
    #[test]
    fn postmaster_case() {
        let m = MemMap::from_pairs([("postmaster", "root")]);
        assert_eq!(run(&m, "PostMaster").recipients, [local("root")]);
        assert_eq!(run(&m, "POSTMASTER").recipients, [local("root")]);
    }

    // docs/sendmail-compat.md §2.6: duplicate suppression, each final recipient once.
    #[test]
    fn duplicates_suppressed() {
        let m = MemMap::from_pairs([
            ("list", "a, b, c, a"),
            ("a", "joe, /tmp/f"),
            ("b", "joe, \"|prog\""),
            ("c", "JOE, \\joe, /tmp/f"),
        ]);
        let e = run(&m, "list");
        assert_eq!(
            e.recipients,
            [
                local("joe"),
                Recipient::File("/tmp/f".into()),
                Recipient::Program("prog".into())
            ]
        );
        assert!(e.failures.is_empty());
    }

    // docs/sendmail-compat.md §2.6: loops are broken by duplicate suppression.
    #[test]
    fn loops_broken() {
        let m = MemMap::from_pairs([("a", "b"), ("b", "a")]);
        let e = run(&m, "a");
        assert!(e.recipients.is_empty());
        assert!(e.failures.is_empty());
        let m = MemMap::from_pairs([("a", "b, x"), ("b", "a, y")]);
        assert_eq!(run(&m, "a").recipients, [local("y"), local("x")]);
    }

    // docs/sendmail-compat.md §2.6 (recipient.c self reference): an alias listing itself keeps a copy.
    #[test]
    fn self_reference() {
        let m = MemMap::from_pairs([("eric", "eric, eric-archive"), ("tom", "\\tom, log")]);
        assert_eq!(
            run(&m, "eric").recipients,
            [local("eric"), local("eric-archive")]
        );
        assert_eq!(run(&m, "tom").recipients, [local("tom"), local("log")]);
    }

    // docs/sendmail-compat.md §2.6: depth > MaxAliasRecursion fails with 554 5.4.6.
    #[test]
    fn depth_limit() {
        // a0 -> a1 -> ... -> a11 -> end: a11 sits 11 levels deep.
        let mut pairs: Vec<(String, String)> = (0..12)
            .map(|i| (format!("a{i}"), format!("a{}", i + 1)))
            .collect();
        pairs.push(("a12".into(), "end".into()));
        let m = MemMap::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let e = run(&m, "a0");
        assert!(e.recipients.is_empty());
        assert_eq!(e.failures.len(), 1);
        assert_eq!(e.failures[0].address, "a11");
        assert_eq!(
            e.failures[0].reply.line(),
            "554 5.4.6 aliasing/forwarding loop broken (11 aliases deep; 10 max)"
        );
        // Exactly at the limit is fine: b10 (level 10) is delivered as a plain user.
        let pairs: Vec<(String, String)> = (0..10)
            .map(|i| (format!("b{i}"), format!("b{}", i + 1)))
            .collect();
        let m = MemMap::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let e = run(&m, "b0");
        assert_eq!(e.recipients, [local("b10")]);
        assert!(e.failures.is_empty());
        // A smaller limit.
        let opts = ExpandOptions {
            max_depth: 1,
            ..Default::default()
        };
        let e = expand(&m, "b0", opts, &no_include).unwrap_or_default();
        assert_eq!(e.failures.len(), 1);
        assert!(
            e.failures[0]
                .reply
                .line()
                .contains("(2 aliases deep; 1 max)")
        );
    }

    // docs/sendmail-compat.md §2.6: user+detail tries user+detail, user+*, user.
    #[test]
    fn plus_detail() {
        let m = MemMap::from_pairs([("joe", "joe-box"), ("ann+*", "ann-any"), ("ann+x", "ann-x")]);
        assert_eq!(run(&m, "joe+list").recipients, [local("joe-box")]);
        assert_eq!(run(&m, "ann+x").recipients, [local("ann-x")]);
        assert_eq!(run(&m, "ann+y").recipients, [local("ann-any")]);
        assert_eq!(run(&m, "ann+").recipients, [local("ann-any")]);
        // Not an alias at all: delivered with its detail.
        assert_eq!(run(&m, "bob+z").recipients, [local("bob+z")]);
        // preserve_local_plus_detail: only the full key.
        let opts = ExpandOptions {
            preserve_detail: true,
            ..Default::default()
        };
        let e = expand(&m, "joe+list", opts, &no_include).unwrap_or_default();
        assert_eq!(e.recipients, [local("joe+list")]);
        let found = lookup_alias(&m, "Joe+List", false).ok().flatten();
        assert_eq!(found, Some(("joe".into(), "joe-box".into())));
        assert_eq!(lookup_alias(&m, "+x", false).ok().flatten(), None);
        assert_eq!(lookup_alias(&m, "", false).ok().flatten(), None);
    }

    // docs/sendmail-compat.md §2.2: :include: files, one or more addresses per line, # comments.
    #[test]
    fn include_files() {
        let m = MemMap::from_pairs([
            ("staff", ":include:/etc/mail/staff, boss"),
            ("boss", "carol"),
        ]);
        let reader = |path: &str| -> Result<String, String> {
            match path {
                "/etc/mail/staff" => Ok(
                    "# the staff\nann, bob\n\ncarol@example.com\nboss\n:include:/etc/mail/staff\n"
                        .into(),
                ),
                _ => Err("No such file or directory".into()),
            }
        };
        let e = expand(&m, "staff", ExpandOptions::default(), &reader).unwrap_or_default();
        assert_eq!(
            e.recipients,
            [
                local("ann"),
                local("bob"),
                Recipient::Remote("carol@example.com".into()),
                local("carol")
            ]
        );
        assert!(e.failures.is_empty());
        let m = MemMap::from_pairs([("list", ":include:/missing, ann")]);
        let e = expand(&m, "list", ExpandOptions::default(), &reader).unwrap_or_default();
        assert_eq!(e.recipients, [local("ann")]);
        assert_eq!(
            e.failures[0].reply.line(),
            "550 5.2.4 :include:/missing... Cannot open /missing: No such file or directory"
        );
    }

    // docs/sendmail-compat.md §2.6: \user is not aliased further; top-level non-local items pass through.
    #[test]
    fn no_alias_and_passthrough() {
        let m = MemMap::from_pairs([("root", "admin")]);
        assert_eq!(run(&m, "\\root").recipients, [local("root")]);
        assert_eq!(
            run(&m, "x@example.com").recipients,
            [Recipient::Remote("x@example.com".into())]
        );
        assert_eq!(run(&m, "").recipients, []);
    }

    // docs/sendmail-compat.md §2.6: owner-x gives errors-to and the envelope sender.
    #[test]
    fn owner_aliases() {
        let m = MemMap::from_pairs([
            ("owner-list", "list-request"),
            ("owner-multi", "a, b"),
            ("owner-prog", "|/bin/handler"),
        ]);
        assert_eq!(
            owner_of(&m, "List").ok().flatten(),
            Some(Owner {
                errors_to: "owner-list".into(),
                envelope_sender: "list-request".into()
            })
        );
        let multi = owner_of(&m, "multi")
            .ok()
            .flatten()
            .map(|o| o.envelope_sender);
        assert_eq!(multi.as_deref(), Some("owner-multi"));
        let prog = owner_of(&m, "prog")
            .ok()
            .flatten()
            .map(|o| o.envelope_sender);
        assert_eq!(prog.as_deref(), Some("owner-prog"));
        assert_eq!(owner_of(&m, "none").ok().flatten(), None);
        assert_eq!(owner_of(&m, "").ok().flatten(), None);
    }

    // docs/sendmail-compat.md §4.1-style propagation: map errors surface, never "not an alias".
    #[test]
    fn failing_map() {
        assert!(expand(&FailingMap, "root", ExpandOptions::default(), &no_include).is_err());
        assert!(lookup_alias(&FailingMap, "root", false).is_err());
        assert!(owner_of(&FailingMap, "list").is_err());
        // Items that need no lookup still expand.
        let e = expand(&FailingMap, "\\root", ExpandOptions::default(), &no_include);
        assert!(e.is_ok());
    }
}
