//! The standard `process_*` metrics (the Prometheus client libraries' names), read from
//! /proc at scrape time. prometheus-client has no process collector of its own.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub struct ProcessCollector;

/// What /proc/self/stat tells, in the units of the metrics.
#[derive(Debug, Default, PartialEq)]
pub struct Stat {
    pub cpu_seconds: f64,
    pub virtual_bytes: f64,
    pub resident_bytes: f64,
    /// Since boot, in seconds.
    pub start_after_boot: f64,
}

/// Parses /proc/self/stat. The command name (field 2) may hold spaces and parentheses, so
/// the fields are counted from its last `)`.
pub fn parse_stat(text: &str, ticks: f64, page: f64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is f[0]: utime 14, stime 15, starttime 22, vsize 23,
    // rss 24.
    let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    Some(Stat {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        start_after_boot: num(22)? / ticks,
        virtual_bytes: num(23)?,
        resident_bytes: num(24)? * page,
    })
}

fn boot_time() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    let m = e.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (ticks, page) = crate::sys::process::stat_units();
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_stat(&t, ticks, page));
        if let Some(s) = stat {
            let c = ConstCounter::new(s.cpu_seconds);
            let m = e.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?;
            c.encode(m)?;
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            )?;
            gauge(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes,
            )?;
            if let Some(boot) = boot_time() {
                gauge(
                    &mut e,
                    "process_start_time_seconds",
                    "Start time of the process since the epoch in seconds",
                    boot + s.start_after_boot,
                )?;
            }
        }
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            let n = rd.count().saturating_sub(1);
            gauge(
                &mut e,
                "process_open_fds",
                "Number of open file descriptors",
                n as f64,
            )?;
        }
        if let Some(max) = crate::sys::process::fd_limit() {
            gauge(
                &mut e,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        // A name with a space and a parenthesis, as a process may call itself.
        let line = "4242 (mail tool) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    3 0 12345 104857600 2560 18446744073709551615";
        let s = parse_stat(line, 100.0, 4096.0).unwrap();
        assert_eq!(
            s,
            Stat {
                cpu_seconds: 3.0,
                virtual_bytes: 104_857_600.0,
                resident_bytes: 2560.0 * 4096.0,
                start_after_boot: 123.45,
            }
        );
        assert_eq!(parse_stat("12 (x) S 1 2", 100.0, 4096.0), None);
        assert_eq!(parse_stat("no name here", 100.0, 4096.0), None);
    }
}
