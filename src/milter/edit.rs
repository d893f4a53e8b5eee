//! The message as the milters see and change it: its header fields (those the stage keeps
//! as `H` records first, then the data's own), its body, and the envelope changes they ask
//! for. Added fields become `H` records, so a large `df` is only rewritten when a milter
//! changes or deletes a field of the data, inserts one among them, or replaces the body.

use std::io::{self, Read, Seek};

use super::wire::{CHUNK, Response, action};
use crate::queue::Envelope;
use crate::queue::incoming::Payload;

/// One change a milter asked for at the end of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    AddHeader {
        name: String,
        value: String,
    },
    InsHeader {
        index: u32,
        name: String,
        value: String,
    },
    ChgHeader {
        index: u32,
        name: String,
        value: String,
    },
    AddRcpt(String),
    DelRcpt(String),
    /// A chunk of the new body, CRLF lines.
    ReplBody(Vec<u8>),
    Quarantine(String),
    ChgFrom(String),
}

impl Edit {
    /// The edit a reply asks for, if the milter negotiated the right to make it.
    pub fn from_response(r: Response, actions: u32) -> Result<Edit, String> {
        // A field name a milter gives must be one RFC 5322 allows: it is written as is.
        let bad_name =
            |n: &str| n.is_empty() || !n.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        match &r {
            Response::AddHeader { name, .. }
            | Response::InsHeader { name, .. }
            | Response::ChgHeader { name, .. }
                if bad_name(name) =>
            {
                return Err(format!("header field name {name:?}"));
            }
            _ => {}
        }
        let need = |bit: u32, e: Edit| {
            if actions & bit != 0 {
                Ok(e)
            } else {
                Err(format!("{e:?} without negotiating it"))
            }
        };
        match r {
            Response::AddHeader { name, value } => {
                need(action::ADDHDRS, Edit::AddHeader { name, value })
            }
            Response::InsHeader { index, name, value } => {
                need(action::ADDHDRS, Edit::InsHeader { index, name, value })
            }
            Response::ChgHeader { index, name, value } => {
                need(action::CHGHDRS, Edit::ChgHeader { index, name, value })
            }
            Response::AddRcpt(a) => need(action::ADDRCPT, Edit::AddRcpt(a)),
            Response::AddRcptPar(a, _) => need(action::ADDRCPT_PAR, Edit::AddRcpt(a)),
            Response::DelRcpt(a) => need(action::DELRCPT, Edit::DelRcpt(a)),
            Response::ReplBody(b) => need(action::CHGBODY, Edit::ReplBody(b)),
            Response::Quarantine(q) => need(action::QUARANTINE, Edit::Quarantine(q)),
            Response::ChgFrom(f) => need(action::CHGFROM, Edit::ChgFrom(f)),
            other => Err(format!("{other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// An `H` record of the envelope.
    Record,
    /// A field of the data file.
    Data,
    /// Added by a milter.
    New,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    /// Everything after the colon, the leading space included; continuation lines joined
    /// with LF.
    value: String,
    origin: Origin,
}

/// A message on its way through the milters.
#[derive(Debug)]
pub struct Message {
    payload: Payload,
    fields: Vec<Field>,
    /// Where the body starts in the payload (after the blank line).
    body_start: u64,
    /// The header section was longer than the head kept in memory: its fields past that
    /// point are neither shown nor editable, and the data is never rewritten.
    truncated: bool,
    /// A field of the data was changed or deleted, or one inserted among them.
    rewrite: bool,
    /// The new body in LF form, once a milter replaced it.
    new_body: Option<Vec<u8>>,
    add_rcpt: Vec<String>,
    del_rcpt: Vec<String>,
    new_sender: Option<String>,
    /// The last batch replaced the body: its next chunk appends.
    replacing: bool,
}

fn strip_angles(a: &str) -> String {
    let a = a.trim();
    a.strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a)
        .to_string()
}

/// Splits LF-ended header lines into fields; stops at the blank line. Returns the fields and
/// the offset just past the blank line, if one was found.
fn parse_fields(bytes: &[u8], origin: Origin) -> (Vec<Field>, Option<usize>) {
    let mut fields: Vec<Field> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') else {
            // An incomplete last line (the head was cut): not a field yet.
            return (fields, None);
        };
        let line = &bytes[at..at + nl];
        let next = at + nl + 1;
        if line.is_empty() {
            return (fields, Some(next));
        }
        let text = String::from_utf8_lossy(line);
        if matches!(line[0], b' ' | b'\t') {
            if let Some(f) = fields.last_mut() {
                f.value.push('\n');
                f.value.push_str(&text);
            }
        } else if let Some((name, value)) = text.split_once(':') {
            fields.push(Field {
                name: name.trim_end().to_string(),
                value: value.to_string(),
                origin,
            });
        } else {
            // Not a header line: the body starts here (RFC 5322 has no blank line then).
            return (fields, Some(at));
        }
        at = next;
    }
    (fields, None)
}

/// A milter's value as we store it: a leading space, LF line ends, continuation lines
/// indented (libmilter leaves both to the MTA).
fn normal_value(v: &str) -> String {
    let v = v.replace("\r\n", "\n").replace('\r', " ");
    let mut out = String::with_capacity(v.len() + 2);
    if !v.starts_with([' ', '\t']) {
        out.push(' ');
    }
    for (i, line) in v.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.starts_with([' ', '\t']) {
                out.push('\t');
            }
        }
        out.push_str(line);
    }
    out
}

