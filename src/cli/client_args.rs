//! Options and output shared by the SMTP client tools (`smtp-send`, `relaycheck`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::tls::{TlsError, Verify};
pub use crate::tools::{StartTls, stderr_transcript};

#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Upgrade with STARTTLS; `auto`: only when the server offers it
    #[arg(long, value_enum, value_name = "WHEN", num_args = 0..=1, default_missing_value = "always")]
    pub starttls: Option<StartTls>,
    /// Implicit TLS from the first byte (SMTPS, port 465)
    #[arg(long, conflicts_with = "starttls")]
    pub tls: bool,
    /// Trust only the CA certificates in FILE (PEM) instead of the system store
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate
    #[arg(long, short = 'k', conflicts_with = "ca_file")]
    pub insecure: bool,
}

impl TlsArgs {
    pub fn verify(&self) -> Verify {
        match (&self.ca_file, self.insecure) {
            (_, true) => Verify::Nothing,
            (Some(f), false) => Verify::CaFile(f.clone()),
            (None, false) => Verify::System,
        }
    }

    /// The client configuration, only when some form of TLS is asked for.
    pub fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
        if self.tls || self.starttls.is_some() {
            crate::tls::client_config(&self.verify()).map(Some)
        } else {
            Ok(None)
        }
    }
}
