//! ESMTP parameters of MAIL and RCPT: SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, NOTIFY, ORCPT
//! (RFC 1870, 6152, 6531, 3461, 4954), each accepted only on the command it belongs to.

use super::*;

/// Which command a known parameter belongs to (RFC 1870, 6152, 6531, 3461, 4954).
pub(super) fn param_owner(kw_upper: &str) -> Option<Cmd> {
    match kw_upper {
        "SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "AUTH" => Some(Cmd::Mail),
        "NOTIFY" | "ORCPT" => Some(Cmd::Rcpt),
        _ => None,
    }
}

pub(super) fn parse_params(
    tokens: &[&str],
    cmd: Cmd,
    smtputf8_allowed: bool,
    utf8: bool,
) -> Result<Params, AddrError> {
    let mut p = Params::default();
    let mut seen: Vec<String> = Vec::new();
    for &tok in tokens {
        let (kw, val) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        let kw_ok = kw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && kw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii under SMTPUTF8
        // (RFC 6531 §3.3). Control characters and a second `=` are refused.
        let val_ok = val.is_none_or(|v| {
            v.chars().all(|c| {
                (c.is_ascii_graphic() && c != '=')
                    || (utf8 && !c.is_ascii() && !is_control_like(c) && !c.is_whitespace())
            })
        });
        if !kw_ok || !val_ok {
            return Err(AddrError::ParamSyntax(sanitize(tok)));
        }
        let upper = kw.to_ascii_uppercase();
        if seen.contains(&upper) {
            return Err(AddrError::DuplicateParam(upper));
        }
        seen.push(upper.clone());

        match param_owner(&upper) {
            Some(owner) if owner != cmd => {
                return Err(AddrError::WrongCommand {
                    keyword: upper,
                    command: cmd.name(),
                });
            }
            None => {
                p.other.push((kw.to_string(), val.map(str::to_string)));
                continue;
            }
            Some(_) => {}
        }

        if upper == "SMTPUTF8" {
            if let Some(v) = val {
                return Err(AddrError::BadParamValue {
                    keyword: upper,
                    value: sanitize(v),
                });
            }
            if smtputf8_allowed {
                p.smtputf8 = true;
            } else {
                // Not offered: just another unknown keyword; the server answers 555.
                p.other.push((kw.to_string(), None));
            }
            continue;
        }

        // Every other known parameter needs a non-empty value.
        let v = match val {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Err(AddrError::ParamNeedsValue(if upper == "AUTH" {
                    "AUTH=".to_string()
                } else {
                    upper
                }));
            }
        };
        let bad = |kw: &str| AddrError::BadParamValue {
            keyword: kw.to_string(),
            value: sanitize(v),
        };
        match upper.as_str() {
            "SIZE" => {
                // RFC 1870: size-value = 1*20DIGIT. Digits only (sendmail's strtol would take
                // "12abc" as 12).
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("SIZE"));
                }
                p.size = Some(v.parse::<u64>().map_err(|_| AddrError::SizeOverflow)?);
            }
            "BODY" => {
                p.body = Some(Body::parse(v).ok_or_else(|| AddrError::UnknownBody(sanitize(v)))?);
            }
            "RET" => {
                p.ret = Some(Ret::parse(v).ok_or_else(|| bad("RET"))?);
            }
            "ENVID" => {
                if v.len() > MAX_ENVID {
                    return Err(AddrError::XtextSyntax("ENVID"));
                }
                p.envid = Some(xtext_decode(v).ok_or(AddrError::XtextSyntax("ENVID"))?);
            }
            "AUTH" => {
                // RFC 4954 §5: AUTH=<> means "identity unknown"; otherwise an xtext mailbox.
                p.auth = Some(if v == "<>" {
                    "<>".to_string()
                } else {
                    xtext_decode(v).ok_or(AddrError::XtextSyntax("AUTH"))?
                });
            }
            "NOTIFY" => p.notify = Some(Notify::parse(v).ok_or_else(|| bad("NOTIFY"))?),
            "ORCPT" => {
                // RFC 3461 §4.2: ORCPT=addr-type ";" xtext, addr-type an atom (e.g. rfc822).
                let parsed = (v.len() <= MAX_ORCPT)
                    .then(|| v.split_once(';'))
                    .flatten()
                    .filter(|(ty, _)| {
                        !ty.is_empty() && ty.chars().all(|c| c.is_ascii() && is_atext(c))
                    })
                    .and_then(|(ty, addr)| Some((ty.to_string(), xtext_decode(addr)?)))
                    .filter(|(_, decoded)| !decoded.is_empty());
                p.orcpt = Some(parsed.ok_or(AddrError::XtextSyntax("ORCPT"))?);
            }
            // param_owner() lists exactly the keywords handled above.
            _ => {}
        }
    }
    Ok(p)
}
