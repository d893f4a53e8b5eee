//! Recipient resolution (docs/sendmail-compat.md §5, §2.6): local-host-names, then virtusertable, then
//! aliases and the users map. The server calls it at RCPT time so an unknown user is refused
//! before the message is accepted; delivery resolves again with the same rules.

use crate::maps::class::ClassW;
use crate::maps::virtuser::{self, VirtResult};
use crate::maps::{Map, MapError, aliases};
use crate::reply::Rejection;

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A local name: an alias to expand or a mailbox (lower-cased, `+detail` kept).
    Local(String),
    /// An address elsewhere: forwarded by virtusertable or simply not ours.
    Remote(String),
    /// Refused, with the reply sendmail gives (`550 5.1.1 … User unknown`, virtusertable's
    /// `error:` text, …).
    Reject(Rejection),
}

/// virtusertable may point at another virtual address; sendmail has no loop protection here
/// beyond its hop and alias limits, so we stop at the alias limit.
const MAX_DEPTH: usize = 10;

pub struct Router<'a> {
    pub w: &'a ClassW,
    pub virtuser: &'a dyn Map,
    pub aliases: &'a dyn Map,
    pub users: &'a dyn Map,
    /// `$j`: the domain added to unqualified addresses (always_add_domain).
    pub hostname: &'a str,
    /// Whether system accounts (getpwnam) count as local users.
    pub system_users: bool,
}

impl Router<'_> {
    /// Resolves `local@domain` (`domain` None: unqualified). `shown` is the address as the
    /// client typed it, for reply texts.
    pub fn resolve(
        &self,
        local: &str,
        domain: Option<&str>,
        shown: &str,
    ) -> Result<Route, MapError> {
        self.resolve_at(local, domain, shown, 0)
    }

    fn resolve_at(
        &self,
        local: &str,
        domain: Option<&str>,
        shown: &str,
        depth: usize,
    ) -> Result<Route, MapError> {
        if depth > MAX_DEPTH {
            return Ok(Route::Reject(
                aliases::loop_reply(depth, MAX_DEPTH).with_addr(shown),
            ));
        }
        let domain = domain.map(|d| d.trim_end_matches('.').to_ascii_lowercase());
        let is_local = match &domain {
            None => true,
            Some(d) => self.w.contains_domain(d) || d.eq_ignore_ascii_case(self.hostname),
        };
        let lookup_domain = domain
            .clone()
            .unwrap_or_else(|| self.hostname.to_ascii_lowercase());
        if let Some(hit) = virtuser::lookup(self.virtuser, local, &lookup_domain)? {
            return match hit.result {
                VirtResult::Error { reply, .. } => Ok(Route::Reject(reply.with_addr(shown))),
                VirtResult::Address(a) => {
                    let a = a
                        .trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string();
                    match a.rsplit_once('@') {
                        Some((l, d)) if !l.is_empty() && !d.is_empty() => {
                            self.resolve_at(l, Some(d), shown, depth + 1)
                        }
                        _ => self.local_user(&a, shown),
                    }
                }
            };
        }
        if is_local {
            return self.local_user(local, shown);
        }
        Ok(Route::Remote(format!(
            "{local}@{}",
            domain.unwrap_or_default()
        )))
    }

    /// A local name exists if it is postmaster, an alias, a virtual user or (when allowed) a
    /// system account; `user+detail` falls back to `user` (docs/sendmail-compat.md §2.6).
    fn local_user(&self, name: &str, shown: &str) -> Result<Route, MapError> {
        let name = name.trim().to_ascii_lowercase();
        let base = name.split_once('+').map_or(name.as_str(), |(u, _)| u);
        if name.is_empty() {
            return Ok(Route::Reject(
                Rejection::new(553, "5.1.3", "User address required").with_addr(shown),
            ));
        }
        let known = base == "postmaster"
            || aliases::lookup_alias(self.aliases, &name, false)?.is_some()
            || self.users.get(base.as_bytes())?.is_some()
            || (self.system_users && system_user_exists(base));
        if known {
            Ok(Route::Local(name))
        } else {
            Ok(Route::Reject(
                Rejection::new(550, "5.1.1", "User unknown").with_addr(shown),
            ))
        }
    }
}

