//! DISCARD statistics: bytes per value-log file that compaction found dead.
//!
//! Badger's `discard.go`; bytes in [`crate::format::discard`]. Compaction
//! adds the length of every dropped value pointer to its file's slot;
//! value-log GC (the value-log issue) picks the file with the most. Slots are
//! updated in place with positional writes, as Badger updates its mapping:
//! a new file id takes the next empty slot (and the slot after it is kept
//! zero); slots are sorted by fid when the file is opened; the file doubles
//! when full. The statistics are advisory, so updates are synced only at
//! close (Badger never syncs them); a crash may lose the latest additions.

use crate::error::Result;
use crate::format::discard::{INITIAL_DISCARD_FILE_LEN, SLOT_LEN, decode_slots, encode_slots};
use crate::vfs::{OpenMode, Vfs, WritableFile};
use std::path::Path;

/// The file name.
pub const DISCARD_FILE: &str = "DISCARD";

/// Reads `value_dir/DISCARD` as (fid, discarded bytes) sorted by fid; empty
/// when the file is absent.
pub fn read_discard_stats(vfs: &dyn Vfs, value_dir: &Path) -> Result<Vec<(u64, u64)>> {
    let path = value_dir.join(DISCARD_FILE);
    if !vfs.exists(&path) {
        return Ok(Vec::new());
    }
    Ok(decode_slots(&vfs.read_all(&path)?))
}

/// The live DISCARD file.
#[derive(Debug)]
pub struct DiscardStats {
    file: Box<dyn WritableFile>,
    /// Slots in file order.
    slots: Vec<(u64, u64)>,
}

impl DiscardStats {
    /// Opens (or creates, 1 MiB of zeros) `value_dir/DISCARD` and sorts its slots.
    pub fn open(vfs: &dyn Vfs, value_dir: &Path) -> Result<Self> {
        let path = value_dir.join(DISCARD_FILE);
        if !vfs.exists(&path) {
            let mut f = vfs.open_write(&path, OpenMode::CreateNew)?;
            f.append(&vec![0u8; INITIAL_DISCARD_FILE_LEN])?;
            f.sync_data()?;
            vfs.sync_dir(value_dir)?;
            return Ok(DiscardStats {
                file: f,
                slots: Vec::new(),
            });
        }
        let bytes = vfs.read_all(&path)?;
        let slots = decode_slots(&bytes);
        let mut file = vfs.open_write(&path, OpenMode::Existing)?;
        let len = (bytes.len() as u64).max(INITIAL_DISCARD_FILE_LEN as u64);
        let img = encode_slots(&slots, (slots.len() + 1) * SLOT_LEN);
        if bytes.get(..img.len()) != Some(&img[..]) {
            file.write_at(&img, 0)?;
        }
        if file.len() < len {
            file.set_len(len)?;
        }
        Ok(DiscardStats { file, slots })
    }

    /// Discarded bytes of `fid`.
    pub fn get(&self, fid: u32) -> u64 {
        self.slots
            .iter()
            .find(|s| s.0 == u64::from(fid))
            .map_or(0, |s| s.1)
    }

    /// All slots, sorted by fid.
    pub fn all(&self) -> Vec<(u64, u64)> {
        let mut v = self.slots.clone();
        v.sort_unstable();
        v
    }

    /// The file with the most discarded bytes.
    pub fn max_discard(&self) -> Option<(u32, u64)> {
        self.slots
            .iter()
            .filter(|s| s.1 > 0)
            .max_by_key(|s| s.1)
            .map(|&(f, d)| (f as u32, d))
    }

    /// Adds `bytes` to `fid`'s count.
    pub fn add(&mut self, fid: u32, bytes: u64) -> Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let fid64 = u64::from(fid);
        if let Some(i) = self.slots.iter().position(|s| s.0 == fid64) {
            self.slots[i].1 += bytes;
            let v = self.slots[i].1;
            return self.file.write_at(&v.to_be_bytes(), (i * SLOT_LEN + 8) as u64);
        }
        let i = self.slots.len();
        let needed = ((i + 2) * SLOT_LEN) as u64;
        if self.file.len() < needed {
            let grown = (self.file.len() * 2).max(needed);
            self.file.set_len(grown)?;
        }
        let mut slot = [0u8; 2 * SLOT_LEN];
        slot[..8].copy_from_slice(&fid64.to_be_bytes());
        slot[8..16].copy_from_slice(&bytes.to_be_bytes());
        self.file.write_at(&slot, (i * SLOT_LEN) as u64)?;
        self.slots.push((fid64, bytes));
        Ok(())
    }

    /// Resets `fid`'s count to zero (after its file was rewritten or removed).
    pub fn reset(&mut self, fid: u32) -> Result<()> {
        if let Some(i) = self.slots.iter().position(|s| s.0 == u64::from(fid)) {
            self.slots[i].1 = 0;
            self.file
                .write_at(&0u64.to_be_bytes(), (i * SLOT_LEN + 8) as u64)?;
        }
        Ok(())
    }

    /// Makes the statistics durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;

    #[test]
    fn updates_in_place_and_survive_reopen_sorted() {
        let vfs = MemVfs::new();
        let d = Path::new("/v");
        vfs.create_dir_all(d).unwrap();
        let mut s = DiscardStats::open(&vfs, d).unwrap();
        s.add(5, 100).unwrap();
        s.add(2, 10).unwrap();
        s.add(5, 1).unwrap();
        assert_eq!(s.get(5), 101);
        assert_eq!(s.max_discard(), Some((5, 101)));
        let raw = vfs.contents(&d.join(DISCARD_FILE)).unwrap();
        assert_eq!(raw.len(), INITIAL_DISCARD_FILE_LEN);
        // Badger's layout: file order until the next open sorts it.
        assert_eq!(&raw[..8], &5u64.to_be_bytes());
        assert_eq!(&raw[16..24], &2u64.to_be_bytes());
        assert_eq!(&raw[32..48], &[0u8; 16]);
        drop(s);
        let mut s = DiscardStats::open(&vfs, d).unwrap();
        assert_eq!(s.all(), vec![(2, 10), (5, 101)]);
        let raw = vfs.contents(&d.join(DISCARD_FILE)).unwrap();
        assert_eq!(&raw[..8], &2u64.to_be_bytes());
        s.reset(5).unwrap();
        assert_eq!(s.max_discard(), Some((2, 10)));
    }

    #[test]
    fn grows_when_full() {
        let vfs = MemVfs::new();
        let d = Path::new("/v");
        vfs.create_dir_all(d).unwrap();
        let mut s = DiscardStats::open(&vfs, d).unwrap();
        let slots = INITIAL_DISCARD_FILE_LEN / SLOT_LEN;
        for fid in 1..=slots as u32 {
            s.add(fid, 1).unwrap();
        }
        let raw = vfs.contents(&d.join(DISCARD_FILE)).unwrap();
        assert_eq!(raw.len(), 2 * INITIAL_DISCARD_FILE_LEN);
        assert_eq!(decode_slots(&raw).len(), slots);
    }
}
