//! The section-5 man pages (file formats): mailtool.toml(5), mailtool-access(5),
//! mailtool-virtusertable(5) and mailtool-aliases(5). `mailtool man --dir` writes them beside
//! the section-1 pages generated from the clap tree; `tests/generated.rs` compares the
//! checked-in copies with these.
//!
//! Each page is built with [`Page`], a small roff writer. Text given to it uses two marks:
//! `` `literal` `` is set in bold and copied as is (no further marks inside), `*words*` is set
//! in italics (placeholders; a `*` next to a space is just a star). Everything else is escaped
//! for roff.

mod access;
mod aliases;
mod config;
mod virtusertable;

/// Every section-5 page: file name and contents.
pub fn pages() -> Vec<(String, Vec<u8>)> {
    vec![
        ("mailtool.toml.5".to_string(), config::page()),
        ("mailtool-access.5".to_string(), access::page()),
        (
            "mailtool-virtusertable.5".to_string(),
            virtusertable::page(),
        ),
        ("mailtool-aliases.5".to_string(), aliases::page()),
    ]
}

/// The section-5 pages a section-1 page should point to in its SEE ALSO.
pub fn see_also_for(page: &str) -> &'static [&'static str] {
    const ALL: &[&str] = &[
        "mailtool.toml(5)",
        "mailtool-access(5)",
        "mailtool-virtusertable(5)",
        "mailtool-aliases(5)",
    ];
    match page {
        "mailtool" | "mailtool-serve" | "mailtool-migrate" | "mailtool-migrate-sendmail" => ALL,
        "mailtool-makemap" => &[
            "mailtool-access(5)",
            "mailtool-virtusertable(5)",
            "mailtool.toml(5)",
        ],
        "mailtool-newaliases" => &["mailtool-aliases(5)", "mailtool.toml(5)"],
        "mailtool-sendmail" => &["mailtool-aliases(5)", "mailtool.toml(5)"],
        p if p.starts_with("mailtool-config")
            || p.starts_with("mailtool-poprelay")
            || p.starts_with("mailtool-queue")
            || p == "mailtool-passwd"
            || p == "mailtool-doctor"
            || p == "mailtool-mailq" =>
        {
            &["mailtool.toml(5)"]
        }
        _ => &[],
    }
}

/// A roff (man macro) page under construction.
pub struct Page {
    out: String,
}

impl Page {
    /// `.TH` and the NAME section: `name \- summary`.
    pub fn new(name: &str, summary: &str) -> Page {
        let mut p = Page { out: String::new() };
        p.out.push_str(&format!(
            ".TH {} 5 \"\" \"mailtool {}\" \"File Formats Manual\"\n",
            escape(name),
            env!("CARGO_PKG_VERSION")
        ));
        p.section("NAME");
        p.line(&format!("{} \\- {}", escape(name), inline(summary)));
        p
    }

    /// `.SH TITLE`.
    pub fn section(&mut self, title: &str) -> &mut Self {
        self.out
            .push_str(&format!(".SH {}\n", quote_arg(&title.to_uppercase())));
        self
    }

    /// `.SS Title`.
    pub fn subsection(&mut self, title: &str) -> &mut Self {
        self.out.push_str(&format!(".SS {}\n", quote_arg(title)));
        self
    }

    /// A paragraph (`.PP`). Line breaks in `text` are spaces.
    pub fn para(&mut self, text: &str) -> &mut Self {
        self.out.push_str(".PP\n");
        self.line(&inline(&join_lines(text)));
        self
    }

    /// A tagged paragraph (`.TP`): `tag` on its own line, `text` indented below it.
    pub fn item(&mut self, tag: &str, text: &str) -> &mut Self {
        self.out.push_str(".TP\n");
        self.line(&inline(tag));
        self.line(&inline(&join_lines(text)));
        self
    }

    /// A bulleted paragraph.
    pub fn bullet(&mut self, text: &str) -> &mut Self {
        self.out.push_str(".IP \\(bu 2\n");
        self.line(&inline(&join_lines(text)));
        self
    }

    /// Literal lines (a file or a shell session), indented, without filling.
    pub fn example(&mut self, text: &str) -> &mut Self {
        self.out.push_str(".PP\n.RS 4\n.nf\n");
        for l in text.trim_matches('\n').lines() {
            self.line(&escape(l));
        }
        self.out.push_str(".fi\n.RE\n");
        self
    }

