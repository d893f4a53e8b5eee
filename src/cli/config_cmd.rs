//! `mailtool config check|show`.

use std::io::Write;

use clap::{Args, Subcommand};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration as `serve` would at start: syntax (errors name the line and
    /// column), the [tls] files, [dns] servers, the run-time user, and a trial bind of every
    /// listener (exit 78, 71 or 69, as serve would)
    Check,
    /// Print the effective configuration, defaults included
    Show {
        /// Print JSON instead of TOML
        #[arg(long)]
        json: bool,
    },
}

pub fn run(global: &GlobalOpts, a: &ConfigArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let mut out = std::io::stdout().lock();
    match &a.action {
        ConfigAction::Check => {
            // As strict as `serve` at start: the files it reads, the account, the ports.
            let report = crate::server::preflight::check(&cfg);
            for note in &report.notes {
                eprintln!("mailtool: {}: note: {note}", cfg.file.display());
            }
            if let Some((last, rest)) = report.problems.split_last() {
                for p in rest {
                    eprintln!("mailtool: {}: {}", cfg.file.display(), p.message);
                }
                return Err(Fail::new(
                    report.exit(),
                    format!("mailtool: {}: {}", cfg.file.display(), last.message),
                ));
            }
            let what = if cfg.file_exists {
                format!("{}: OK", cfg.file.display())
            } else {
                format!("{}: not found; using the defaults", cfg.file.display())
            };
            writeln!(out, "{what}").map_err(stdout_error)?;
        }
        ConfigAction::Show { json } => {
            let mut s = cfg.settings.clone();
            s.hostname = Some(cfg.hostname());
            let text = if *json {
                serde_json::to_string_pretty(&s)
                    .map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?
                    + "\n"
            } else {
                let body =
                    toml::to_string(&s).map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?;
                format!(
                    "# {} (root {})\n{body}",
                    cfg.file.display(),
                    cfg.root.display()
                )
            };
            out.write_all(text.as_bytes()).map_err(stdout_error)?;
        }
    }
    Ok(EX_OK)
}
