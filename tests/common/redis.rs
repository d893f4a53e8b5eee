//! A private redis-server for one test, on a free loopback port, with nothing saved to disk.
//! Killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain([
            PathBuf::from("/usr/bin").join(name),
            PathBuf::from("/usr/sbin").join(name),
        ])
        .find(|p| p.is_file())
}

impl Redis {
    /// Starts redis-server, or skips the test (see `skip`) when it is missing.
    pub fn start() -> Option<Redis> {
        let (Some(bin), Some(_)) = (find("redis-server"), find("redis-cli")) else {
            super::skip::skip("redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        let r = Redis {
            port: super::server::free_port("127.0.0.1"),
            bin,
            dir: tempfile::tempdir().unwrap(),
            child: Mutex::new(None),
        };
        r.start_again();
        Some(r)
    }

    /// Starts the server on the same port (after [`Redis::stop`]) and waits for PONG.
    pub fn start_again(&self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        *self.child.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.try_cli(&["PING"]).as_deref() == Some("PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Kills the server and waits for it to go.
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// A redis-cli command; its output without the trailing newline.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
