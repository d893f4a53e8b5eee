//! Durations as the config and sendmail's `-q` flag write them: `5000ms`, `15m`, `1h30m`, `5d`.

use std::fmt;
use std::time::Duration;

/// A span written with sendmail-style units (`ms s m h d w`); a bare number means seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?} (use e.g. 500ms, 30s, 15m, 1h30m, 5d)")]
pub struct SpanError(pub String);

impl Span {
    pub fn parse(text: &str) -> Result<Span, SpanError> {
        let err = || SpanError(text.to_string());
        let s = text.trim();
        if s.is_empty() {
            return Err(err());
        }
        let bytes = s.as_bytes();
        let mut total: u128 = 0;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(err());
            }
            let n: u128 = s[start..i].parse().map_err(|_| err())?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let millis = match &s[ustart..i] {
                "ms" => 1,
                "" | "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                _ => return Err(err()),
            };
            total = n
                .checked_mul(millis)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(err)?;
        }
        let ms = u64::try_from(total).map_err(|_| err())?;
        Ok(Span(Duration::from_millis(ms)))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

/// A command line's timeout (`--timeout 30s`): a span of more than zero. The clap parser of
/// every client tool.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    match Span::parse(s) {
        Ok(span) if !span.is_zero() => Ok(span.0),
        Ok(_) => Err("the timeout must be more than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Words for a notice, as sendmail writes them: `4 hours`, `5 days`, `90 minutes`.
pub fn describe(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        (secs / 3_600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl fmt::Display for Span {
    /// Prints the largest unit that divides the span exactly, so `config show` round-trips.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("w", 604_800_000u128),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_examples() {
        assert_eq!(
            Span::parse("5000ms").unwrap().0,
            Duration::from_millis(5000)
        );
        assert_eq!(Span::parse("15m").unwrap().0, Duration::from_secs(900));
        assert_eq!(Span::parse("1h30m").unwrap().0, Duration::from_secs(5400));
        assert_eq!(Span::parse("5d").unwrap().0, Duration::from_secs(432_000));
        assert_eq!(Span::parse("0s").unwrap().0, Duration::ZERO);
        assert_eq!(Span::parse("90").unwrap().0, Duration::from_secs(90));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "m", "5x", "-5s", "1.5h", "99999999999999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["5000ms", "15m", "1h", "5d", "0s", "90s", "1w", "250ms"] {
            let span = Span::parse(s).unwrap();
            assert_eq!(Span::parse(&span.to_string()).unwrap(), span);
        }
        assert_eq!(Span::parse("5000ms").unwrap().to_string(), "5s");
    }
}
