//! A libmilter-based test milter for one test (tests/fixtures/milter/testmilter.py, on
//! Debian's python3-milter), on a free loopback port, logging its callbacks as JSON lines.
//! Killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's interpreter: python3-milter is its package.
const PY: &str = "/usr/bin/python3";

pub struct TestMilter {
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl TestMilter {
    /// Starts the milter in `mode` (see the script), or skips the test when python3-milter
    /// is missing.
    pub fn start(mode: &str, extra: &[&str]) -> Option<TestMilter> {
        let ok = Command::new(PY)
            .args(["-c", "import Milter"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            super::skip::skip("python3-milter is not installed (apt-get install python3-milter)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("milter.log");
        let port = super::server::free_port("127.0.0.1");
        let child = Command::new(PY)
            .arg(super::fixtures().join("milter/testmilter.py"))
            .args([
                "--socket",
                &format!("inet:{port}@127.0.0.1"),
                "--mode",
                mode,
            ])
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn testmilter.py");
        let m = TestMilter {
            port,
            log,
            _dir: dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "testmilter did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(m)
    }

    pub fn socket(&self) -> String {
        format!("inet:{}@127.0.0.1", self.port)
    }

    /// The callbacks so far, one JSON object each.
    pub fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for TestMilter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
