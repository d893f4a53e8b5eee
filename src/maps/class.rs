//! Class files and class matching (docs/sendmail-compat.md §6.1, §6.2), and the seed's `localip`/`popip`
//! relay rules (seed/poprelay.mc).
//!
//! Parsing takes the file text, not a path, so this module does no I/O.

use std::collections::BTreeSet;

use crate::maps::{Map, MapError};

/// The members of one class, folded to lower case (class matching is case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassList {
    members: BTreeSet<String>,
}

impl ClassList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses class-file text the way readcf.c fileclass does: a line whose first character is
    /// `#` is skipped; every whitespace-separated word of the other lines is a member. A `#`
    /// later in a line is not a comment (sendmail only checks the first column).
    pub fn parse(text: &str) -> Self {
        let mut list = Self::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            for word in line.split_whitespace() {
                list.insert(word);
            }
        }
        list
    }

    /// Adds a member (as `LOCAL_DOMAIN()` / `RELAY_DOMAIN()` do).
    pub fn insert(&mut self, word: &str) {
        if !word.is_empty() {
            self.members.insert(word.to_ascii_lowercase());
        }
    }

    /// Exact, case-insensitive membership.
    pub fn contains(&self, word: &str) -> bool {
        self.members.contains(&word.to_ascii_lowercase())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, folded, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }
}

impl<'a> FromIterator<&'a str> for ClassList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut list = Self::new();
        for w in iter {
            list.insert(w);
        }
        list
    }
}

/// Class w (local-host-names): exact membership only (docs/sendmail-compat.md §6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassW(pub ClassList);

impl ClassW {
    /// `localhost` is always in class w (proto.m4 `Cwlocalhost`); the file adds to it.
    pub fn parse(text: &str) -> Self {
        let mut list = ClassList::parse(text);
        list.insert("localhost");
        Self(list)
    }

    /// Whether `domain` is exactly a member; no sub-domain match. One trailing dot is ignored,
    /// as the canonical form `host.` is compared without it.
    pub fn contains_domain(&self, domain: &str) -> bool {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        !d.is_empty() && self.0.contains(d)
    }
}

/// Class R (relay-domains): domains with their sub-domains, whole-octet IP prefixes, `IPv6:`
/// prefixes, and `[UNIX:localhost]` (docs/sendmail-compat.md §6.1, §6.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassR(pub ClassList);

impl ClassR {
    pub fn parse(text: &str) -> Self {
        Self(ClassList::parse(text))
    }

    /// Rcpt_ok's `$* $=R`: the domain or any parent of it is a member, on label boundaries
    /// (`example.com` covers `a.b.example.com`, not `badexample.com`).
    pub fn matches_domain(&self, domain: &str) -> bool {
        let mut d = domain
            .strip_suffix('.')
            .unwrap_or(domain)
            .to_ascii_lowercase();
        loop {
            if d.is_empty() {
                return false;
            }
            if self.0.contains(&d) {
                return true;
            }
            match d.split_once('.') {
                Some((_, parent)) => d = parent.to_string(),
                None => return false,
            }
        }
    }

    /// Relay_ok's `$=R $*`: the client address starts with a member on a token boundary, so
    /// `192.168` covers `192.168.1.2` but not `192.1680.1.2`, and `IPv6:2001:db8` covers
    /// `IPv6:2001:db8::1`.
    pub fn matches_client_addr(&self, addr: &str) -> bool {
        let addr = addr.trim().to_ascii_lowercase();
        !addr.is_empty() && self.0.iter().any(|m| prefix_on_token_boundary(&addr, m))
    }

    /// Whether `[UNIX:localhost]` is listed: relaying for connections over a UNIX socket.
    pub fn allows_unix_socket(&self) -> bool {
        self.0.contains("[unix:localhost]")
    }
}

