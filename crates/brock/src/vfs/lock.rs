//! The directory lock: Badger's `LOCK` pid file plus a lock on the directory.
//!
//! Badger's `dir_unix.go`. A read-write open takes an exclusive lock and
//! writes `"<pid>\n"` to `LOCK`; read-only opens take shared locks and write
//! nothing. The OS drops the lock when the process dies, so a `LOCK` file
//! left by a crash does not block the next open. [`DirectoryLock`] releases
//! the lock and removes the pid file when dropped.

use super::{DirLock, OpenMode, Vfs};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name of the pid file.
pub const LOCK_FILE: &str = "LOCK";

/// Extra attempts, 5 ms apart, before a refused lock is reported.
const LOCK_RETRIES: usize = 10;

/// A held directory lock.
#[derive(Debug)]
pub struct DirectoryLock {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    exclusive: bool,
    lock: Option<Box<dyn DirLock>>,
}

impl DirectoryLock {
    /// Locks `dir`: exclusively (and writes the pid file) unless `read_only`.
    pub fn acquire(vfs: Arc<dyn Vfs>, dir: &Path, read_only: bool) -> Result<Self> {
        let exclusive = !read_only;
        // A lock just released can still look held for a moment: a child
        // process forked by another thread of this process shares the lock's
        // file description until it execs. So a refusal is retried for a
        // short while before it is reported.
        let mut got = vfs.lock_dir(dir, exclusive)?;
        for _ in 0..LOCK_RETRIES {
            if got.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            got = vfs.lock_dir(dir, exclusive)?;
        }
        let Some(lock) = got else {
            // A writer refused a lock is either behind readers (a shared
            // probe succeeds; any pid in LOCK is stale, left by a killed
            // writer) or behind a writer, whose pid LOCK names.
            let writer_holds = read_only || vfs.lock_dir(dir, false)?.is_none();
            let holder_pid = if writer_holds {
                vfs.read_all(&dir.join(LOCK_FILE))
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.trim().parse().ok())
            } else {
                None
            };
            return Err(Error::Locked {
                path: dir.to_path_buf(),
                holder_pid,
                exclusive: writer_holds,
            });
        };
        if exclusive {
            let mut f = vfs.open_write(&dir.join(LOCK_FILE), OpenMode::Truncate)?;
            f.append(format!("{}\n", std::process::id()).as_bytes())?;
        }
        Ok(DirectoryLock {
            vfs,
            dir: dir.to_path_buf(),
            exclusive,
            lock: Some(lock),
        })
    }

    /// Releases the lock now, removing the pid file.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else {
            return Ok(());
        };
        let result = if self.exclusive {
            let p = self.dir.join(LOCK_FILE);
            if self.vfs.exists(&p) {
                self.vfs.remove(&p)
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        drop(lock);
        result
    }
}

impl Drop for DirectoryLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;

    #[test]
    fn writers_exclude_everyone_and_readers_share() {
        let vfs: Arc<dyn Vfs> = Arc::new(MemVfs::new());
        let d = Path::new("/db");
        vfs.create_dir_all(d).unwrap();
        let w = DirectoryLock::acquire(vfs.clone(), d, false).unwrap();
        let pid = std::process::id();
        match DirectoryLock::acquire(vfs.clone(), d, false) {
            Err(Error::Locked { holder_pid, .. }) => assert_eq!(holder_pid, Some(pid)),
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(matches!(
            DirectoryLock::acquire(vfs.clone(), d, true),
            Err(Error::Locked { .. })
        ));
        w.release().unwrap();
        assert!(!vfs.exists(&d.join(LOCK_FILE)));
        let r1 = DirectoryLock::acquire(vfs.clone(), d, true).unwrap();
        let r2 = DirectoryLock::acquire(vfs.clone(), d, true).unwrap();
        assert!(matches!(
            DirectoryLock::acquire(vfs.clone(), d, false),
            Err(Error::Locked { .. })
        ));
        drop((r1, r2));
        DirectoryLock::acquire(vfs, d, false).unwrap();
    }
}
