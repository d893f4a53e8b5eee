//! Wire-level encodings that more than one protocol or file format uses.
//!
//! * [`xtext`]: RFC 3461 xtext (ESMTP DSN parameters, AUTH=, and the qf file's DSN fields).

pub mod xtext;
