//! What a `.mc` says, as `mailtool.toml`: each translated key comes with a comment citing the
//! line it came from, and everything else is reported by line, either as harmless (nothing to
//! do) or as not translated, with the reason. The result is checked with the configuration's own
//! parser, so a migration never writes a file `mailtool config check` would refuse.

use serde::Serialize;

use super::mc::{Directive, Include, Item};
use crate::config::{self, ConfigError};
use crate::duration::Span;

/// Something in the input, with where it is and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub why: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} — {}",
            self.file, self.line, self.text, self.why
        )
    }
}

/// How a map's file is made from its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// makemap hash input.
    Makemap,
    /// makemap input whose keys may have no value (`-e`; the `-a<MATCH>` maps).
    MakemapEmptyValues,
    /// aliases(5), built as newaliases does.
    Aliases,
    /// A plain-text class file, used as is.
    ClassFile,
}

/// A map or class file the new configuration names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapNeed {
    /// The `[maps]` key.
    pub key: &'static str,
    /// Its value: relative to mail_dir, or absolute.
    pub name: String,
    pub kind: MapKind,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directories whose files become names relative to mail_dir (`/etc/mail`, `--etc`).
    pub etc_dirs: Vec<String>,
    /// The input files, for the header comment.
    pub sources: Vec<String>,
    /// `/etc/sysconfig/sendmail`: its display name and text.
    pub sysconfig: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub toml: String,
    pub untranslated: Vec<Note>,
    pub harmless: Vec<Note>,
    pub maps: Vec<MapNeed>,
}

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    /// A bug: the generated file does not pass the configuration parser.
    #[error("the generated configuration is invalid: {0}")]
    Invalid(#[from] ConfigError),
}

/// Translates parsed `.mc` items (and the optional sysconfig file).
pub fn translate(items: &[Item], opts: &Options) -> Result<Migration, TranslateError> {
    let mut tx = Tx {
        opts,
        settings: Vec::new(),
        dnsbl: Vec::new(),
        untranslated: Vec::new(),
        harmless: Vec::new(),
        maps: Vec::new(),
        ruleset: None,
        header: Vec::new(),
    };
    for item in items {
        tx.item(item);
    }
    tx.close_ruleset();
    if let Some((name, text)) = &opts.sysconfig {
        tx.sysconfig(name, text);
    } else {
        tx.header.push(
            "queue.interval: sendmail's -q came from its start-up script (QUEUE=1h in \
             /etc/sysconfig/sendmail); not read (--sysconfig FILE), so the default 1h stays."
                .into(),
        );
    }
    tx.defaults_for_absent(items);
    let toml = tx.render();
    config::parse(&toml, "(generated mailtool.toml)", true)?;
    Ok(Migration {
        toml,
        untranslated: tx.untranslated,
        harmless: tx.harmless,
        maps: tx.maps,
    })
}

/// One key of the output.
struct Setting {
    section: &'static str,
    key: &'static str,
    value: String,
    comments: Vec<String>,
    file: String,
    line: usize,
}

struct RuleSet {
    name: String,
    file: String,
    line: usize,
    text: String,
    /// (file, line, text) of every `R` line.
    rules: Vec<(String, usize, String)>,
}

struct Tx<'a> {
    opts: &'a Options,
    settings: Vec<Setting>,
    /// Inline tables of `smtp.dnsbl`, each with its citation.
    dnsbl: Vec<(String, String)>,
    untranslated: Vec<Note>,
    harmless: Vec<Note>,
    maps: Vec<MapNeed>,
    ruleset: Option<RuleSet>,
    header: Vec<String>,
}

