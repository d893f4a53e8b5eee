//! Parsers for map sources: makemap input, aliases(5). Pure functions over bytes, with the
//! line numbers sendmail reports, so they can be fuzzed and tested without files.

pub mod aliases;
pub mod makemap;
