//! makemap(8) input, parsed exactly as sendmail 8.12/8.13 does (docs/sendmail-compat.md §1.4).
//!
//! sendmail reads with `fgets` into a 1024-byte buffer and then treats the buffer as a C
//! string, so we reproduce both: a line longer than 1023 bytes is an error and its rest is
//! read as the next line, and a NUL byte ends the line's text (and, before the newline, makes
//! `strchr(buf, '\n')` fail, which sendmail reports as "line too long").

use std::ops::Range;

/// sendmail's `char ibuf[BUFSIZ]` in makemap.c is 1024 bytes; fgets leaves room for the NUL.
pub const LINE_BUFFER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// The comment character (`-D`), `#` by default. Only a line's first byte counts.
    pub comment: u8,
    /// The key/value separator (`-t`); `None` means any ASCII white space.
    pub separator: Option<u8>,
    /// Fold ASCII upper case in keys (the default; `-f` turns it off).
    pub fold_case: bool,
    /// Accept keys with no value (`-e`).
    pub allow_empty: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            comment: b'#',
            separator: None,
            fold_case: true,
            allow_empty: false,
        }
    }
}

/// A per-line error, with sendmail's wording (see [`LineError::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    TooLong,
    LeadingSpace,
    NoRhs { key: Vec<u8> },
}

impl LineError {
    /// The text after `makemap: MAP: line N: `.
    pub fn message(&self) -> String {
        match self {
            LineError::TooLong => format!("line too long ({LINE_BUFFER} bytes max)"),
            LineError::LeadingSpace => "syntax error (leading space)".into(),
            LineError::NoRhs { key } => format!("no RHS for LHS {}", String::from_utf8_lossy(key)),
        }
    }
}

/// One record: byte ranges into the (possibly case-folded) input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u32,
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// What one physical read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Record),
    Error { line: u32, error: LineError },
}

/// Parses the whole input. Keys are folded in place (that is why the buffer is `&mut`), so the
/// returned ranges can be sliced straight out of `input`.
pub fn parse(input: &mut [u8], opts: &ParseOptions) -> Vec<Item> {
    let mut items = Vec::new();
    parse_each(input, opts, |item| items.push(item));
    items
}

/// Streaming form of [`parse`] over a whole buffer: calls `sink` for every record and error.
pub fn parse_each(input: &mut [u8], opts: &ParseOptions, sink: impl FnMut(Item)) {
    let mut p = Parser::new(*opts);
    p.feed(input, true, sink);
}

/// A resumable parser: feed it the input in pieces; it consumes whole lines only and keeps the
/// line count, so large inputs never have to be held in memory at once.
#[derive(Debug, Clone)]
pub struct Parser {
    opts: ParseOptions,
    line: u32,
}

impl Parser {
    pub fn new(opts: ParseOptions) -> Parser {
        Parser { opts, line: 0 }
    }

    /// Parses the lines in `input` and returns how many bytes were consumed. Without
    /// `is_final`, a trailing partial line (no newline, shorter than sendmail's buffer) is left
    /// for the next call, with the bytes after it. Ranges in the items are relative to `input`.
    pub fn feed(&mut self, input: &mut [u8], is_final: bool, mut sink: impl FnMut(Item)) -> usize {
        let mut pos = 0usize;
        while pos < input.len() {
            // fgets: up to LINE_BUFFER-1 bytes, stopping after a newline.
            let limit = (pos + LINE_BUFFER - 1).min(input.len());
            let chunk_end = match memchr(b'\n', &input[pos..limit]) {
                Some(i) => pos + i + 1,
                None if limit - pos < LINE_BUFFER - 1 && !is_final => return pos,
                None => limit,
            };
            let chunk = pos..chunk_end;
            pos = chunk_end;
            self.line = self.line.saturating_add(1);
            let line = self.line;
            // sm_io_eof() is true only when fgets stopped because the input ran out: not after
            // a newline, and not when the buffer filled up exactly at the end of the input.
            let at_eof = is_final
                && pos >= input.len()
                && input[chunk_end - 1] != b'\n'
                && chunk_end - chunk.start < LINE_BUFFER - 1;
            // The C string ends at the first NUL; strchr(ibuf, '\n') only sees that far.
            let text_end = memchr(0, &input[chunk.clone()]).map_or(chunk.end, |i| chunk.start + i);
            let newline = memchr(b'\n', &input[chunk.start..text_end]).map(|i| chunk.start + i);
            let end = match newline {
                Some(nl) => nl,
                None if !at_eof => {
                    sink(Item::Error {
                        line,
                        error: LineError::TooLong,
                    });
                    continue;
                }
                None => text_end,
            };
            if let Some(item) = parse_line(input, chunk.start..end, line, &self.opts) {
                sink(item);
            }
        }
        pos
    }
}