const SECTIONS: &[&str] = &["", "maps", "smtp", "pop3", "queue"];

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The first line of a directive as written, for comments and reports.
fn shown(item: &Item) -> String {
    let full = match &item.directive {
        Directive::Macro { raw, .. } => raw.clone(),
        Directive::Include { path, .. } => format!("include(`{path}')"),
        Directive::Text(t) => t.clone(),
    };
    let mut lines = full.lines();
    let first = lines.next().unwrap_or("").trim_end().to_string();
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// sendmail.cf rule fields are separated by tabs: (LHS, RHS) with white space runs collapsed.
fn rule_fields(text: &str) -> Option<(String, String)> {
    let body = text.strip_prefix('R')?;
    let mut fields = body.split('\t').filter(|f| !f.trim().is_empty());
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let lhs = norm(fields.next()?);
    let rhs = norm(fields.next()?);
    Some((lhs, rhs))
}

/// The seed's poprelay.mc `Local_check_rcpt` rules (LHS, RHS), which mailtool's relay check
/// implements (docs/sendmail-compat.md §6.2 and `maps::class`).
const POPRELAY_RULES: &[(&str, &str)] = &[
    ("$*", "$: $>Parse0 $>3 $1"),
    ("$* < $* > $*", "$: $1 < $2 . > $3"),
    ("$* < $* . . > $*", "$1 < $2 . > $3"),
    ("$*", "$: < $&{client_addr} >"),
    ("<>", "$#OK"),
    ("< $* . $- > $*", "$(localip $1.$2 $: < $1 > . $2 $)"),
    ("$* < MATCH >", "$#OK"),
    ("< $- > $*", "$: $(localip $1 $: < > $1 $2 $)"),
    ("< $* >", "$(popip $1 $)"),
];

impl Tx<'_> {
    fn note(item: &Item, why: &str) -> Note {
        Note {
            file: item.file.clone(),
            line: item.line,
            text: shown(item),
            why: why.to_string(),
        }
    }

    fn skip(&mut self, item: &Item, why: &str) {
        self.untranslated.push(Self::note(item, why));
    }

    fn fine(&mut self, item: &Item, why: &str) {
        self.harmless.push(Self::note(item, why));
    }

    fn cite(item: &Item) -> String {
        format!("{}:{}: {}", file_name(&item.file), item.line, shown(item))
    }

    /// Sets a key; a later directive for the same key wins, as a later m4 define does, and
    /// the earlier one is reported.
    fn set(&mut self, item: &Item, section: &'static str, key: &'static str, value: String) {
        self.set_with(item, section, key, value, Vec::new());
    }

    fn set_with(
        &mut self,
        item: &Item,
        section: &'static str,
        key: &'static str,
        value: String,
        extra: Vec<String>,
    ) {
        let mut comments = vec![Self::cite(item)];
        comments.extend(extra);
        let new = Setting {
            section,
            key,
            value,
            comments,
            file: item.file.clone(),
            line: item.line,
        };
        if let Some(old) = self
            .settings
            .iter_mut()
            .find(|s| s.section == section && s.key == key)
        {
            let replaced = std::mem::replace(old, new);
            let why = format!("superseded by {}:{}", file_name(&item.file), item.line);
            self.untranslated.push(Note {
                file: replaced.file,
                line: replaced.line,
                text: replaced.comments[0]
                    .split_once(": ")
                    .map_or(String::new(), |(_, t)| t.to_string()),
                why,
            });
        } else {
            self.settings.push(new);
        }
    }

    fn need(&mut self, key: &'static str, name: String, kind: MapKind) {
        self.maps.retain(|m| m.key != key);
        self.maps.push(MapNeed { key, name, kind });
    }

    /// `/etc/mail/access` → `access` when under one of the etc dirs; `.db` dropped.
    fn map_name(&self, path: &str) -> String {
        let path = path.strip_suffix(".db").unwrap_or(path);
        for dir in &self.opts.etc_dirs {
            let dir = dir.trim_end_matches('/');
            if let Some(rest) = path.strip_prefix(dir).and_then(|r| r.strip_prefix('/'))
                && !rest.is_empty()
            {
                return rest.to_string();
            }
        }
        path.to_string()
    }

    fn item(&mut self, item: &Item) {
        match &item.directive {
            Directive::Include { outcome, .. } => match outcome {
                Include::Inlined => self.fine(item, "read; its lines are listed under its name"),
                Include::Skipped => self.fine(item, "sendmail's cf library: nothing to translate"),
                Include::Missing(why) => {
                    let why = format!("cannot read the included file: {why}");
                    self.skip(item, &why)
                }
            },
            Directive::Macro { name, args, .. } => self.call(item, name, args),
            Directive::Text(t) => self.text(item, t),
        }
    }

    fn call(&mut self, item: &Item, name: &str, args: &[String]) {
        let a = |i: usize| args.get(i).map(|s| s.trim()).unwrap_or("");
        match name {
            "FEATURE" => self.feature(item, args),
            "define" => self.define(item, a(0), a(1)),
            "RELAY_DOMAIN_FILE" => {
                let path = a(0).trim_start_matches("-o").trim();
                let name = self.map_name(path);
                self.set(item, "maps", "relay_domains", toml_str(&name));
                self.need("relay_domains", name, MapKind::ClassFile);
            }
            "MAILER" => match a(0) {
                "local" | "smtp" => {
                    self.fine(item, "mailtool delivers locally and over SMTP itself")
                }
                m => {
                    let why = format!("mailtool has no {m} mailer");
                    self.skip(item, &why)
                }
            },
            "VERSIONID" | "OSTYPE" => self.fine(item, "nothing to do"),
            "DOMAIN" if a(0) == "generic" => self.fine(
                item,
                "generic.m4 turns on use_cw_file; mailtool always reads local-host-names",
            ),
            "divert" => self.fine(item, "m4 output control"),
            "LOCAL_RULESETS" | "LOCAL_CONFIG" => {
                self.close_ruleset();
                self.fine(item, "marks where local rules and maps start")
            }
            _ => {
                let why = format!("{name}: no mailtool equivalent");
                self.skip(item, &why)
            }
        }
    }

    fn feature(&mut self, item: &Item, args: &[String]) {
        let a = |i: usize| args.get(i).map(|s| s.trim()).unwrap_or("");
        match a(0) {
            "always_add_domain" => {
                self.set(item, "smtp", "always_add_domain", "true".into());
                if !a(1).is_empty() {
                    self.skip(
                        item,
                        "the domain argument: mailtool adds its own hostname to bare addresses",
                    );
                }
            }
            "virtusertable" => {
                if let Some(name) = self.map_spec(item, a(1), "/etc/mail/virtusertable") {
                    self.set(item, "maps", "virtusertable", toml_str(&name.0));
                    self.need("virtusertable", name.0, MapKind::Makemap);
                }
            }
            "access_db" => {
                if let Some((name, flags)) =
                    self.map_spec(item, a(1), "hash -T<TMPF> /etc/mail/access")
                {
                    self.set(item, "maps", "access", toml_str(&name));
                    let tmpf = flags.iter().any(|f| f == "-T<TMPF>");
                    self.set(item, "maps", "access_temp_fail", tmpf.to_string());
                    self.need("access", name, MapKind::Makemap);
                }
                for extra in args.iter().skip(2).map(|s| s.trim()).filter(|s| !s.is_empty()) {
                    let why = format!("access_db option {extra:?} has no mailtool equivalent");
                    self.skip(item, &why);
                }
            }
            "dnsbl" => self.dnsbl(item, args),
            "greet_pause" => match a(1).parse::<u64>() {
                Ok(ms) => self.set(item, "smtp", "greet_pause", toml_str(&format!("{ms}ms"))),
                Err(_) => self.skip(
                    item,
                    "greet_pause without a number of milliseconds (GreetPause: access entries) is not supported",
                ),
            },
            "use_cw_file" => self.fine(item, "mailtool always reads local-host-names"),
            "" => self.skip(item, "FEATURE without a name"),
            f => {
                let why = format!("unknown FEATURE `{f}': no mailtool equivalent");
                self.skip(item, &why)
            }
        }
    }

    /// A map definition as a FEATURE gives it (`hash -o -T<TMPF> /etc/mail/access`): the
    /// map's name for `[maps]` and its flags; `None` (reported) when it is not a makemap file.
    fn map_spec(
        &mut self,
        item: &Item,
        spec: &str,
        default: &str,
    ) -> Option<(String, Vec<String>)> {
        let spec = if spec.is_empty() { default } else { spec };
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (kind, rest) = match words.first() {
            Some(w) if !w.starts_with('-') && !w.starts_with('/') => (*w, &words[1..]),
            _ => ("hash", &words[..]),
        };
        if !["hash", "btree", "dbm"].contains(&kind) {
            let why =
                format!("map type {kind:?}: mailtool maps are makemap files (hash, btree, dbm)");
            self.skip(item, &why);
            return None;
        }
        let flags: Vec<String> = rest
            .iter()
            .filter(|w| w.starts_with('-'))
            .map(|w| w.to_string())
            .collect();
        let path = rest
            .iter()
            .rev()
            .find(|w| !w.starts_with('-'))
            .copied()
            .or_else(|| default.split_whitespace().last())
            .unwrap_or_default();
        Some((self.map_name(path), flags))
    }

    fn dnsbl(&mut self, item: &Item, args: &[String]) {
        let a = |i: usize| args.get(i).map(|s| s.trim()).unwrap_or("");
        let zone = a(1);
        if zone.is_empty() || zone.contains(char::is_whitespace) || zone.contains('$') {
            self.skip(
                item,
                "dnsbl needs a plain zone (8.12's default blackholes.mail-abuse.org is gone)",
            );
            return;
        }
        let mut table = format!("{{ zone = {}", toml_str(zone));
        let msg = a(2);
        if !msg.is_empty() {
            // The argument is a rule's right-hand side: one quoted string is a plain text; macros
            // such as $&{client_addr} have no mailtool equivalent, so the default text stays.
            let inner = msg.strip_prefix('"').and_then(|m| m.strip_suffix('"'));
            match inner {
                Some(text) if !text.contains('"') && !text.contains('$') => {
                    table.push_str(&format!(", message = {}", toml_str(text.trim_end())));
                }
                _ => self.skip(
                    item,
                    "dnsbl message uses sendmail macros; mailtool's default text (with the address and zone) is used",
                ),
            }
        }
        if !a(3).is_empty() {
            self.skip(
                item,
                "dnsbl temporary-failure argument: mailtool ignores DNS failures, sendmail's default",
            );
        }
        table.push_str(" }");
        self.dnsbl.push((table, Self::cite(item)));
    }

    fn define(&mut self, item: &Item, name: &str, value: &str) {
        let number = |v: &str| v.parse::<u64>().ok();
        let plain =
            !value.is_empty() && !value.contains('$') && !value.contains(char::is_whitespace);
        let span = |v: &str| Span::parse(v).ok().map(|_| toml_str(v));
        let translated: Option<(&'static str, &'static str, String)> = match name {
            "confMAX_MESSAGE_SIZE" => {
                number(value).map(|n| ("smtp", "max_message_size", n.to_string()))
            }
            "LOCAL_MAILER_MAX" => number(value).map(|n| ("queue", "local_max_size", n.to_string())),
            "confMAX_RCPTS_PER_MESSAGE" => {
                number(value).map(|n| ("smtp", "max_recipients", n.to_string()))
            }
            "confMAX_HOP" => number(value).map(|n| ("smtp", "max_hops", n.to_string())),
            "confMAX_DAEMON_CHILDREN" => {
                number(value).map(|n| ("smtp", "max_connections", n.to_string()))
            }
            "confTO_QUEUEWARNING" => span(value).map(|v| ("queue", "warn_after", v)),
            "confTO_QUEUERETURN" => span(value).map(|v| ("queue", "return_after", v)),
            "confDOMAIN_NAME" if plain => Some(("", "hostname", toml_str(value))),
            "SMART_HOST" => smart_host(value).map(|v| ("queue", "smart_host", toml_str(&v))),
            "confCW_FILE" | "ALIAS_FILE" | "confALIAS_FILE" => {
                let path = value.trim_start_matches("-o").trim();
                let path = path.split(',').next().unwrap_or("").trim();
                let path = path.strip_prefix("hash:").unwrap_or(path);
                if path.starts_with('/') && !path.contains(char::is_whitespace) {
                    let map = self.map_name(path);
                    let (key, kind) = if name == "confCW_FILE" {
                        ("local_host_names", MapKind::ClassFile)
                    } else {
                        ("aliases", MapKind::Aliases)
                    };
                    self.need(key, map.clone(), kind);
                    Some(("maps", key, toml_str(&map)))
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some((section, key, v)) = translated {
            self.set(item, section, key, v);
            return;
        }
        let why = match name {
            "SMTP_MAILER_MAX" | "RELAY_MAILER_MAX" | "ESMTP_MAILER_MAX" => {
                "no per-mailer limit for SMTP delivery; smtp.max_message_size limits what is accepted"
            }
            "LOCAL_MAILER_MAXMSGS"
            | "SMTP_MAILER_MAXMSGS"
            | "RELAY_MAILER_MAXMSGS"
            | "SMTP_MAILER_MAXRCPTS" => "messages per delivery connection: no mailtool equivalent",
            "confMAX_MESSAGE_SIZE"
            | "LOCAL_MAILER_MAX"
            | "confMAX_RCPTS_PER_MESSAGE"
            | "confMAX_HOP"
            | "confMAX_DAEMON_CHILDREN" => "not a number of bytes or messages",
            "confTO_QUEUEWARNING" | "confTO_QUEUERETURN" => "not a duration",
            "confDOMAIN_NAME" | "SMART_HOST" | "confCW_FILE" | "ALIAS_FILE" | "confALIAS_FILE" => {
                "value not understood (macros or several values)"
            }
            _ => "no mailtool equivalent",
        };
        self.skip(item, why);
    }

    fn text(&mut self, item: &Item, t: &str) {
        let t = t.trim_start();
        if t.starts_with('#') {
            return self.fine(item, "comment");
        }
        match t.as_bytes().first() {
            Some(b'S') => {
                self.close_ruleset();
                self.ruleset = Some(RuleSet {
                    name: t[1..].trim().to_string(),
                    file: item.file.clone(),
                    line: item.line,
                    text: t.to_string(),
                    rules: Vec::new(),
                });
            }
            Some(b'R') => match &mut self.ruleset {
                Some(rs) => rs.rules.push((item.file.clone(), item.line, t.to_string())),
                None => self.skip(item, "rule outside a rule set"),
            },
            Some(b'K') => self.kmap(item, t),
            _ => self.skip(item, "sendmail.cf line with no mailtool equivalent"),
        }
    }

    /// `Klocalip hash -a<MATCH> /etc/mail/localip`: the two maps the poprelay rules use.
    fn kmap(&mut self, item: &Item, t: &str) {
        let mut words = t[1..].split_whitespace();
        let name = words.next().unwrap_or("");
        let key = match name {
            "localip" => "localip",
            "popip" => "popip",
            _ => return self.skip(item, "map declaration with no mailtool equivalent"),
        };
        let spec: Vec<&str> = words.collect();
        if let Some((map, _)) = self.map_spec(item, &spec.join(" "), "") {
            if map.is_empty() {
                return self.skip(item, "map declaration without a file");
            }
            self.set(item, "maps", key, toml_str(&map));
            self.need(key, map, MapKind::MakemapEmptyValues);
        }
    }

    fn rule_note(rs: &RuleSet, why: &str) -> Note {
        Note {
            file: rs.file.clone(),
            line: rs.line,
            text: rs.text.clone(),
            why: why.to_string(),
        }
    }

    fn close_ruleset(&mut self) {
        let Some(rs) = self.ruleset.take() else {
            return;
        };
        let at = Item {
            file: rs.file.clone(),
            line: rs.line,
            directive: Directive::Text(rs.text.clone()),
        };
        let unknown = |known: &dyn Fn(&str, &str) -> bool| -> Vec<Note> {
            rs.rules
                .iter()
                .filter(|(_, _, t)| !rule_fields(t).is_some_and(|(l, r)| known(&l, &r)))
                .map(|(file, line, t)| Note {
                    file: file.clone(),
                    line: *line,
                    text: t.clone(),
                    why: format!("rule in {} with no mailtool equivalent", rs.name),
                })
                .collect()
        };
        match rs.name.as_str() {
            "Local_check_relay" => {
                let has = |lhs: &str| {
                    rs.rules.iter().any(|(_, _, t)| {
                        rule_fields(t).is_some_and(|(l, r)| l == lhs && r.starts_with("$#error"))
                    })
                };
                let resolve = rs.rules.iter().any(|(_, _, t)| {
                    rule_fields(t).is_some_and(|(l, r)| l == "$*" && r == "$: $&{client_resolve}")
                });
                let odd = unknown(&|l, r| {
                    (l == "$*" && r == "$: $&{client_resolve}")
                        || (["TEMP", "FAIL", "FORGED"].contains(&l) && r.starts_with("$#error"))
                });
                if resolve && has("TEMP") && has("FAIL") && odd.is_empty() {
                    let (v, what) = if has("FORGED") {
                        ("forged", "TEMP, FAIL and FORGED")
                    } else {
                        ("resolvable", "TEMP and FAIL")
                    };
                    let extra = vec![format!(
                        "  the seed's PTR rules ({what} on ${{client_resolve}}), with its 450 4.7.1 texts"
                    )];
                    self.set_with(&at, "smtp", "ptr_check", toml_str(v), extra);
                } else {
                    self.untranslated.push(Self::rule_note(
                        &rs,
                        "custom Local_check_relay: only the seed's PTR rules (TEMP and FAIL, optionally FORGED) translate",
                    ));
                    self.untranslated.extend(odd);
                }
            }
            "Local_check_rcpt" => {
                let odd = unknown(&|l, r| POPRELAY_RULES.contains(&(l, r)));
                if odd.is_empty() && !rs.rules.is_empty() {
                    let extra = vec![
                        "  the seed's poprelay.mc: relaying for localip networks and popip (POP-before-SMTP)".to_string(),
                        "  addresses is built in; an address stays in popip this long after a POP3 login".to_string(),
                    ];
                    self.set_with(&at, "pop3", "pop_before_smtp_ttl", toml_str("15m"), extra);
                } else {
                    self.untranslated.push(Self::rule_note(
                        &rs,
                        "custom Local_check_rcpt: only the seed's poprelay.mc rules (localip, popip) are built in",
                    ));
                    self.untranslated.extend(odd);
                }
            }
            _ => {
                self.untranslated.push(Self::rule_note(
                    &rs,
                    "custom rule set: no mailtool equivalent",
                ));
                self.untranslated.extend(unknown(&|_, _| false));
            }
        }
    }

    fn sysconfig(&mut self, name: &str, text: &str) {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let item = Item {
                file: name.to_string(),
                line: i + 1,
                directive: Directive::Text(line.to_string()),
            };
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value.trim().trim_matches('"').trim_matches('\'');
            match key.trim() {
                "QUEUE" if Span::parse(value).is_ok() => {
                    self.set(&item, "queue", "interval", toml_str(value))
                }
                "DAEMON" if value == "yes" => self.fine(&item, "mailtool serve is the daemon"),
                _ => self.skip(&item, "start-up setting with no mailtool equivalent"),
            }
        }
    }

    /// Keys whose sendmail default differs from mailtool's, when the `.mc` leaves them out.
    fn defaults_for_absent(&mut self, items: &[Item]) {
        let has = |settings: &[Setting], s: &str, k: &str| {
            settings.iter().any(|x| x.section == s && x.key == k)
        };
        let first = items.first().map(|i| (file_name(&i.file).to_string(), 1));
        let mut absent = Vec::new();
        if !has(&self.settings, "smtp", "always_add_domain") {
            absent.push((
                "smtp",
                "always_add_domain",
                "false".to_string(),
                "no FEATURE(`always_add_domain'): sendmail added no domain to local addresses",
            ));
        }
        if !has(&self.settings, "pop3", "pop_before_smtp_ttl") {
            absent.push((
                "pop3",
                "pop_before_smtp_ttl",
                toml_str("0s"),
                "no poprelay.mc Local_check_rcpt rules: POP-before-SMTP stays off, as it was",
            ));
        }
        for (section, key, value, why) in absent {
            let (file, line) = first.clone().unwrap_or_default();
            self.settings.push(Setting {
                section,
                key,
                value,
                comments: vec![why.to_string()],
                file,
                line,
            });
        }
        if !has(&self.settings, "", "hostname") {
            self.header.push(
                "hostname: not in the .mc (no confDOMAIN_NAME); the system's name is used, as sendmail did."
                    .into(),
            );
        }
        for (key, name, kind) in [
            ("aliases", "aliases", MapKind::Aliases),
            ("local_host_names", "local-host-names", MapKind::ClassFile),
            ("relay_domains", "relay-domains", MapKind::ClassFile),
        ] {
            if !self.maps.iter().any(|m| m.key == key) {
                self.need(key, name.to_string(), kind);
            }
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# mailtool.toml, written by `mailtool migrate sendmail` from:\n");
        for s in &self.opts.sources {
            out.push_str(&format!("#   {s}\n"));
        }
        if let Some((name, _)) = &self.opts.sysconfig {
            out.push_str(&format!("#   {name}\n"));
        }
        out.push_str(
            "# Keys not written keep their defaults (`mailtool config show` prints them all).\n",
        );
        for h in &self.header {
            out.push_str(&format!("# {h}\n"));
        }
        for section in SECTIONS {
            let keys: Vec<&Setting> = self
                .settings
                .iter()
                .filter(|s| s.section == *section)
                .collect();
            let dnsbl = *section == "smtp" && !self.dnsbl.is_empty();
            if keys.is_empty() && !dnsbl {
                continue;
            }
            if !section.is_empty() {
                out.push_str(&format!("\n[{section}]\n"));
            } else {
                out.push('\n');
            }
            let mut last_cite: Option<&String> = None;
            for s in keys {
                // Keys from one directive (access, access_temp_fail) share one citation.
                let same = last_cite.is_some() && last_cite == s.comments.first();
                for c in s.comments.iter().skip(usize::from(same)) {
                    out.push_str(&format!("# {c}\n"));
                }
                last_cite = s.comments.first();
                out.push_str(&format!("{} = {}\n", s.key, s.value));
            }
            if dnsbl {
                for (_, cite) in &self.dnsbl {
                    out.push_str(&format!("# {cite}\n"));
                }
                out.push_str("dnsbl = [\n");
                for (table, _) in &self.dnsbl {
                    out.push_str(&format!("  {table},\n"));
                }
                out.push_str("]\n");
            }
        }
        if !self.untranslated.is_empty() {
            out.push_str("\n# Not translated (review these):\n");
            for n in &self.untranslated {
                out.push_str(&format!(
                    "#   {}:{}: {} — {}\n",
                    file_name(&n.file),
                    n.line,
                    n.text,
                    n.why
                ));
            }
        }
        out
    }
}

/// `SMART_HOST`: `smtp:[host]`, `relay:host`, `[host]:port` → `host[:port]`.
fn smart_host(value: &str) -> Option<String> {
    let mut v = value.trim();
    if let Some((mailer, rest)) = v.split_once(':')
        && ["smtp", "esmtp", "smtp8", "dsmtp", "relay"].contains(&mailer)
    {
        v = rest;
    }
    let (host, port) = match v.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest.split_once(']')?;
            (h, after.strip_prefix(':'))
        }
        None if v.matches(':').count() == 1 => {
            let (h, p) = v.split_once(':')?;
            (h, Some(p))
        }
        None => (v, None),
    };
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('$') {
        return None;
    }
    match port {
        Some(p) => {
            let p: u16 = p.parse().ok()?;
            Some(if host.contains(':') {
                format!("[{host}]:{p}")
            } else {
                format!("{host}:{p}")
            })
        }
        None => Some(host.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PtrCheck;
    use crate::migrate::mc;

    fn run(text: &str) -> (Migration, config::Settings) {
        let items = mc::parse("test.mc", text).unwrap();
        let opts = Options {
            etc_dirs: vec!["/etc/mail".into()],
            sources: vec!["test.mc".into()],
            sysconfig: None,
        };
        let m = translate(&items, &opts).unwrap();
        let s = config::parse(&m.toml, "t", true).unwrap();
        (m, s)
    }

    fn seed() -> (Migration, config::Settings) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-mc");
        let main = std::fs::read_to_string(format!("{dir}/mydomain.mc")).unwrap();
        let mut resolve = |p: &str, _: &str| match p {
            "poprelay.mc" => mc::Resolved::Text {
                name: "poprelay.mc".into(),
                text: std::fs::read_to_string(format!("{dir}/poprelay.mc")).unwrap(),
            },
            _ => mc::Resolved::Skip,
        };
        let items = mc::parse_with("mydomain.mc", &main, &mut resolve).unwrap();
        let opts = Options {
            etc_dirs: vec!["/etc/mail".into()],
            sources: vec!["mydomain.mc".into()],
            sysconfig: Some(("sendmail".into(), "DAEMON=yes\nQUEUE=1h\n".into())),
        };
        let m = translate(&items, &opts).unwrap();
        let s = config::parse(&m.toml, "t", true).unwrap();
        (m, s)
    }

    #[test]
    fn seed_translates_completely() {
        let (m, s) = seed();
        assert!(
            m.untranslated.is_empty(),
            "{:#?}\n{}",
            m.untranslated,
            m.toml
        );
        assert_eq!(s.smtp.greet_pause.0.as_millis(), 5000);
        assert!(s.smtp.always_add_domain);
        assert_eq!(s.smtp.ptr_check, PtrCheck::Resolvable);
        assert_eq!(s.smtp.dnsbl.len(), 1);
        assert_eq!(s.smtp.dnsbl[0].zone, "relays.ordb.org");
        assert_eq!(
            s.smtp.dnsbl[0].message.as_deref(),
            Some("550 Email rejected due to sending server misconfiguration - see")
        );
        assert_eq!(s.maps.access, "access");
        assert!(s.maps.access_temp_fail);
        assert_eq!(s.maps.virtusertable, "virtusertable");
        assert_eq!(s.maps.relay_domains, "relay-domains");
        assert_eq!(
            (s.maps.localip.as_str(), s.maps.popip.as_str()),
            ("localip", "popip")
        );
        assert_eq!(s.pop3.pop_before_smtp_ttl.0.as_secs(), 900);
        assert_eq!(s.queue.interval.0.as_secs(), 3600);
        assert!(
            m.toml.contains("# mydomain.mc:12: FEATURE(`dnsbl'"),
            "{}",
            m.toml
        );
        assert!(
            m.toml.contains("# mydomain.mc:15: FEATURE(`greet_pause'"),
            "{}",
            m.toml
        );
        let keys: Vec<&str> = m.maps.iter().map(|n| n.key).collect();
        for k in ["access", "virtusertable", "localip", "popip", "aliases"] {
            assert!(keys.contains(&k), "{keys:?}");
        }
        // The commented-out RFORGED rule and FEATURE are comments, not rules.
        assert!(m.harmless.iter().any(|n| n.text.starts_with("#RFORGED")));
    }

    #[test]
    fn forged_rule_active_gives_forged() {
        let text = "LOCAL_RULESETS\nSLocal_check_relay\nR$*\t$: $&{client_resolve}\nRTEMP\t$#error $@ 4.7.1 $: \"450 a\"\nRFORGED\t$#error $@ 4.7.1 $: \"450 b\"\nRFAIL\t$#error $@ 4.7.1 $: \"450 c\"\n";
        let (m, s) = run(text);
        assert_eq!(s.smtp.ptr_check, PtrCheck::Forged, "{}", m.toml);
    }

    #[test]
    fn unknown_things_are_listed_by_line() {
        let text = "FEATURE(`mailertable')\nMASQUERADE_AS(`example.com')\nLOCAL_RULESETS\nSLocal_check_mail\nR$*\t$#error $: \"550 no\"\nKfoo hash /etc/mail/foo\nCwlocalhost\ndefine(`SMTP_MAILER_MAX', `1000000')\n";
        let (m, _) = run(text);
        let lines: Vec<(usize, &str)> = m
            .untranslated
            .iter()
            .map(|n| (n.line, n.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, "FEATURE(`mailertable')"),
                (2, "MASQUERADE_AS(`example.com')"),
                (6, "Kfoo hash /etc/mail/foo"),
                (7, "Cwlocalhost"),
                (8, "define(`SMTP_MAILER_MAX', `1000000')"),
                (4, "SLocal_check_mail"),
                (5, "R$*\t$#error $: \"550 no\""),
            ]
        );
        assert!(m.toml.contains("# Not translated"), "{}", m.toml);
    }

    #[test]
    fn limits_and_smart_host() {
        let text = "define(`confMAX_MESSAGE_SIZE', `1000000')dnl\ndefine(`LOCAL_MAILER_MAX', `2000000')dnl\ndefine(`SMART_HOST', `smtp:[mail.isp.example]')\ndefine(`confDOMAIN_NAME', `mail.example1.com')\n";
        let (m, s) = run(text);
        assert_eq!(s.smtp.max_message_size, 1_000_000);
        assert_eq!(s.queue.local_max_size, 2_000_000);
        assert_eq!(s.queue.smart_host, "mail.isp.example");
        assert_eq!(s.hostname.as_deref(), Some("mail.example1.com"));
        assert!(
            !s.smtp.always_add_domain,
            "absent FEATURE: sendmail's behaviour"
        );
        assert!(s.pop3.pop_before_smtp_ttl.is_zero());
        assert!(m.untranslated.is_empty(), "{:?}", m.untranslated);
    }

    #[test]
    fn smart_host_forms() {
        assert_eq!(
            smart_host("relay:mx.example").as_deref(),
            Some("mx.example")
        );
        assert_eq!(
            smart_host("[10.0.0.1]:587").as_deref(),
            Some("10.0.0.1:587")
        );
        assert_eq!(
            smart_host("esmtp:[mx.example]:2525").as_deref(),
            Some("mx.example:2525")
        );
        assert_eq!(smart_host("[::1]:25").as_deref(), Some("[::1]:25"));
        assert_eq!(smart_host("$w"), None);
    }

    #[test]
    fn later_definition_wins_and_the_earlier_is_reported() {
        let (m, s) = run("FEATURE(`greet_pause', `1000')\nFEATURE(`greet_pause', `2000')\n");
        assert_eq!(s.smtp.greet_pause.0.as_millis(), 2000);
        assert_eq!(m.untranslated.len(), 1);
        assert_eq!(m.untranslated[0].line, 1);
        assert!(
            m.untranslated[0].why.contains("test.mc:2"),
            "{:?}",
            m.untranslated
        );
    }

    #[test]
    fn access_db_without_tmpf_and_outside_etc_mail() {
        let (m, s) = run(
            "FEATURE(`access_db', `hash /var/db/access')\nFEATURE(`dnsbl', `bl.example', `\"550 Rejected: \" $&{client_addr}')\n",
        );
        assert!(!s.maps.access_temp_fail);
        assert_eq!(s.maps.access, "/var/db/access");
        assert_eq!(s.smtp.dnsbl[0].message, None);
        assert_eq!(m.untranslated.len(), 1, "{:?}", m.untranslated);
    }
}