fn system_user_exists(name: &str) -> bool {
    crate::sys::account::user_by_name(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MemMap;

    fn seed() -> (ClassW, MemMap, MemMap, MemMap) {
        let w = ClassW::parse("example1.com\nexample2.com\n");
        let v = MemMap::from_pairs([
            ("who@example1.com", "who@overthere.com"),
            ("@example1.com", "example"),
            ("@example2.com", "error:nouser 550 error-message"),
            ("info@virtual.test", "%1@example1.com"),
            ("loop@example1.com", "loop@example1.com"),
        ]);
        let a = MemMap::from_pairs([
            ("postmaster", "root"),
            ("staff", "who@example1.com, example"),
        ]);
        let u = MemMap::from_pairs([("example", "$argon2id$x"), ("root", "$argon2id$x")]);
        (w, v, a, u)
    }

    #[test]
    fn seed_virtusertable_routes() {
        // docs/sendmail-compat.md §5.2/§5.4 with the seed's virtusertable.
        let (w, v, a, u) = seed();
        let r = Router {
            w: &w,
            virtuser: &v,
            aliases: &a,
            users: &u,
            hostname: "mail.example1.com",
            system_users: false,
        };
        assert_eq!(
            r.resolve("who", Some("example1.com"), "<who@example1.com>")
                .unwrap(),
            Route::Remote("who@overthere.com".into())
        );
        assert_eq!(
            r.resolve("anyone", Some("EXAMPLE1.com"), "<x>").unwrap(),
            Route::Local("example".into())
        );
        assert_eq!(
            r.resolve("x", Some("example2.com"), "<x@example2.com>")
                .unwrap(),
            Route::Reject(
                Rejection::new(550, "5.0.0", "error-message").with_addr("<x@example2.com>")
            )
        );
        assert_eq!(
            r.resolve("info", Some("virtual.test"), "<info@virtual.test>")
                .unwrap(),
            Route::Local("example".into())
        );
        assert!(
            matches!(r.resolve("loop", Some("example1.com"), "<loop@example1.com>").unwrap(), Route::Reject(rep) if rep.code == 554)
        );
        assert_eq!(
            r.resolve("u", Some("elsewhere.org"), "<u@elsewhere.org>")
                .unwrap(),
            Route::Remote("u@elsewhere.org".into())
        );
    }

    #[test]
    fn local_users_aliases_and_unknown() {
        // §6.5: `550 5.1.1 <rcpt>... User unknown`.
        let (_, v, a, u) = seed();
        let w = ClassW::parse("local.test\n");
        let r = Router {
            w: &w,
            virtuser: &v,
            aliases: &a,
            users: &u,
            hostname: "local.test",
            system_users: false,
        };
        assert_eq!(
            r.resolve("Staff", Some("local.test"), "<Staff@local.test>")
                .unwrap(),
            Route::Local("staff".into())
        );
        assert_eq!(
            r.resolve("example+tag", Some("local.test"), "<x>").unwrap(),
            Route::Local("example+tag".into())
        );
        assert_eq!(
            r.resolve("PostMaster", None, "<PostMaster>").unwrap(),
            Route::Local("postmaster".into())
        );
        let rep = match r
            .resolve("nobody", Some("local.test"), "<nobody@local.test>")
            .unwrap()
        {
            Route::Reject(rep) => rep,
            other => panic!("{other:?}"),
        };
        assert_eq!(rep.line(), "550 5.1.1 <nobody@local.test>... User unknown");
        let sys = Router {
            system_users: true,
            ..r
        };
        assert_eq!(
            sys.resolve("root", Some("local.test"), "<root>").unwrap(),
            Route::Local("root".into())
        );
        assert!(matches!(
            sys.resolve("daemon", Some("local.test"), "<d>").unwrap(),
            Route::Local(_)
        ));
    }
}
