//! `relaycheck`: does a server relay for strangers? nmap's smtp-open-relay battery plus the
//! forms other checkers use (docs/security.md §1–§2), and relaychecker.pl's single probe.
//!
//! [`battery`] (the probes) and [`verdict`] (nmap's rules) are pure; [`runner`] drives them
//! over the SMTP client; [`report`] renders the results.

pub mod battery;
pub mod report;
pub mod runner;
pub mod verdict;
