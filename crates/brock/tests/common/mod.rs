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

/// splitmix64: a small, seedable, replayable generator for test workloads.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `lo..=hi_inclusive`.
    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
