//! The DATA phase's limits, as one clock: an absolute deadline from the 354, the longest pause
//! between reads, and a minimum average rate once a grace period has passed (a client that
//! trickles a byte every few seconds keeps no session for long). Pure: the caller passes the
//! time and says what arrived.

use std::time::{Duration, Instant};

/// Which limit [`DataClock::next_check`] is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataLimit {
    /// The whole DATA phase took too long.
    Deadline,
    /// The client paused too long.
    Pause,
    /// The average rate fell below the minimum.
    TooSlow,
}

impl std::fmt::Display for DataLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataLimit::Deadline => "deadline exceeded",
            DataLimit::Pause => "timeout",
            DataLimit::TooSlow => "transfer too slow",
        })
    }
}

#[derive(Debug, Clone)]
pub struct DataClock {
    pub start: Instant,
    /// When the last bytes arrived.
    pub last: Instant,
    /// Bytes read so far (as sent, before unstuffing).
    pub received: u64,
    deadline: Duration,
    min_rate: u64,
    grace: Duration,
}

impl DataClock {
    pub fn new(start: Instant, deadline: Duration, min_rate: u64, grace: Duration) -> DataClock {
        DataClock {
            start,
            last: start,
            received: 0,
            deadline,
            min_rate,
            grace,
        }
    }

    /// The earliest instant at which a limit is broken if nothing more arrives, and which one;
    /// an instant not after `now` means it is broken already. `pause` is the longest pause now
    /// (it shrinks under stress).
    pub fn next_check(&self, pause: Duration) -> (Instant, DataLimit) {
        let mut best = (self.start + self.deadline, DataLimit::Deadline);
        let paused = self.last + pause;
        if paused < best.0 {
            best = (paused, DataLimit::Pause);
        }
        if self.min_rate > 0 {
            // The average drops below the minimum at start + received / rate, but never
            // before the grace period is over.
            let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
            let slow = self.start + earned.max(self.grace);
            if slow < best.0 {
                best = (slow, DataLimit::TooSlow);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    // The words the log line uses for each limit.
    #[test]
    fn limits_name_themselves() {
        assert_eq!(DataLimit::Deadline.to_string(), "deadline exceeded");
        assert_eq!(DataLimit::Pause.to_string(), "timeout");
        assert_eq!(DataLimit::TooSlow.to_string(), "transfer too slow");
    }

    #[test]
    fn a_trickle_is_too_slow_once_the_grace_is_over() {
        let t0 = Instant::now();
        let mut c = DataClock::new(t0, secs(3600), 1024, secs(30));
        // One byte every 5 s: each read resets the pause, but not the rate.
        for i in 1..=5u64 {
            c.received += 1;
            c.last = t0 + secs(5 * i);
            let (at, why) = c.next_check(secs(180));
            assert_eq!(
                (at, why),
                (t0 + secs(30), DataLimit::TooSlow),
                "after {i} bytes"
            );
        }
    }

    #[test]
    fn a_fast_client_earns_time_and_the_deadline_still_holds() {
        let t0 = Instant::now();
        let mut c = DataClock::new(t0, secs(3600), 1000, secs(30));
        c.received = 100_000; // 100 s worth at the minimum rate
        c.last = t0 + secs(1);
        assert_eq!(
            c.next_check(secs(180)),
            (t0 + secs(100), DataLimit::TooSlow)
        );
        // A pause shorter than what was earned ends it first.
        assert_eq!(c.next_check(secs(10)), (t0 + secs(11), DataLimit::Pause));
        c.received = 10_000_000_000;
        assert_eq!(
            c.next_check(secs(86400)),
            (t0 + secs(3600), DataLimit::Deadline)
        );
        // Ties go to the absolute deadline, then to the pause: the more specific reason.
        let c = DataClock::new(t0, secs(60), 1, secs(60));
        assert_eq!(c.next_check(secs(60)), (t0 + secs(60), DataLimit::Deadline));
        let c = DataClock::new(t0, secs(3600), 1, secs(30));
        assert_eq!(c.next_check(secs(30)), (t0 + secs(30), DataLimit::Pause));
        // No minimum rate: only the pause and the deadline.
        let c = DataClock::new(t0, secs(60), 0, secs(30));
        assert_eq!(
            c.next_check(secs(180)),
            (t0 + secs(60), DataLimit::Deadline)
        );
        assert_eq!(c.next_check(secs(5)), (t0 + secs(5), DataLimit::Pause));
    }
}
