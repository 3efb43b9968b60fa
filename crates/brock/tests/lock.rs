//! The directory lock: one writer or any number of readers, in this process
//! or another, and a `LOCK` file left by a dead process does not block.
//!
//! Other processes are this test binary re-executed as the `lock_child_entry`
//! test, which does nothing unless `BROCK_LOCK_CHILD_DIR` is set: it opens
//! the database (read-only when `BROCK_LOCK_CHILD_RO=1`), prints `READY` (or
//! `ERR <error>`), holds it until its stdin closes, then closes it and
//! prints `CLOSED`.

use brock::{Db, Error, Options};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const CHILD_DIR_ENV: &str = "BROCK_LOCK_CHILD_DIR";
const CHILD_RO_ENV: &str = "BROCK_LOCK_CHILD_RO";
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

fn rw(dir: &Path) -> Options {
    Options::new(dir).with_num_compactors(0)
}

fn ro(dir: &Path) -> Options {
    rw(dir).with_read_only(true)
}

fn lock_file(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

fn lock_pid(dir: &Path) -> Option<String> {
    std::fs::read_to_string(lock_file(dir)).ok()
}

/// A database with one key, closed.
fn make_db(dir: &Path) {
    let db = Db::open(rw(dir)).unwrap();
    db.update(|t| t.set(&b"k"[..], &b"v"[..])).unwrap();
    db.close().unwrap();
}

/// The error of an open that must fail with `Locked`, as its parts.
#[track_caller]
fn locked(result: brock::Result<Db>) -> (PathBuf, Option<u32>, bool) {
    match result {
        Err(Error::Locked {
            path,
            holder_pid,
            exclusive,
        }) => (path, holder_pid, exclusive),
        Err(e) => panic!("expected Error::Locked, got {e:?}"),
        Ok(db) => panic!("expected Error::Locked, but the open succeeded: {db:?}"),
    }
}

fn read_k(db: &Db) -> Option<Vec<u8>> {
    db.view(|t| t.get(b"k")).unwrap().map(|i| i.value_ref().to_vec())
}

/// The child: holds the database open until stdin closes.
#[test]
fn lock_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let read_only = std::env::var(CHILD_RO_ENV).is_ok_and(|s| s == "1");
    let opts = if read_only {
        ro(Path::new(&dir))
    } else {
        rw(Path::new(&dir))
    };
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        // A newline first: libtest has printed "test lock_child_entry ... ".
        writeln!(out, "\n{line}").unwrap();
        out.flush().unwrap();
    };
    let db = match Db::open(opts) {
        Ok(db) => db,
        Err(e) => {
            say(&format!("ERR {e:?}"));
            std::process::exit(1);
        }
    };
    say("READY");
    // Until the parent closes stdin (or kills us).
    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink()).unwrap();
    db.close().unwrap();
    say("CLOSED");
    std::process::exit(0);
}

/// A child process holding a database open; killed when dropped.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Holder {
    /// Starts a child that opens `dir` and waits until it has.
    fn spawn(dir: &Path, read_only: bool) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["lock_child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_RO_ENV, if read_only { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut h = Holder { child, stdin, lines };
        h.expect_line("READY");
        h
    }

    /// Waits for a line starting with `word`; panics on `ERR` or a timeout.
    fn expect_line(&mut self, word: &str) {
        loop {
            let line = self
                .lines
                .recv_timeout(CHILD_TIMEOUT)
                .unwrap_or_else(|e| panic!("child {}: no {word} line ({e})", self.child.id()));
            assert!(!line.starts_with("ERR"), "child {}: {line}", self.child.id());
            if line.starts_with(word) {
                return;
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no clean close, the `LOCK` file stays behind.
    fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "child {}: {status}", self.child.id());
    }

    /// Closes the child's stdin: it closes the database and exits.
    fn finish(mut self) {
        drop(self.stdin.take());
        self.expect_line("CLOSED");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child {}: {status}", self.child.id());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_second_writer_in_this_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(rw(dir.path())).unwrap();
    let pid = std::process::id();
    assert_eq!(lock_pid(dir.path()).as_deref(), Some(format!("{pid}\n").as_str()));

    let (path, holder_pid, exclusive) = locked(Db::open(rw(dir.path())));
    assert_eq!(path, dir.path());
    assert_eq!(holder_pid, Some(pid));
    assert!(exclusive, "the holder is a writer");
    // The message names the directory and the holder.
    let msg = Db::open(rw(dir.path())).unwrap_err().to_string();
    assert!(
        msg.contains(&dir.path().display().to_string()) && msg.contains(&pid.to_string()),
        "{msg}"
    );

    // The refused opens changed nothing: the holder still works and still
    // owns the pid file.
    db.update(|t| t.set(&b"k"[..], &b"v"[..])).unwrap();
    assert_eq!(read_k(&db).as_deref(), Some(&b"v"[..]));
    assert_eq!(lock_pid(dir.path()).as_deref(), Some(format!("{pid}\n").as_str()));
    db.close().unwrap();
}

#[test]
fn a_writer_in_another_process_is_refused_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn(dir.path(), false);
    let child_pid = holder.pid();
    assert_eq!(lock_pid(dir.path()), Some(format!("{child_pid}\n")));

    let (path, holder_pid, exclusive) = locked(Db::open(rw(dir.path())));
    assert_eq!(path, dir.path());
    assert_eq!(holder_pid, Some(child_pid));
    assert!(exclusive);
    // A reader is refused too.
    let (_, holder_pid, _) = locked(Db::open(ro(dir.path())));
    assert_eq!(holder_pid, Some(child_pid));

    // SIGKILL: the child cannot clean up, so its LOCK file stays; the OS
    // has dropped the lock, and a stale pid file must not block.
    holder.kill();
    assert_eq!(
        lock_pid(dir.path()),
        Some(format!("{child_pid}\n")),
        "the stale LOCK file is left behind"
    );
    let db = Db::open(rw(dir.path())).unwrap();
    assert_eq!(lock_pid(dir.path()), Some(format!("{}\n", std::process::id())));
    db.update(|t| t.set(&b"k"[..], &b"v"[..])).unwrap();
    db.close().unwrap();
    assert!(!lock_file(dir.path()).exists());
}

