//! Trace fields: our `Received:` header in sendmail's shape, and the hop count for
//! confMAX_HOP (docs/sendmail-compat.md §7).

use std::net::IpAddr;

use super::command::{is_wsp, trim_wsp};
use super::{MAX_SHORT_STR, sanitize, shorten};

/// Hop count for confMAX_HOP (docs/sendmail-compat.md §7): header fields named
/// `Received`, `X400-Received`, `Via`, `Mail-From`, case-insensitive, in the
/// header section only. Folded continuation lines are not fields; the section
/// ends at the first empty line or the first line that is not a header field.
pub fn count_hops(message: &[u8]) -> usize {
    const HOPS: [&[u8]; 4] = [b"received", b"x400-received", b"via", b"mail-from"];
    let mut count = 0;
    let mut first = true;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.first() {
            None => break,
            Some(&c) if is_wsp(c) => {
                if first {
                    break; // a continuation with nothing to continue: body
                }
                continue;
            }
            Some(_) => {}
        }
        first = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = trim_wsp(&line[..colon]);
        if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
            break;
        }
        if HOPS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            count += 1;
        }
    }
    count
}

/// Our trace header, in sendmail's shape:
///
/// ```text
/// Received: from helo (name [ip])
///     by host (mailtool) with ESMTP id QID
///     for <rcpt>; date
/// ```
///
/// (continuation lines start with a TAB). Without a PTR name the comment
/// is `([ip])`; IPv6 is written `[IPv6:…]` like sendmail. Client-supplied
/// strings are sanitized, so the HELO name cannot add header fields.
#[allow(clippy::too_many_arguments)]
pub fn received_header(
    from_helo: &str,
    client_name: Option<&str>,
    client_ip: IpAddr,
    by_host: &str,
    with: &str,
    qid: &str,
    for_rcpt: Option<&str>,
    date: &str,
) -> String {
    let ip = match client_ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let name = client_name.map(sanitize).filter(|n| !n.is_empty());
    let comment = match &name {
        Some(n) => format!("{n} {ip}"),
        None => ip.clone(),
    };
    let mut helo = sanitize(from_helo);
    if helo.is_empty() {
        helo = name.unwrap_or(ip);
    }
    let mut h = format!(
        "Received: from {} ({comment})\r\n\tby {} (mailtool) with {} id {}",
        shorten(&helo, MAX_SHORT_STR),
        sanitize(by_host),
        sanitize(with),
        sanitize(qid)
    );
    match for_rcpt.map(sanitize) {
        Some(r) => {
            let r = r.trim();
            let r = r
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix('>'))
                .unwrap_or(r);
            h.push_str(&format!(
                "\r\n\tfor <{}>; {}\r\n",
                shorten(r, MAX_SHORT_STR),
                sanitize(date)
            ));
        }
        None => h.push_str(&format!("; {}\r\n", sanitize(date))),
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/sendmail-compat.md §7 confMAX_HOP: Received/X400-Received/Via/Mail-From in
    // the header section only; folded lines are continuations, not fields.
    #[test]
    fn hop_counting() {
        let msg = b"Received: from a\r\n\tby b; date\r\nreceived : x\r\nX400-Received: y\r\n\
                    Via: z\r\nMAIL-FROM: w\r\nSubject: hi\r\n  Received: folded, not a field\r\n\
                    X-Received: no\r\n\r\nReceived: in body\r\nVia: body\r\n";
        assert_eq!(count_hops(msg), 5);
        assert_eq!(count_hops(b"Received: a\nReceived: b\n\nReceived: c\n"), 2);
        assert_eq!(count_hops(b"not a header\r\nReceived: x\r\n"), 0);
        assert_eq!(count_hops(b" Received: x\r\n"), 0);
        assert_eq!(count_hops(b""), 0);
        assert_eq!(count_hops(&b"Received: x\r\n".repeat(26)), 26);
    }

    // sendmail's Received: shape (cf. $Received header definition).
    #[test]
    fn received_header_shape() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            received_header(
                "helo.test",
                Some("ptr.test"),
                ip,
                "mx.test",
                "ESMTP",
                "k5FGx0Ax012345",
                Some("<r@x>"),
                "Sat, 1 Jan 2005 12:00:00 +0100"
            ),
            "Received: from helo.test (ptr.test [192.0.2.1])\r\n\tby mx.test (mailtool) with ESMTP id k5FGx0Ax012345\r\n\tfor <r@x>; Sat, 1 Jan 2005 12:00:00 +0100\r\n"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            received_header("h\r\nX-Evil: 1", None, v6, "mx", "ESMTPS", "q1", None, "d"),
            "Received: from hX-Evil: 1 ([IPv6:2001:db8::1])\r\n\tby mx (mailtool) with ESMTPS id q1; d\r\n"
        );
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(
            received_header("", None, mapped, "mx", "SMTP", "q", Some("a@b"), "d")
                .starts_with("Received: from [192.0.2.9] ([192.0.2.9])\r\n")
        );
    }
}
