//! The MANIFEST as a live file: creation, appends with fsync, torn-tail
//! repair, and rewrites.
//!
//! Badger's `manifest.go` (`openOrCreateManifestFile`, `addChanges`,
//! `helpRewrite`). A new MANIFEST is written as Badger writes one: to
//! `MANIFEST-REWRITE` (header plus one record holding a snapshot change set,
//! empty for a new directory), synced, renamed over `MANIFEST`, and the
//! directory synced. Every change set is appended and synced before the
//! caller acts on it. When deletions pass Badger's threshold (more than
//! 10,000 and more than ten times the live tables) the file is rewritten the
//! same way with one CREATE per live table, sorted by id.

use super::manifest::{Manifest, ManifestReplay, replay_manifest};
use crate::error::Result;
use crate::format::CompressionType;
use crate::format::manifest::{ManifestHeader, encode_record};
use crate::format::proto::{ManifestChange, ManifestChangeSet};
use crate::vfs::{OpenMode, Vfs, WritableFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The name used while rewriting.
pub const MANIFEST_REWRITE_FILE: &str = "MANIFEST-REWRITE";
/// Badger's `deletionsRewriteThreshold`.
pub const DELETIONS_REWRITE_THRESHOLD: u64 = 10_000;

/// A CREATE change as Badger writes it.
pub fn create_change(id: u64, level: u32, key_id: u64, compression: CompressionType) -> ManifestChange {
    ManifestChange {
        id,
        op: 0,
        level,
        key_id,
        encryption_algo: 0,
        compression: compression.to_u32(),
    }
}

/// A DELETE change as Badger writes it.
pub fn delete_change(id: u64) -> ManifestChange {
    ManifestChange {
        id,
        op: 1,
        ..Default::default()
    }
}

/// An open MANIFEST that changes are appended to.
#[derive(Debug)]
pub struct ManifestFile {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    external_magic: u16,
    file: Box<dyn WritableFile>,
    state: Manifest,
}

impl ManifestFile {
    /// Opens `dir/MANIFEST` for appending, creating it if absent. A torn tail
    /// is cut off (and synced) first. Returns the file and the replay.
    pub fn open_or_create(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        external_magic: u16,
    ) -> Result<(Self, ManifestReplay)> {
        let path = dir.join(MANIFEST_FILE);
        if !vfs.exists(&path) {
            let state = Manifest::default();
            let file = write_snapshot(vfs.as_ref(), dir, external_magic, &state)?;
            let replay = ManifestReplay {
                manifest: state.clone(),
                external_magic,
                valid_end: file.len(),
                torn_tail: false,
            };
            return Ok((
                ManifestFile {
                    vfs,
                    dir: dir.to_path_buf(),
                    external_magic,
                    file,
                    state,
                },
                replay,
            ));
        }
        let replay = replay_manifest(&vfs.read_all(&path)?, &path, Some(external_magic))?;
        let mut file = vfs.open_write(&path, OpenMode::Existing)?;
        if file.len() != replay.valid_end {
            file.set_len(replay.valid_end)?;
            file.sync_data()?;
        }
        Ok((
            ManifestFile {
                vfs,
                dir: dir.to_path_buf(),
                external_magic,
                file,
                state: replay.manifest.clone(),
            },
            replay,
        ))
    }

    /// The live tables as the file records them.
    pub fn state(&self) -> &Manifest {
        &self.state
    }

    /// Applies `changes` to the state, then appends them as one record and
    /// syncs; rewrites the file when deletions pass the threshold.
    pub fn add_changes(&mut self, changes: Vec<ManifestChange>) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        let mut next = self.state.clone();
        for c in &changes {
            next.apply(c, &path, self.file.len())?;
        }
        let live = next.tables.len() as u64;
        if next.deletions > DELETIONS_REWRITE_THRESHOLD && next.deletions > 10 * live {
            self.file = write_snapshot(self.vfs.as_ref(), &self.dir, self.external_magic, &next)?;
            next.creations = live;
            next.deletions = 0;
        } else {
            let mut rec = Vec::new();
            encode_record(&mut rec, &ManifestChangeSet { changes });
            self.file.append(&rec)?;
            self.file.sync_data()?;
        }
        self.state = next;
        Ok(())
    }

    /// Rewrites the file from the current state now.
    pub fn rewrite(&mut self) -> Result<()> {
        self.file = write_snapshot(self.vfs.as_ref(), &self.dir, self.external_magic, &self.state)?;
        self.state.creations = self.state.tables.len() as u64;
        self.state.deletions = 0;
        Ok(())
    }
}

