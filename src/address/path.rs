//! The RFC 5321 path grammar: `<@route:local@domain>`, quoted local parts, address literals,
//! and the routing tricks kept for the relay check (RFC 5321 §4.1.2, §4.1.3).

use super::*;

pub(super) fn parse(
    arg: &str,
    cmd: Cmd,
    smtputf8_allowed: bool,
) -> Result<(Path, Params), AddrError> {
    let s = arg.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        return Err(AddrError::MissingAddress(match cmd {
            Cmd::Mail => "FROM",
            Cmd::Rcpt => "TO",
        }));
    }

    // 1. Split address token from the parameters.
    let (token, bracketed, rest) = if s.starts_with('<') {
        let close = scan_angle(s)?;
        (&s[1..close], true, &s[close + 1..])
    } else {
        let end = scan_bare(s)?;
        (&s[..end], false, &s[end..])
    };
    if let Some(c) = rest.chars().next()
        && c != ' '
        && c != '\t'
    {
        if c == '>' {
            return Err(AddrError::Unbalanced('>'));
        }
        return Err(AddrError::JunkAfterAddress(sanitize(rest)));
    }

    // 2. Length before anything expensive (RFC 5321 §4.5.3.1.3 counts the brackets).
    let path_len = token.len() + 2;
    if path_len > MAX_PATH {
        return Err(AddrError::PathTooLong(path_len));
    }

    // 3. UTF-8 permission depends on a parameter, but sendmail reports address errors before
    //    parameter errors, so peek for SMTPUTF8 first and parse the parameters afterwards.
    let param_tokens: Vec<&str> = rest.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
    let utf8 = match cmd {
        Cmd::Mail => {
            smtputf8_allowed
                && param_tokens
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("SMTPUTF8"))
        }
        Cmd::Rcpt => smtputf8_allowed,
    };

    let path = parse_path(token, bracketed, cmd, utf8)?;
    let params = parse_params(&param_tokens, cmd, smtputf8_allowed, utf8)?;
    Ok((path, params))
}

/// `s` starts with `<`; return the index of the matching `>` (first one outside a quoted
/// string). A second `<` outside quotes is refused rather than nested (sendmail would strip
/// nested brackets; no legitimate client sends them).
pub(super) fn scan_angle(s: &str) -> Result<usize, AddrError> {
    let mut in_q = false;
    let mut esc = false;
    for (i, c) in s.char_indices().skip(1) {
        if in_q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
            continue;
        }
        match c {
            '"' => in_q = true,
            '>' => return Ok(i),
            '<' => return Err(AddrError::IllegalChar('<')),
            _ => {}
        }
    }
    Err(AddrError::Unbalanced(if in_q { '"' } else { '<' }))
}

/// Bare (unbracketed) token: up to the first space/tab outside a quoted string, like
/// sendmail's `parseaddr(…, ' ', …)` delimiter.
pub(super) fn scan_bare(s: &str) -> Result<usize, AddrError> {
    let mut in_q = false;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if in_q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
            continue;
        }
        match c {
            '"' => in_q = true,
            ' ' | '\t' => return Ok(i),
            '>' => return Err(AddrError::Unbalanced('>')),
            _ => {}
        }
    }
    if in_q {
        return Err(AddrError::Unbalanced('"'));
    }
    Ok(s.len())
}

pub(super) fn parse_path(
    token: &str,
    bracketed: bool,
    cmd: Cmd,
    utf8: bool,
) -> Result<Path, AddrError> {
    let side = match cmd {
        Cmd::Mail => "sender",
        Cmd::Rcpt => "recipient",
    };
    // Character classes that are wrong everywhere, checked first so the error is specific.
    for c in token.chars() {
        if is_control_like(c) {
            return Err(AddrError::ControlChar);
        }
        if !c.is_ascii() {
            if !utf8 {
                return Err(AddrError::NonAscii(side));
            }
            // U+00A0, U+2028, U+3000…: a space by any other name is still a space.
            if c.is_whitespace() {
                return Err(AddrError::Whitespace);
            }
        }
    }

    if token.is_empty() {
        return match cmd {
            Cmd::Mail => Ok(Path {
                route: Vec::new(),
                mailbox: None,
                raw: String::new(),
                bracketed,
            }),
            Cmd::Rcpt => Err(AddrError::NullRecipient),
        };
    }

    // Source route: `@dom[,@dom…]:mailbox`. Colons inside `[…]` (IPv6) don't count.
    let mut route = Vec::new();
    let mut mbox = token;
    if token.starts_with('@')
        && let Some(colon) = find_top_level(token, ':')
    {
        let adl = &token[..colon];
        for hop in adl.split(',') {
            let d = hop.strip_prefix('@').ok_or(AddrError::InvalidRoute)?;
            if d.is_empty() {
                return Err(AddrError::InvalidRoute);
            }
            parse_domain(d)?;
            route.push(d.to_string());
        }
        mbox = &token[colon + 1..];
    }

    let mailbox = parse_mailbox(mbox)?;
    Ok(Path {
        route,
        mailbox: Some(mailbox),
        raw: token.to_string(),
        bracketed,
    })
}

