//! The header section of a stored message, field by field, with each field's byte span, so
//! the stage can read From: and find the Authentication-Results fields it must remove. Lines
//! end in LF or CRLF. Parsing stops at the empty line, at a line that is not a field, and
//! before a last field whose line end has not arrived (the head may be cut short).

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name, as written (no white space: a line whose name has any is not a field).
    pub name: &'a [u8],
    /// Everything after the colon, folding included, without the final line end.
    pub value: &'a [u8],
    /// Where the field starts in the head, and where the next one does.
    pub start: usize,
    pub end: usize,
}

impl Field<'_> {
    /// True if the field is called `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value unfolded (line ends removed) and trimmed, invalid UTF-8 replaced.
    pub fn unfolded(&self) -> String {
        let v: Vec<u8> = self
            .value
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        String::from_utf8_lossy(&v).trim().to_string()
    }
}

/// The fields of `head`, in order.
pub fn fields(head: &[u8]) -> Fields<'_> {
    Fields { head, at: 0 }
}

/// [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    head: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let head = self.head;
        let start = self.at;
        let first_end = line_end(head, start)?;
        let line = trim_cr(&head[start..first_end]);
        let colon = line.iter().position(|&b| b == b':')?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
            self.at = head.len();
            return None;
        }
        // Continuation lines start with white space.
        let mut end = first_end + 1;
        while let Some(&c) = head.get(end) {
            if c != b' ' && c != b'\t' {
                break;
            }
            end = line_end(head, end)? + 1;
        }
        let value_end = if head[..end - 1].ends_with(b"\r") {
            end - 2
        } else {
            end - 1
        };
        self.at = end;
        Some(Field {
            name,
            value: &head[start + colon + 1..value_end.max(start + colon + 1)],
            start,
            end,
        })
    }
}

/// The index of the LF ending the line that starts at `from`, if it has arrived.
fn line_end(head: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', head.get(from..)?).map(|i| from + i)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The domain of the first address in the first From: field, lowercased, if there is one.
pub fn from_domain(head: &[u8]) -> Option<String> {
    let f = fields(head).find(|f| f.is("from"))?;
    let parsed = mail_parser::MessageParser::default().parse_headers(&head[f.start..f.end])?;
    let addr = parsed.from()?.first()?.address()?;
    let (_, domain) = addr.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_folding_and_spans() {
        let head = b"Received: from a\n\tby b\nFrom: A <a@Example.ORG>\r\nSubject: x\n\nbody: no\n";
        let fs: Vec<Field> = fields(head).collect();
        assert_eq!(fs.len(), 3);
        assert_eq!(fs[0].name, b"Received");
        assert_eq!(fs[0].value, b" from a\n\tby b");
        assert_eq!(fs[0].unfolded(), "from a\tby b");
        assert_eq!(&head[fs[0].start..fs[0].end], b"Received: from a\n\tby b\n");
        assert_eq!(fs[1].value, b" A <a@Example.ORG>");
        assert!(fs[1].is("FROM"));
        assert_eq!(fs[2].start, fs[1].end);
        assert_eq!(from_domain(head).as_deref(), Some("example.org"));
    }

    #[test]
    fn stops_at_what_is_not_a_field_or_not_complete() {
        assert_eq!(fields(b"not a field\nX: y\n").count(), 0);
        assert_eq!(fields(b" X: y\n").count(), 0);
        assert_eq!(fields(b"Bad name: y\n").count(), 0);
        assert_eq!(fields(b": y\n").count(), 0);
        // The last field's end has not arrived: it may go on.
        assert_eq!(fields(b"A: 1\nB: 2").count(), 1);
        assert_eq!(fields(b"A: 1\n\tmore").count(), 0);
        assert_eq!(fields(b"").count(), 0);
        assert_eq!(from_domain(b"Subject: x\n\n"), None);
        assert_eq!(from_domain(b"From: nobody\n\n"), None);
        assert_eq!(
            from_domain(b"From: <a@b.example.>\n\n").as_deref(),
            Some("b.example")
        );
    }
}
