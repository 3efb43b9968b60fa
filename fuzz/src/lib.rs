//! Helpers shared by the fuzz targets: an in-memory file for the readers that
//! take a [`RandomAccessFile`], and drivers that use everything a decoded
//! value offers, so a bad byte that decodes still gets exercised.

use brock::iterator::KvIterator;
use brock::table::block::Block;
use brock::table::{Table, TableIterator};
use brock::vfs::RandomAccessFile;
use std::path::{Path, PathBuf};

/// A read-only file held in memory.
#[derive(Debug)]
pub struct MemFile {
    data: Vec<u8>,
    path: PathBuf,
}

impl MemFile {
    /// A file named `name` holding `data`.
    pub fn new(name: &str, data: &[u8]) -> Self {
        MemFile {
            data: data.to_vec(),
            path: PathBuf::from(name),
        }
    }
}

impl RandomAccessFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> brock::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(src) = self.data.get(start..) else {
            return Ok(0);
        };
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every entry of an open table, then seeks to its ends and to `probe`.
pub fn drain_table(t: &Table, probe: &[u8]) -> brock::Result<usize> {
    let mut it = TableIterator::new(t);
    it.seek_to_first()?;
    let mut n = 0;
    while it.valid() {
        let _ = (it.key().len(), it.value().value.len());
        it.next()?;
        n += 1;
    }
    for key in [t.smallest().to_vec(), t.biggest().to_vec(), probe.to_vec()] {
        let _ = t.seek(&key)?;
        let _ = t.get(&key)?;
    }
    Ok(n)
}

/// Uses every accessor of a decoded block and checks that seeking each
/// entry's key finds that entry (`Block::decode` checks the keys ascend).
pub fn exercise_block(b: &Block, probe: &[u8]) {
    let _ = (b.base_key(), b.size_in_memory(), b.is_empty());
    let mut k = Vec::new();
    for i in 0..b.len() {
        b.key_into(i, &mut k);
        let _ = b.value(i);
        assert_eq!(b.seek(&k), i, "seek finds entry {i}");
    }
    assert!(b.seek(probe) <= b.len());
}
