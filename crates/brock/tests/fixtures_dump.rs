//! Every Go-written fixture directory dumps exactly as its expected files say,
//! in both dump modes.

mod common;

use brock::inspect::{DirView, DumpMode, write_dump};
use sha2::{Digest, Sha256};

fn dump(dir: &str, mode: DumpMode) -> Vec<u8> {
    let view = DirView::open(common::fixture(dir)).unwrap();
    let mut out = Vec::new();
    write_dump(&view, mode, &mut out).unwrap();
    out
}

fn mode_name(mode: DumpMode) -> &'static str {
    match mode {
        DumpMode::Latest => "latest",
        DumpMode::AllVersions => "all-versions",
    }
}

fn check_full(dir: &str) {
    for mode in [DumpMode::Latest, DumpMode::AllVersions] {
        let got = dump(dir, mode);
        let want =
            std::fs::read(common::fixtures_dir().join(format!("{dir}.{}.tsv", mode_name(mode)))).unwrap();
        if got != want {
            let g = String::from_utf8_lossy(&got);
            let w = String::from_utf8_lossy(&want);
            for (i, (a, b)) in g.lines().zip(w.lines()).enumerate() {
                assert_eq!(
                    &a[..a.len().min(200)],
                    &b[..b.len().min(200)],
                    "{dir} {} line {i}",
                    mode_name(mode)
                );
            }
            panic!(
                "{dir} {}: {} lines, expected {}",
                mode_name(mode),
                g.lines().count(),
                w.lines().count()
            );
        }
    }
}

fn check_hashed(dir: &str) {
    for mode in [DumpMode::Latest, DumpMode::AllVersions] {
        let got = dump(dir, mode);
        let name = mode_name(mode);
        let head =
            std::fs::read_to_string(common::fixtures_dir().join(format!("{dir}.{name}.head.txt"))).unwrap();
        let got_head: Vec<String> = String::from_utf8_lossy(&got)
            .lines()
            .take(5)
            .map(|l| l.chars().take(200).collect())
            .collect();
        let want_head: Vec<&str> = head.lines().collect();
        assert_eq!(got_head, want_head, "{dir} {name} head");
        let want_sha =
            std::fs::read_to_string(common::fixtures_dir().join(format!("{dir}.{name}.sha256"))).unwrap();
        let got_sha = common::hex(&Sha256::digest(&got));
        assert_eq!(got_sha, want_sha.trim(), "{dir} {name} sha256");
    }
}

#[test]
fn clean() {
    check_full("clean");
}

#[test]
fn unflushed_newest_data_only_in_the_wal() {
    check_full("unflushed");
}

#[test]
fn unflushed_small() {
    check_full("unflushed-small");
}

#[test]
fn multilevel() {
    check_hashed("multilevel");
}

#[test]
fn multilevel_zstd() {
    check_hashed("multilevel-zstd");
}

#[test]
fn vlog() {
    check_hashed("vlog");
}

#[test]
fn nocompress() {
    check_hashed("nocompress");
}

#[test]
fn overwritten() {
    check_hashed("overwritten");
}

#[test]
fn opening_never_modifies_the_directory() {
    let dir = common::fixture("unflushed");
    let before = snapshot(&dir);
    let view = DirView::open(&dir).unwrap();
    let _ = write_dump(&view, DumpMode::AllVersions, &mut std::io::sink()).unwrap();
    assert_eq!(snapshot(&dir), before);
}

fn snapshot(dir: &std::path::Path) -> Vec<(String, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        let head = if meta.len() < 1 << 20 {
            std::fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        out.push((e.file_name().to_string_lossy().into_owned(), meta.len(), head));
    }
    out.sort();
    out
}
