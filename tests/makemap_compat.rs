//! makemap against the real sendmail makemap: every case in tests/fixtures/sendmail/cases was
//! run through Debian's sendmail 8.17.1.9 makemap by make-expected.sh, which recorded its
//! stdout, stderr, exit status and `-u` dump. docs/sendmail-compat.md §1.4–§1.6.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn case_dirs() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(fixtures().join("sendmail/cases"))
        .expect("cases dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn check_case(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let args: Vec<String> = fs::read_to_string(dir.join("args"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let input = fs::read(dir.join("input")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .current_dir(work.path())
            .arg("makemap")
            .args(&args)
            .arg(&name),
        &input,
    );
    let rc: i32 = fs::read_to_string(dir.join("rc"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(rc),
        "{name}: exit status; stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stderr),
        fs::read_to_string(dir.join("stderr")).unwrap(),
        "{name}: stderr"
    );
    assert_eq!(
        out.stdout,
        fs::read(dir.join("stdout")).unwrap(),
        "{name}: stdout"
    );

    let maptype = args.last().unwrap();
    let mut dump_args: Vec<&str> = vec!["makemap", "-u"];
    dump_args.extend(
        args.iter()
            .filter(|a| *a == "-N" || a.starts_with("-t"))
            .map(String::as_str),
    );
    dump_args.push(maptype);
    dump_args.push(&name);
    let dumped = run(mailtool().current_dir(work.path()).args(&dump_args), b"");
    assert_eq!(
        dumped.status.code(),
        Some(0),
        "{name}: dump: {}",
        text(&dumped.stderr)
    );
    let expected = fs::read(dir.join("dump")).unwrap();
    if maptype == "btree" {
        assert_eq!(
            text(&dumped.stdout),
            text(&expected),
            "{name}: btree dump, in order"
        );
    } else {
        // Berkeley DB hash order is an accident of its hash function; compare as sets of lines.
        let sorted = |b: &[u8]| {
            let mut l: Vec<Vec<u8>> = b
                .split_inclusive(|&c| c == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            l.sort();
            l
        };
        assert_eq!(
            sorted(&dumped.stdout),
            sorted(&expected),
            "{name}: hash dump"
        );
    }
    let mode = fs::metadata(work.path().join(format!("{name}.db"))).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o640,
        "{name}: mode"
    );
}

#[test]
fn every_recorded_case_matches_sendmail() {
    let dirs = case_dirs();
    assert!(dirs.len() >= 15, "the recorded cases are missing");
    for d in dirs {
        check_case(&d);
    }
}

