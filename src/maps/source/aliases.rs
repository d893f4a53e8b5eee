//! aliases(5), read the way sendmail 8.12/8.13's `readaliases` reads it (docs/sendmail-compat.md §2.2).
//!
//! The RHS is stored as raw text (continuation lines keep their leading white space); it is
//! parsed only at delivery time by `maps::aliases`. Line numbers follow sendmail's counter, so
//! an error about a continued entry names the entry's last physical line, as sendmail does.

/// sendmail's `char line[BUFSIZ]` (glibc BUFSIZ) holds one joined entry.
pub const ENTRY_BUFFER: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: u32,
    /// The alias name as stored: the local part, lower-cased (unless `fold_case` is off;
    /// `postmaster` is lower-cased always).
    pub key: Vec<u8>,
    /// The raw value after the colon, leading white space skipped.
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A syserr in sendmail: the entry is dropped and newaliases exits 70.
    Error,
    /// Informational (duplicates): the build goes on and the exit status is untouched.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: u32,
    pub severity: Severity,
    /// The text after `FILE: line N: `.
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every good entry in file order, later duplicates included.
    pub entries: Vec<Entry>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub fold_case: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { fold_case: true }
    }
}

/// Reads physical lines the way `sm_io_fgets` does, tracking the buffer space left.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// fgets(buf, room): up to room-1 bytes, through the first newline.
    /// Returns the bytes read, or None at end of input.
    fn fgets(&mut self, room: usize) -> Option<&'a [u8]> {
        if self.pos >= self.input.len() || room <= 1 {
            return if self.pos >= self.input.len() {
                None
            } else {
                Some(&[])
            };
        }
        let limit = (self.pos + room - 1).min(self.input.len());
        let end = self.input[self.pos..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |i| self.pos + i + 1);
        let s = &self.input[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_eof(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Discards through the next newline ("flush to end of line").
    fn skip_line(&mut self) {
        match self.input[self.pos..].iter().position(|&b| b == b'\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.input.len(),
        }
    }
}

/// Truncates a C string at its first NUL, as every sendmail string function would.
fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

fn is_space(c: u8) -> bool {
    super::makemap::is_c_space(c)
}

/// Parses an aliases file. `is_local` says whether a domain in an `name@domain` LHS is ours
/// (class w); other domains give "cannot alias non-local names".
pub fn parse(input: &[u8], opts: ParseOptions, is_local: &dyn Fn(&str) -> bool) -> Parsed {
    let mut out = Parsed::default();
    let mut rd = Reader { input, pos: 0 };
    let mut line_no: u32 = 0;
    let mut skipping = false;
    let err = |out: &mut Parsed, line: u32, text: String| {
        out.diagnostics.push(Diagnostic {
            line,
            severity: Severity::Error,
            text,
        });
    };

    loop {
        // One logical line, with backslash-newline joins, in a buffer of ENTRY_BUFFER bytes.
        let mut buf: Vec<u8> = Vec::new();
        let Some(first) = rd.fgets(ENTRY_BUFFER) else {
            break;
        };
        line_no += 1;
        buf.extend_from_slice(first);
        let mut terminated = buf.last() == Some(&b'\n');
        // "a\<newline>b": the backslash is overwritten by the next physical line.
        while terminated && buf.len() >= 2 && buf[buf.len() - 2] == b'\\' {
            buf.truncate(buf.len() - 2);
            let room = ENTRY_BUFFER - buf.len();
            match rd.fgets(room) {
                Some(next) => {
                    line_no += 1;
                    buf.extend_from_slice(next);
                    terminated = buf.last() == Some(&b'\n');
                }
                None => break,
            }
        }
        let text_has_newline = c_str(&buf).contains(&b'\n');
        if !text_has_newline && !rd.at_eof() {
            err(&mut out, line_no, "alias line too long".into());
            rd.skip_line();
            skipping = true;
            continue;
        }
        let mut line: Vec<u8> = c_str(&buf).to_vec();
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match line.first() {
            None | Some(b'#') => {
                skipping = false;
                continue;
            }
            Some(b' ') | Some(b'\t') => {
                if !skipping {
                    err(
                        &mut out,
                        line_no,
                        "Non-continuation line starts with space".into(),
                    );
                }
                skipping = true;
                continue;
            }
            _ => {}
        }
        skipping = false;

        let Some(colon) = line.iter().position(|&b| b == b':') else {
            err(
                &mut out,
                line_no,
                format!("{}... missing colon", lossy(&line)),
            );
            continue;
        };
        let lhs = parse_lhs(&line[..colon]);
        if matches!(lhs, Lhs::Illegal) {
            let shown: Vec<u8> = line.iter().take(40).copied().collect();
            err(
                &mut out,
                line_no,
                format!("{}... illegal alias name", lossy(&shown)),
            );
            continue;
        }

        // The RHS, then any continuation lines appended with their leading white space.
        let mut rhs_start = colon + 1;
        while rhs_start < line.len() && is_space(line[rhs_start]) {
            rhs_start += 1;
        }
        let mut overflow = false;
        while matches!(rd.peek(), Some(b' ') | Some(b'\t')) {
            let room = ENTRY_BUFFER.saturating_sub(line.len());
            let Some(next) = rd.fgets(room) else { break };
            line_no += 1;
            let next_text = c_str(next);
            if !next_text.contains(&b'\n') && !rd.at_eof() {
                err(&mut out, line_no, "alias too long".into());
                rd.skip_line();
                skipping = true;
                overflow = true;
                break;
            }
            line.extend_from_slice(next_text.strip_suffix(b"\n").unwrap_or(next_text));
        }
        if overflow {
            continue;
        }

        let user = match lhs {
            Lhs::Illegal => continue,
            Lhs::Remote(addr) if !is_local(&addr.1) => {
                err(
                    &mut out,
                    line_no,
                    format!("{}@{}... cannot alias non-local names", addr.0, addr.1),
                );
                continue;
            }
            Lhs::Remote((user, _)) | Lhs::Local(user) => user,
        };
        let rhs = &line[rhs_start.min(line.len())..];
        if rhs.iter().all(|&b| is_space(b)) {
            let shown: Vec<u8> = line.iter().take(40).copied().collect();
            err(
                &mut out,
                line_no,
                format!("{}... missing value for alias", lossy(&shown)),
            );
            continue;
        }
        let key = if opts.fold_case || user.eq_ignore_ascii_case("postmaster") {
            user.to_ascii_lowercase()
        } else {
            user
        };
        out.entries.push(Entry {
            line: line_no,
            key: key.into_bytes(),
            value: rhs.to_vec(),
        });
    }
    out
}

enum Lhs {
    Local(String),
    Remote((String, String)),
    Illegal,
}

/// The name before the colon: an atom, a quoted string, or `user@domain`.
fn parse_lhs(raw: &[u8]) -> Lhs {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Lhs::Illegal;
    };
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() {
        return Lhs::Illegal;
    }
    if let Some(inner) = t.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        // sendmail dequotes a single quoted token; an embedded unescaped quote is unbalanced.
        if inner.is_empty() || inner.contains('"') || inner.chars().any(|c| c.is_control()) {
            return Lhs::Illegal;
        }
        return Lhs::Local(inner.to_string());
    }
    let bad = |c: char| c.is_whitespace() || c.is_control() || "()<>,;\\\"[]".contains(c);
    if t.chars().any(bad) {
        return Lhs::Illegal;
    }
    match t.rsplit_once('@') {
        Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !user.contains('@') => {
            Lhs::Remote((user.to_string(), domain.to_string()))
        }
        Some(_) => Lhs::Illegal,
        None => Lhs::Local(t.to_string()),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Statistics as newaliases prints them (docs/sendmail-compat.md §2.4): every stored entry counts,
/// duplicates included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub aliases: usize,
    pub longest: usize,
    pub bytes: usize,
}

