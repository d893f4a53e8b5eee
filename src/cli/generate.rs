//! Shell completions and man pages, generated from the clap tree (section 1) and from
//! `man5` (section 5, the file formats). The checked-in copies under `completions/` and `man/`
//! are compared with these in `tests/generated.rs`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use clap_complete::Shell;

use super::{Fail, stdout_error};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish (elvish and powershell work too)
    #[arg(required_unless_present = "dir")]
    pub shell: Option<Shell>,
    /// Write bash, zsh and fish completions into DIR
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write mailtool.1, one page per subcommand, and the file-format pages (section 5) into DIR
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The shells whose completions are checked in, with their file names.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "mailtool.bash"),
    (Shell::Zsh, "_mailtool"),
    (Shell::Fish, "mailtool.fish"),
];

pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = super::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mailtool", &mut buf);
    buf
}

pub fn completions(a: &CompletionsArgs) -> Result<i32, Fail> {
    if let Some(dir) = &a.dir {
        for (shell, file) in SHELLS {
            write_file(&dir.join(file), &completion(*shell))?;
        }
        return Ok(EX_OK);
    }
    let shell = a
        .shell
        .ok_or_else(|| Fail::new(EX_USAGE, "mailtool completions: name a shell"))?;
    std::io::stdout()
        .write_all(&completion(shell))
        .map_err(stdout_error)?;
    Ok(EX_OK)
}

/// Every man page: `mailtool.1`, then `mailtool-SUB.1` for each subcommand (nested ones too),
/// then the section-5 pages (mailtool.toml(5) and the map formats).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    let mut pages = Vec::new();
    let cmd = super::command();
    collect(&cmd, "mailtool", &mut pages)?;
    pages.extend(super::man5::pages());
    Ok(pages)
}

fn collect(
    cmd: &clap::Command,
    name: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), std::io::Error> {
    let page_cmd = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page_cmd).render(&mut buf)?;
    let buf = super::man5::add_see_also(&buf, super::man5::see_also_for(name));
    pages.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

pub fn man(a: &ManArgs) -> Result<i32, Fail> {
    let pages = man_pages().map_err(|e| Fail::new(EX_SOFTWARE, format!("mailtool man: {e}")))?;
    match &a.dir {
        Some(dir) => {
            for (name, body) in &pages {
                write_file(&dir.join(name), body)?;
            }
        }
        None => {
            let main = pages.first().map(|p| p.1.as_slice()).unwrap_or_default();
            std::io::stdout().write_all(main).map_err(stdout_error)?;
        }
    }
    Ok(EX_OK)
}

fn write_file(path: &Path, body: &[u8]) -> Result<(), Fail> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| {
            Fail::new(
                EX_CANTCREAT,
                format!("mailtool: {}: {}", d.display(), crate::util::io_message(&e)),
            )
        })?;
    }
    std::fs::write(path, body).map_err(|e| {
        Fail::new(
            EX_CANTCREAT,
            format!(
                "mailtool: {}: {}",
                path.display(),
                crate::util::io_message(&e)
            ),
        )
    })
}