#[test]
fn seed_maps_built_the_guides_way() {
    // The guide: makemap hash /etc/mail/NAME < /etc/mail/NAME, for each map.
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    for name in ["access", "virtusertable", "localip", "popip"] {
        let src = fs::read(fixtures().join("seed-etc-mail").join(name)).unwrap();
        let map = etc.join(name);
        let out = run(mailtool().args(["makemap", "hash"]).arg(&map), &src);
        // The seed's localip has keys without values: sendmail refuses them without -e.
        let want = if name == "localip" { 65 } else { 0 };
        assert_eq!(
            out.status.code(),
            Some(want),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(etc.join(format!("{name}.db")).exists());
    }
    let q = run(
        mailtool()
            .args(["makemap", "-q", "Connect:RELAY.com", "hash"])
            .arg(etc.join("access")),
        b"",
    );
    assert_eq!(text(&q.stdout), "RELAY\n");
    let q = run(
        mailtool()
            .args(["makemap", "-q", "@example2.com", "hash"])
            .arg(etc.join("virtusertable")),
        b"",
    );
    assert_eq!(text(&q.stdout), "error:nouser 550 error-message\n");
}

#[test]
fn link_named_makemap_behaves_as_makemap() {
    let dir = tempfile::tempdir().unwrap();
    let mk = link(dir.path(), "makemap");
    let out = run(
        std::process::Command::new(&mk)
            .current_dir(dir.path())
            .args(["hash", "m"]),
        b"k v\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(
        std::process::Command::new(&mk)
            .current_dir(dir.path())
            .args(["-u", "hash", "m"]),
        b"",
    );
    assert_eq!(text(&out.stdout), "k\tv\n");
    // -l lists sendmail's order; every type writes one SQLite file.
    let out = run(std::process::Command::new(&mk).arg("-l"), b"");
    assert_eq!(text(&out.stdout), "dbm\nhash\nbtree\nimplicit\n");
    // Any other name is mailtool itself.
    let other = link(dir.path(), "mailtool-dev");
    let out = run(
        std::process::Command::new(&other).args(["makemap", "-l"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_errors_exit_64() {
    // docs/sendmail-compat.md §1.1: wrong argument count or an unknown flag: usage, EX_USAGE.
    for args in [
        vec![],
        vec!["hash"],
        vec!["-x", "hash", "m"],
        vec!["hash", "m", "extra"],
    ] {
        let out = run(mailtool().arg("makemap").args(&args), b"");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(
            text(&out.stderr).contains("Usage: makemap"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn unknown_type_and_uncreatable_maps_exit_73() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "foo", "x"]),
        b"k v\n",
    );
    assert_eq!(out.status.code(), Some(73));
    assert_eq!(
        text(&out.stderr),
        "makemap: error opening type foo map x: Unknown database type\n"
    );
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "hash", "no/such/dir/x"]),
        b"k v\n",
    );
    assert_eq!(out.status.code(), Some(73));
    assert_eq!(
        text(&out.stderr),
        "makemap: error opening type hash map no/such/dir/x: No such file or directory\n"
    );
}

#[test]
fn unwritable_directory_keeps_the_old_map() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(dir.path()).unwrap().permissions(),
        0o755,
    );
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = run(
        mailtool().args(["makemap", "hash"]).arg(ro.join("m")),
        b"k old\n",
    );
    assert_eq!(out.status.code(), Some(0));
    fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    let mut cmd = mailtool();
    let nobody = as_nobody(&mut cmd);
    if nobody {
        // The map must be readable for the dump below to work as nobody as well.
        fs::set_permissions(
            ro.join("m.db"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
    }
    let out = run(cmd.args(["makemap", "hash"]).arg(ro.join("m")), b"k new\n");
    assert_eq!(out.status.code(), Some(73), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "makemap: error opening type hash map {}: Permission denied\n",
            ro.join("m").display()
        )
    );
    let q = run(
        mailtool()
            .args(["makemap", "-q", "k", "hash"])
            .arg(ro.join("m")),
        b"",
    );
    assert_eq!(text(&q.stdout), "old\n");
}

#[test]
fn unreadable_input_keeps_the_old_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "hash", "m"]),
        b"k old\n",
    );
    assert_eq!(out.status.code(), Some(0));
    // A directory as standard input: read() fails with EISDIR.
    let out = mailtool()
        .current_dir(dir.path())
        .args(["makemap", "hash", "m"])
        .stdin(fs::File::open(dir.path()).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(74), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("makemap: m: reading the input: Is a directory"),
        "{}",
        text(&out.stderr)
    );
    let q = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "-q", "k", "hash", "m"]),
        b"",
    );
    assert_eq!(text(&q.stdout), "old\n");
    // No temp file is left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m.db")]);
}

#[test]
fn symlinked_map_is_refused_without_s() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path().join("real.db"), dir.path().join("m.db")).unwrap();
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "hash", "m"]),
        b"k v\n",
    );
    assert_eq!(out.status.code(), Some(73));
    assert_eq!(
        text(&out.stderr),
        "makemap: error opening type hash map m: Symbolic links not allowed\n"
    );
    assert!(!dir.path().join("real.db").exists());
}

