//! A small m4 reader for sendmail `.mc` files: enough of m4 to see what a `.mc` says, without
//! expanding sendmail's own macro library.
//!
//! It knows `dnl`, `divert`, quotes `` `...' `` (nested, one level stripped), `#` comments
//! (copied verbatim, as m4 does, which is what keeps `$#error` in rule lines intact), macro calls
//! with arguments across lines, and `include`. Every word written `NAME(` is taken as a macro
//! call; the few cf macros used bare (`LOCAL_RULESETS`, `LOCAL_CONFIG`, …) are known by name.
//! Text outside macros is what m4 would copy into sendmail.cf (rule sets, `R` and `K` lines,
//! comments); it comes back line by line, dropped under `divert(-1)` as m4 drops it.
//! Every item keeps the file and line it started on, so nothing can be reported without a place.

/// One thing the `.mc` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The file's name as given to the parser (the `.mc`, or an included file).
    pub file: String,
    /// 1-based line where the item starts.
    pub line: usize,
    pub directive: Directive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `NAME(args…)` or a bare known macro; `raw` is the call as written, for reports.
    Macro {
        name: String,
        args: Vec<String>,
        raw: String,
    },
    /// `include(path)`, with what became of it.
    Include { path: String, outcome: Include },
    /// One line of text m4 would copy into sendmail.cf, trailing white space removed.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Include {
    /// Its items follow in the list, under its own file name.
    Inlined,
    /// Deliberately not read (sendmail's own `cf.m4`, or a parser without a resolver).
    Skipped,
    /// Could not be read; the reason.
    Missing(String),
}

/// What a resolver says about an `include(path)`.
pub enum Resolved {
    /// The file's display name and text.
    Text {
        name: String,
        text: String,
    },
    Skip,
    Missing(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// m4 has no limit, but an include loop must end somewhere.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Macros the cf library lets a `.mc` use without parentheses.
const BARE_MACROS: &[&str] = &[
    "divert",
    "LOCAL_RULESETS",
    "LOCAL_CONFIG",
    "LOCAL_NET_CONFIG",
    "LOCAL_RULE_0",
    "LOCAL_RULE_1",
    "LOCAL_RULE_2",
    "LOCAL_RULE_3",
];

/// Parses one file; `include`s are recorded but not followed.
pub fn parse(file: &str, text: &str) -> Result<Vec<Item>, ParseError> {
    parse_with(file, text, &mut |_, _| Resolved::Skip)
}

/// Parses `text`, following `include(path)` through `resolve(path, including_file)`.
pub fn parse_with(
    file: &str,
    text: &str,
    resolve: &mut dyn FnMut(&str, &str) -> Resolved,
) -> Result<Vec<Item>, ParseError> {
    let mut ctx = Ctx {
        items: Vec::new(),
        diverted: false,
        depth: 0,
        resolve,
    };
    read_file(&mut ctx, file, text)?;
    Ok(ctx.items)
}

struct Ctx<'r> {
    items: Vec<Item>,
    /// Under `divert(-1)` (or any negative diversion) text is discarded.
    diverted: bool,
    depth: usize,
    resolve: &'r mut dyn FnMut(&str, &str) -> Resolved,
}

struct Reader<'a> {
    file: &'a str,
    src: &'a [u8],
    pos: usize,
    line: usize,
    /// The text line being collected and the line it started on.
    pending: Vec<u8>,
    pending_line: usize,
}

fn read_file(ctx: &mut Ctx<'_>, file: &str, text: &str) -> Result<(), ParseError> {
    let mut r = Reader {
        file,
        src: text.as_bytes(),
        pos: 0,
        line: 1,
        pending: Vec::new(),
        pending_line: 1,
    };
    while let Some(&c) = r.src.get(r.pos) {
        match c {
            b'`' => {
                // The text starts on the quote's line, not the line quoted() ends on.
                let line = r.line;
                let q = r.quoted()?;
                r.add_text_from(&q, line);
            }
            b'#' => {
                let start = r.pos;
                r.skip_to_eol();
                let comment = r.src[start..r.pos].to_vec();
                r.add_text(&comment);
            }
            b'\n' => {
                r.pos += 1;
                r.flush_text(ctx);
                r.line += 1;
            }
            c if is_word_start(c) => {
                let start_line = r.line;
                let start = r.pos;
                let name = r.word();
                word(ctx, &mut r, name, start, start_line)?;
            }
            _ => {
                r.add_text(&[c]);
                r.pos += 1;
            }
        }
    }
    r.flush_text(ctx);
    Ok(())
}