#[test]
fn a_writer_in_another_process_that_closes_cleanly_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn(dir.path(), false);
    locked(Db::open(rw(dir.path())));
    holder.finish();
    assert!(!lock_file(dir.path()).exists(), "a clean close removes LOCK");
    Db::open(rw(dir.path())).unwrap().close().unwrap();
}

#[test]
fn readers_share_and_exclude_writers() {
    let dir = tempfile::tempdir().unwrap();
    make_db(dir.path());

    // Two readers in this process.
    let r1 = Db::open(ro(dir.path())).unwrap();
    let r2 = Db::open(ro(dir.path())).unwrap();
    assert_eq!(read_k(&r1).as_deref(), Some(&b"v"[..]));
    assert_eq!(read_k(&r2).as_deref(), Some(&b"v"[..]));
    assert!(!lock_file(dir.path()).exists(), "readers write no pid file");
    let (path, holder_pid, exclusive) = locked(Db::open(rw(dir.path())));
    assert_eq!(path, dir.path());
    assert_eq!(holder_pid, None, "readers leave no pid");
    assert!(!exclusive, "the holders are readers");

    // And one in another process, next to them.
    let child = Holder::spawn(dir.path(), true);
    drop(r2);
    r1.close().unwrap();
    // The child alone still keeps writers out.
    locked(Db::open(rw(dir.path())));
    let r3 = Db::open(ro(dir.path())).unwrap();
    assert_eq!(read_k(&r3).as_deref(), Some(&b"v"[..]));
    child.finish();
    locked(Db::open(rw(dir.path())));
    r3.close().unwrap();

    // Every reader gone: a writer gets in, and then readers are refused,
    // here and in another process.
    let w = Db::open(rw(dir.path())).unwrap();
    let (path, holder_pid, exclusive) = locked(Db::open(ro(dir.path())));
    assert_eq!(path, dir.path());
    assert_eq!(holder_pid, Some(std::process::id()));
    assert!(exclusive);
    let mut refused = Command::new(std::env::current_exe().unwrap())
        .args(["lock_child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir.path())
        .env(CHILD_RO_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(
        out.contains(&format!(
            "ERR Locked {{ path: {:?}, holder_pid: Some({}), exclusive: true }}",
            dir.path(),
            std::process::id()
        )),
        "{out}"
    );
    assert!(!std::mem::take(&mut refused.status).success());
    w.close().unwrap();
}

#[test]
fn a_reader_in_another_process_sees_the_database_next_to_ours() {
    let dir = tempfile::tempdir().unwrap();
    make_db(dir.path());
    let ours = Db::open(ro(dir.path())).unwrap();
    let child = Holder::spawn(dir.path(), true);
    assert_eq!(read_k(&ours).as_deref(), Some(&b"v"[..]));
    locked(Db::open(rw(dir.path())));
    child.kill();
    locked(Db::open(rw(dir.path())));
    ours.close().unwrap();
    Db::open(rw(dir.path())).unwrap().close().unwrap();
}

#[test]
fn close_releases_the_lock_and_removes_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(rw(dir.path())).unwrap();
    assert!(lock_file(dir.path()).exists());
    db.close().unwrap();
    assert!(!lock_file(dir.path()).exists());
    // A second close is a no-op and must not touch the next holder's LOCK.
    let db2 = Db::open(rw(dir.path())).unwrap();
    db.close().unwrap();
    drop(db);
    assert_eq!(lock_pid(dir.path()), Some(format!("{}\n", std::process::id())));
    locked(Db::open(rw(dir.path())));
    db2.close().unwrap();

    // Read-only: close releases the shared lock.
    let r = Db::open(ro(dir.path())).unwrap();
    locked(Db::open(rw(dir.path())));
    r.close().unwrap();
    Db::open(rw(dir.path())).unwrap().close().unwrap();
}

#[test]
fn close_through_one_clone_releases_the_lock_for_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(rw(dir.path())).unwrap();
    let clone = db.clone();
    clone.close().unwrap();
    assert!(db.is_closed());
    assert!(!lock_file(dir.path()).exists());
    let next = Db::open(rw(dir.path())).unwrap();
    // Dropping the old handles closes nothing more: the new holder keeps
    // its lock and its pid file.
    drop((db, clone));
    assert_eq!(lock_pid(dir.path()), Some(format!("{}\n", std::process::id())));
    locked(Db::open(rw(dir.path())));
    next.close().unwrap();
}

#[test]
fn dropping_the_last_clone_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(rw(dir.path())).unwrap();
    let clone = db.clone();
    drop(db);
    // One clone is still alive: still locked.
    assert!(lock_file(dir.path()).exists());
    locked(Db::open(rw(dir.path())));
    clone.update(|t| t.set(&b"k"[..], &b"v"[..])).unwrap();
    drop(clone);
    assert!(!lock_file(dir.path()).exists());
    let db = Db::open(rw(dir.path())).unwrap();
    assert_eq!(
        read_k(&db).as_deref(),
        Some(&b"v"[..]),
        "the drop closed the database cleanly"
    );
    drop(db);

    // The same for read-only handles.
    let r = Db::open(ro(dir.path())).unwrap();
    let r2 = r.clone();
    drop(r);
    locked(Db::open(rw(dir.path())));
    drop(r2);
    Db::open(rw(dir.path())).unwrap().close().unwrap();
}