impl Message {
    /// The message from its payload, the first bytes of it (`head`), and the `H` records.
    pub fn new(payload: Payload, head: &[u8], records: &[String]) -> Message {
        let mut fields = Vec::new();
        for r in records {
            fields.extend(parse_fields(r.as_bytes(), Origin::Record).0);
        }
        let source: &[u8] = match &payload {
            Payload::Bytes(b) => b,
            Payload::Spilled(_) => head,
        };
        let (data_fields, end) = parse_fields(source, Origin::Data);
        fields.extend(data_fields);
        let len = payload.len();
        let (body_start, truncated) = match end {
            Some(e) => (e as u64, false),
            // The whole message is header (no body), or the head was cut short.
            None => (len, (source.len() as u64) < len),
        };
        Message {
            payload,
            fields,
            body_start,
            truncated,
            rewrite: false,
            new_body: None,
            add_rcpt: Vec::new(),
            del_rcpt: Vec::new(),
            new_sender: None,
            replacing: false,
        }
    }

    /// The header fields in order: (name, value after the colon).
    pub fn fields(&self) -> impl Iterator<Item = (String, &str)> {
        self.fields
            .iter()
            .map(|f| (f.name.clone(), f.value.as_str()))
    }

    /// Starts one milter's batch of edits (its body replacement starts afresh).
    pub fn begin(&mut self) {
        self.replacing = false;
    }