/// What to do with a word read at top level.
fn word(
    ctx: &mut Ctx<'_>,
    r: &mut Reader<'_>,
    name: String,
    start: usize,
    start_line: usize,
) -> Result<(), ParseError> {
    if name == "dnl" {
        // dnl discards the rest of the line and its newline.
        r.skip_to_eol();
        if r.src.get(r.pos) == Some(&b'\n') {
            r.pos += 1;
            r.flush_text(ctx);
            r.line += 1;
        }
        return Ok(());
    }
    let args = if r.src.get(r.pos) == Some(&b'(') {
        r.args(start_line)?
    } else if BARE_MACROS.contains(&name.as_str()) {
        Vec::new()
    } else {
        r.add_text(name.as_bytes());
        return Ok(());
    };
    let raw = String::from_utf8_lossy(&r.src[start..r.pos]).into_owned();
    match name.as_str() {
        "divert" => {
            let n = args.first().map(|a| a.trim()).unwrap_or("0");
            ctx.diverted = n.starts_with('-');
        }
        "include" | "sinclude" => {
            let path = args
                .first()
                .map(|a| a.trim().to_string())
                .unwrap_or_default();
            return include(ctx, r.file, start_line, path);
        }
        _ => {}
    }
    ctx.items.push(Item {
        file: r.file.to_string(),
        line: start_line,
        directive: Directive::Macro { name, args, raw },
    });
    Ok(())
}