fn parse_line(
    input: &mut [u8],
    span: Range<usize>,
    line: u32,
    opts: &ParseOptions,
) -> Option<Item> {
    let start = span.start;
    let end = span.end;
    if start == end || input[start] == opts.comment {
        return None;
    }
    let is_sep = |c: u8| match opts.separator {
        None => is_c_space(c),
        Some(s) => c == s,
    };
    if opts.separator.is_none() && is_c_space(input[start]) {
        return Some(Item::Error {
            line,
            error: LineError::LeadingSpace,
        });
    }
    let mut p = start;
    while p < end && !is_sep(input[p]) {
        if opts.fold_case {
            input[p] = input[p].to_ascii_lowercase();
        }
        p += 1;
    }
    let key = start..p;
    while p < end && is_sep(input[p]) {
        p += 1;
    }
    if p == end && !opts.allow_empty {
        return Some(Item::Error {
            line,
            error: LineError::NoRhs {
                key: input[key].to_vec(),
            },
        });
    }
    Some(Item::Record(Record {
        line,
        key,
        value: p..end,
    }))
}

/// C's `isascii(c) && isspace(c)` in the C locale: space, \t, \n, \v, \f, \r.
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, opts: ParseOptions) -> Vec<String> {
        let mut buf = input.as_bytes().to_vec();
        let items = parse(&mut buf, &opts);
        items
            .into_iter()
            .map(|i| match i {
                Item::Record(r) => format!(
                    "{}:{}={}",
                    r.line,
                    String::from_utf8_lossy(&buf[r.key]),
                    String::from_utf8_lossy(&buf[r.value])
                ),
                Item::Error { line, error } => format!("{line}!{}", error.message()),
            })
            .collect()
    }

    #[test]
    fn seed_access_file() {
        // docs/sendmail-compat.md §1.4: tab separators, blank line skipped, key folded.
        let text = "Connect:relay.com\tRELAY\nConnect:other.com\tOK\n\nreject.com\t\tREJECT\n";
        assert_eq!(
            run(text, ParseOptions::default()),
            [
                "1:connect:relay.com=RELAY",
                "2:connect:other.com=OK",
                "4:reject.com=REJECT"
            ]
        );
    }

    #[test]
    fn comments_only_in_first_column() {
        // §1.4 rule 2: `#` elsewhere is data.
        assert_eq!(run("#c\na b # c\n", ParseOptions::default()), ["2:a=b # c"]);
        let opts = ParseOptions {
            comment: b'%',
            ..Default::default()
        };
        assert_eq!(run("%c\n#a b\n", opts), ["2:#a=b"]);
    }

    #[test]
    fn leading_space_is_an_error_without_t() {
        // §1.4 rule 3: no continuation lines.
        assert_eq!(
            run(" a b\n", ParseOptions::default()),
            ["1!syntax error (leading space)"]
        );
        let opts = ParseOptions {
            separator: Some(b':'),
            ..Default::default()
        };
        assert_eq!(run(" a:b\n", opts), ["1: a=b"]);
    }

    #[test]
    fn cr_and_trailing_blanks_are_kept() {
        // §1.4 rule 1: only the \n is removed.
        assert_eq!(
            run("k v\r\nx y  \n", ParseOptions::default()),
            ["1:k=v\r", "2:x=y  "]
        );
    }

    #[test]
    fn empty_value() {
        // §1.4 rule 5.
        assert_eq!(
            run("other.com\n", ParseOptions::default()),
            ["1!no RHS for LHS other.com"]
        );
        assert_eq!(
            run("k \t \n", ParseOptions::default()),
            ["1!no RHS for LHS k"]
        );
        let opts = ParseOptions {
            allow_empty: true,
            ..Default::default()
        };
        assert_eq!(
            run("other.com\n192.168\n", opts),
            ["1:other.com=", "2:192.168="]
        );
    }

    #[test]
    fn separator_option() {
        // §1.2 -t: all consecutive separators are skipped, spaces are data.
        let opts = ParseOptions {
            separator: Some(b':'),
            ..Default::default()
        };
        assert_eq!(run("A B::c d\n", opts), ["1:a b=c d"]);
    }

    #[test]
    fn fold_case_option() {
        let opts = ParseOptions {
            fold_case: false,
            ..Default::default()
        };
        assert_eq!(run("MiXed VaLue\n", opts), ["1:MiXed=VaLue"]);
        assert_eq!(
            run("MiXed VaLue\n", ParseOptions::default()),
            ["1:mixed=VaLue"]
        );
    }

    #[test]
    fn long_line_rest_is_next_line() {
        // §1.4 rule 1: the rest of the physical line is read as the next line.
        let text = format!("long {}\nk v\n", "x".repeat(1100));
        let out = run(&text, ParseOptions::default());
        assert_eq!(out[0], "1!line too long (1024 bytes max)");
        assert_eq!(
            out[1],
            format!("2!no RHS for LHS {}", "x".repeat(1100 - 1018))
        );
        assert_eq!(out[2], "3:k=v");
    }

    #[test]
    fn longest_accepted_line_is_1022_bytes() {
        let ok = format!("k {}\n", "v".repeat(1020));
        assert_eq!(run(&ok, ParseOptions::default()).len(), 1);
        assert!(run(&ok, ParseOptions::default())[0].starts_with("1:k="));
        let too_long = format!("k {}\n", "v".repeat(1021));
        assert_eq!(
            run(&too_long, ParseOptions::default())[0],
            "1!line too long (1024 bytes max)"
        );
    }

    #[test]
    fn nul_before_newline_reads_as_too_long() {
        assert_eq!(
            run("a\0b c\nd e\n", ParseOptions::default()),
            ["1!line too long (1024 bytes max)", "2:d=e"]
        );
        // At EOF the C string simply ends at the NUL.
        assert_eq!(run("k v\0junk", ParseOptions::default()), ["1:k=v"]);
        assert!(run("k v\0junk\n", ParseOptions::default())[0].contains("too long"));
        assert!(run("\0\n", ParseOptions::default())[0].contains("too long"));
    }

    #[test]
    fn last_line_without_newline() {
        assert_eq!(run("a b\nc d", ParseOptions::default()), ["1:a=b", "2:c=d"]);
        // A full buffer at the very end is still "too long": fgets stopped on size, not EOF.
        let exact = format!("k {}", "v".repeat(1021));
        assert_eq!(
            run(&exact, ParseOptions::default()),
            ["1!line too long (1024 bytes max)"]
        );
    }

    #[test]
    fn feeding_in_pieces_matches_one_pass() {
        let text = format!("a 1\n#c\n b\nlong {}\nk v\nlast x", "y".repeat(1500));
        let whole = run(&text, ParseOptions::default());
        for piece in [1usize, 7, 100, 1023, 1024, 4096] {
            let mut p = Parser::new(ParseOptions::default());
            let mut pending: Vec<u8> = Vec::new();
            let mut out = Vec::new();
            let bytes = text.as_bytes();
            let mut i = 0;
            while i <= bytes.len() {
                let end = (i + piece).min(bytes.len());
                pending.extend_from_slice(&bytes[i..end]);
                let fin = end == bytes.len();
                let used = p.feed(&mut pending, fin, |it| {
                    out.push(match it {
                        Item::Record(r) => format!("{}:{}", r.line, r.key.len()),
                        Item::Error { line, error } => format!("{line}!{}", error.message()),
                    })
                });
                pending.drain(..used);
                if fin {
                    break;
                }
                i = end;
            }
            let expect: Vec<String> = whole
                .iter()
                .map(|w| match w.split_once('=') {
                    Some((lk, _)) => {
                        let (l, k) = lk.split_once(':').unwrap();
                        format!("{l}:{}", k.len())
                    }
                    None => w.clone(),
                })
                .collect();
            assert_eq!(out, expect, "piece {piece}");
        }
    }

    #[test]
    fn non_ascii_is_not_a_separator() {
        assert_eq!(
            run("k\u{a0}v w\n", ParseOptions::default()),
            ["1:k\u{a0}v=w"]
        );
    }
}
