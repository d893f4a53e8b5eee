//! `[log] format = "json"`: one JSON object a line, for log pipelines. The server logs in
//! sendmail's style (`QID: from=<a>, size=N, relay=host [ip]`), so the fields of a line are
//! read back out of it: `qid` and every `key=value`, plus `client` (the `[address]`) and
//! `user` (the `user "name"` of the POP3 and AUTH lines). The text stays in `msg`.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter.
pub struct JsonLines;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let msg = match fields.0.remove("message") {
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let now = std::time::SystemTime::now();
        let millis = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_millis())
            .unwrap_or(0);
        let secs = crate::dates::rfc3339(crate::dates::unix_secs(now));
        let mut obj = Map::new();
        obj.insert(
            "ts".into(),
            Value::String(format!("{}.{millis:03}Z", secs.trim_end_matches('Z'))),
        );
        obj.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        for (k, v) in line_fields(&msg) {
            obj.entry(k).or_insert(Value::String(v));
        }
        for (k, v) in fields.0 {
            obj.insert(k, v);
        }
        obj.insert("msg".into(), Value::String(msg));
        let line = serde_json::to_string(&Value::Object(obj)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 24
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The fields of a sendmail-style line, in order.
pub fn line_fields(msg: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = msg;
    // A queue id: letters and digits, then ": ".
    if let Some((id, tail)) = msg.split_once(": ")
        && (8..=32).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && id.bytes().any(|b| b.is_ascii_digit())
    {
        out.push(("qid".to_string(), id.to_string()));
        rest = tail;
    }
    // `key=value` pairs separated by ", "; a value runs to the next ", key=".
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in split_pairs(rest) {
        if let Some((k, v)) = piece.split_once('=')
            && is_key(k)
        {
            pairs.push((k.to_string(), v.to_string()));
        } else if let Some(last) = pairs.last_mut() {
            last.1.push_str(", ");
            last.1.push_str(piece);
        }
    }
    if !pairs.is_empty() && rest.split_once('=').is_some_and(|(k, _)| is_key(k)) {
        out.extend(pairs);
    }
    if !out.iter().any(|(k, _)| k == "client")
        && let Some(ip) = bracketed_address(msg)
    {
        out.push(("client".to_string(), ip));
    }
    if let Some(i) = msg.find("user \"") {
        let name = &msg[i + 6..];
        if let Some(end) = name.find('"') {
            out.push(("user".to_string(), name[..end].to_string()));
        }
    }
    out
}

fn split_pairs(s: &str) -> impl Iterator<Item = &str> {
    s.split(", ").filter(|p| !p.is_empty())
}

/// The first `[address]` that is an IP address.
fn bracketed_address(msg: &str) -> Option<String> {
    let mut rest = msg;
    while let Some(i) = rest.find('[') {
        let tail = &rest[i + 1..];
        let end = tail.find(']')?;
        let inside = tail[..end].trim_start_matches("IPv6:");
        if inside.parse::<std::net::IpAddr>().is_ok() {
            return Some(inside.to_string());
        }
        rest = &tail[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
        f.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn sendmail_lines_give_their_fields() {
        let f = line_fields(
            "0Q3xABC123456789: from=<a@example1.com>, size=312, class=0, nrcpts=1, \
             msgid=<x@y>, proto=ESMTP, relay=client.example [192.0.2.7]",
        );
        assert_eq!(get(&f, "qid"), Some("0Q3xABC123456789"));
        assert_eq!(get(&f, "from"), Some("<a@example1.com>"));
        assert_eq!(get(&f, "size"), Some("312"));
        assert_eq!(get(&f, "relay"), Some("client.example [192.0.2.7]"));
        assert_eq!(get(&f, "client"), Some("192.0.2.7"));
        let f = line_fields(
            "0Q3xABC123456789: to=<b@example2.com>, delay=00:00:01, mailer=esmtp, \
             relay=mx[127.0.0.1]:25, dsn=4.4.1, stat=Deferred: Connection refused, try later",
        );
        assert_eq!(get(&f, "dsn"), Some("4.4.1"));
        // A comma inside a value stays in it.
        assert_eq!(
            get(&f, "stat"),
            Some("Deferred: Connection refused, try later")
        );
        assert_eq!(get(&f, "mailer"), Some("esmtp"));
    }

    #[test]
    fn other_lines_give_client_and_user_only() {
        let f = line_fields(
            "bad password or unknown user: POP3 login failure for user \"bob\" from [198.51.100.2]",
        );
        assert_eq!(get(&f, "qid"), None);
        assert_eq!(get(&f, "user"), Some("bob"));
        assert_eq!(get(&f, "client"), Some("198.51.100.2"));
        let f = line_fields("connect from [IPv6:2001:db8::1] (SMTP)");
        assert_eq!(get(&f, "client"), Some("2001:db8::1"));
        assert!(line_fields("listening for SMTP on 127.0.0.1:25").is_empty());
        // Prose with an `=` later on is not split into fields.
        assert!(
            line_fields("shutting down: a=b, c=d")
                .iter()
                .all(|(k, _)| k != "a")
        );
        assert!(line_fields("[not an ip] and [").is_empty());
    }
}