fn include(ctx: &mut Ctx<'_>, file: &str, line: usize, path: String) -> Result<(), ParseError> {
    let at = ctx.items.len();
    ctx.items.push(Item {
        file: file.to_string(),
        line,
        directive: Directive::Include {
            path: path.clone(),
            outcome: Include::Skipped,
        },
    });
    let outcome = match (ctx.resolve)(&path, file) {
        Resolved::Skip => Include::Skipped,
        Resolved::Missing(why) => Include::Missing(why),
        Resolved::Text { name, text } => {
            if ctx.depth >= MAX_INCLUDE_DEPTH {
                return Err(ParseError {
                    file: file.to_string(),
                    line,
                    message: format!("include({path}) nested more than {MAX_INCLUDE_DEPTH} deep"),
                });
            }
            ctx.depth += 1;
            let r = read_file(ctx, &name, &text);
            ctx.depth -= 1;
            r?;
            Include::Inlined
        }
    };
    ctx.items[at].directive = Directive::Include { path, outcome };
    Ok(())
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Reader<'_> {
    fn err(&self, line: usize, message: &str) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line,
            message: message.to_string(),
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.src.get(self.pos).is_some_and(|&c| is_word(c)) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    /// Moves to the next newline (not past it).
    fn skip_to_eol(&mut self) {
        while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
            self.pos += 1;
        }
    }

    /// A quoted string at `pos` (on the backquote): its text with the outer quotes removed.
    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        let start_line = self.line;
        self.pos += 1;
        let mut depth = 1usize;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err(start_line, "EOF in quoted string"));
            };
            self.pos += 1;
            match c {
                b'`' => depth += 1,
                b'\'' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(out);
                    }
                }
                b'\n' => self.line += 1,
                _ => {}
            }
            out.push(c);
        }
    }

    /// The arguments of a call at `pos` (on the `(`), as m4 collects them: leading white space
    /// of each argument skipped, one level of quotes removed, commas inside nested parentheses
    /// or quotes kept.
    fn args(&mut self, start_line: usize) -> Result<Vec<String>, ParseError> {
        self.pos += 1;
        let mut args = Vec::new();
        let mut cur: Vec<u8> = Vec::new();
        let mut depth = 0usize;
        let mut at_start = true;
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Err(self.err(start_line, "EOF in argument list"));
            };
            if at_start && c.is_ascii_whitespace() {
                if c == b'\n' {
                    self.line += 1;
                }
                self.pos += 1;
                continue;
            }
            at_start = false;
            match c {
                b'`' => {
                    let q = self.quoted()?;
                    cur.extend_from_slice(&q);
                }
                b'#' => {
                    let s = self.pos;
                    self.skip_to_eol();
                    cur.extend_from_slice(&self.src[s..self.pos]);
                }
                b'(' => {
                    depth += 1;
                    cur.push(c);
                    self.pos += 1;
                }
                b')' if depth == 0 => {
                    self.pos += 1;
                    args.push(String::from_utf8_lossy(&cur).into_owned());
                    return Ok(args);
                }
                b')' => {
                    depth -= 1;
                    cur.push(c);
                    self.pos += 1;
                }
                b',' if depth == 0 => {
                    self.pos += 1;
                    args.push(String::from_utf8_lossy(&cur).into_owned());
                    cur.clear();
                    at_start = true;
                }
                b'\n' => {
                    self.line += 1;
                    cur.push(c);
                    self.pos += 1;
                }
                _ => {
                    cur.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn add_text(&mut self, t: &[u8]) {
        self.add_text_from(t, self.line);
    }

    fn add_text_from(&mut self, t: &[u8], line: usize) {
        if self.pending.is_empty() {
            self.pending_line = line;
        }
        self.pending.extend_from_slice(t);
    }

    /// Ends the current text line; a quoted string may have put several lines in it.
    fn flush_text(&mut self, ctx: &mut Ctx<'_>) {
        if self.pending.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        if ctx.diverted {
            return;
        }
        for (i, l) in text.split('\n').enumerate() {
            let l = l.trim_end();
            if !l.trim_start().is_empty() {
                ctx.items.push(Item {
                    file: self.file.to_string(),
                    line: self.pending_line + i,
                    directive: Directive::Text(l.to_string()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macros(items: &[Item]) -> Vec<(usize, String, Vec<String>)> {
        items
            .iter()
            .filter_map(|i| match &i.directive {
                Directive::Macro { name, args, .. } => Some((i.line, name.clone(), args.clone())),
                _ => None,
            })
            .collect()
    }

    fn texts(items: &[Item]) -> Vec<(usize, String)> {
        items
            .iter()
            .filter_map(|i| match &i.directive {
                Directive::Text(t) => Some((i.line, t.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn quotes_are_stripped_one_level_and_nest() {
        let items = parse("t.mc", "FEATURE(`a', `b `c' d', e)dnl\n").unwrap();
        assert_eq!(
            macros(&items),
            vec![(
                1,
                "FEATURE".into(),
                vec!["a".into(), "b `c' d".into(), "e".into()]
            )]
        );
    }

    #[test]
    fn quoted_commas_stay_in_their_argument() {
        // A milter's equates are one quoted argument with commas in it.
        let items = parse(
            "t.mc",
            "INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost, F=T, T=S:4m;R:4m')dnl\n",
        )
        .unwrap();
        assert_eq!(
            macros(&items),
            vec![(
                1,
                "INPUT_MAIL_FILTER".into(),
                vec![
                    "opendkim".into(),
                    "S=inet:8891@localhost, F=T, T=S:4m;R:4m".into()
                ]
            )]
        );
    }

    #[test]
    fn dnl_eats_the_rest_of_the_line() {
        let items = parse("t.mc", "A(x)dnl comment (not a call\nB(y)\n").unwrap();
        let m = macros(&items);
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].0, m[1].1.as_str()), (2, "B"));
        assert!(texts(&items).is_empty(), "{items:?}");
    }

    #[test]
    fn arguments_span_lines_and_keep_nested_parens() {
        let text =
            "define(`X',\n   (1, 2))\nFEATURE(`dnsbl',\n\t`zone.example',\n\t`\"550 no\"')\n";
        let items = parse("t.mc", text).unwrap();
        let m = macros(&items);
        assert_eq!(m[0].2, vec!["X".to_string(), "(1, 2)".to_string()]);
        assert_eq!(m[1].0, 3);
        assert_eq!(
            m[1].2,
            vec![
                "dnsbl".to_string(),
                "zone.example".into(),
                "\"550 no\"".into()
            ]
        );
    }

    #[test]
    fn comments_and_rule_lines_are_text_with_lines() {
        let text = "divert(0)dnl\n# a comment (with parens)\nLOCAL_RULESETS\nSLocal_check_relay\nR$*\t$: $&{client_resolve}\nRTEMP\t$#error $@ 4.7.1 $: \"450 x\" $&{client_addr}\nR$*\t$(localip $1 $)\n";
        let items = parse("t.mc", text).unwrap();
        assert_eq!(
            texts(&items),
            vec![
                (2, "# a comment (with parens)".to_string()),
                (4, "SLocal_check_relay".to_string()),
                (5, "R$*\t$: $&{client_resolve}".to_string()),
                (
                    6,
                    "RTEMP\t$#error $@ 4.7.1 $: \"450 x\" $&{client_addr}".to_string()
                ),
                (7, "R$*\t$(localip $1 $)".to_string()),
            ]
        );
        assert_eq!(macros(&items)[1].1, "LOCAL_RULESETS");
        assert_eq!(macros(&items)[1].0, 3);
    }

    #[test]
    fn quoted_text_over_several_lines_keeps_each_line_number() {
        let items = parse("t.mc", "\n`a\nR$* x\nb' c\nd\n").unwrap();
        assert_eq!(
            texts(&items),
            vec![
                (2, "a".to_string()),
                (3, "R$* x".to_string()),
                (4, "b c".to_string()),
                (5, "d".to_string())
            ]
        );
    }

    #[test]
    fn divert_minus_one_drops_text_but_not_macros() {
        let items = parse(
            "t.mc",
            "divert(-1)\nsome text\nFEATURE(`x')\ndivert(0)\nkept\n",
        )
        .unwrap();
        assert_eq!(texts(&items), vec![(5, "kept".to_string())]);
        assert!(macros(&items).iter().any(|m| m.1 == "FEATURE" && m.0 == 3));
    }

    #[test]
    fn includes_are_followed_through_the_resolver() {
        let mut resolve = |path: &str, from: &str| {
            assert_eq!(from, "main.mc");
            match path {
                "inc.mc" => Resolved::Text {
                    name: "inc.mc".into(),
                    text: "\nKlocalip hash /etc/mail/localip\n".into(),
                },
                "../m4/cf.m4" => Resolved::Skip,
                _ => Resolved::Missing("no such file".into()),
            }
        };
        let text = "include(`../m4/cf.m4')dnl\ninclude(`inc.mc')dnl\ninclude(`gone.mc')\nA(1)\n";
        let items = parse_with("main.mc", text, &mut resolve).unwrap();
        let summary: Vec<(String, usize, String)> = items
            .iter()
            .map(|i| (i.file.clone(), i.line, format!("{:?}", i.directive)))
            .collect();
        assert_eq!(
            summary[0].2,
            "Include { path: \"../m4/cf.m4\", outcome: Skipped }"
        );
        assert_eq!(
            summary[1].2,
            "Include { path: \"inc.mc\", outcome: Inlined }"
        );
        assert_eq!(
            (summary[2].0.as_str(), summary[2].1),
            ("inc.mc", 2),
            "{summary:?}"
        );
        assert!(summary[3].2.contains("Missing"), "{summary:?}");
        assert_eq!((summary[4].0.as_str(), summary[4].1), ("main.mc", 4));
    }

    #[test]
    fn include_loops_end() {
        let mut resolve = |_: &str, _: &str| Resolved::Text {
            name: "self.mc".into(),
            text: "include(`self.mc')\n".into(),
        };
        let err = parse_with("self.mc", "include(`self.mc')\n", &mut resolve).unwrap_err();
        assert!(err.message.contains("nested"), "{err}");
    }

    #[test]
    fn unterminated_quote_and_call_are_errors_with_their_line() {
        let e = parse("t.mc", "A(1)\nFEATURE(`x\n\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "EOF in quoted string"));
        let e = parse("t.mc", "\n\nFEATURE(x,\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (3, "EOF in argument list"));
    }

    #[test]
    fn seed_files_keep_their_invariants() {
        for f in ["mydomain.mc", "poprelay.mc"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-mc/");
            let data = std::fs::read(format!("{path}{f}")).unwrap();
            crate::fuzz::mc_parse::invariants(&data);
        }
    }
}