/// Index of the first `needle` outside `[…]` and outside quoted strings.
pub(super) fn find_top_level(s: &str, needle: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_q = false;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if in_q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
            continue;
        }
        match c {
            '"' => in_q = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            c if c == needle && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

pub(super) fn parse_mailbox(s: &str) -> Result<Mailbox, AddrError> {
    // Find the LAST `@` outside quotes and brackets: sendmail's canonify "moves the gaze
    // right", so `a@b@c` is local part `a@b` at `c` and the double @ stays visible.
    let mut in_q = false;
    let mut esc = false;
    let mut depth = 0usize;
    let mut last_at = None;
    for (i, c) in s.char_indices() {
        if in_q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
            continue;
        }
        match c {
            '"' => in_q = true,
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '@' if depth == 0 => last_at = Some(i),
            _ => {}
        }
    }
    if in_q {
        return Err(AddrError::Unbalanced('"'));
    }
    let (local, domain) = match last_at {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };

    let quoted = check_local(local)?;
    let domain = match domain {
        Some(d) => Some(parse_domain(d)?),
        None => None,
    };
    let mb = Mailbox {
        local: local.to_string(),
        quoted,
        domain,
    };
    // `""@host` is as empty as `@host`.
    if mb.local_unquoted().is_empty() {
        return Err(AddrError::EmptyLocalPart);
    }
    Ok(mb)
}

/// RFC 5321 atext (via RFC 5322 §3.2.3), plus UTF8-non-ascii (RFC 6531 §3.3); the caller has
/// already refused non-ASCII when SMTPUTF8 is not in force.
pub(super) fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// Validate a local part as a sequence of quoted strings and unquoted runs (dots and atext,
/// plus `@` for the double-@ form). Returns whether any quoted string was present.
///
/// This is looser than RFC 5321 Dot-string / Quoted-string on purpose: sendmail accepts
/// `a..b`, `""x@y""` and `a@b` as local parts, and the policy has to see them, not a 501.
pub(super) fn check_local(local: &str) -> Result<bool, AddrError> {
    if local.is_empty() {
        return Err(AddrError::EmptyLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddrError::LocalPartTooLong(local.len()));
    }
    let mut quoted = false;
    let mut in_q = false;
    let mut chars = local.chars();
    while let Some(c) = chars.next() {
        if in_q {
            match c {
                '"' => in_q = false,
                // quoted-pairSMTP = %d92 %d32-126 (control characters are already refused).
                '\\' => {
                    chars.next().ok_or(AddrError::Unbalanced('"'))?;
                }
                // qtextSMTP is %d32-33 / %d35-91 / %d93-126 (+ UTF-8): everything else left.
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_q = true;
                quoted = true;
            }
            '.' | '@' => {}
            ' ' => return Err(AddrError::Whitespace),
            c if is_atext(c) => {}
            c => return Err(AddrError::IllegalChar(c)),
        }
    }
    if in_q {
        return Err(AddrError::Unbalanced('"'));
    }
    Ok(quoted)
}

/// RFC 5321 §4.1.2 `Domain / address-literal`, §4.1.3 for the literal forms.
pub(super) fn parse_domain(d: &str) -> Result<Domain, AddrError> {
    if d.is_empty() {
        return Err(AddrError::EmptyDomain);
    }
    if d.len() > MAX_DOMAIN {
        return Err(AddrError::DomainTooLong(d.len()));
    }
    if let Some(inner) = d.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            // `[1.2.3.4]x` is junk after a literal, `[1.2.3.4` a missing bracket.
            return Err(if inner.contains(']') {
                AddrError::InvalidDomain(sanitize(d))
            } else {
                AddrError::Unbalanced('[')
            });
        };
        return parse_literal(inner).ok_or_else(|| AddrError::InvalidDomain(sanitize(d)));
    }
    if d.ends_with(']') {
        return Err(AddrError::Unbalanced(']'));
    }
    for label in d.split('.') {
        if label.len() > MAX_LABEL {
            return Err(AddrError::DomainTooLong(label.len()));
        }
        // sub-domain = Let-dig [Ldh-str]: no empty label (so no leading, trailing or double
        // dot), no leading/trailing hyphen. Non-ASCII (U-labels) only reaches here with
        // SMTPUTF8; its octet length stands in for the A-label length.
        let ok = !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii());
        if !ok {
            return Err(AddrError::InvalidDomain(sanitize(d)));
        }
    }
    Ok(Domain::Name(d.to_string()))
}

pub(super) fn parse_literal(inner: &str) -> Option<Domain> {
    match inner.split_once(':') {
        None => {
            // IPv4-address-literal = Snum 3("." Snum). std refuses leading zeros, which is what
            // we want (`[010.0.0.1]` is octal to some resolvers).
            inner.parse::<Ipv4Addr>().ok().map(Domain::V4)
        }
        Some((tag, rest)) if tag.eq_ignore_ascii_case("IPv6") => {
            rest.parse::<Ipv6Addr>().ok().map(Domain::V6)
        }
        Some((tag, content)) => {
            // General-address-literal = Standardized-tag ":" 1*dcontent, Standardized-tag is an
            // Ldh-str (must not end with '-'), dcontent = %d33-90 / %d94-126. We also refuse
            // `<` and `>` in dcontent so that `>` always ends the path.
            let tag_ok = tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && !tag.ends_with('-')
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let content_ok = !content.is_empty()
                && content.bytes().all(|b| {
                    (33..=126).contains(&b) && !matches!(b, b'[' | b'\\' | b']' | b'<' | b'>')
                });
            (tag_ok && content_ok).then(|| Domain::General {
                tag: tag.to_string(),
                content: content.to_string(),
            })
        }
    }
}
