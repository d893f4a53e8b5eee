//! A private PostgreSQL for one test: `initdb` and `pg_ctl` (as the `postgres` user when the
//! tests run as root, since PostgreSQL refuses to run as root) in a temp directory, on a free
//! loopback port, with trust authentication on 127.0.0.1 only. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, else Debian's
/// /usr/lib/postgresql/VERSION/bin, the newest version.
fn bindir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return Some(d);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…`, as the postgres user when we are root.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn must(out: std::io::Result<Output>, what: &str) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    /// Starts a fresh cluster, or skips the test (see `skip`) when PostgreSQL is missing.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = bindir() else {
            super::skip::skip("postgresql is not installed (apt-get install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        must(
            as_owner(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
                .output(),
            "initdb",
        );
        let pg = Postgres {
            port: super::server::free_port("127.0.0.1"),
            bin,
            dir,
        };
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on the same port and data (after [`Postgres::stop`]), and waits until
    /// it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        must(
            as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-o")
                .arg(opts)
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-w", "-t", "30", "start"])
                .output(),
            "pg_ctl start",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.try_psql("postgres", "SELECT 1").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not answer on port {}", self.port);
    }

    /// Stops the server (fast shutdown: open connections are closed).
    pub fn stop(&self) {
        must(
            as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "-t", "30", "stop"])
                .output(),
            "pg_ctl stop",
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    fn psql_cmd(&self, db: &str, sql: &str) -> Command {
        let psql = if self.bin.join("psql").is_file() {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let mut c = Command::new(psql);
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .env_remove("PGPASSWORD");
        c
    }

    fn try_psql(&self, db: &str, sql: &str) -> Option<String> {
        let out = self.psql_cmd(db, sql).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// Runs `sql` in `db` with psql; its output, unaligned, without the trailing newline.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = must(self.psql_cmd(db, sql).output(), &format!("psql {sql}"));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .output();
    }
}
