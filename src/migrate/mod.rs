//! `mailtool migrate sendmail`: a sendmail `.mc` (and the start-up script's settings) as
//! `mailtool.toml`. [`mc`] reads the m4, [`translate`] decides what each line becomes; the CLI
//! (`cli/migrate`) rebuilds or imports the maps.

pub mod mc;
pub mod translate;

use std::path::{Path, PathBuf};

/// Why the `.mc` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error(transparent)]
    Parse(#[from] mc::ParseError),
}

/// Reads and parses `path`, following `include(file)` relative to the including file's
/// directory, as m4 run from the cf directory would. sendmail's own `cf.m4` is not read: it is
/// the macro library, not configuration.
pub fn load(path: &Path) -> Result<Vec<mc::Item>, LoadError> {
    let text = std::fs::read(path).map_err(|e| LoadError::Read {
        path: path.display().to_string(),
        message: crate::util::io_message(&e),
    })?;
    let text = String::from_utf8_lossy(&text);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.display().to_string();
    let mut resolve = |inc: &str, from: &str| -> mc::Resolved {
        if inc.ends_with("m4/cf.m4") || inc == "cf.m4" {
            return mc::Resolved::Skip;
        }
        let dir = Path::new(from)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| base.clone());
        let target: PathBuf = if Path::new(inc).is_absolute() {
            PathBuf::from(inc)
        } else {
            dir.join(inc)
        };
        match std::fs::read(&target) {
            Ok(t) => mc::Resolved::Text {
                name: target.display().to_string(),
                text: String::from_utf8_lossy(&t).into_owned(),
            },
            Err(e) => mc::Resolved::Missing(format!(
                "{}: {}",
                target.display(),
                crate::util::io_message(&e)
            )),
        }
    };
    Ok(mc::parse_with(&name, &text, &mut resolve)?)
}