    /// Applies one edit, in the order the milter sent them.
    pub fn apply(&mut self, e: Edit) {
        match e {
            Edit::AddHeader { name, value } => self.fields.push(Field {
                name,
                value: normal_value(&value),
                origin: Origin::New,
            }),
            Edit::InsHeader { index, name, value } => {
                let at = (index as usize).min(self.fields.len());
                // Among the data's fields (not just before them all) moves data fields.
                if self.fields[at..].iter().any(|f| f.origin == Origin::Data)
                    && self.fields[..at].iter().any(|f| f.origin == Origin::Data)
                {
                    self.rewrite = true;
                }
                self.fields.insert(
                    at,
                    Field {
                        name,
                        value: normal_value(&value),
                        origin: Origin::New,
                    },
                );
            }
            Edit::ChgHeader { index, name, value } => {
                let nth = self
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name.eq_ignore_ascii_case(&name))
                    .nth((index.max(1) - 1) as usize)
                    .map(|(i, _)| i);
                match nth {
                    Some(i) => {
                        if self.fields[i].origin == Origin::Data {
                            self.rewrite = true;
                        }
                        if value.is_empty() {
                            self.fields.remove(i);
                        } else {
                            self.fields[i].value = normal_value(&value);
                        }
                    }
                    // sendmail adds a field that is not there to change.
                    None if !value.is_empty() => self.fields.push(Field {
                        name,
                        value: normal_value(&value),
                        origin: Origin::New,
                    }),
                    None => {}
                }
            }
            Edit::AddRcpt(a) => {
                let a = strip_angles(&a);
                self.del_rcpt.retain(|d| !d.eq_ignore_ascii_case(&a));
                self.add_rcpt.push(a);
            }
            Edit::DelRcpt(a) => {
                let a = strip_angles(&a);
                self.add_rcpt.retain(|d| !d.eq_ignore_ascii_case(&a));
                self.del_rcpt.push(a);
            }
            Edit::ReplBody(chunk) => {
                let body = self.new_body.get_or_insert_with(Vec::new);
                if !self.replacing {
                    body.clear();
                    self.replacing = true;
                }
                let mut prev_cr = false;
                for &b in &chunk {
                    if prev_cr && b != b'\n' {
                        body.push(b'\r');
                    }
                    prev_cr = b == b'\r';
                    if !prev_cr {
                        body.push(b);
                    }
                }
                if prev_cr {
                    body.push(b'\r');
                }
            }
            Edit::Quarantine(_) => {}
            Edit::ChgFrom(f) => self.new_sender = Some(strip_angles(&f)),
        }
    }

    /// The body as a milter receives it: CRLF lines, in chunks of at most [`CHUNK`] bytes.
    pub async fn body_chunks(&self) -> io::Result<BodyChunks<'_>> {
        let src = match (&self.new_body, &self.payload) {
            (Some(b), _) => Source::Memory(b),
            (None, Payload::Bytes(b)) => {
                Source::Memory(&b[(self.body_start as usize).min(b.len())..])
            }
            (None, Payload::Spilled(s)) => {
                use tokio::io::AsyncSeekExt;
                let mut f = tokio::fs::File::open(s.path()).await?;
                f.seek(io::SeekFrom::Start(self.body_start)).await?;
                Source::File(f, s.len().saturating_sub(self.body_start))
            }
        };
        Ok(BodyChunks { src })
    }

    /// Whether the data file must be written again.
    pub fn needs_rewrite(&self) -> bool {
        (self.rewrite || self.new_body.is_some()) && !self.truncated
    }

    /// The message for the spool: envelope changes applied, added fields as `H` records, and
    /// the data rewritten when it must be. Blocking (a large `df` is copied).
    pub fn finish(self, env: &mut Envelope) -> io::Result<Payload> {
        if let Some(s) = &self.new_sender {
            env.sender = s.clone();
        }
        if !self.del_rcpt.is_empty() {
            env.recipients.retain(|r| {
                !self
                    .del_rcpt
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&r.address))
            });
        }
        for a in &self.add_rcpt {
            if !env
                .recipients
                .iter()
                .any(|r| r.address.eq_ignore_ascii_case(a))
            {
                env.recipients.push(crate::queue::Recipient::new(a.clone()));
            }
        }
        let serialize = |f: &Field| format!("{}:{}\n", f.name, f.value);
        if !self.needs_rewrite() {
            if self.rewrite || self.new_body.is_some() {
                tracing::warn!(
                    "milter edits to a header section longer than {} bytes were not applied",
                    crate::queue::incoming::HEAD_KEPT
                );
            }
            env.headers = self
                .fields
                .iter()
                .filter(|f| f.origin != Origin::Data)
                .map(serialize)
                .collect();
            return Ok(self.payload);
        }
        let mut header = String::new();
        for f in &self.fields {
            header.push_str(&serialize(f));
        }
        header.push('\n');
        env.headers.clear();
        let body_start = self.body_start;
        let new_body = self.new_body;
        match self.payload {
            Payload::Bytes(b) => {
                let mut out = header.into_bytes();
                match new_body {
                    Some(nb) => out.extend_from_slice(&nb),
                    None => out.extend_from_slice(&b[(body_start as usize).min(b.len())..]),
                }
                Ok(Payload::Bytes(out))
            }
            Payload::Spilled(mut s) => {
                s.rewrite(|old, out| {
                    out.write_all(header.as_bytes())?;
                    match &new_body {
                        Some(nb) => out.write_all(nb),
                        None => {
                            let mut old = old;
                            old.seek(io::SeekFrom::Start(body_start))?;
                            io::copy(&mut old.take(u64::MAX), out).map(drop)
                        }
                    }
                })?;
                Ok(Payload::Spilled(s))
            }
        }
    }

    /// Gives the payload back untouched (the message is refused or discarded).
    pub fn into_payload(self) -> Payload {
        self.payload
    }
}

enum Source<'a> {
    Memory(&'a [u8]),
    File(tokio::fs::File, u64),
}

/// The body in CRLF chunks.
pub struct BodyChunks<'a> {
    src: Source<'a>,
}

/// Raw bytes per chunk: every LF may become CRLF, and the result must fit in [`CHUNK`].
const RAW: usize = CHUNK / 2;

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

