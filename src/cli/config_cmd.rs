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
    /// Validate the configuration file; errors name the line and column
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
