//! `sendmail -bv`: how each address routes, in sendmail's words, using the same maps and
//! rules as the server (class w, virtusertable, aliases, users map).
//!
//! ```text
//! user1@example1.com... deliverable: mailer local, user example
//! x@remote.test... deliverable: mailer esmtp, host remote.test., user x@remote.test
//! nobody@mail.example1.com... User unknown
//! ```

use crate::config::Config;
use crate::maps::aliases::{self, ExpandOptions, Recipient};
use crate::maps::{Map, MapError};
use crate::policy::Policy;
use crate::route::{Route, Router};
use crate::sysexits::*;

/// One output line per final recipient (or failure), and the exit status: 0 when every
/// address is deliverable, 67 when some is not, 75 when a map could not be read.
pub fn verify(cfg: &Config, addresses: &[String]) -> (Vec<String>, i32) {
    let policy = Policy::new(cfg);
    let classes = policy.classes();
    let settings = policy.settings();
    let router = Router {
        w: &classes.w,
        virtuser: &policy.virtuser,
        aliases: &policy.aliases,
        users: &policy.users,
        hostname: &settings.hostname,
        system_users: settings.system_users,
    };
    let v = Verifier {
        router: &router,
        aliases: &policy.aliases,
        smart_host: &cfg.settings.queue.smart_host,
    };
    let mut lines = Vec::new();
    let mut code = EX_OK;
    for addr in addresses {
        match v.one(addr, &mut lines) {
            Ok(true) => {}
            Ok(false) => code = code.max(EX_NOUSER),
            Err(e) => {
                lines.push(format!("{addr}... Temporary failure: {e}"));
                code = EX_TEMPFAIL;
            }
        }
    }
    (lines, code)
}

struct Verifier<'a> {
    router: &'a Router<'a>,
    aliases: &'a dyn Map,
    smart_host: &'a str,
}

fn split(addr: &str) -> (&str, Option<&str>) {
    match addr.rsplit_once('@') {
        Some((l, d)) if !d.is_empty() => (l, Some(d)),
        _ => (addr, None),
    }
}

impl Verifier<'_> {
    /// Prints the routes of one address; false if some part of it is not deliverable.
    fn one(&self, addr: &str, out: &mut Vec<String>) -> Result<bool, MapError> {
        let (local, domain) = split(addr);
        match self.router.resolve(local, domain, addr)? {
            Route::Reject(r) => {
                out.push(format!("{addr}... {}", r.text));
                Ok(false)
            }
            Route::Remote(a) => {
                out.push(format!("{addr}... {}", self.remote(&a)));
                Ok(true)
            }
            Route::Local(name) => {
                let read =
                    |p: &str| std::fs::read_to_string(p).map_err(|e| crate::util::io_message(&e));
                let ex = aliases::expand(self.aliases, &name, ExpandOptions::default(), &read)?;
                if !ex.aliased {
                    out.push(format!("{addr}... deliverable: mailer local, user {name}"));
                    return Ok(true);
                }
                let mut ok = true;
                for r in &ex.recipients {
                    ok &= self.expanded(r, out)?;
                }
                for f in &ex.failures {
                    out.push(format!("{}... {}", f.address, f.reply.text));
                    ok = false;
                }
                Ok(ok)
            }
        }
    }

    /// A final recipient of an alias expansion: a remote address is routed once more (it may
    /// be a virtual address of ours), a local name must exist.
    fn expanded(&self, r: &Recipient, out: &mut Vec<String>) -> Result<bool, MapError> {
        match r {
            Recipient::Local(n) => match self.router.resolve(n, None, n)? {
                Route::Reject(rep) => {
                    out.push(format!("{n}... {}", rep.text));
                    Ok(false)
                }
                _ => {
                    out.push(format!("{n}... deliverable: mailer local, user {n}"));
                    Ok(true)
                }
            },
            Recipient::File(p) => {
                out.push(format!("{p}... deliverable: mailer *file*, user {p}"));
                Ok(true)
            }
            Recipient::Program(cmd) => {
                out.push(format!(
                    "\"|{cmd}\"... deliverable: mailer prog, user \"|{cmd}\""
                ));
                Ok(true)
            }
            Recipient::Remote(a) => {
                let (l, d) = split(a);
                match self.router.resolve(l, d, a)? {
                    Route::Reject(rep) => {
                        out.push(format!("{a}... {}", rep.text));
                        Ok(false)
                    }
                    Route::Local(n) => {
                        out.push(format!("{a}... deliverable: mailer local, user {n}"));
                        Ok(true)
                    }
                    Route::Remote(x) => {
                        out.push(format!("{a}... {}", self.remote(&x)));
                        Ok(true)
                    }
                }
            }
        }
    }

    fn remote(&self, a: &str) -> String {
        if !self.smart_host.is_empty() {
            return format!(
                "deliverable: mailer relay, host {}, user {a}",
                self.smart_host
            );
        }
        let host = a.rsplit_once('@').map_or("", |(_, d)| d);
        format!("deliverable: mailer esmtp, host {host}., user {a}")
    }
}