impl BodyChunks<'_> {
    pub async fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        match &mut self.src {
            Source::Memory(m) => {
                if m.is_empty() {
                    return Ok(None);
                }
                let n = RAW.min(m.len());
                let chunk = to_crlf(&m[..n]);
                *m = &m[n..];
                Ok(Some(chunk))
            }
            Source::File(f, left) => {
                use tokio::io::AsyncReadExt;
                if *left == 0 {
                    return Ok(None);
                }
                let want = (RAW as u64).min(*left) as usize;
                let mut buf = vec![0u8; want];
                let mut got = 0;
                while got < want {
                    let n = f.read(&mut buf[got..]).await?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                if got == 0 {
                    *left = 0;
                    return Ok(None);
                }
                *left -= got as u64;
                Ok(Some(to_crlf(&buf[..got])))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::incoming::Incoming;
    use crate::queue::{QueueId, Recipient};

    const MSG: &[u8] = b"Received: by us\nSubject: hello\n  world\nX-Delete-Me: 1\nFrom: a@b.example\n\nline 1\nline 2\n";

    fn env() -> Envelope {
        Envelope::new(
            "s@b.example",
            vec![
                Recipient::new("one@x.example"),
                Recipient::new("two@x.example"),
            ],
        )
    }

    fn names(m: &Message) -> Vec<String> {
        m.fields().map(|(n, _)| n).collect()
    }

    #[test]
    fn fields_are_the_records_then_the_data_with_folded_values() {
        let m = Message::new(
            Payload::Bytes(MSG.to_vec()),
            MSG,
            &["Authentication-Results: mx; none\n".into()],
        );
        assert_eq!(
            names(&m),
            [
                "Authentication-Results",
                "Received",
                "Subject",
                "X-Delete-Me",
                "From"
            ]
        );
        let subject: Vec<_> = m.fields().filter(|(n, _)| n == "Subject").collect();
        assert_eq!(subject[0].1, " hello\n  world");
        assert_eq!(m.body_start, (MSG.len() - 14) as u64);
        assert!(!m.truncated);
    }

    #[tokio::test]
    async fn added_fields_become_records_and_the_data_is_kept() {
        let mut m = Message::new(Payload::Bytes(MSG.to_vec()), MSG, &[]);
        m.begin();
        m.apply(Edit::AddHeader {
            name: "X-Spam".into(),
            value: "no\r\nreally".into(),
        });
        m.apply(Edit::InsHeader {
            index: 0,
            name: "DKIM-Signature".into(),
            value: "v=1".into(),
        });
        m.apply(Edit::AddRcpt("<three@x.example>".into()));
        m.apply(Edit::DelRcpt("<ONE@x.example>".into()));
        m.apply(Edit::ChgFrom("<new@b.example>".into()));
        assert!(!m.needs_rewrite());
        let mut e = env();
        let p = m.finish(&mut e).unwrap();
        let Payload::Bytes(b) = p else { panic!() };
        assert_eq!(b, MSG);
        assert_eq!(
            e.headers,
            ["DKIM-Signature: v=1\n", "X-Spam: no\n\treally\n"]
        );
        let rcpts: Vec<_> = e.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(rcpts, ["two@x.example", "three@x.example"]);
        assert_eq!(e.sender, "new@b.example");
    }

    #[tokio::test]
    async fn changed_fields_and_a_new_body_rewrite_the_data_in_memory_and_on_disk() {
        for spill in [usize::MAX, 8] {
            let d = tempfile::tempdir().unwrap();
            let qid = QueueId::allocate();
            let path = d.path().join(format!("df{qid}"));
            let mut inc = Incoming::with_spill(qid.clone(), path.clone(), spill);
            inc.push(MSG);
            if inc.wants_flush() {
                inc.flush().unwrap();
            }
            let head = inc.head().to_vec();
            let p = inc.finish().unwrap();
            let mut m = Message::new(p, &head, &["Authentication-Results: mx; none\n".into()]);
            m.begin();
            m.apply(Edit::ChgHeader {
                index: 1,
                name: "subject".into(),
                value: "[milter] hello".into(),
            });
            m.apply(Edit::ChgHeader {
                index: 1,
                name: "X-Delete-Me".into(),
                value: String::new(),
            });
            m.apply(Edit::ChgHeader {
                index: 2,
                name: "From".into(),
                value: String::new(),
            });
            assert!(m.needs_rewrite());
            let mut chunks = m.body_chunks().await.unwrap();
            assert_eq!(
                chunks.next().await.unwrap().unwrap(),
                b"line 1\r\nline 2\r\n"
            );
            assert_eq!(chunks.next().await.unwrap(), None);
            drop(chunks);
            let mut e = env();
            let want_headers = "Authentication-Results: mx; none\nReceived: by us\nSubject: [milter] hello\nFrom: a@b.example\n\n";
            let p = m.finish(&mut e).unwrap();
            assert!(e.headers.is_empty());
            let got = match &p {
                Payload::Bytes(b) => b.clone(),
                Payload::Spilled(s) => {
                    assert_eq!(s.len(), std::fs::metadata(s.path()).unwrap().len());
                    std::fs::read(s.path()).unwrap()
                }
            };
            assert_eq!(
                String::from_utf8(got).unwrap(),
                format!("{want_headers}line 1\nline 2\n")
            );

            // Now the body: two chunks of one batch append; the next batch starts afresh.
            let mut m = Message::new(p, want_headers.as_bytes(), &[]);
            m.begin();
            m.apply(Edit::ReplBody(b"first\r\n".to_vec()));
            m.apply(Edit::ReplBody(b"second\r\nbare\rcr\r".to_vec()));
            let mut chunks = m.body_chunks().await.unwrap();
            assert_eq!(
                chunks.next().await.unwrap().unwrap(),
                b"first\r\nsecond\r\nbare\rcr\r"
            );
            drop(chunks);
            m.begin();
            m.apply(Edit::ReplBody(b"replaced\r\n".to_vec()));
            let p = m.finish(&mut e).unwrap();
            let got = match &p {
                Payload::Bytes(b) => b.clone(),
                Payload::Spilled(s) => std::fs::read(s.path()).unwrap(),
            };
            assert_eq!(
                String::from_utf8(got).unwrap(),
                format!("{want_headers}replaced\n")
            );
            assert!(!d.path().join(format!("tf{qid}")).exists());
        }
    }

    #[tokio::test]
    async fn large_bodies_go_in_chunks_a_milter_accepts() {
        let mut msg = b"Subject: x\n\n".to_vec();
        msg.extend(std::iter::repeat_n(b"\n"[0], 100_000));
        let m = Message::new(Payload::Bytes(msg), b"", &[]);
        let mut chunks = m.body_chunks().await.unwrap();
        let mut total = 0;
        while let Some(c) = chunks.next().await.unwrap() {
            assert!(c.len() <= CHUNK && !c.is_empty());
            total += c.len();
        }
        assert_eq!(total, 200_000);
    }

    #[test]
    fn a_cut_head_is_neither_parsed_past_nor_rewritten() {
        let head = b"Subject: x\nX-Long: aaaa";
        let d = tempfile::tempdir().unwrap();
        let qid = QueueId::allocate();
        let mut inc = Incoming::with_spill(qid.clone(), d.path().join(format!("df{qid}")), 4);
        inc.push(b"Subject: x\nX-Long: aaaaaaaaaa\n\nbody\n");
        inc.flush().unwrap();
        let p = inc.finish().unwrap();
        let mut m = Message::new(p, head, &[]);
        assert!(m.truncated);
        assert_eq!(names(&m), ["Subject"]);
        m.apply(Edit::ChgHeader {
            index: 1,
            name: "Subject".into(),
            value: "y".into(),
        });
        assert!(!m.needs_rewrite());
    }

    #[test]
    fn edits_need_their_negotiated_action() {
        let r = Response::AddHeader {
            name: "X".into(),
            value: "y".into(),
        };
        assert!(Edit::from_response(r.clone(), 0).is_err());
        assert!(Edit::from_response(r, action::ADDHDRS).is_ok());
        assert!(Edit::from_response(Response::DelRcpt("<a>".into()), action::ADDRCPT).is_err());
        assert!(Edit::from_response(Response::ReplBody(vec![]), action::CHGBODY).is_ok());
        assert!(Edit::from_response(Response::Continue, action::OFFERED).is_err());
        for name in ["", "X Y", "X:Y", "X\r\n\tY", "Ü"] {
            let r = Response::AddHeader {
                name: name.into(),
                value: "v".into(),
            };
            assert!(Edit::from_response(r, action::OFFERED).is_err(), "{name:?}");
        }
    }
}
