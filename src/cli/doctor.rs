//! `mailtool doctor`: the installation's health as a pass/warn/fail table with fixes.

use std::io::Write;
use std::time::SystemTime;

use clap::Args;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::doctor::{self, Check};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "Check the installation: config, maps, permissions, DNS, TLS, listeners, relaying, queue",
    after_help = "Exit status: 0 every check passed, 1 warnings, 2 failures (64 usage, 78 when \
the configuration itself cannot be loaded)."
)]
pub struct DoctorArgs {
    /// Rebuild maps that are older than their text source (like `make -C /etc/mail`)
    #[arg(long)]
    pub fix: bool,
    /// Skip the checks that need a running server (listeners, open relay)
    #[arg(long)]
    pub offline: bool,
    /// One JSON object: {"checks": [...], "status": "pass|warn|fail"}
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalOpts, a: &DoctorArgs) -> Result<i32, Fail> {
    let mut checks = Vec::new();
    let cfg = match Config::load(&global.locate()) {
        Ok(c) => {
            checks.push(if c.file_exists {
                Check::pass("config", format!("{} is valid", c.file.display()))
            } else {
                Check::warn(
                    "config",
                    format!("{} does not exist; using the defaults", c.file.display()),
                    "mailtool setup writes a commented one",
                )
            });
            c
        }
        Err(e) => {
            checks.push(Check::fail(
                "config",
                e.to_string(),
                "fix the file; `mailtool config check` shows where",
            ));
            return report(&checks, a.json);
        }
    };
    checks.extend(doctor::files::maps(&cfg, a.fix));
    checks.extend(doctor::backends::check(&cfg));
    checks.extend(doctor::files::permissions(&cfg));
    checks.push(doctor::files::mailbox_formats(&cfg));
    checks.push(doctor::tls::certificate(&cfg, SystemTime::now()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::new(EX_OSERR, format!("doctor: {e}")))?;
    rt.block_on(async {
        match crate::dns::Dns::new(&cfg.settings.dns.servers, cfg.settings.dns.timeout.0) {
            Ok(dns) => {
                checks.push(doctor::network::hostname(&cfg, &dns).await);
                checks.extend(doctor::mail_auth::dkim_records(&cfg, &dns).await);
                if !a.offline {
                    checks.extend(doctor::mail_auth::spf_and_dmarc(&cfg, &dns).await);
                }
            }
            Err(e) => checks.push(Check::fail(
                "hostname DNS",
                e.to_string(),
                "fix [dns] servers",
            )),
        }
        if !a.offline {
            for (kind, addr, greeting) in doctor::network::listeners(&cfg) {
                checks.push(doctor::network::reach(kind, addr, greeting).await);
            }
            checks.push(doctor::network::open_relay(&cfg).await);
        }
    });
    checks.push(doctor::queue::backlog(&cfg, SystemTime::now()));
    report(&checks, a.json)
}

fn report(checks: &[Check], json: bool) -> Result<i32, Fail> {
    let code = doctor::exit_code(checks);
    let text = if json {
        let status = ["pass", "warn", "fail"][code as usize];
        serde_json::to_string_pretty(&serde_json::json!({ "status": status, "checks": checks }))
            .map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?
            + "\n"
    } else {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(["check", "status", "found", "fix"]);
        for c in checks {
            t.add_row([
                c.name.as_str(),
                c.status.as_str(),
                c.detail.as_str(),
                c.fix.as_str(),
            ]);
        }
        format!("{t}\n")
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(stdout_error)?;
    Ok(code)
}
