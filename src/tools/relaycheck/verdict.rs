//! nmap's verdict rules (docs/security.md §1), pure: given the replies one probe has got
//! so far, the next command to send or the verdict.

use serde::Serialize;

use crate::smtp::proto::Reply;

/// The replies of one probe, in the order the commands are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    pub rset: Option<Reply>,
    pub mail: Option<Reply>,
    pub rcpt: Option<Reply>,
    /// The reply to DATA (`--data` only).
    pub data: Option<Reply>,
    /// The reply to the message's final dot.
    pub message: Option<Reply>,
}

impl Exchange {
    /// The replies present, with the command each answers.
    pub fn replies(&self) -> Vec<(&'static str, &Reply)> {
        [
            ("RSET", &self.rset),
            ("MAIL", &self.mail),
            ("RCPT", &self.rcpt),
            ("DATA", &self.data),
            (".", &self.message),
        ]
        .into_iter()
        .filter_map(|(c, r)| r.as_ref().map(|r| (c, r)))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// RCPT got 250 or 251 (and, with `--data`, DATA 354 and the message 250).
    Relayed,
    /// Accepted, but the recipient is the target itself: local delivery, not a relay.
    AcceptedLocal,
    /// RCPT refused.
    Refused,
    /// MAIL did not get 250, so RCPT was not tried.
    MailRefused,
    /// A reply containing 530: the server wants authentication; the battery stops.
    AuthRequired,
    /// `--data`: RCPT was accepted but DATA or the message was refused.
    DataRefused,
    /// RSET was refused or the connection was lost: nothing was decided.
    Untested,
}

impl Verdict {
    pub fn is_relay(self) -> bool {
        self == Verdict::Relayed
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Relayed => "RELAYED",
            Verdict::AcceptedLocal => "accepted (own address)",
            Verdict::Refused => "refused",
            Verdict::MailRefused => "MAIL refused",
            Verdict::AuthRequired => "authentication required",
            Verdict::DataRefused => "DATA refused",
            Verdict::Untested => "not tested",
        }
    }
}

/// What to send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Rset,
    Mail,
    Rcpt,
    Data,
    Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Send(Step),
    Done(Verdict),
}

/// nmap's test `string.match(response, "530")`, on the raw reply. A 2xx reply is exempt:
/// a server that accepted the command did not ask for authentication, whatever its text
/// says (a queue id or a host name can contain "530"; nmap would stop there).
pub fn wants_auth(reply: &Reply) -> bool {
    if (200..300).contains(&reply.code) {
        return false;
    }
    reply.code.to_string().contains("530") || reply.lines.iter().any(|l| l.contains("530"))
}

