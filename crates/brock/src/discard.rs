//! DISCARD statistics: bytes per value-log file that compaction found dead.
//!
//! Badger's `discard.go`; bytes in [`crate::format::discard`]. This first cut
//! reads the file; compaction writes it (the compaction issue) and value-log
//! GC picks files by it (the value-log issue).

use crate::error::Result;
use crate::format::discard::decode_slots;
use crate::vfs::Vfs;
use std::path::Path;

/// Reads `value_dir/DISCARD` as (fid, discarded bytes) sorted by fid; empty
/// when the file is absent.
pub fn read_discard_stats(vfs: &dyn Vfs, value_dir: &Path) -> Result<Vec<(u64, u64)>> {
    let path = value_dir.join("DISCARD");
    if !vfs.exists(&path) {
        return Ok(Vec::new());
    }
    Ok(decode_slots(&vfs.read_all(&path)?))
}
