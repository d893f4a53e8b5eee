//! The `config_toml` target: any text as mailtool.toml, as root and as an ordinary user; what
//! `config show` prints must read back the same.

use crate::config::{self, ConfigError};

fn check_config_result(text: &str, r: &Result<config::Settings, ConfigError>) {
    match r {
        Ok(s) => {
            // `config show` prints the settings as TOML; that text must read back the same.
            let shown = toml::to_string(s).expect("settings serialize");
            match config::parse(&shown, "shown.toml", true) {
                Ok(again) => assert_eq!(&again, s, "round trip through:\n{shown}"),
                Err(e) => panic!("shown settings do not parse: {e}\n{shown}"),
            }
        }
        Err(ConfigError::Parse { line, column, .. }) => {
            let lines = text.split('\n').count();
            assert!(*line >= 1 && *line <= lines, "line {line} of {lines}");
            assert!(*column >= 1, "column {column}");
        }
        Err(_) => {}
    }
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
}

/// The `config_toml` target: any text, as root and as an ordinary user.
pub fn invariants(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let root = config::parse(&text, "fuzz.toml", true);
    let user = config::parse(&text, "fuzz.toml", false);
    check_config_result(&text, &root);
    check_config_result(&text, &user);
    // Privilege only changes the default listen addresses.
    match (root, user) {
        (Ok(mut r), Ok(u)) => {
            r.smtp.listen = u.smtp.listen.clone();
            r.smtp.submission = u.smtp.submission.clone();
            r.pop3.listen = u.pop3.listen.clone();
            assert_eq!(r, u);
        }
        (Err(r), Err(u)) => assert_eq!(r.to_string(), u.to_string()),
        (r, u) => panic!("root and user disagree: {r:?} vs {u:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and deterministic mutations of it, on stable.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        let tokens: &[&[u8]] = &[
            b"[smtp]\n",
            b"[[smtp.dnsbl]]\n",
            b"[pop3]\n",
            b"[queue]\n",
            b"[tls]\n",
            b"[log]\n",
            b" = ",
            b"\"\"\"",
            b"'''",
            b"= []\n",
            b"= {}\n",
            b"zone = \"z\"\n",
            b"18446744073709551616",
            b"-1",
            b"1e999",
            b"\"0s\"",
            b"\"99999999999999999999w\"",
            b"\"18446744073709551615ms\"",
            b"\"127.0.0.1:25\"",
            b"\"[::1]:0\"",
            b"\\u0000",
            b"\xc3\xa9",
            b"\xef\xbb\xbf",
            b"true",
            b"1979-05-27T07:32:00Z",
            b"hostname = \"h\"\n",
        ];
        Plan {
            iterations: 3000,
            keep: 0,
            tokens,
            min_files: 10,
            ..Plan::new("config_toml")
        }
        .run(invariants);
    }
}
