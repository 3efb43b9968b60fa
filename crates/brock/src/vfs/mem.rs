//! An in-memory file system that can simulate a crash.
//!
//! Every file keeps two images: what readers see now (`data`) and what would
//! survive a power cut (`durable`, set by `sync_data`). Directory entries
//! likewise: the live name table and a durable one, brought up to date for
//! one directory by `sync_dir`. [`MemVfs::crash`] returns a new file system
//! built from what a crash of the chosen kind would leave:
//! - [`CrashMode::ProcessKill`]: the kernel survives, so everything written
//!   is kept (a `kill -9`);
//! - [`CrashMode::PowerLoss`]: unsynced bytes and unsynced names are lost;
//! - [`CrashMode::TornPowerLoss`]: as power loss, but each file keeps a random
//!   prefix of its unsynced appended bytes (a torn last write).
//!
//! Faults: [`MemVfs::fail_from_op`] makes every mutating operation from the
//! n-th on fail with an I/O error (a process that stops at that point), and
//! [`MemVfs::fail_op_once`] fails just one. Directories are assumed durable
//! once created. Locks are per `MemVfs` and vanish in a crash.

use super::{DirEntry, DirLock, OpenMode, RandomAccessFile, Vfs, WritableFile};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What survives [`MemVfs::crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Everything written survives (the process died, the kernel did not).
    ProcessKill,
    /// Only synced data and names survive.
    PowerLoss,
    /// Synced data and names survive, plus a prefix (chosen from `seed`) of
    /// each file's unsynced appended bytes.
    TornPowerLoss {
        /// Seed for the prefix lengths.
        seed: u64,
    },
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    next_inode: u64,
    locks: HashMap<PathBuf, (bool, usize)>,
    ops: u64,
    fail_from: Option<u64>,
    fail_once: Option<u64>,
}

impl State {
    /// Counts a mutating operation and says whether it must fail.
    fn op(&mut self, path: &Path) -> Result<()> {
        let n = self.ops;
        self.ops += 1;
        if self.fail_from.is_some_and(|f| n >= f) || self.fail_once == Some(n) {
            return Err(Error::io(path, std::io::Error::other("injected fault")));
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> Result<u64> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    fn parent_exists(&self, path: &Path) -> bool {
        path.parent()
            .is_none_or(|p| p.as_os_str().is_empty() || self.dirs.contains(p))
    }
}

/// The in-memory, crash-simulating [`Vfs`]. Clones share one file system.
#[derive(Debug, Clone, Default)]
pub struct MemVfs {
    state: Arc<Mutex<State>>,
}

impl MemVfs {
    /// An empty file system.
    pub fn new() -> Self {
        MemVfs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mutating operations performed so far.
    pub fn op_count(&self) -> u64 {
        self.lock().ops
    }

    /// Every mutating operation from the `n`-th (0-based) on fails.
    pub fn fail_from_op(&self, n: u64) {
        self.lock().fail_from = Some(n);
    }

    /// Only the `n`-th mutating operation fails.
    pub fn fail_op_once(&self, n: u64) {
        self.lock().fail_once = Some(n);
    }

    /// Stops injecting faults.
    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.fail_from = None;
        s.fail_once = None;
    }

    /// The file system a crash of `mode` would leave behind. This one is left
    /// as it is (a process still holding it writes into the void).
    pub fn crash(&self, mode: CrashMode) -> MemVfs {
        let s = self.lock();
        let mut rng = match mode {
            CrashMode::TornPowerLoss { seed } => seed | 1,
            _ => 1,
        };
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let names = match mode {
            CrashMode::ProcessKill => s.names.clone(),
            _ => s.durable_names.clone(),
        };
        let mut inodes = HashMap::new();
        for &ino in names.values() {
            let node = &s.inodes[&ino];
            let data = match mode {
                CrashMode::ProcessKill => node.data.clone(),
                CrashMode::PowerLoss => node.durable.clone(),
                CrashMode::TornPowerLoss { .. } => {
                    let mut d = node.durable.clone();
                    if node.data.len() > d.len() && node.data.starts_with(&d) {
                        let extra = node.data.len() - d.len();
                        let keep = (next() % (extra as u64 + 1)) as usize;
                        d.extend_from_slice(&node.data[node.durable.len()..node.durable.len() + keep]);
                    }
                    d
                }
            };
            inodes.insert(
                ino,
                Inode {
                    durable: data.clone(),
                    data,
                },
            );
        }
        MemVfs {
            state: Arc::new(Mutex::new(State {
                inodes,
                durable_names: names.clone(),
                names,
                dirs: s.dirs.clone(),
                next_inode: s.next_inode,
                ..State::default()
            })),
        }
    }

    /// Bytes of a file as readers see them now, if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let ino = s.names.get(path)?;
        Some(s.inodes[ino].data.clone())
    }

    /// Overwrites a file's bytes (live and durable), creating it if needed.
    pub fn put_file(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.lock();
        let ino = match s.names.get(path) {
            Some(&i) => i,
            None => {
                s.next_inode += 1;
                let i = s.next_inode;
                s.names.insert(path.to_path_buf(), i);
                s.durable_names.insert(path.to_path_buf(), i);
                i
            }
        };
        s.inodes.insert(
            ino,
            Inode {
                data: bytes.to_vec(),
                durable: bytes.to_vec(),
            },
        );
    }
}

#[derive(Debug)]
struct MemFile {
    vfs: MemVfs,
    ino: u64,
    path: PathBuf,
}

impl RandomAccessFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let s = self.vfs.lock();
        let data = &s.inodes[&self.ino].data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.vfs.lock().inodes[&self.ino].data.len() as u64
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl WritableFile for MemFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let mut s = self.vfs.lock();
        s.op(&self.path)?;
        if let Some(n) = s.inodes.get_mut(&self.ino) {
            n.data.extend_from_slice(data);
        }
        Ok(())
    }

    fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        let mut s = self.vfs.lock();
        s.op(&self.path)?;
        if let Some(n) = s.inodes.get_mut(&self.ino) {
            let end = offset as usize + data.len();
            if n.data.len() < end {
                n.data.resize(end, 0);
            }
            n.data[offset as usize..end].copy_from_slice(data);
        }
        Ok(())
    }

    fn sync_data(&mut self) -> Result<()> {
        let mut s = self.vfs.lock();
        s.op(&self.path)?;
        if let Some(n) = s.inodes.get_mut(&self.ino) {
            n.durable = n.data.clone();
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        let mut s = self.vfs.lock();
        s.op(&self.path)?;
        if let Some(n) = s.inodes.get_mut(&self.ino) {
            n.data.resize(len as usize, 0);
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        RandomAccessFile::len(self)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug)]
struct MemLock {
    vfs: MemVfs,
    path: PathBuf,
}

impl DirLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut s = self.vfs.lock();
        if let Some(e) = s.locks.get_mut(&self.path) {
            e.1 -= 1;
            if e.1 == 0 {
                s.locks.remove(&self.path);
            }
        }
    }
}

impl Vfs for MemVfs {
    fn open_read(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let ino = self.lock().inode(path)?;
        Ok(Arc::new(MemFile {
            vfs: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let s = self.lock();
        if !s.dirs.contains(path) {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let mut out: Vec<DirEntry> = s
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(path))
            .map(|(p, ino)| DirEntry {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                len: s.inodes[ino].data.len() as u64,
                is_dir: false,
            })
            .collect();
        out.extend(s.dirs.iter().filter(|d| d.parent() == Some(path)).map(|d| {
            DirEntry {
                name: d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                len: 0,
                is_dir: true,
            }
        }));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.lock();
        s.names.contains_key(path) || s.dirs.contains(path)
    }

    fn open_write(&self, path: &Path, mode: OpenMode) -> Result<Box<dyn WritableFile>> {
        let mut s = self.lock();
        let existing = s.names.get(path).copied();
        let ino = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(Error::io(
                    path,
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            (OpenMode::Existing, None) => {
                return Err(Error::io(
                    path,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            (OpenMode::Existing, Some(i)) => i,
            (OpenMode::Truncate, Some(i)) => {
                s.op(path)?;
                if let Some(n) = s.inodes.get_mut(&i) {
                    n.data.clear();
                }
                i
            }
            (_, None) => {
                if !s.parent_exists(path) {
                    return Err(Error::io(
                        path,
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
                s.op(path)?;
                s.next_inode += 1;
                let i = s.next_inode;
                s.inodes.insert(i, Inode::default());
                s.names.insert(path.to_path_buf(), i);
                i
            }
        };
        drop(s);
        Ok(Box::new(MemFile {
            vfs: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        let mut s = self.lock();
        s.inode(path)?;
        s.op(path)?;
        s.names.remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut s = self.lock();
        let ino = s.inode(from)?;
        s.op(from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        let mut s = self.lock();
        let mut p = Some(path);
        while let Some(d) = p {
            if d.as_os_str().is_empty() {
                break;
            }
            s.dirs.insert(d.to_path_buf());
            p = d.parent();
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        let mut s = self.lock();
        s.op(path)?;
        let live: Vec<(PathBuf, u64)> = s
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(path))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        s.durable_names.retain(|p, _| p.parent() != Some(path));
        s.durable_names.extend(live);
        Ok(())
    }

    fn lock_dir(&self, path: &Path, exclusive: bool) -> Result<Option<Box<dyn DirLock>>> {
        let mut s = self.lock();
        match s.locks.get_mut(path) {
            Some((held_excl, n)) => {
                if exclusive || *held_excl {
                    return Ok(None);
                }
                *n += 1;
            }
            None => {
                s.locks.insert(path.to_path_buf(), (exclusive, 1));
            }
        }
        Ok(Some(Box::new(MemLock {
            vfs: self.clone(),
            path: path.to_path_buf(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn unsynced_data_and_names_are_lost_on_power_loss() {
        let fs = MemVfs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let mut f = fs.open_write(&p("/d/a"), OpenMode::CreateNew).unwrap();
        f.append(b"hello").unwrap();
        f.sync_data().unwrap();
        f.append(b" world").unwrap();
        // The name is not durable until the directory is synced.
        assert!(!fs.crash(CrashMode::PowerLoss).exists(&p("/d/a")));
        fs.sync_dir(&p("/d")).unwrap();
        let after = fs.crash(CrashMode::PowerLoss);
        assert_eq!(after.contents(&p("/d/a")).unwrap(), b"hello");
        assert_eq!(
            fs.crash(CrashMode::ProcessKill).contents(&p("/d/a")).unwrap(),
            b"hello world"
        );
        for seed in 0..20 {
            let torn = fs
                .crash(CrashMode::TornPowerLoss { seed })
                .contents(&p("/d/a"))
                .unwrap();
            assert!(torn.starts_with(b"hello") && b"hello world".starts_with(&torn[..]));
        }
    }

    #[test]
    fn remove_and_rename_need_a_directory_sync() {
        let fs = MemVfs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        fs.put_file(&p("/d/old"), b"1");
        fs.remove(&p("/d/old")).unwrap();
        assert!(fs.crash(CrashMode::PowerLoss).exists(&p("/d/old")));
        fs.put_file(&p("/d/x"), b"2");
        fs.rename(&p("/d/x"), &p("/d/y")).unwrap();
        let c = fs.crash(CrashMode::PowerLoss);
        assert!(c.exists(&p("/d/x")) && !c.exists(&p("/d/y")));
        fs.sync_dir(&p("/d")).unwrap();
        let c = fs.crash(CrashMode::PowerLoss);
        assert!(!c.exists(&p("/d/old")) && !c.exists(&p("/d/x")) && c.exists(&p("/d/y")));
    }

    #[test]
    fn faults_and_locks() {
        let fs = MemVfs::new();
        fs.create_dir_all(&p("/d")).unwrap();
        let mut f = fs.open_write(&p("/d/a"), OpenMode::CreateNew).unwrap();
        let n = fs.op_count();
        fs.fail_op_once(n + 1);
        f.append(b"1").unwrap();
        assert!(f.append(b"2").is_err());
        f.append(b"3").unwrap();
        assert_eq!(fs.contents(&p("/d/a")).unwrap(), b"13");
        fs.fail_from_op(fs.op_count());
        assert!(f.sync_data().is_err());
        assert!(f.append(b"4").is_err());
        fs.clear_faults();

        let l1 = fs.lock_dir(&p("/d"), true).unwrap();
        assert!(l1.is_some());
        assert!(fs.lock_dir(&p("/d"), false).unwrap().is_none());
        drop(l1);
        let s1 = fs.lock_dir(&p("/d"), false).unwrap();
        let s2 = fs.lock_dir(&p("/d"), false).unwrap();
        assert!(s1.is_some() && s2.is_some());
        assert!(fs.lock_dir(&p("/d"), true).unwrap().is_none());
    }
}
