//! The clock and the local time zone.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch; 0 for a clock before 1970.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The local time zone's offset from UTC at `unix_secs` (seconds east), from localtime_r(3);
/// 0 when the time cannot be converted.
pub fn local_utc_offset(unix_secs: i64) -> i64 {
    let t = unix_secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, plain old data on our stack.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_offset_are_sane() {
        assert!(unix_now() > 1_700_000_000);
        // No zone on Earth is more than 14 hours from UTC.
        assert!(local_utc_offset(unix_now() as i64).abs() <= 14 * 3600);
    }
}