/// The next step of a probe, or its verdict. `with_data`: a relay counts only when DATA is
/// accepted (`--data`, as Metasploit does). `to_target`: the recipient is the target itself
/// (accepting it is local delivery, so DATA is not tried).
pub fn judge(ex: &Exchange, with_data: bool, to_target: bool) -> Next {
    use Next::{Done, Send};
    let Some(rset) = &ex.rset else {
        return Send(Step::Rset);
    };
    if wants_auth(rset) {
        return Done(Verdict::AuthRequired);
    }
    // smtp.lua's RSET success codes.
    if !matches!(rset.code, 200 | 250) {
        return Done(Verdict::Untested);
    }
    let Some(mail) = &ex.mail else {
        return Send(Step::Mail);
    };
    if wants_auth(mail) {
        return Done(Verdict::AuthRequired);
    }
    if mail.code != 250 {
        return Done(Verdict::MailRefused);
    }
    let Some(rcpt) = &ex.rcpt else {
        return Send(Step::Rcpt);
    };
    if wants_auth(rcpt) {
        return Done(Verdict::AuthRequired);
    }
    if !matches!(rcpt.code, 250 | 251) {
        return Done(Verdict::Refused);
    }
    // Mail to the target itself is not a relay: no test message for it.
    if with_data && !to_target {
        let Some(data) = &ex.data else {
            return Send(Step::Data);
        };
        if wants_auth(data) {
            return Done(Verdict::AuthRequired);
        }
        if data.code != 354 {
            return Done(Verdict::DataRefused);
        }
        let Some(msg) = &ex.message else {
            return Send(Step::Message);
        };
        if wants_auth(msg) {
            return Done(Verdict::AuthRequired);
        }
        if msg.code != 250 {
            return Done(Verdict::DataRefused);
        }
    }
    Done(if to_target {
        Verdict::AcceptedLocal
    } else {
        Verdict::Relayed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: u16, text: &str) -> Option<Reply> {
        Some(Reply::new(code, text))
    }

    fn ex(replies: &[Option<Reply>]) -> Exchange {
        let mut it = replies.iter().cloned();
        Exchange {
            rset: it.next().flatten(),
            mail: it.next().flatten(),
            rcpt: it.next().flatten(),
            data: it.next().flatten(),
            message: it.next().flatten(),
        }
    }

    #[test]
    fn nmap_rules_step_by_step() {
        use Next::*;
        let ok = r(250, "2.0.0 ok");
        assert_eq!(judge(&ex(&[]), false, false), Send(Step::Rset));
        assert_eq!(
            judge(&ex(std::slice::from_ref(&ok)), false, false),
            Send(Step::Mail)
        );
        assert_eq!(judge(&ex(&[r(200, "ok")]), false, false), Send(Step::Mail));
        assert_eq!(
            judge(&ex(&[r(502, "no")]), false, false),
            Done(Verdict::Untested)
        );
        // MAIL must get exactly 250.
        let e = ex(&[ok.clone(), r(251, "x")]);
        assert_eq!(judge(&e, false, false), Done(Verdict::MailRefused));
        let e = ex(&[ok.clone(), ok.clone()]);
        assert_eq!(judge(&e, false, false), Send(Step::Rcpt));
        // RCPT 250 or 251 is a relay.
        for code in [250, 251] {
            let e = ex(&[ok.clone(), ok.clone(), r(code, "ok")]);
            assert_eq!(judge(&e, false, false), Done(Verdict::Relayed));
            assert_eq!(judge(&e, false, true), Done(Verdict::AcceptedLocal));
        }
        let e = ex(&[ok.clone(), ok.clone(), r(550, "5.7.1 Relaying denied")]);
        assert_eq!(judge(&e, false, false), Done(Verdict::Refused));
        let e = ex(&[ok.clone(), ok.clone(), r(252, "maybe")]);
        assert_eq!(judge(&e, false, false), Done(Verdict::Refused));
    }

    #[test]
    fn a_530_anywhere_means_authentication() {
        let ok = r(250, "ok");
        let e = ex(&[ok.clone(), r(530, "5.7.0 Authentication required")]);
        assert_eq!(judge(&e, false, false), Next::Done(Verdict::AuthRequired));
        // In the text of another code, as nmap's string.match finds it.
        let e = ex(&[ok.clone(), ok.clone(), r(550, "5.7.1 see 530 first")]);
        assert_eq!(judge(&e, false, false), Next::Done(Verdict::AuthRequired));
        let e = ex(&[r(530, "auth first")]);
        assert_eq!(judge(&e, false, false), Next::Done(Verdict::AuthRequired));
        // ...but not in an accepting reply.
        let e = ex(&[ok.clone(), r(250, "2.1.0 <a@mx530.test>... Sender ok")]);
        assert_eq!(judge(&e, false, false), Next::Send(Step::Rcpt));
    }

    #[test]
    fn with_data_a_relay_needs_354_and_250() {
        use Next::*;
        let ok = r(250, "ok");
        let base = [ok.clone(), ok.clone(), ok.clone()];
        assert_eq!(judge(&ex(&base), true, false), Send(Step::Data));
        let mut v = base.to_vec();
        v.push(r(554, "5.5.1 no valid recipients"));
        assert_eq!(judge(&ex(&v), true, false), Done(Verdict::DataRefused));
        let mut v = base.to_vec();
        v.push(r(354, "go"));
        assert_eq!(judge(&ex(&v), true, false), Send(Step::Message));
        v.push(r(550, "5.7.1 content refused"));
        assert_eq!(judge(&ex(&v), true, false), Done(Verdict::DataRefused));
        v[4] = r(250, "2.0.0 queued");
        assert_eq!(judge(&ex(&v), true, false), Done(Verdict::Relayed));
        assert_eq!(judge(&ex(&base), true, true), Done(Verdict::AcceptedLocal));
        // A refused RCPT never reaches DATA.
        let e = ex(&[ok.clone(), ok.clone(), r(550, "no")]);
        assert_eq!(judge(&e, true, false), Done(Verdict::Refused));
    }
}
