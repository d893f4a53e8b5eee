//! `mailtool dkim keygen`: a new DKIM key for `[dkim] sign`, and the DNS record to publish
//! (what `opendkim-genkey` does for OpenDKIM).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::stage::keys::{self, Algorithm};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "Make DKIM signing keys and print the DNS records to publish",
    after_help = "Exit status: 0 ok; 64 usage; 73 the key file exists or cannot be created; \
78 a bad configuration."
)]
pub struct DkimArgs {
    #[command(subcommand)]
    pub action: DkimAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DkimAction {
    /// Write a new private key (mode 0640, the server's group) and print its TXT record
    #[command(
        after_help = "The record is printed on standard output, ready for a zone \
file: SELECTOR._domainkey.DOMAIN. IN TXT \"v=DKIM1; k=…; p=…\", in strings of at most 255 \
bytes. An existing key file is never overwritten. Then add the key to [dkim] sign in \
mailtool.toml and send SIGHUP."
    )]
    Keygen {
        /// The signing domain (d=), usually the From: domain
        domain: String,
        /// The selector (s=); a new one for every rotation, such as s2026
        selector: String,
        /// RSA-2048 (what every verifier takes) or Ed25519 (RFC 8463)
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: Algorithm,
        /// Where to write the key [default: MAIL_DIR/dkim/DOMAIN.SELECTOR.key]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn run(global: &GlobalOpts, a: &DkimArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    match &a.action {
        DkimAction::Keygen {
            domain,
            selector,
            algorithm,
            out,
        } => keygen(&cfg, domain, selector, *algorithm, out.as_deref()),
    }
}

fn keygen(
    cfg: &Config,
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    out: Option<&Path>,
) -> Result<i32, Fail> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if !crate::config::is_dns_name(&domain) || !domain.contains('.') {
        return Err(Fail::new(
            EX_USAGE,
            format!("dkim keygen: {domain:?} is not a domain"),
        ));
    }
    if !crate::config::is_dns_name(selector) {
        return Err(Fail::new(
            EX_USAGE,
            format!("dkim keygen: {selector:?} is not a selector"),
        ));
    }
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => cfg
            .mail_dir()
            .join("dkim")
            .join(format!("{domain}.{selector}.key")),
    };
    let pem = keys::generate(algorithm)
        .map_err(|e| Fail::new(EX_SOFTWARE, format!("dkim keygen: {e}")))?;
    let key = keys::parse(pem.as_bytes())
        .map_err(|e| Fail::new(EX_SOFTWARE, format!("dkim keygen: {e}")))?;
    write_key(cfg, &path, &pem)?;
    let line = keys::zone_line(&domain, selector, &key.record_text());
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").map_err(stdout_error)?;
    eprintln!(
        "dkim keygen: wrote {}; publish the record above, then add to [dkim] sign:\n  \
         {{ domain = \"{domain}\", selector = \"{selector}\", key = \"{}\" }}",
        path.display(),
        path.display()
    );
    Ok(EX_OK)
}

/// Creates the key file (never over an existing one): 0640, and when run as root, owned by
/// root and the server's group, so that the server can read it and nobody else can.
fn write_key(cfg: &Config, path: &Path, pem: &str) -> Result<(), Fail> {
    let cant = |what: &str, e: std::io::Error| {
        Fail::new(
            EX_CANTCREAT,
            format!(
                "dkim keygen: {what} {}: {}",
                path.display(),
                crate::util::io_message(&e)
            ),
        )
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| cant("cannot create the directory of", e))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750));
        chgrp(cfg, dir);
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| cant("cannot create", e))?;
    chgrp(cfg, path);
    let written = f.write_all(pem.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(cant("cannot write", e));
    }
    Ok(())
}

fn chgrp(cfg: &Config, path: &Path) {
    if !crate::config::is_root() {
        return;
    }
    if let Some(gid) = crate::sys::account::group_by_name(&cfg.settings.group) {
        let _ = std::os::unix::fs::chown(path, Some(0), Some(gid));
    }
}