/// Writes `MANIFEST-REWRITE` holding a snapshot of `state`, syncs it, renames
/// it over `MANIFEST`, syncs the directory, and reopens it for appending.
fn write_snapshot(
    vfs: &dyn Vfs,
    dir: &Path,
    external_magic: u16,
    state: &Manifest,
) -> Result<Box<dyn WritableFile>> {
    let tmp = dir.join(MANIFEST_REWRITE_FILE);
    let path = dir.join(MANIFEST_FILE);
    let mut buf = ManifestHeader::new(external_magic).encode().to_vec();
    let changes = state
        .tables
        .iter()
        .map(|(&id, t)| create_change(id, t.level, t.key_id, t.compression))
        .collect();
    encode_record(&mut buf, &ManifestChangeSet { changes });
    {
        let mut f = vfs.open_write(&tmp, OpenMode::Truncate)?;
        f.append(&buf)?;
        f.sync_data()?;
    }
    vfs.rename(&tmp, &path)?;
    vfs.sync_dir(dir)?;
    vfs.open_write(&path, OpenMode::Existing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::{CrashMode, MemVfs};

    fn setup() -> (MemVfs, Arc<dyn Vfs>, PathBuf) {
        let m = MemVfs::new();
        let d = PathBuf::from("/db");
        m.create_dir_all(&d).unwrap();
        let v: Arc<dyn Vfs> = Arc::new(m.clone());
        (m, v, d)
    }

    #[test]
    fn new_manifest_has_badgers_bytes() {
        let (m, v, d) = setup();
        let (mut mf, replay) = ManifestFile::open_or_create(v, &d, 0).unwrap();
        assert!(replay.manifest.tables.is_empty());
        assert_eq!(
            m.contents(&d.join(MANIFEST_FILE)).unwrap(),
            b"Bdgr\0\0\0\x08\0\0\0\0\0\0\0\0"
        );
        mf.add_changes(vec![create_change(1, 0, 0, CompressionType::Snappy)])
            .unwrap();
        // Exactly the 30 bytes of the Go-written `clean/MANIFEST` fixture.
        let mut want = b"Bdgr\0\0\0\x08\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 0, 0, 6]);
        want.extend_from_slice(
            &crate::format::checksum::crc32c(&[0x0a, 0x04, 0x08, 0x01, 0x30, 0x01]).to_be_bytes(),
        );
        want.extend_from_slice(&[0x0a, 0x04, 0x08, 0x01, 0x30, 0x01]);
        assert_eq!(m.contents(&d.join(MANIFEST_FILE)).unwrap(), want);
        // Synced: it survives power loss.
        let after = m.crash(CrashMode::PowerLoss);
        assert_eq!(after.contents(&d.join(MANIFEST_FILE)).unwrap(), want);
    }

    #[test]
    fn torn_tail_is_cut_and_state_survives_reopen() {
        let (m, v, d) = setup();
        let (mut mf, _) = ManifestFile::open_or_create(v.clone(), &d, 0).unwrap();
        mf.add_changes(vec![create_change(1, 0, 0, CompressionType::Snappy)])
            .unwrap();
        let good = m.contents(&d.join(MANIFEST_FILE)).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(&[0, 0, 0, 9, 1, 2]);
        m.put_file(&d.join(MANIFEST_FILE), &torn);
        drop(mf);
        let (mf, replay) = ManifestFile::open_or_create(v, &d, 0).unwrap();
        assert!(replay.torn_tail);
        assert_eq!(mf.state().tables.len(), 1);
        assert_eq!(m.contents(&d.join(MANIFEST_FILE)).unwrap(), good);
    }

    #[test]
    fn rewrite_after_many_deletions_keeps_live_tables() {
        let (m, v, d) = setup();
        let (mut mf, _) = ManifestFile::open_or_create(v.clone(), &d, 0).unwrap();
        for id in 1..=10_050u64 {
            mf.add_changes(vec![create_change(id, 1, 0, CompressionType::None)])
                .unwrap();
            if id > 3 {
                mf.add_changes(vec![delete_change(id - 3)]).unwrap();
            }
        }
        let size = m.contents(&d.join(MANIFEST_FILE)).unwrap().len();
        assert!(size < 100_000, "rewritten, not {size} bytes");
        drop(mf);
        let (mf, _) = ManifestFile::open_or_create(v, &d, 0).unwrap();
        assert_eq!(
            mf.state().tables.keys().copied().collect::<Vec<_>>(),
            vec![10_048, 10_049, 10_050]
        );
        assert!(!m.exists(&d.join(MANIFEST_REWRITE_FILE)));
    }
}