#[test]
fn a_separate_value_dir_has_its_own_lock() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, values) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("values"),
    );
    let db = Db::open(rw(&a).with_value_dir(&values)).unwrap();
    let pid = format!("{}\n", std::process::id());
    assert_eq!(lock_pid(&a).as_deref(), Some(pid.as_str()));
    assert_eq!(lock_pid(&values).as_deref(), Some(pid.as_str()));

    // Another database with its own dir but the same value dir is refused,
    // on the value dir.
    let (path, holder_pid, exclusive) = locked(Db::open(rw(&b).with_value_dir(&values)));
    assert_eq!(path, values);
    assert_eq!(holder_pid, Some(std::process::id()));
    assert!(exclusive);
    // The refused open leaves `b` unlocked.
    assert!(!lock_file(&b).exists());
    Db::open(rw(&b)).unwrap().close().unwrap();
    // So is one whose dir is our value dir, and one whose value dir is our dir.
    locked(Db::open(rw(&values)));
    locked(Db::open(rw(&b).with_value_dir(&a)));

    // Another process too.
    let mut refused = Command::new(std::env::current_exe().unwrap())
        .args([
            "value_dir_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, &b)
        .env("BROCK_LOCK_CHILD_VALUE_DIR", &values)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(
        out.contains(&format!(
            "ERR Locked {{ path: {values:?}, holder_pid: Some({})",
            std::process::id()
        )),
        "{out}"
    );
    assert!(!std::mem::take(&mut refused.status).success());

    db.close().unwrap();
    assert!(!lock_file(&a).exists() && !lock_file(&values).exists());
    let db = Db::open(rw(&b).with_value_dir(&values)).unwrap();
    locked(Db::open(rw(&a).with_value_dir(&values)));
    db.close().unwrap();
}

/// A child that tries to open `BROCK_LOCK_CHILD_DIR` with value dir
/// `BROCK_LOCK_CHILD_VALUE_DIR` and reports `ERR` or `OPENED`.
#[test]
fn value_dir_child_entry() {
    let (Ok(dir), Ok(values)) = (
        std::env::var(CHILD_DIR_ENV),
        std::env::var("BROCK_LOCK_CHILD_VALUE_DIR"),
    ) else {
        return;
    };
    match Db::open(rw(Path::new(&dir)).with_value_dir(values)) {
        Ok(db) => {
            db.close().unwrap();
            println!("\nOPENED");
        }
        Err(e) => {
            println!("\nERR {e:?}");
            std::process::exit(1);
        }
    }
}

/// A writer killed with SIGKILL leaves its pid in `LOCK`; readers that open
/// afterwards write no pid. A writer refused because of those readers must
/// not be told that the dead writer holds the lock.
#[test]
fn a_stale_lock_file_is_not_reported_as_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::spawn(dir.path(), false);
    let dead = holder.pid();
    holder.kill();
    assert_eq!(lock_pid(dir.path()), Some(format!("{dead}\n")));
    let reader = Db::open(ro(dir.path())).unwrap();
    let (path, holder_pid, exclusive) = locked(Db::open(rw(dir.path())));
    assert_eq!(path, dir.path());
    assert!(
        holder_pid != Some(dead) && !exclusive,
        "a reader holds the lock, but the error says writer pid {holder_pid:?} (exclusive: {exclusive}); pid {dead} is dead"
    );
    reader.close().unwrap();
}
