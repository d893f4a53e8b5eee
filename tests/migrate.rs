//! `mailtool migrate sendmail` on the seed's `.mc` files and `/etc/mail`, under temp roots.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// A root whose etc/mail holds the seed's map sources and `.mc` files.
fn seed_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let mail = root.path().join("etc/mail");
    fs::create_dir_all(&mail).unwrap();
    for dir in ["seed-etc-mail", "seed-mc"] {
        for e in fs::read_dir(fixtures().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() != "README.md" {
                fs::copy(&p, mail.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    root
}

fn mail_dir(root: &Path) -> PathBuf {
    root.join("etc/mail")
}

fn migrate(root: &Path, extra: &[&str]) -> std::process::Output {
    let mc = mail_dir(root).join("mydomain.mc");
    run(
        mailtool()
            .arg("--root")
            .arg(root)
            .args(["migrate", "sendmail", "--mc"])
            .arg(&mc)
            .args(extra),
        b"",
    )
}

/// What makemap stores for a source: keys folded, the value after the first white space.
fn expected_records(source: &Path) -> Vec<String> {
    let text = fs::read_to_string(source).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            format!("{}\t{}", k.to_ascii_lowercase(), rest.trim_start())
        })
        .collect();
    v.sort();
    v
}

fn dump(map: &Path) -> Vec<String> {
    let out = run(mailtool().args(["makemap", "-u", "hash"]).arg(map), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut v: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn dry_run_on_the_seed_prints_the_config_and_writes_nothing() {
    let root = seed_root();
    let before: Vec<_> = fs::read_dir(mail_dir(root.path())).unwrap().collect();
    let out = migrate(root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    for want in [
        "greet_pause = \"5000ms\"",
        "access_temp_fail = true",
        "access = \"access\"",
        "{ zone = \"relays.ordb.org\", message = \"550 Email rejected due to sending server misconfiguration - see\" }",
        "always_add_domain = true",
        "ptr_check = \"resolvable\"",
        "relay_domains = \"relay-domains\"",
        "virtusertable = \"virtusertable\"",
        "localip = \"localip\"",
        "popip = \"popip\"",
        "# mydomain.mc:15: FEATURE(`greet_pause',`5000')",
        "# poprelay.mc:5: Klocalip hash -a<MATCH> /etc/mail/localip",
    ] {
        assert!(toml.contains(want), "missing {want:?} in\n{toml}");
    }
    let err = text(&out.stderr);
    assert!(err.contains("dry run, nothing written"), "{err}");
    assert!(!err.contains("nothing to do:"), "only with -v: {err}");
    let verbose = migrate(root.path(), &["-v"]);
    let verr = text(&verbose.stderr);
    assert!(
        verr.contains("nothing to do: ") && verr.contains(":4: VERSIONID("),
        "{verr}"
    );
    assert!(err.contains("access: would build"), "{err}");
    assert!(
        !err.contains("not translated"),
        "the seed translates fully: {err}"
    );
    let after: Vec<_> = fs::read_dir(mail_dir(root.path())).unwrap().collect();
    assert_eq!(before.len(), after.len(), "nothing written");
    assert!(!mail_dir(root.path()).join("mailtool.toml").exists());
    assert!(!mail_dir(root.path()).join("access.db").exists());
}

#[test]
fn write_gives_a_valid_config_and_maps_with_the_sources_content() {
    let root = seed_root();
    let sysconfig = root.path().join("sendmail.sysconfig");
    fs::write(&sysconfig, "DAEMON=yes\nQUEUE=1h\n").unwrap();
    let out = migrate(
        root.path(),
        &["--write", "--sysconfig", sysconfig.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cfg = mail_dir(root.path()).join("mailtool.toml");
    assert!(text(&out.stdout).contains(&format!("wrote {}", cfg.display())));

    let check = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert_eq!(text(&check.stdout), format!("{}: OK\n", cfg.display()));
    let show = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "show", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["smtp"]["greet_pause"], "5s");
    assert_eq!(v["smtp"]["ptr_check"], "resolvable");
    assert_eq!(v["queue"]["interval"], "1h");
    assert_eq!(v["pop3"]["pop_before_smtp_ttl"], "15m");

    for name in ["access", "virtusertable", "localip", "popip"] {
        let dir = mail_dir(root.path());
        assert_eq!(
            dump(&dir.join(name)),
            expected_records(&dir.join(name)),
            "{name}"
        );
    }
    // aliases.db is what newaliases itself builds from the same file.
    let plain = seed_root();
    let built = run(
        mailtool().arg("--root").arg(plain.path()).arg("newaliases"),
        b"",
    );
    assert_eq!(built.status.code(), Some(0), "{}", text(&built.stderr));
    let dump_aliases = |r: &Path| {
        let out = run(
            mailtool()
                .arg("--root")
                .arg(r)
                .args(["newaliases", "--dump"]),
            b"",
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let migrated = dump_aliases(root.path());
    assert!(migrated.contains("postmaster:root\n"), "{migrated}");
    assert_eq!(migrated, dump_aliases(plain.path()));
}

#[test]
fn untranslatable_lines_are_listed_with_their_line_numbers() {
    let root = seed_root();
    let mc = mail_dir(root.path()).join("mydomain.mc");
    let mut text_mc = fs::read_to_string(&mc).unwrap();
    let base = text_mc.lines().count();
    text_mc.push_str("FEATURE(`mailertable')dnl\nLOCAL_RULESETS\nSLocal_check_mail\nR$*\t$#error $: \"550 go away\"\n");
    fs::write(&mc, text_mc).unwrap();
    let out = migrate(root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let f = mc.display();
    for want in [
        format!(
            "not translated: {f}:{}: FEATURE(`mailertable') — unknown FEATURE `mailertable'",
            base + 1
        ),
        format!(
            "not translated: {f}:{}: SLocal_check_mail — custom rule set",
            base + 3
        ),
        format!(
            "not translated: {f}:{}: R$*\t$#error $: \"550 go away\"",
            base + 4
        ),
        "3 item(s) not translated".to_string(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in\n{err}");
    }
    // The list is kept in the file too.
    assert!(text(&out.stdout).contains("# Not translated (review these):"));
}

#[test]
fn a_map_without_its_source_is_imported_from_berkeley_db() {
    let root = seed_root();
    // The old /etc/mail lives elsewhere (--etc); access has only sendmail's access.db left.
    let old = root.path().join("old-etc-mail");
    fs::rename(mail_dir(root.path()), &old).unwrap();
    fs::remove_file(old.join("access")).unwrap();
    fs::copy(
        fixtures().join("bdb/makemap-access-hash-le.db"),
        old.join("access.db"),
    )
    .unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["migrate", "sendmail", "--mc"])
            .arg(old.join("mydomain.mc"))
            .arg("--etc")
            .arg(&old)
            .arg("--write"),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("access: imported into") && stdout.contains("Berkeley DB"),
        "{stdout}"
    );
    let new = mail_dir(root.path()).join("access.db");
    assert!(
        fs::read(&new).unwrap().starts_with(b"SQLite format 3\0"),
        "a mailtool map, not a copy"
    );
    let mut want: Vec<String> =
        fs::read_to_string(fixtures().join("bdb/makemap-access-hash-le.expected"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    want.sort();
    assert_eq!(dump(&mail_dir(root.path()).join("access")), want);
    // The others were rebuilt from their sources into the new mail dir, class files copied.
    assert_eq!(
        dump(&mail_dir(root.path()).join("virtusertable")),
        expected_records(&old.join("virtusertable"))
    );
    assert_eq!(
        fs::read(mail_dir(root.path()).join("relay-domains")).unwrap(),
        fs::read(old.join("relay-domains")).unwrap()
    );
}

#[test]
fn a_missing_mc_is_66_and_a_parse_error_65_with_its_line() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["migrate", "sendmail"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(66), "{}", text(&out.stderr));
    let default_mc = root.path().join("etc/mail/sendmail.mc");
    assert!(
        text(&out.stderr).contains(&default_mc.display().to_string()),
        "the default .mc is under --root: {}",
        text(&out.stderr)
    );

    fs::create_dir_all(default_mc.parent().unwrap()).unwrap();
    fs::write(&default_mc, "FEATURE(`access_db')\nFEATURE(`dnsbl', `x\n\n").unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["migrate", "sendmail"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(
        text(&out.stderr),
        format!(
            "mailtool: migrate: {}:2: EOF in quoted string\n",
            default_mc.display()
        )
    );
}

#[test]
fn an_existing_config_is_not_overwritten_without_force() {
    let root = seed_root();
    let cfg = mail_dir(root.path()).join("mailtool.toml");
    fs::write(&cfg, "hostname = \"old.example\"\n").unwrap();
    let out = migrate(root.path(), &["--write"]);
    assert_eq!(out.status.code(), Some(73));
    assert!(
        text(&out.stderr).contains("use --force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(&cfg).unwrap(),
        "hostname = \"old.example\"\n"
    );
    assert!(
        !mail_dir(root.path()).join("access.db").exists(),
        "nothing built"
    );

    let out = migrate(root.path(), &["--write", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        fs::read_to_string(&cfg)
            .unwrap()
            .contains("greet_pause = \"5000ms\"")
    );

    let out = migrate(root.path(), &["--write", "--dry-run"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn json_reports_config_maps_and_untranslated_items() {
    let root = seed_root();
    let mc = mail_dir(root.path()).join("mydomain.mc");
    let mut t = fs::read_to_string(&mc).unwrap();
    t.push_str("define(`SMTP_MAILER_MAX', `1000000')dnl\n");
    fs::write(&mc, t).unwrap();
    let out = migrate(root.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["written"], false);
    assert!(
        v["config"]
            .as_str()
            .unwrap()
            .contains("ptr_check = \"resolvable\"")
    );
    let un = v["untranslated"].as_array().unwrap();
    assert_eq!(un.len(), 1, "{un:?}");
    assert_eq!(un[0]["line"], 28, "the appended line");
    assert_eq!(un[0]["text"], "define(`SMTP_MAILER_MAX', `1000000')");
    let access = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "access")
        .unwrap();
    assert_eq!(access["action"], "build");

    // With --write, stdout stays one JSON object (no newaliases statistics line in it).
    let out = migrate(root.path(), &["--json", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(v["written"], true);
    assert!(mail_dir(root.path()).join("aliases.db").exists());
}

#[test]
fn milters_become_milter_entries_in_the_order_sendmail_calls_them() {
    let root = seed_root();
    let mc = mail_dir(root.path()).join("milters.mc");
    fs::copy(fixtures().join("milter-mc/milters.mc"), &mc).unwrap();
    let migrate_milters = |extra: &[&str]| {
        run(
            mailtool()
                .arg("--root")
                .arg(root.path())
                .args(["migrate", "sendmail", "--mc"])
                .arg(&mc)
                .args(extra),
            b"",
        )
    };
    let out = migrate_milters(&["-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    let start = toml.find("# Mail filters").expect(&toml);
    let end = toml.find("\n# Not translated").expect(&toml);
    let order = "#   called in the order of milters.mc:12: define(`confINPUT_MAIL_FILTERS', `spamass, opendkim, clamav')";
    assert_eq!(
        &toml[start..end],
        format!(
            "# Mail filters (sendmail's INPUT_MAIL_FILTER), called in this order.

# milters.mc:10: MAIL_FILTER(`spamass', `S=local:/run/spamass-milter/spamass-milter.sock, T=C:1m;E:10m')
{order}
[[milter]]
name = \"spamass\"
socket = \"local:/run/spamass-milter/spamass-milter.sock\"
on_failure = \"accept\"
timeouts = {{ connect = \"1m\", end = \"10m\" }}

# milters.mc:8: INPUT_MAIL_FILTER(`opendkim', `S=inet:8891@localhost, F=T, T=S:4m;R:4m')
{order}
[[milter]]
name = \"opendkim\"
socket = \"inet:8891@localhost\"
on_failure = \"tempfail\"
timeouts = {{ send = \"4m\", receive = \"4m\" }}

# milters.mc:9: INPUT_MAIL_FILTER(`clamav', `S=unix:/run/clamav/clamav-milter.sock, F=R')
{order}
[[milter]]
name = \"clamav\"
socket = \"unix:/run/clamav/clamav-milter.sock\"
on_failure = \"reject\"
"
        ),
        "in\n{toml}"
    );
    let err = text(&out.stderr);
    assert!(
        !err.lines()
            .any(|l| l.starts_with("not translated:") && l.contains("MAIL_FILTER(")),
        "the filters translate: {err}"
    );
    let f = mc.display();
    for want in [
        format!(
            "not translated: {f}:13: define(`confMILTER_MACROS_CONNECT', `j, {{daemon_name}}, {{if_name}}') — mailtool sends every milter the same fixed set of macros"
        ),
        "1 item(s) not translated".to_string(),
        format!(
            "nothing to do: {f}:11: MAIL_FILTER(`archive', `S=inet6:2525@[::1]') — declared but not in confINPUT_MAIL_FILTERS: sendmail does not call it either, so it is left out"
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in\n{err}");
    }

    // Written, the file loads: config check and show see the three, in order.
    let out = migrate_milters(&["--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let check = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let show = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "show", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let names: Vec<&str> = v["milter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["spamass", "opendkim", "clamav"]);
    assert_eq!(
        v["milter"][1]["timeouts"]["connect"], "5m",
        "sendmail's default"
    );
    assert_eq!(v["milter"][1]["timeouts"]["send"], "4m");
    assert_eq!(v["milter"][2]["on_failure"], "reject");
}
