//! `mailtool.toml` text (bytes read as lossy UTF-8), parsed as root and as an ordinary user.
//! The checks are a copy of `check_config` in `tests/fuzz_replay.rs`: keep them in sync.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtool::config::{self, ConfigError};

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

fn check_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let root = config::parse(&text, "fuzz.toml", true);
    let user = config::parse(&text, "fuzz.toml", false);
    check_config_result(&text, &root);
    check_config_result(&text, &user);
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

fuzz_target!(|data: &[u8]| check_config(data));
