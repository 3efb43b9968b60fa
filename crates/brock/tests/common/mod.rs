//! Shared helpers for integration tests: the Go-written fixtures.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod traced;

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
///
/// A `static` is never dropped, so a `TempDir` here would outlive the
/// process on disk (55 MB per test binary run, which once filled the
/// disk). Instead each process extracts into `fixtures-<pid>` under the
/// target's scratch directory and first removes the extractions of
/// processes that are gone.
pub fn extracted() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("brock-fixtures");
        std::fs::create_dir_all(&root).expect("fixture scratch dir");
        sweep_dead_extractions(&root);
        let dir = root.join(format!("fixtures-{}", std::process::id()));
        // A directory of ours that exists is left by a dead process whose
        // pid we now have: start over.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("fixture dir");
        for tar in ["handmade-v4.3.1.tar", "generated-v4.3.1.tar"] {
            let status = Command::new("tar")
                .arg("-S")
                .arg("-xf")
                .arg(fixtures_dir().join(tar))
                .arg("-C")
                .arg(&dir)
                .status()
                .expect("run tar");
            assert!(status.success(), "extracting {tar}");
        }
        dir
    })
}

/// Removes `fixtures-<pid>` directories whose process no longer runs.
fn sweep_dead_extractions(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("fixtures-")) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
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

/// Bytes of the `.vlog` files in `dir` (a file GC deletes while the
/// directory is listed counts as gone).
pub fn vlog_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".vlog"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
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

/// How a child test process ended after [`run_and_kill`].
pub struct Killed<T> {
    /// Its exit status (a kill shows as signal 9).
    pub status: std::process::ExitStatus,
    /// What the reader made of its standard output.
    pub out: T,
    /// Its standard error.
    pub stderr: String,
}

/// Runs test `entry` of the current test binary as a child process with
/// `envs`, lets it run for `delay`, kills it with SIGKILL and waits for it.
/// `read` consumes the child's standard output on its own thread (so the
/// child never blocks on a full pipe).
pub fn run_and_kill<T: Send + 'static>(
    entry: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    delay: std::time::Duration,
    read: impl FnOnce(std::process::ChildStdout) -> T + Send + 'static,
) -> Result<Killed<T>, String> {
    use std::io::Read;
    use std::process::Stdio;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args([entry, "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let out = child.stdout.take().ok_or("no child stdout")?;
    let mut err = child.stderr.take().ok_or("no child stderr")?;
    let out = std::thread::spawn(move || read(out));
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    std::thread::sleep(delay);
    child.kill().map_err(|e| format!("kill child: {e}"))?;
    let status = child.wait().map_err(|e| format!("wait for child: {e}"))?;
    Ok(Killed {
        status,
        out: out.join().map_err(|_| "stdout reader panicked")?,
        stderr: err.join().map_err(|_| "stderr reader panicked")?,
    })
}

/// In a child test process: prints one line to the parent and flushes it;
/// a parent that has gone away ends the child.
pub fn child_emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(2);
    }
}

/// In a child test process: ends it on an error, whichever thread meets it.
pub fn child_fail(msg: &str) -> ! {
    eprintln!("child: {msg}");
    std::process::exit(4);
}