#[test]
fn query_bulk_query_delete_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = |args: &[&str], input: &[u8]| {
        run(
            mailtool().current_dir(dir.path()).arg("makemap").args(args),
            input,
        )
    };
    assert_eq!(
        d(&["hash", "m"], b"Alpha 1\nbeta two words\n")
            .status
            .code(),
        Some(0)
    );
    let out = d(&["-q", "ALPHA", "hash", "m"], b"");
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "1\n".into())
    );
    let out = d(&["-q", "gamma", "hash", "m"], b"");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(1), "".into()));
    let out = d(&["-q", "-", "hash", "m"], b"beta\nnone\nalpha\n");
    assert_eq!(text(&out.stdout), "beta\ttwo words\nalpha\t1\n");
    let out = d(&["-q", "-", "hash", "m"], b"none\n");
    assert_eq!(out.status.code(), Some(1));
    let out = d(&["--json", "-q", "alpha", "hash", "m"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["value"], "1");
    let out = d(&["--json", "-u", "hash", "m"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[1]["key"], "beta");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        d(&["--delete", "Alpha", "hash", "m"], b"").status.code(),
        Some(0)
    );
    assert_eq!(
        d(&["--delete", "alpha", "hash", "m"], b"").status.code(),
        Some(1)
    );
    assert_eq!(
        text(&d(&["-u", "hash", "m"], b"").stdout),
        "beta\ttwo words\n"
    );
    // -o appends in place; the existing value wins over a duplicate.
    let out = d(&["-o", "hash", "m"], b"beta other\nzeta 9\n");
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(
        text(&out.stderr),
        "makemap: m: line 1: key beta: duplicate key\n"
    );
    assert_eq!(
        text(&d(&["-u", "hash", "m"], b"").stdout),
        "beta\ttwo words\nzeta\t9\n"
    );
}

#[test]
fn large_input_spills_and_merges() {
    // More than one sorted run: the external merge path, checked end to end.
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for i in 0..60_000u32 {
        input.push_str(&format!(
            "From:user{}@example{}.com\tREJECT {i}\n",
            (i * 7919) % 50_000,
            i % 7
        ));
    }
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "hash", "big"]),
        input.as_bytes(),
    );
    let dups = text(&out.stderr).lines().count();
    assert_eq!(out.status.code(), Some(if dups > 0 { 65 } else { 0 }));
    let dump = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "-u", "hash", "big"]),
        b"",
    );
    let lines: Vec<&str> = std::str::from_utf8(&dump.stdout).unwrap().lines().collect();
    assert_eq!(lines.len() + dups, 60_000);
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "dump is in key order");
}

#[test]
fn berkeley_db_maps_from_sendmail_and_postfix_are_read() {
    // A site switching over can dump and query its old maps before rebuilding them.
    let bdb = fixtures().join("bdb");
    // sendmail's makemap built this from the seed access file: our dump walks the hash in
    // Berkeley DB's own order, so it equals sendmail's `makemap -u` byte for byte.
    let out = run(
        mailtool()
            .args(["makemap", "-u", "hash"])
            .arg(bdb.join("makemap-access-hash-le")),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        out.stdout,
        fs::read(fixtures().join("sendmail/cases/seed-access/dump")).unwrap()
    );
    // Postfix (postmap hash:) stores keys with a trailing NUL; lookups adapt.
    let q = run(
        mailtool()
            .args(["makemap", "-q", "Connect:Relay.COM", "hash"])
            .arg(bdb.join("postfix-access-hash-le")),
        b"",
    );
    assert_eq!(
        (q.status.code(), text(&q.stdout)),
        (Some(0), "RELAY\n".to_string())
    );
    // makemap -N maps dump without the NUL, as sendmail's %.*s prints them.
    let out = run(
        mailtool()
            .args(["makemap", "-u", "btree"])
            .arg(bdb.join("makemap-nul-btree-le")),
        b"",
    );
    assert!(!out.stdout.contains(&0), "NUL leaked into the dump");
    // Big-endian files too.
    let out = run(
        mailtool()
            .args(["makemap", "-q", "-", "btree"])
            .arg(bdb.join("access-btree-be")),
        b"reject.com\nnone\n",
    );
    assert_eq!(text(&out.stdout), "reject.com\tREJECT\n");
    // Something that is neither format is refused with makemap's wording.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("junk.db"), b"not a database at all").unwrap();
    let out = run(
        mailtool()
            .current_dir(dir.path())
            .args(["makemap", "-u", "hash", "junk"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(73));
    assert!(
        text(&out.stderr).starts_with("makemap: error opening type hash map junk: neither"),
        "{}",
        text(&out.stderr)
    );
}