    /// The SEE ALSO section: `name(N)` references, comma-separated.
    pub fn see_also(&mut self, refs: &[&str]) -> &mut Self {
        self.section("SEE ALSO");
        let refs: Vec<String> = refs.iter().map(|r| see_also_ref(r)).collect();
        self.line(&refs.join(", "));
        self
    }

    pub fn finish(&self) -> Vec<u8> {
        self.out.clone().into_bytes()
    }

    /// One output line; a leading `.` or `'` would be a request, so it is protected.
    fn line(&mut self, l: &str) {
        if l.starts_with('.') || l.starts_with('\'') {
            self.out.push_str("\\&");
        }
        self.out.push_str(l);
        self.out.push('\n');
    }
}

/// `name(5)` as `\fBname\fR(5)`.
pub fn see_also_ref(r: &str) -> String {
    match r.split_once('(') {
        Some((name, rest)) => format!("\\fB{}\\fR({rest}", escape(name)),
        None => escape(r),
    }
}

/// Appends a SEE ALSO section to a section-1 page rendered by clap_mangen, before its VERSION
/// section when it has one.
pub fn add_see_also(page: &[u8], refs: &[&str]) -> Vec<u8> {
    if refs.is_empty() {
        return page.to_vec();
    }
    let text = String::from_utf8_lossy(page);
    let refs: Vec<String> = refs.iter().map(|r| see_also_ref(r)).collect();
    let section = format!(".SH \"SEE ALSO\"\n{}\n", refs.join(", "));
    match text.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{section}{}", &text[..at], &text[at + 1..]).into_bytes(),
        None => format!("{text}{section}").into_bytes(),
    }
}

fn join_lines(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes text for roff: backslash, hyphen-minus (so it stays an ASCII `-` for copy and
/// paste), apostrophe and grave accent.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            '\'' => out.push_str("\\(aq"),
            '`' => out.push_str("\\(ga"),
            c => out.push(c),
        }
    }
    out
}

fn quote_arg(s: &str) -> String {
    if s.contains(' ') {
        format!("\"{}\"", escape(s))
    } else {
        escape(s)
    }
}

/// The two marks: `` `literal` `` (bold) and `*words*` (italic); the rest is escaped.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while !rest.is_empty() {
        let next = rest.find(['`', '*']);
        let Some(at) = next else {
            out.push_str(&escape(rest));
            break;
        };
        out.push_str(&escape(&rest[..at]));
        let mark = &rest[at..at + 1];
        let after = &rest[at + 1..];
        match after.find(mark) {
            Some(end)
                if end > 0
                    && (mark == "`"
                        || !(after[..end].starts_with(' ') || after[..end].ends_with(' '))) =>
            {
                let font = if mark == "`" { "B" } else { "I" };
                out.push_str(&format!("\\f{font}{}\\fR", escape(&after[..end])));
                rest = &after[end + 1..];
            }
            _ => {
                // A lone mark is just a character.
                out.push_str(&escape(mark));
                rest = after;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_marks() {
        assert_eq!(inline("a `b-c` *d* e"), "a \\fBb\\-c\\fR \\fId\\fR e");
        assert_eq!(inline("`user+*@d` 5 * 3 * 4"), "\\fBuser+*@d\\fR 5 * 3 * 4");
        assert_eq!(inline("`E:`*### t*"), "\\fBE:\\fR\\fI### t\\fR");
        assert_eq!(inline("it's a\\b"), "it\\(aqs a\\eb");
    }

    #[test]
    fn leading_dot_is_protected() {
        let mut p = Page::new("x", "y");
        p.para("`.forward` files");
        p.example(".dot\n'quote");
        let text = String::from_utf8(p.finish()).unwrap();
        assert!(text.contains("\n\\fB.forward\\fR files\n"), "{text}");
        assert!(text.contains("\n\\&.dot\n\\(aqquote\n"), "{text}");
    }

    #[test]
    fn see_also_goes_before_version() {
        let page = b".TH x 1\n.SH NAME\nx\n.SH VERSION\nv1\n";
        let out = String::from_utf8(add_see_also(page, &["mailtool.toml(5)"])).unwrap();
        assert_eq!(
            out,
            ".TH x 1\n.SH NAME\nx\n.SH \"SEE ALSO\"\n\\fBmailtool.toml\\fR(5)\n.SH VERSION\nv1\n"
        );
    }
}