pub fn stats(entries: &[Entry]) -> Stats {
    let mut s = Stats::default();
    for e in entries {
        s.aliases += 1;
        s.bytes += e.key.len() + e.value.len();
        s.longest = s.longest.max(e.value.len());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(d: &str) -> bool {
        d.eq_ignore_ascii_case("localhost") || d.eq_ignore_ascii_case("example1.com")
    }

    type Lines = (Vec<(u32, String, String)>, Vec<(u32, String)>);

    fn run(text: &str) -> Lines {
        let p = parse(text.as_bytes(), ParseOptions::default(), &local);
        (
            p.entries
                .iter()
                .map(|e| (e.line, lossy(&e.key), lossy(&e.value)))
                .collect(),
            p.diagnostics
                .iter()
                .map(|d| (d.line, d.text.clone()))
                .collect(),
        )
    }

    #[test]
    fn seed_aliases_file() {
        // docs/sendmail-compat.md §2.2: continuation keeps its leading white space.
        let text = "# Required aliases\npostmaster:\troot\nMAILER-DAEMON:\tpostmaster\nabuse:\t\tpostmaster\n# c\nstaff:\t\twho@example1.com,\n\t\texample\n";
        let (e, d) = run(text);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            e,
            vec![
                (2, "postmaster".into(), "root".into()),
                (3, "mailer-daemon".into(), "postmaster".into()),
                (4, "abuse".into(), "postmaster".into()),
                (7, "staff".into(), "who@example1.com,\t\texample".into()),
            ]
        );
        // §2.4: N=4, longest 26, total = sum(len(key)+len(rhs)).
        let s = stats(&parse(text.as_bytes(), ParseOptions::default(), &local).entries);
        assert_eq!(s.aliases, 4);
        assert_eq!(s.longest, "who@example1.com,\t\texample".len());
        assert_eq!(
            s.bytes,
            10 + 4 + 13 + 10 + 5 + 10 + 5 + "who@example1.com,\t\texample".len()
        );
    }

    #[test]
    fn backslash_joins_lines() {
        let (e, d) = run("a: b,\\\nc\n");
        assert!(d.is_empty());
        assert_eq!(e, vec![(2, "a".into(), "b,c".into())]);
    }

    #[test]
    fn errors_and_line_numbers() {
        // §2.2 build-time diagnostics.
        let text = "nocolon here\n  stray\nempty:\nbad name: x\nfoo@elsewhere.org: x\n\"quoted name\": y\nok: z\n";
        let (e, d) = run(text);
        assert_eq!(
            d,
            vec![
                (1, "nocolon here... missing colon".to_string()),
                (2, "Non-continuation line starts with space".to_string()),
                (3, "empty:... missing value for alias".to_string()),
                (4, "bad name: x... illegal alias name".to_string()),
                (
                    5,
                    "foo@elsewhere.org... cannot alias non-local names".to_string()
                ),
            ]
        );
        // The stray indented line follows an error line that did not set "skipping", so
        // sendmail reports it as a stray continuation.
        assert_eq!(
            e,
            vec![
                (6, "quoted name".into(), "y".into()),
                (7, "ok".into(), "z".into())
            ]
        );
    }

    #[test]
    fn stray_continuation_is_reported() {
        let (_, d) = run("# comment\n\tstray\n");
        assert_eq!(
            d,
            vec![(2, "Non-continuation line starts with space".to_string())]
        );
        // Only the first of several stray lines is reported.
        let (_, d) = run("\n\tone\n\ttwo\n");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn local_domain_lhs_and_postmaster() {
        let (e, _) = run("Root@localhost: admin\nPostMaster: root\n");
        assert_eq!(e[0].1, "root");
        assert_eq!(e[1].1, "postmaster");
        let p = parse(
            b"PostMaster: root\nMiXed: x\n",
            ParseOptions { fold_case: false },
            &local,
        );
        assert_eq!(p.entries[0].key, b"postmaster");
        assert_eq!(p.entries[1].key, b"MiXed");
    }

    #[test]
    fn overlong_entry() {
        let text = format!("a: {}\nb: c\n", "x".repeat(9000));
        let (e, d) = run(&text);
        assert_eq!(d, vec![(1, "alias line too long".to_string())]);
        assert_eq!(e, vec![(2, "b".into(), "c".into())]);
        let text = format!("a: x\n {}\n {}\nb: c\n", "y".repeat(5000), "z".repeat(5000));
        let (e, d) = run(&text);
        assert_eq!(d, vec![(3, "alias too long".to_string())]);
        assert_eq!(e, vec![(4, "b".into(), "c".into())]);
    }

    #[test]
    fn binary_garbage_never_panics() {
        let mut seed: u32 = 7;
        for _ in 0..2000 {
            let mut buf = vec![0u8; (seed % 300) as usize];
            for b in buf.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = [b'a', b':', b'\n', b' ', b'\t', b'\\', b'"', b'@', 0, 0xff]
                    [(seed % 10) as usize];
            }
            let _ = parse(&buf, ParseOptions::default(), &local);
        }
    }
}
