//! Read-only mappings of files: the crate's one use of `unsafe`.
//!
//! Value-log reads hand out values as [`Bytes`] over a mapping, without a
//! copy. A mapping is only ever made of a prefix that already holds
//! complete, written entries, and read through `Bytes` (shared, immutable).

use bytes::Bytes;
use std::fs::File;

/// Maps the first `len` bytes of `file` read-only, or `None` when the file
/// is shorter or the mapping fails (callers then read with `pread`).
pub(crate) fn map_prefix(file: &File, len: u64) -> Option<Bytes> {
    let file_len = file.metadata().ok()?.len();
    if len == 0 || len > file_len {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    #[expect(
        unsafe_code,
        reason = "memmap2's map is unsafe because the file may change; see SAFETY"
    )]
    // SAFETY: the mapping is read-only and covers bytes `0..len` that exist
    // (checked against the file's length just above). The hazard of a file
    // mapping is the file shrinking under it (a read past the new end is
    // SIGBUS). Value-log files are only truncated by recovery at open,
    // before any reader maps them; afterwards they are appended to or
    // unlinked (an unlinked file stays mapped), and the directory lock keeps
    // other writers out (`vfs::lock`). Nothing writes through this mapping.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }.ok()?;
    Some(Bytes::from_owner(map))
}
