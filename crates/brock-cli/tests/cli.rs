//! The `brock` binary end to end: dump formats, info, and bad input.

#[path = "../../brock/tests/common/mod.rs"]
mod common;

use std::process::Command;

fn brock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brock"))
        .args(args)
        .output()
        .expect("run brock")
}

#[test]
fn dump_prints_the_fixture_formats() {
    for dir in ["clean", "unflushed"] {
        let path = common::fixture(dir);
        let p = path.to_str().unwrap();
        let latest = brock(&["dump", "--dir", p]);
        assert!(
            latest.status.success(),
            "{}",
            String::from_utf8_lossy(&latest.stderr)
        );
        let want = std::fs::read(common::fixtures_dir().join(format!("{dir}.latest.tsv"))).unwrap();
        assert!(latest.stdout == want, "{dir} latest dump differs");
        let all = brock(&["dump", "--dir", p, "--all-versions"]);
        assert!(all.status.success());
        let want = std::fs::read(common::fixtures_dir().join(format!("{dir}.all-versions.tsv"))).unwrap();
        assert!(all.stdout == want, "{dir} all-versions dump differs");
    }
}

#[test]
fn info_shows_levels_tables_and_logs() {
    let path = common::fixture("multilevel");
    let out = brock(&["info", "--dir", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("L0:    8 tables"), "{text}");
    assert!(text.contains("L6:    7 tables"), "{text}");
    assert!(text.contains("L6 000017.sst"), "{text}");
    assert!(text.contains("k000000000000000@517"), "{text}");
    assert!(text.contains("max version: 1500"), "{text}");

    let path = common::fixture("unflushed");
    let out = brock(&["info", "--dir", path.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("00001.mem"), "{text}");
    assert!(text.contains("000002.vlog"), "{text}");
    assert!(text.contains("max version: 24"), "{text}");
}

#[test]
fn bad_input_gives_a_clear_error_and_status() {
    let out = brock(&["dump", "--dir", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));

    let empty = tempfile::tempdir().unwrap();
    let out = brock(&["info", "--dir", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MANIFEST is missing"));

    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("MANIFEST"), b"NOPE\0\0\0\x08").unwrap();
    let out = brock(&["dump", "--dir", bad.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad magic"));

    let out = brock(&["dump"]);
    assert_eq!(out.status.code(), Some(2), "missing --dir is a usage error");
    let out = brock(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn closed_pipe_is_not_an_error() {
    use std::io::Read;
    let path = common::fixture("multilevel");
    let mut child = Command::new(env!("CARGO_BIN_EXE_brock"))
        .args(["dump", "--dir", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "status {status:?}, stderr {err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn flatten_moves_everything_to_one_level_and_keeps_the_data() {
    let copy = common::fixture_copy("multilevel");
    let p = copy.path().to_str().unwrap();
    let before = brock(&["dump", "--dir", p]);
    let out = brock(&["flatten", "--dir", p, "--workers", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("flattened: "), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("before: "));
    let info = String::from_utf8(brock(&["info", "--dir", p]).stdout).unwrap();
    assert!(info.contains("L0:    0 tables"), "{info}");
    let after = brock(&["dump", "--dir", p]);
    assert!(before.stdout == after.stdout, "flatten changed the data");
    let bad = brock(&["flatten", "--dir", "/definitely/not/here"]);
    assert_eq!(bad.status.code(), Some(1));
    let zero = brock(&["flatten", "--dir", p, "--workers", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn gc_reclaims_overwritten_values_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    {
        let db = brock::Db::open(brock::Options::new(dir.path()).with_value_threshold(1024)).unwrap();
        for round in 0..3u8 {
            db.update(|t| {
                for i in 0..200u32 {
                    t.set(format!("k{i:04}").into_bytes(), vec![round; 8192])?;
                }
                Ok(())
            })
            .unwrap();
        }
        db.close().unwrap();
    }
    let before = brock(&["dump", "--dir", p]);
    let size_before = common::vlog_bytes(dir.path());
    let out = brock(&["gc", "--dir", p, "--ratio", "0.5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("gc: 1 files collected"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("collected 000001.vlog"));
    let after = brock(&["dump", "--dir", p]);
    assert!(before.stdout == after.stdout, "gc changed the data");
    let size_after = common::vlog_bytes(dir.path());
    // Two of every three values were garbage.
    assert!(size_after * 2 < size_before, "{size_before} -> {size_after}");
    // Again: nothing left to collect.
    let again = brock(&["gc", "--dir", p]);
    assert!(
        String::from_utf8(again.stdout)
            .unwrap()
            .starts_with("gc: 0 files collected")
    );

    for bad in ["0", "1", "-0.5", "nan"] {
        let out = brock(&["gc", "--dir", p, &format!("--ratio={bad}")]);
        assert_eq!(out.status.code(), Some(1), "--ratio {bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--ratio"),
            "--ratio {bad}"
        );
    }
    let missing = brock(&["gc", "--dir", "/definitely/not/here"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// Go Badger's fixtures with value-log values still dump the same after
/// Brock opened them read-write and ran GC.
#[test]
fn gc_on_go_fixtures_keeps_their_data() {
    for name in ["clean", "unflushed", "vlog"] {
        let copy = common::fixture_copy(name);
        let p = copy.path().to_str().unwrap();
        // The unmodified copy dumps exactly as Go wrote it (fixtures_dump).
        let before = brock(&["dump", "--dir", p]);
        assert!(before.status.success());
        let out = brock(&["gc", "--dir", p, "--ratio", "0.01"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = brock(&["dump", "--dir", p]);
        assert!(
            after.stdout == before.stdout,
            "{name}: gc changed what a reader sees"
        );
    }
}
