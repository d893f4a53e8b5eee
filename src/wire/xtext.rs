//! RFC 3461 §4 xtext: `xchar` is `!`..`~` except `+` and `=`; any other octet is `+HH`.

/// Encodes as xtext (upper-case hex, as the RFC requires).
pub fn encode(s: &str) -> String {
    encode_also(s, b"")
}

/// Encodes as xtext, escaping the octets in `also` too (the qf file's field separators).
pub fn encode_also(s: &str, also: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if (33..=126).contains(&c) && c != b'+' && c != b'=' && !also.contains(&c) {
            out.push(char::from(c));
        } else {
            let _ = write!(out, "+{c:02X}");
        }
    }
    out
}

/// Decodes xtext as a client sends it. Lower-case hex is accepted (sendmail's xtextok does
/// too; the RFC says upper). `None` on bad syntax, or when the octets are not UTF-8.
pub fn decode(s: &str) -> Option<String> {
    decode_with(s, true)
}

/// Decodes what we wrote into a qf file, where only `+HH` needs undoing: files written by
/// other versions may hold octets a strict decoder would refuse.
pub fn decode_lenient(s: &str) -> Option<String> {
    decode_with(s, false)
}

fn decode_with(s: &str, strict: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'+' {
            let hi = hex_val(*b.get(i + 1)?)?;
            let lo = hex_val(*b.get(i + 2)?)?;
            out.push((hi << 4) + lo);
            i += 3;
        } else if !strict || ((33..=126).contains(&c) && c != b'=') {
            out.push(c);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_val(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3461 §4.
    #[test]
    fn strict_round_trip() {
        assert_eq!(decode("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
        assert_eq!(decode("+2b").as_deref(), Some("+"));
        assert_eq!(decode("").as_deref(), Some(""));
        assert_eq!(decode("a b"), None);
        assert_eq!(decode("a=b"), None);
        assert_eq!(decode("a+"), None);
        assert_eq!(decode("a+G0"), None);
        assert_eq!(decode("+C3+A9").as_deref(), Some("\u{e9}"));
        assert_eq!(decode("+C3"), None, "not UTF-8");
        assert_eq!(encode("a+b=c d\u{e9}"), "a+2Bb+3Dc+20d+C3+A9");
        for s in ["", "plain", "+=+=", "\u{1}\u{7f} ~!", "\u{1f600}"] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        }
    }

    #[test]
    fn qf_fields() {
        assert_eq!(encode_also("rfc822;a:b", b":;"), "rfc822+3Ba+3Ab");
        assert_eq!(encode("rfc822;a:b"), "rfc822;a:b");
        assert_eq!(decode_lenient("a b=c+3B").as_deref(), Some("a b=c;"));
        assert_eq!(decode_lenient("+3"), None);
        for s in ["x;y:z", "5.1.1 (User unknown)", "|/usr/bin/prog a=b"] {
            assert_eq!(decode_lenient(&encode_also(s, b":;")).as_deref(), Some(s));
        }
    }
}
