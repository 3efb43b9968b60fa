//! Shared helpers for integration tests: the Go-written fixtures.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `../shared/fixtures/badger-v4`, or `$BROCK_FIXTURES`.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(p) = std::env::var("BROCK_FIXTURES") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/badger-v4")
}

/// A fresh extraction of both fixture archives, once per test process.
/// Directories are copies: tests may modify them.
pub fn extracted() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        for tar in ["handmade-v4.3.1.tar", "generated-v4.3.1.tar"] {
            let status = Command::new("tar")
                .arg("-S")
                .arg("-xf")
                .arg(fixtures_dir().join(tar))
                .arg("-C")
                .arg(dir.path())
                .status()
                .expect("run tar");
            assert!(status.success(), "extracting {tar}");
        }
        dir
    })
    .path()
}

/// The path of one extracted fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    extracted().join(name)
}

/// A private copy of one fixture directory (sparse files stay sparse).
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dst = tempfile::tempdir().expect("temp dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg("--sparse=always")
        .arg(format!("{}/.", fixture(name).display()))
        .arg(dst.path())
        .status()
        .expect("run cp");
    assert!(status.success());
    dst
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Bytes of the `.vlog` files in `dir`.
pub fn vlog_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".vlog"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}
