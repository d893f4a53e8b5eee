//! mailq: sendmail 8.12's layout (docs/sendmail-compat.md §3.1), filters (§3.2), --json, the link.

mod common;

use common::*;
use mailtool::queue::{Envelope, NewMessage, Recipient, Spool};

// One Spool per test: the owner lock is an flock, and a child forked concurrently by another
// test can hold a copy of its descriptor until exec, so reopening at once may see it "Locked".
fn queue_one(spool: &Spool, sender: &str, rcpts: &[&str]) -> String {
    let env = Envelope::new(sender, rcpts.iter().map(|r| Recipient::new(*r)).collect());
    let id = spool
        .store(NewMessage {
            envelope: env,
            data: b"Subject: x\n\nbody\n".to_vec().into(),
            id: None,
        })
        .unwrap();
    id.to_string()
}

#[test]
fn empty_queue_layout_and_link() {
    let root = tempfile::tempdir().unwrap();
    let q = root.path().join("var/spool/mqueue");
    Spool::open(&q).unwrap();
    let out = run(mailtool().arg("--root").arg(root.path()).arg("mailq"), b"");
    assert_eq!(
        text(&out.stdout),
        format!("{} is empty\n\t\tTotal requests: 0\n", q.display())
    );
    // The same program through a link named mailq, root from the environment.
    let dir = tempfile::tempdir().unwrap();
    let l = link(dir.path(), "mailq");
    let out = run(
        std::process::Command::new(&l).env("MAILTOOL_ROOT", root.path()),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).ends_with("Total requests: 0\n"));
}

#[test]
fn listing_filters_and_json() {
    let root = tempfile::tempdir().unwrap();
    let spool = Spool::open(&root.path().join("var/spool/mqueue")).unwrap();
    let a = queue_one(&spool, "alice@example1.com", &["bob@far.test"]);
    let b = queue_one(
        &spool,
        "carol@example1.com",
        &["dave@near.test", "erin@near.test"],
    );
    let out = run(mailtool().arg("--root").arg(root.path()).arg("mailq"), b"");
    let s = text(&out.stdout);
    let q = root.path().join("var/spool/mqueue");
    assert!(s.starts_with(&format!("\t\t{} (2 requests)\n-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n", q.display())), "{s}");
    assert!(
        s.contains(&format!("{a}       17 "))
            && s.contains("<alice@example1.com>\n\t\t\t\t\t <bob@far.test>\n"),
        "{s}"
    );
    assert!(s.ends_with("\t\tTotal requests: 2\n"));
    // -qR: recipient substring, case-insensitive; ! negates.
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-qRNEAR.test"]),
        b"",
    );
    assert!(text(&out.stdout).contains(&b) && !text(&out.stdout).contains(&a));
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-q!R", "near"]),
        b"",
    );
    assert!(text(&out.stdout).contains(&a) && !text(&out.stdout).contains(&b));
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-qScarol", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], b.as_str());
    assert_eq!(v[0]["recipients"][1]["address"], "erin@near.test");
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-qXbad"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(64));
}

/// Issue 12 (5): a spool that does not exist is not "empty": exit 66 and say so.
#[test]
fn missing_spool_is_not_empty() {
    let root = tempfile::tempdir().unwrap();
    let out = run(mailtool().arg("--root").arg(root.path()).arg("mailq"), b"");
    assert_eq!(out.status.code(), Some(66));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    let q = root.path().join("var/spool/mqueue");
    assert!(
        err.contains(&format!("{}: no such queue directory", q.display()))
            && err.contains("[paths] spool"),
        "{err}"
    );
    assert!(!err.contains("is empty"), "{err}");
}

/// Issue 12 (23): `mailq -Ac` lists the client queue as sendmail does, and plain `mailq` says
/// in one line how many messages wait there.
#[test]
fn client_queue_listing_and_note() {
    let root = tempfile::tempdir().unwrap();
    let q = root.path().join("var/spool/mqueue");
    let cq = root.path().join("var/spool/clientmqueue");
    let spool = Spool::open(&q).unwrap();
    let main_id = queue_one(&spool, "alice@example1.com", &["bob@far.test"]);
    // No client spool yet: no note.
    let out = run(mailtool().arg("--root").arg(root.path()).arg("mailq"), b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains("client queue"),
        "{}",
        text(&out.stdout)
    );
    mailtool::queue::client_spool::prepare_dir(&cq, None).unwrap();
    let env = Envelope::new(
        "cron@example1.com",
        vec![Recipient::new("root@example1.com")],
    );
    let client_id = mailtool::queue::client_spool::store(&cq, &env, b"Subject: c\n\nc\n")
        .unwrap()
        .to_string();

    let out = run(mailtool().arg("--root").arg(root.path()).arg("mailq"), b"");
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(s.contains(&main_id) && !s.contains(&client_id), "{s}");
    assert!(
        s.ends_with(&format!(
            "\t\tTotal requests: 1\n\t\t1 message in the client queue {} (mailq -Ac)\n",
            cq.display()
        )),
        "{s}"
    );

    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-Ac"]),
        b"",
    );
    let s = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        s.starts_with(&format!("\t\t{} (1 request)\n", cq.display())),
        "{s}"
    );
    assert!(
        s.contains(&client_id) && s.contains("<cron@example1.com>"),
        "{s}"
    );
    assert!(!s.contains(&main_id) && !s.contains("client queue"), "{s}");
    // -Am is the main queue; anything else is a usage error.
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-Am"]),
        b"",
    );
    assert!(text(&out.stdout).contains(&main_id));
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["mailq", "-Ax"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(64));
    // The same through the sendmail link: `sendmail -bp -Ac`.
    let dir = tempfile::tempdir().unwrap();
    let l = link(dir.path(), "mailq");
    let out = run(
        std::process::Command::new(&l)
            .env("MAILTOOL_ROOT", root.path())
            .arg("-Ac"),
        b"",
    );
    assert!(
        text(&out.stdout).contains(&client_id),
        "{}",
        text(&out.stderr)
    );
}
