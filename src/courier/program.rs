//! `|program` alias targets: the message on the program's standard input, run by `/bin/sh -c`
//! as the server's unprivileged user, with a clean environment and a time limit. Exit codes
//! follow sysexits, as sendmail's prog mailer reads them: 0 delivered, 75 (EX_TEMPFAIL) and
//! signals try again, anything else fails.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::content::Content;

/// Runs `command` with `data` on stdin. `sender` and `recipient` go into the environment
/// (SENDER, RECIPIENT), as procmail and maildrop expect from an MTA.
pub async fn deliver(
    command: &str,
    data: &Content,
    sender: &str,
    recipient: &str,
    timeout: Duration,
) -> Outcome {
    let mut child = match tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .env("SENDER", sender)
        .env("RECIPIENT", recipient)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Deferred(format!(
                "Deferred: cannot run {command}: {}",
                crate::util::io_message(&e)
            ));
        }
    };
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let run = async {
        // Input and error output at once: a program that talks while it reads cannot block us.
        let feed = async {
            if let Some(s) = stdin.as_mut() {
                // A program that exits without reading everything is its own business (EPIPE).
                if let Ok(mut r) = data.async_reader().await {
                    let _ = tokio::io::copy(&mut r, s).await;
                }
                let _ = s.shutdown().await;
            }
            drop(stdin);
        };
        let mut err = Vec::new();
        let drain = async {
            if let Some(s) = stderr.as_mut() {
                let _ = (&mut *s).take(4096).read_to_end(&mut err).await;
                // Keep draining past the 4 KiB we keep, so the program never blocks on it.
                let _ = tokio::io::copy(s, &mut tokio::io::sink()).await;
            }
        };
        tokio::join!(feed, drain);
        (child.wait().await, err)
    };
    let (status, err) = match tokio::time::timeout(timeout, run).await {
        Ok((Ok(st), err)) => (st, err),
        Ok((Err(e), _)) => {
            return Outcome::Deferred(format!(
                "Deferred: {command}: {}",
                crate::util::io_message(&e)
            ));
        }
        Err(_) => {
            // kill_on_drop ends it.
            return Outcome::Deferred(format!(
                "Deferred: {command}: timed out after {}s",
                timeout.as_secs()
            ));
        }
    };
    let said = String::from_utf8_lossy(&err)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    match status.code() {
        Some(0) => Outcome::Sent("Sent (program)".into()),
        Some(crate::sysexits::EX_TEMPFAIL) | None => Outcome::Deferred(format!(
            "Deferred: {command}: {}",
            if said.is_empty() {
                format!("{status}")
            } else {
                said
            }
        )),
        Some(code) => Outcome::Failed(format!(
            "554 5.3.0 unknown mailer error {code}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(" ({said})")
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_codes_decide_and_the_environment_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = format!(
            "cat > {0}; echo \"$SENDER $RECIPIENT ${{HOME:-nohome}}\" >> {0}",
            out.display()
        );
        let t = Duration::from_secs(10);
        assert!(matches!(
            deliver(&cmd, &b"hello\n"[..].into(), "a@b", "list", t).await,
            Outcome::Sent(_)
        ));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "hello\na@b list nohome\n"
        );
        assert!(matches!(
            deliver("exit 75", &Content::from(Vec::new()), "", "", t).await,
            Outcome::Deferred(_)
        ));
        let o = deliver(
            "echo nope >&2; exit 1",
            &Content::from(Vec::new()),
            "",
            "",
            t,
        )
        .await;
        assert_eq!(
            o,
            Outcome::Failed("554 5.3.0 unknown mailer error 1 (nope)".into())
        );
        assert!(matches!(
            deliver(
                "sleep 5",
                &Content::from(Vec::new()),
                "",
                "",
                Duration::from_millis(200)
            ).await,
            Outcome::Deferred(s) if s.contains("timed out")
        ));
    }
}