/// `member` is a prefix of `addr` ending where a sendmail token ends: at the end of `addr`,
/// before an operator character, or after a member that itself ends in one.
fn prefix_on_token_boundary(addr: &str, member: &str) -> bool {
    let Some(rest) = addr.strip_prefix(member) else {
        return false;
    };
    let is_op = |c: char| ".:[]@".contains(c);
    rest.is_empty() || rest.starts_with(is_op) || member.ends_with(is_op)
}

/// The outcome of the seed's `Local_check_rcpt` localip test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalIp {
    /// `${client_addr}` is empty: a local submission, always allowed (`R<> $#OK`).
    LocalSubmission,
    /// This key (folded) is in the localip map.
    Matched(String),
    /// No key matched.
    NoMatch,
}

/// The seed's localip relay test (seed/poprelay.mc), over the `localip` map.
///
/// The rule `R< $* . $- > $*  $(localip $1.$2 $: < $1 > . $2 $)` has no `$:` prefix, so
/// sendmail applies it again while it matches: it looks up the full address, then the first
/// three octets, then the first two; `R< $- > $*` then looks up the first octet. (The guide's
/// comments mention only "last three octets" and "first octet", but the loop also tries the
/// first two octets, which is what makes the seed's `192.168` entry work.) Keys are folded, as
/// the K line has no `-f`; any found value counts (`-a<MATCH>`).
pub fn localip_lookup(map: &dyn Map, client_addr: &str) -> Result<LocalIp, MapError> {
    let addr = client_addr.trim().to_ascii_lowercase();
    if addr.is_empty() {
        return Ok(LocalIp::LocalSubmission);
    }
    let mut key = addr.as_str();
    // The dotted rule needs `$* . $-`: a last component that is one token.
    while let Some((head, last)) = key.rsplit_once('.') {
        if !crate::maps::access::is_single_token(last) {
            break;
        }
        if map.get(key.as_bytes())?.is_some() {
            return Ok(LocalIp::Matched(key.to_string()));
        }
        key = head;
    }
    // `R< $- > $*`: only a single token (e.g. `192`) is looked up.
    if crate::maps::access::is_single_token(key) && map.get(key.as_bytes())?.is_some() {
        return Ok(LocalIp::Matched(key.to_string()));
    }
    Ok(LocalIp::NoMatch)
}

