//! Authentication-Results fields that claim to be ours (RFC 8601 §5): a border MTA removes
//! every one that arrived from outside and names its own authserv-id, or a forger could
//! vouch for himself in our name.

use super::header::fields;

/// The field's name, and the name it is renamed to where it cannot be cut out (a message
/// already on disk): the same length, so the rename is an overwrite in place.
pub const NAME: &str = "Authentication-Results";
pub const OBSCURED: &str = "X-Removed-Auth-Results";

/// The authserv-id an Authentication-Results value starts with: a token or a quoted string
/// after optional white space and comments. `None` if there is none.
pub fn authserv_id(value: &[u8]) -> Option<String> {
    let mut i = skip_cfws(value, 0)?;
    let start = i;
    if value.get(i) == Some(&b'"') {
        let mut out = Vec::new();
        i += 1;
        loop {
            match *value.get(i)? {
                b'"' => break,
                b'\\' => {
                    out.push(*value.get(i + 1)?);
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        return Some(String::from_utf8_lossy(&out).into_owned());
    }
    while let Some(&c) = value.get(i) {
        if c.is_ascii_whitespace() || c == b';' || c == b'(' {
            break;
        }
        i += 1;
    }
    (i > start).then(|| String::from_utf8_lossy(&value[start..i]).into_owned())
}

/// Skips white space and (nested, escaped) comments; `None` if a comment never closes.
fn skip_cfws(v: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match v.get(i) {
            Some(c) if c.is_ascii_whitespace() => i += 1,
            Some(b'(') => {
                let mut depth = 0usize;
                loop {
                    match *v.get(i)? {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        b'\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => return Some(i),
        }
    }
}

/// The spans (start, end) of the Authentication-Results fields in `head` that claim
/// `authserv_id` (compared without regard to case, as host names are).
pub fn claiming(head: &[u8], our_id: &str) -> Vec<(usize, usize)> {
    fields(head)
        .filter(|f| f.is(NAME))
        .filter(|f| authserv_id(f.value).is_some_and(|id| id.eq_ignore_ascii_case(our_id)))
        .map(|f| (f.start, f.end))
        .collect()
}

/// Cuts the spans out of `bytes` (spans as [`claiming`] returns them: in order, disjoint).
pub fn remove(bytes: &mut Vec<u8>, spans: &[(usize, usize)]) {
    for &(start, end) in spans.iter().rev() {
        if start <= end && end <= bytes.len() {
            bytes.drain(start..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authserv_id_is_the_first_token() {
        assert_eq!(
            authserv_id(b" mx.example; spf=pass").as_deref(),
            Some("mx.example")
        );
        assert_eq!(
            authserv_id(b" mx.example 1; none").as_deref(),
            Some("mx.example")
        );
        assert_eq!(
            authserv_id(b"\n\tmx.example;").as_deref(),
            Some("mx.example")
        );
        assert_eq!(
            authserv_id(b" (a (nested) comment) mx.example(c);").as_deref(),
            Some("mx.example")
        );
        assert_eq!(
            authserv_id(br#" "mx.\"ex\"";"#).as_deref(),
            Some("mx.\"ex\"")
        );
        assert_eq!(authserv_id(b" ; spf=pass"), None);
        assert_eq!(authserv_id(b""), None);
        assert_eq!(authserv_id(b" (never closed"), None);
        assert_eq!(authserv_id(b" \"never closed"), None);
    }

    #[test]
    fn only_fields_claiming_our_id_are_removed() {
        let head = b"Received: x\nAuthentication-Results: MX.Example; dkim=pass\n\
            authentication-results: other.example; dkim=pass\n\
            Authentication-Results: mx.example;\n\tspf=pass\nSubject: s\n\n\
            Authentication-Results: mx.example; in the body\n";
        let spans = claiming(head, "mx.example");
        assert_eq!(spans.len(), 2);
        let mut v = head.to_vec();
        remove(&mut v, &spans);
        assert_eq!(
            v,
            b"Received: x\nauthentication-results: other.example; dkim=pass\nSubject: s\n\n\
            Authentication-Results: mx.example; in the body\n"
        );
        assert!(claiming(head, "elsewhere.example").is_empty());
        assert_eq!(NAME.len(), OBSCURED.len());
    }
}
