//! Wire-level encodings that more than one protocol or file format uses.
//!
//! * [`lines`]: line framing, strict (SMTP commands) and lenient (POP3 commands).
//! * [`dot`]: dot-stuffing, for SMTP DATA and POP3 multi-line responses.
//! * [`xtext`]: RFC 3461 xtext (ESMTP DSN parameters, AUTH=, and the qf file's DSN fields).

pub mod dot;
pub mod lines;
pub mod xtext;
