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
        milters: Vec::new(),
        called: Vec::new(),
        milter_list: None,
        milter_out: Vec::new(),
    };
    for item in items {
        tx.item(item);
    }
    tx.close_ruleset();
    tx.close_milters();
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
    /// Every `MAIL_FILTER` / `INPUT_MAIL_FILTER`, in the order declared.
    milters: Vec<MilterDecl>,
    /// The filters sendmail calls, in order (its `confINPUT_MAIL_FILTERS`), as built so far.
    called: Vec<Called>,
    /// The `define(`confINPUT_MAIL_FILTERS', …)` in effect, if any.
    milter_list: Option<Item>,
    /// The `[[milter]]` entries, rendered, each with its comments.
    milter_out: Vec<(Vec<String>, String)>,
}

/// One `MAIL_FILTER` or `INPUT_MAIL_FILTER` declaration.
struct MilterDecl {
    name: String,
    item: Item,
    input: bool,
    /// `None` when the declaration could not be translated (already reported).
    entry: Option<MilterEntry>,
}

/// A declaration's `[[milter]]` keys after `name`.
struct MilterEntry {
    socket: String,
    on_failure: &'static str,
    /// (key in `timeouts`, Span text), in sendmail's C, S, R, E order.
    timeouts: Vec<(&'static str, String)>,
    /// Comment lines after the citation.
    comments: Vec<String>,
}

/// A name on sendmail's list of filters to call, and the line that put it there (its
/// `INPUT_MAIL_FILTER`, or the `confINPUT_MAIL_FILTERS` define).
struct Called {
    name: String,
    via: Item,
    by_define: bool,
}

/// sendmail's `T=` letters, the `timeouts` keys they become, in the order written.
const MILTER_TIMEOUTS: &[(char, &str)] = &[
    ('C', "connect"),
    ('S', "send"),
    ('R', "receive"),
    ('E', "end"),
];

/// A time as sendmail's `convtime` reads it (`10s`, `5m`, `1h30m`; a bare number is seconds)
/// as a Span string: as written, with `s` added to a bare number. `None` if it is not one.
fn sendmail_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        if i < b.len() {
            if !b"smhdw".contains(&b[i]) {
                return None;
            }
            i += 1;
        }
    }
    if b.is_empty() {
        return None;
    }
    let text = if b[b.len() - 1].is_ascii_digit() {
        format!("{v}s")
    } else {
        v.to_string()
    };
    Span::parse(&text).ok().map(|_| text)
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
            "MAIL_FILTER" | "INPUT_MAIL_FILTER" => {
                self.mail_filter(item, name == "INPUT_MAIL_FILTER", args)
            }
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

    /// `MAIL_FILTER(`name', `equates')` declares a filter; `INPUT_MAIL_FILTER` also appends its
    /// name to the list of filters sendmail calls, confINPUT_MAIL_FILTERS (sendmail cf/README,
    /// 'Adding a Mail Filter'). The entries are written once the whole `.mc` is read
    /// ([`Tx::close_milters`]), since a later define may still set the list.
    fn mail_filter(&mut self, item: &Item, input: bool, args: &[String]) {
        let name = args.first().map(|s| s.trim()).unwrap_or("");
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == ';') {
            return self.skip(
                item,
                "a mail filter needs a one-word name (sendmail: \"name required for mail filter\")",
            );
        }
        let equates = args.get(1).map(|s| s.trim()).unwrap_or("");
        if args.iter().skip(2).any(|a| !a.trim().is_empty()) {
            let why = format!(
                "arguments after `{equates}': the equates were not quoted, so m4 split them at \
                 their commas and sendmail read only the first (quote them: `S=…, F=…'); the \
                 rest is ignored here too"
            );
            self.skip(item, &why);
        }
        if let Some(first) = self.milters.iter().find(|d| d.name == name) {
            let why = format!(
                "filter {name} is declared again: sendmail keeps the first definition ({}:{}) \
                 and refuses this one (\"duplicate filter definition\")",
                file_name(&first.item.file),
                first.item.line
            );
            self.skip(item, &why);
        } else {
            let entry = self.milter_entry(item, equates);
            self.milters.push(MilterDecl {
                name: name.to_string(),
                item: item.clone(),
                input,
                entry,
            });
        }
        if input {
            // As cf.m4's INPUT_MAIL_FILTER does: confINPUT_MAIL_FILTERS gets the name appended.
            self.called.push(Called {
                name: name.to_string(),
                via: item.clone(),
                by_define: false,
            });
        }
    }

    /// The equates `S=socket, F=flags, T=timeouts`, read as sendmail's milter_setup reads the
    /// `X` line: fields split at commas, each named by its first letter. `None` (reported) when
    /// there is no usable socket or a field has no `=`.
    fn milter_entry(&mut self, item: &Item, equates: &str) -> Option<MilterEntry> {
        let mut socket: Option<String> = None;
        let mut flags = String::new();
        let mut timeouts: Vec<(&'static str, String)> = Vec::new();
        for field in equates.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((key, value)) = field.split_once('=') else {
                let why = format!(
                    "equate {field:?} has no `=': sendmail stops reading this filter there and \
                     does not define it; not translated"
                );
                self.skip(item, &why);
                return None;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            match key.trim().chars().next() {
                Some('S') => socket = Some(value.to_string()),
                // Each F= adds its flags, as sendmail sets one bit per letter.
                Some('F') => flags.push_str(value),
                Some('T') => self.milter_timeouts(item, value, &mut timeouts),
                _ => {
                    let why = format!(
                        "equate {field:?}: sendmail knows S=, F= and T= (\"unknown filter \
                         equate\"); ignored"
                    );
                    self.skip(item, &why);
                }
            }
        }
        let socket = socket.unwrap_or_default();
        if socket.is_empty() {
            self.skip(
                item,
                "no S= socket: sendmail cannot reach this filter either (\"empty or missing \
                 socket information\"); not translated",
            );
            return None;
        }
        if let Err(e) = config::MilterSocket::parse(&socket) {
            let why = format!("{e}; not translated");
            self.skip(item, &why);
            return None;
        }
        let mut comments = Vec::new();
        let letters: Vec<char> = flags.chars().filter(|c| !c.is_whitespace()).collect();
        let (tempfail, tempdrop, reject) = (
            letters.contains(&'T'),
            letters.contains(&'4'),
            letters.contains(&'R'),
        );
        // sendmail's precedence when a filter fails (milter.c, MILTER_SET_STATE): T, then 4,
        // then R. 4 (421 and close the connection) has no mailtool equivalent; tempfail, a 4xx
        // the client retries, is the nearest.
        let on_failure = if tempfail || tempdrop {
            "tempfail"
        } else if reject {
            "reject"
        } else {
            "accept"
        };
        if tempfail && reject {
            comments.push("  F=T and F=R: sendmail tempfails when both are set".to_string());
        }
        for c in letters {
            if c == 'T' || c == 'R' {
                continue;
            }
            let why = if c == '4' {
                format!(
                    "flag 4 (F={flags}): sendmail answers 421 and closes the connection when the \
                     filter fails; mailtool cannot, so on_failure = \"{on_failure}\""
                )
            } else {
                format!(
                    "flag {c} (F={flags}): not a sendmail filter flag mailtool knows (R, T, 4); \
                     ignored"
                )
            };
            self.skip(item, &why);
        }
        timeouts.sort_by_key(|(k, _)| MILTER_TIMEOUTS.iter().position(|(_, n)| n == k));
        Some(MilterEntry {
            socket,
            on_failure,
            timeouts,
            comments,
        })
    }

    /// `T=C:1m;S:10s;R:10s;E:5m`, any subset; a later letter replaces an earlier one. What is
    /// not given, or not usable, keeps mailtool's defaults, which are sendmail's.
    fn milter_timeouts(&mut self, item: &Item, spec: &str, out: &mut Vec<(&'static str, String)>) {
        let defaults = config::MilterTimeouts::default();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((letter, value)) = part.split_once(':') else {
                let why = format!(
                    "timeout {part:?} in T={spec} has no `:': sendmail stops reading the \
                     timeouts there, and so does this"
                );
                self.skip(item, &why);
                return;
            };
            let letter = letter.trim().chars().next().unwrap_or(' ');
            let Some(&(_, key)) = MILTER_TIMEOUTS.iter().find(|(l, _)| *l == letter) else {
                let why = format!(
                    "timeout {part:?} in T={spec}: sendmail knows C, S, R and E (\"unknown \
                     filter timeout\"); ignored"
                );
                self.skip(item, &why);
                continue;
            };
            let default = match key {
                "connect" => defaults.connect,
                "send" => defaults.send,
                "receive" => defaults.receive,
                _ => defaults.end,
            };
            let value = value.trim();
            match sendmail_time(value) {
                Some(v) if Span::parse(&v).is_ok_and(|s| !s.is_zero()) => {
                    out.retain(|(k, _)| *k != key);
                    out.push((key, v));
                }
                Some(_) => {
                    let why = format!(
                        "timeout {letter}:{value}: sendmail takes 0 as no timeout at all; \
                         mailtool needs a limit, so its default {default} ({letter}) stays"
                    );
                    self.skip(item, &why);
                }
                None => {
                    let why = format!(
                        "timeout {letter}:{value} is not a sendmail time (10s, 5m, 1h); the \
                         default {default} stays"
                    );
                    self.skip(item, &why);
                }
            }
        }
    }

    /// `define(`confINPUT_MAIL_FILTERS', `a, b')`: the filters sendmail calls, in this order. It
    /// replaces the list the INPUT_MAIL_FILTERs before it built; one after it appends to it
    /// (sendmail cf/README, 'Adding a Mail Filter').
    fn milter_list(&mut self, item: &Item, value: &str) {
        if let Some(old) = self.milter_list.take() {
            let why = format!("superseded by {}:{}", file_name(&item.file), item.line);
            self.skip(&old, &why);
        }
        self.called = value
            .split([',', ';'])
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| Called {
                name: n.to_string(),
                via: item.clone(),
                by_define: true,
            })
            .collect();
        self.milter_list = Some(item.clone());
    }

    /// The `[[milter]]` entries, in the order sendmail calls them; what it would not call is
    /// reported, not written.
    fn close_milters(&mut self) {
        let called = std::mem::take(&mut self.called);
        let mut seen: Vec<&str> = Vec::new();
        let mut notes = Vec::new();
        let mut out = Vec::new();
        for c in &called {
            if seen.contains(&c.name.as_str()) {
                let why = format!(
                    "filter {} is on the list of filters to call twice; mailtool calls each \
                     milter once, at its first place",
                    c.name
                );
                notes.push(Self::note(&c.via, &why));
                continue;
            }
            seen.push(&c.name);
            let Some(d) = self.milters.iter().find(|d| d.name == c.name) else {
                let why = format!(
                    "filter {} is listed but never declared (no MAIL_FILTER or \
                     INPUT_MAIL_FILTER): sendmail refuses it (\"InputFilter {} not defined\"); \
                     nothing to call",
                    c.name, c.name
                );
                notes.push(Self::note(&c.via, &why));
                continue;
            };
            // An entry that could not be translated is reported already.
            let Some(e) = &d.entry else { continue };
            let mut comments = vec![Self::cite(&d.item)];
            comments.extend(e.comments.iter().cloned());
            if c.by_define {
                comments.push(format!("  called in the order of {}", Self::cite(&c.via)));
            }
            let mut body = format!(
                "name = {}\nsocket = {}\non_failure = {}\n",
                toml_str(&d.name),
                toml_str(&e.socket),
                toml_str(e.on_failure)
            );
            if !e.timeouts.is_empty() {
                let t: Vec<String> = e
                    .timeouts
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", toml_str(v)))
                    .collect();
                body.push_str(&format!("timeouts = {{ {} }}\n", t.join(", ")));
            }
            out.push((comments, body));
        }
        let list = self.milter_list.as_ref().map(Self::cite);
        for d in &self.milters {
            if seen.contains(&d.name.as_str()) || d.entry.is_none() {
                continue;
            }
            match (&list, d.input) {
                (Some(list), true) => {
                    let why = format!(
                        "declared with INPUT_MAIL_FILTER, but {list} sets the list of filters \
                         to call after it, which clears what INPUT_MAIL_FILTER put there, and \
                         does not name it: sendmail does not call it, so it is left out"
                    );
                    notes.push(Self::note(&d.item, &why));
                }
                _ => {
                    let why = "declared but not in confINPUT_MAIL_FILTERS: sendmail does not \
                               call it either, so it is left out";
                    self.harmless.push(Self::note(&d.item, why));
                }
            }
        }
        self.untranslated.extend(notes);
        self.milter_out = out;
    }

    fn define(&mut self, item: &Item, name: &str, value: &str) {
        if name == "confINPUT_MAIL_FILTERS" {
            return self.milter_list(item, value);
        }
        if name.starts_with("confMILTER_MACROS_") {
            return self.skip(
                item,
                "mailtool sends every milter the same fixed set of macros; the list is not \
                 configurable, so this one is not carried over (check that the filter needs \
                 nothing else)",
            );
        }
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
        if !self.milter_out.is_empty() {
            out.push_str(
                "\n# Mail filters (sendmail's INPUT_MAIL_FILTER), called in this order.\n",
            );
        }
        for (comments, body) in &self.milter_out {
            out.push('\n');
            for c in comments {
                out.push_str(&format!("# {c}\n"));
            }
            out.push_str("[[milter]]\n");
            out.push_str(body);
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

    fn milter(s: &config::Settings, name: &str) -> config::Milter {
        s.milter
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no milter {name}: {:?}", s.milter))
            .clone()
    }

    fn names(s: &config::Settings) -> Vec<&str> {
        s.milter.iter().map(|m| m.name.as_str()).collect()
    }

    fn secs(n: u64) -> Span {
        Span(std::time::Duration::from_secs(n))
    }

    #[test]
    fn input_mail_filter_becomes_a_cited_milter_entry() {
        let (m, s) = run(
            "VERSIONID(`x')\nINPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost, F=T, T=S:4m;R:4m')dnl\n",
        );
        assert!(m.untranslated.is_empty(), "{:?}", m.untranslated);
        assert_eq!(
            s.milter,
            vec![config::Milter {
                name: "opendkim".into(),
                socket: "inet:8891@localhost".into(),
                on_failure: config::MilterFailure::Tempfail,
                timeouts: config::MilterTimeouts {
                    send: secs(240),
                    receive: secs(240),
                    ..Default::default()
                },
            }]
        );
        let want = "# test.mc:2: INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost, F=T, T=S:4m;R:4m')\n\
                    [[milter]]\n\
                    name = \"opendkim\"\n\
                    socket = \"inet:8891@localhost\"\n\
                    on_failure = \"tempfail\"\n\
                    timeouts = { send = \"4m\", receive = \"4m\" }\n";
        assert!(m.toml.contains(want), "{}", m.toml);
    }

    #[test]
    fn flags_give_on_failure_and_other_letters_are_reported() {
        let (m, s) = run(concat!(
            "INPUT_MAIL_FILTER(`r', `S=unix:/run/r.sock, F=R')\n",
            "INPUT_MAIL_FILTER(`t', `S=local:/run/t.sock, F=T')\n",
            "INPUT_MAIL_FILTER(`none', `S=inet6:999@[::1]')\n",
            "INPUT_MAIL_FILTER(`empty', `S=inet:1@localhost, F=')\n",
            "INPUT_MAIL_FILTER(`both', `S=inet:2@localhost, F=RT')\n",
            "INPUT_MAIL_FILTER(`four', `S=inet:3@localhost, F=4')\n",
            "INPUT_MAIL_FILTER(`odd', `S=inet:4@localhost, F=Rx')\n",
        ));
        use config::MilterFailure::*;
        let got: Vec<(&str, config::MilterFailure)> = s
            .milter
            .iter()
            .map(|m| (m.name.as_str(), m.on_failure))
            .collect();
        assert_eq!(
            got,
            vec![
                ("r", Reject),
                ("t", Tempfail),
                ("none", Accept),
                ("empty", Accept),
                ("both", Tempfail),
                ("four", Tempfail),
                ("odd", Reject),
            ]
        );
        assert!(m.toml.contains("on_failure = \"accept\""), "{}", m.toml);
        assert!(
            m.toml.contains("# test.mc:5: INPUT_MAIL_FILTER(`both', `S=inet:2@localhost, F=RT')\n#   F=T and F=R: sendmail tempfails when both are set\n[[milter]]\n"),
            "{}",
            m.toml
        );
        let notes: Vec<(usize, &str)> = m
            .untranslated
            .iter()
            .map(|n| (n.line, n.why.as_str()))
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(notes[0].0, 6);
        assert!(
            notes[0].1.starts_with("flag 4 (F=4): sendmail answers 421"),
            "{notes:?}"
        );
        assert_eq!(notes[1].0, 7);
        assert!(notes[1].1.starts_with("flag x (F=Rx)"), "{notes:?}");
        assert_eq!(
            m.untranslated[0].text,
            "INPUT_MAIL_FILTER(`four', `S=inet:3@localhost, F=4')"
        );
    }

    #[test]
    fn timeouts_any_subset_in_sendmail_units_the_rest_defaults() {
        let (m, s) = run(concat!(
            "INPUT_MAIL_FILTER(`all', `S=inet:1@localhost, T=C:1m;S:10s;R:10s;E:5m')\n",
            "INPUT_MAIL_FILTER(`some', `S=inet:2@localhost, T=E:1h30m')\n",
            "INPUT_MAIL_FILTER(`bare', `S=inet:3@localhost, T=C:30; R:2d')\n",
            "INPUT_MAIL_FILTER(`none', `S=inet:4@localhost')\n",
        ));
        assert!(m.untranslated.is_empty(), "{:?}", m.untranslated);
        let d = config::MilterTimeouts::default();
        assert_eq!(
            (d.connect, d.send, d.receive, d.end),
            (secs(300), secs(10), secs(10), secs(300)),
            "mailtool's defaults are sendmail's"
        );
        assert_eq!(
            milter(&s, "all").timeouts,
            config::MilterTimeouts {
                connect: secs(60),
                send: secs(10),
                receive: secs(10),
                end: secs(300)
            }
        );
        assert_eq!(
            milter(&s, "some").timeouts,
            config::MilterTimeouts {
                end: secs(5400),
                ..d.clone()
            }
        );
        assert_eq!(
            milter(&s, "bare").timeouts,
            config::MilterTimeouts {
                connect: secs(30),
                receive: secs(172_800),
                ..d.clone()
            }
        );
        assert_eq!(milter(&s, "none").timeouts, d);
        assert!(
            m.toml.contains(
                "timeouts = { connect = \"1m\", send = \"10s\", receive = \"10s\", end = \"5m\" }"
            ),
            "{}",
            m.toml
        );
        assert!(
            m.toml
                .contains("timeouts = { connect = \"30s\", receive = \"2d\" }"),
            "a bare number is seconds: {}",
            m.toml
        );
    }

    #[test]
    fn unusable_timeouts_are_reported_and_keep_the_default() {
        let (m, s) =
            run("INPUT_MAIL_FILTER(`f', `S=inet:1@localhost, T=C:0;S:5x;Q:1m;R:20s;E:2ms')\n");
        let t = milter(&s, "f").timeouts;
        assert_eq!(
            (t.connect, t.send, t.receive, t.end),
            (secs(300), secs(10), secs(20), secs(300))
        );
        let why: Vec<&str> = m.untranslated.iter().map(|n| n.why.as_str()).collect();
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(
            why[0].contains("0 as no timeout") && why[0].contains("5m"),
            "{why:?}"
        );
        assert!(
            why[1].starts_with("timeout S:5x is not a sendmail time"),
            "{why:?}"
        );
        assert!(
            why[2].contains("\"Q:1m\"") && why[2].contains("C, S, R and E"),
            "{why:?}"
        );
        assert!(why[3].starts_with("timeout E:2ms"), "{why:?}");
        assert!(m.untranslated.iter().all(|n| n.line == 1));
    }

    #[test]
    fn confinput_mail_filters_sets_membership_and_order() {
        let (m, s) = run(concat!(
            "MAIL_FILTER(`a', `S=inet:1@localhost')\n",
            "MAIL_FILTER(`b', `S=unix:/run/b.sock, F=R')\n",
            "MAIL_FILTER(`unused', `S=inet:3@localhost')\n",
            "define(`confINPUT_MAIL_FILTERS', `b, a')\n",
        ));
        assert_eq!(names(&s), ["b", "a"]);
        assert!(m.untranslated.is_empty(), "{:?}", m.untranslated);
        assert!(
            m.toml.contains("# test.mc:2: MAIL_FILTER(`b', `S=unix:/run/b.sock, F=R')\n#   called in the order of test.mc:4: define(`confINPUT_MAIL_FILTERS', `b, a')\n[[milter]]\nname = \"b\"\n"),
            "{}",
            m.toml
        );
        // Declared, not listed: sendmail does not call it either.
        let n = m
            .harmless
            .iter()
            .find(|n| n.line == 3)
            .expect("a note for the unused filter");
        assert!(n.why.contains("sendmail does not call it either"), "{n:?}");
        assert!(!m.toml.contains("\"unused\""), "{}", m.toml);
    }

    #[test]
    fn the_define_replaces_what_input_mail_filter_built_and_later_ones_append() {
        let (m, s) = run(concat!(
            "INPUT_MAIL_FILTER(`a', `S=inet:1@localhost')\n",
            "INPUT_MAIL_FILTER(`b', `S=inet:2@localhost')\n",
            "define(`confINPUT_MAIL_FILTERS', `b')\n",
            "INPUT_MAIL_FILTER(`c', `S=inet:3@localhost')\n",
        ));
        assert_eq!(names(&s), ["b", "c"]);
        assert_eq!(m.untranslated.len(), 1, "{:?}", m.untranslated);
        let n = &m.untranslated[0];
        assert_eq!(n.line, 1);
        assert!(
            n.why
                .contains("test.mc:3: define(`confINPUT_MAIL_FILTERS', `b')")
                && n.why.contains("sendmail does not call it"),
            "{n:?}"
        );
    }

    #[test]
    fn a_listed_filter_never_declared_is_reported_at_the_define() {
        let (m, s) = run(concat!(
            "MAIL_FILTER(`a', `S=inet:1@localhost')\n",
            "define(`confINPUT_MAIL_FILTERS', `a, ghost')\n",
        ));
        assert_eq!(names(&s), ["a"]);
        assert_eq!(m.untranslated.len(), 1, "{:?}", m.untranslated);
        let n = &m.untranslated[0];
        assert_eq!(
            (n.line, n.text.as_str()),
            (2, "define(`confINPUT_MAIL_FILTERS', `a, ghost')")
        );
        assert!(
            n.why.contains("ghost is listed but never declared"),
            "{n:?}"
        );
    }

    #[test]
    fn invalid_or_missing_sockets_are_notes_not_entries() {
        let (m, s) = run(concat!(
            "INPUT_MAIL_FILTER(`bad', `S=inet:port@localhost, F=R')\n",
            "INPUT_MAIL_FILTER(`rel', `S=unix:run/rel.sock')\n",
            "INPUT_MAIL_FILTER(`nosock', `F=T')\n",
            "INPUT_MAIL_FILTER(`good', `S=inet:1@localhost')\n",
        ));
        assert_eq!(names(&s), ["good"]);
        let notes: Vec<(usize, &str)> = m
            .untranslated
            .iter()
            .map(|n| (n.line, n.why.as_str()))
            .collect();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0]
                .1
                .starts_with("milter socket \"inet:port@localhost\" is not"),
            "{notes:?}"
        );
        assert_eq!((notes[1].0, notes[2].0), (2, 3));
        assert!(notes[2].1.starts_with("no S= socket"), "{notes:?}");
    }

    #[test]
    fn milter_macros_are_a_note_about_the_fixed_set() {
        let (m, s) = run("define(`confMILTER_MACROS_CONNECT', `j, {daemon_name}')\n");
        assert!(s.milter.is_empty());
        assert_eq!(m.untranslated.len(), 1);
        assert!(
            m.untranslated[0].why.contains("fixed set of macros"),
            "{:?}",
            m.untranslated
        );
    }

    #[test]
    fn unquoted_equates_duplicates_and_repeats_are_reported() {
        let (m, s) = run(concat!(
            "INPUT_MAIL_FILTER(a, S=inet:1@localhost, F=R)\n",
            "MAIL_FILTER(`a', `S=inet:2@localhost')\n",
            "INPUT_MAIL_FILTER(`b', `S=inet:3@localhost, Z=1, F=T')\n",
            "define(`confINPUT_MAIL_FILTERS', `a, b, a')\n",
        ));
        // m4 split the unquoted equates: sendmail saw S= only, so no F=R.
        let a = milter(&s, "a");
        assert_eq!(
            (a.socket.as_str(), a.on_failure),
            ("inet:1@localhost", config::MilterFailure::Accept)
        );
        assert_eq!(milter(&s, "b").on_failure, config::MilterFailure::Tempfail);
        assert_eq!(names(&s), ["a", "b"]);
        let notes: Vec<(usize, &str)> = m
            .untranslated
            .iter()
            .map(|n| (n.line, n.why.as_str()))
            .collect();
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(
            notes[0].0 == 1 && notes[0].1.contains("not quoted"),
            "{notes:?}"
        );
        assert!(
            notes[1].0 == 2
                && notes[1]
                    .1
                    .contains("keeps the first definition (test.mc:1)"),
            "{notes:?}"
        );
        assert!(
            notes[2].0 == 3 && notes[2].1.contains("\"Z=1\""),
            "{notes:?}"
        );
        assert!(notes[3].0 == 4 && notes[3].1.contains("twice"), "{notes:?}");
    }

    #[test]
    fn no_filters_no_milter_section() {
        let (m, s) = run("VERSIONID(`x')\n");
        assert!(s.milter.is_empty());
        assert!(!m.toml.contains("milter"), "{}", m.toml);
    }
}
