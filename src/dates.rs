//! Calendar dates without a time-zone library: broken-down time, and the formats mail uses:
//! asctime(3) (From_ lines, mailq), RFC 5322 (headers) and RFC 3339 (JSON). Time zones come in
//! as an offset in seconds ([`crate::sys::time::local_utc_offset`]).

/// Broken-down time (proleptic Gregorian, no time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 0–11
    pub month0: i64,
    /// 1–31
    pub mday: i64,
    pub hour: i64,
    pub min: i64,
    pub sec: i64,
    /// 0 = Sunday
    pub wday: i64,
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Converts seconds since the epoch to broken-down time (Howard Hinnant's days→civil algorithm).
pub fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let mday = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month0: month - 1,
        mday,
        hour: rem / 3600,
        min: (rem % 3600) / 60,
        sec: rem % 60,
        wday: (days + 4).rem_euclid(7),
    }
}

/// asctime(3) without the newline, for local seconds (UTC plus the offset):
/// `Thu Jun 15 16:59:00 2006`, `Sun Nov  1 09:05:03 2026`.
pub fn asctime(local_secs: i64) -> String {
    let c = civil_from_unix(local_secs);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[c.wday as usize], MONTHS[c.month0 as usize], c.mday, c.hour, c.min, c.sec, c.year
    )
}

/// An RFC 5322 date in UTC: `Sat, 28 Nov 2026 04:20:00 +0000`.
pub fn rfc5322_utc(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[c.wday as usize], c.mday, MONTHS[c.month0 as usize], c.year, c.hour, c.min, c.sec
    )
}

/// An RFC 3339 UTC timestamp: `2006-06-15T16:59:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year,
        c.month0 + 1,
        c.mday,
        c.hour,
        c.min,
        c.sec
    )
}

/// Seconds since the epoch of `t` (negative before 1970).
pub fn unix_secs(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_150_390_740), "Thu Jun 15 16:59:00 2006");
        assert_eq!(
            rfc5322_utc(1_795_847_000),
            "Sat, 28 Nov 2026 06:23:20 +0000"
        );
        assert_eq!(rfc5322_utc(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc3339(1_150_390_740), "2006-06-15T16:59:00Z");
        let leap = civil_from_unix(951_782_400);
        assert_eq!(
            (leap.year, leap.month0, leap.mday, leap.wday),
            (2000, 1, 29, 2)
        );
        assert_eq!(civil_from_unix(-1).year, 1969);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(5);
        assert_eq!(unix_secs(t), 5);
        assert_eq!(
            unix_secs(std::time::UNIX_EPOCH - std::time::Duration::from_secs(5)),
            -5
        );
    }
}