/// The seed's popip test: the full client address is a key of the `popip` map.
pub fn popip_lookup(map: &dyn Map, client_addr: &str) -> Result<bool, MapError> {
    let addr = client_addr.trim().to_ascii_lowercase();
    if addr.is_empty() {
        return Ok(false);
    }
    Ok(map.get(addr.as_bytes())?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{FailingMap, MemMap};

    // docs/sendmail-compat.md §6.1: `#` lines skipped, every word a member, case-insensitive.
    #[test]
    fn parse_class_file() {
        let c =
            ClassList::parse("# comment\nexample.com Other.COM\n\n\t a.b  \n#x.y\n  #notcomment\n");
        assert!(c.contains("EXAMPLE.com"));
        assert!(c.contains("other.com"));
        assert!(c.contains("a.b"));
        assert!(!c.contains("x.y"));
        assert!(c.contains("#notcomment"));
        assert_eq!(c.len(), 4);
        assert!(ClassList::parse("").is_empty());
        assert!(ClassList::parse("# only\n").is_empty());
        let c: ClassList = ["B", "a"].into_iter().collect();
        assert_eq!(c.iter().collect::<Vec<_>>(), ["a", "b"]);
        // CRLF line ends.
        assert!(ClassList::parse("x.example\r\n").contains("x.example"));
    }

    // docs/sendmail-compat.md §6.2: class w is exact; the seed's local-host-names.
    #[test]
    fn class_w_exact() {
        let w = ClassW::parse("example1.com\nexample2.com\n");
        assert!(w.contains_domain("example1.com"));
        assert!(w.contains_domain("EXAMPLE2.COM."));
        assert!(w.contains_domain("localhost"));
        assert!(!w.contains_domain("mail.example1.com"));
        assert!(!w.contains_domain("example1.co"));
        assert!(!w.contains_domain(""));
        assert!(!w.contains_domain("."));
    }

    // docs/sendmail-compat.md §6.2: class R domain or parent, label boundaries.
    #[test]
    fn class_r_domains() {
        let r = ClassR::parse("example.com\n");
        assert!(r.matches_domain("example.com"));
        assert!(r.matches_domain("a.b.Example.COM"));
        assert!(r.matches_domain("a.example.com."));
        assert!(!r.matches_domain("badexample.com"));
        assert!(!r.matches_domain("example.com.evil.net"));
        assert!(!r.matches_domain("com"));
        assert!(!r.matches_domain(""));
        assert!(!r.matches_domain("..."));
    }

    // docs/sendmail-compat.md §6.2: class R IP prefixes on whole octets; IPv6 prefixes; UNIX socket.
    #[test]
    fn class_r_addresses() {
        // The seed's relay-domains.
        let r = ClassR::parse("other.com\n192.168.10.10\n");
        assert!(r.matches_client_addr("192.168.10.10"));
        assert!(!r.matches_client_addr("192.168.10.100"));
        assert!(!r.matches_client_addr("192.168.10.1"));
        let r = ClassR::parse("192.168\nIPv6:2001:db8\n[UNIX:localhost]\n");
        assert!(r.matches_client_addr("192.168.1.2"));
        assert!(!r.matches_client_addr("192.1680.1.2"));
        assert!(!r.matches_client_addr("19.168.1.2"));
        assert!(r.matches_client_addr("IPv6:2001:DB8::1"));
        assert!(!r.matches_client_addr("IPv6:2001:db89::1"));
        assert!(!r.matches_client_addr(""));
        assert!(r.allows_unix_socket());
        assert!(!ClassR::parse("other.com").allows_unix_socket());
    }

    // seed/poprelay.mc localip: full address, then shorter octet prefixes, then first octet.
    #[test]
    fn localip_semantics() {
        // The seed's localip file.
        let m = MemMap::from_pairs([("other.com", ""), ("192.168", "")]);
        assert_eq!(
            localip_lookup(&m, "192.168.3.4").ok(),
            Some(LocalIp::Matched("192.168".into()))
        );
        assert_eq!(localip_lookup(&m, "10.0.0.1").ok(), Some(LocalIp::NoMatch));
        assert_eq!(localip_lookup(&m, "").ok(), Some(LocalIp::LocalSubmission));
        let m = MemMap::from_pairs([("10.1.2.3", ""), ("10.2.3", ""), ("172", "")]);
        assert_eq!(
            localip_lookup(&m, "10.1.2.3").ok(),
            Some(LocalIp::Matched("10.1.2.3".into()))
        );
        assert_eq!(localip_lookup(&m, "10.1.2.4").ok(), Some(LocalIp::NoMatch));
        assert_eq!(
            localip_lookup(&m, "10.2.3.9").ok(),
            Some(LocalIp::Matched("10.2.3".into()))
        );
        assert_eq!(
            localip_lookup(&m, "172.16.0.1").ok(),
            Some(LocalIp::Matched("172".into()))
        );
        // IPv6 clients have no dotted form: nothing is looked up.
        assert_eq!(
            localip_lookup(&m, "IPv6:2001:db8::1").ok(),
            Some(LocalIp::NoMatch)
        );
        assert!(localip_lookup(&FailingMap, "1.2.3.4").is_err());
        assert_eq!(
            localip_lookup(&FailingMap, "").ok(),
            Some(LocalIp::LocalSubmission)
        );
    }

    // seed/poprelay.mc popip: full address only.
    #[test]
    fn popip_semantics() {
        let m = MemMap::from_pairs([("192.168.10.11", "1100000000")]);
        assert!(popip_lookup(&m, "192.168.10.11").unwrap_or(false));
        assert!(!popip_lookup(&m, "192.168.10").unwrap_or(true));
        assert!(!popip_lookup(&m, "").unwrap_or(true));
        assert!(popip_lookup(&FailingMap, "1.2.3.4").is_err());
    }
}
