//! Value-log garbage collection: which entries of a file are still needed.
//!
//! Badger's `valueLog.rewrite`. This module walks one value-log file and
//! asks the caller, for every entry, whether it is live; it never looks at
//! the tree itself (the database passes a liveness check). The verdicts:
//! - `Dead`: nothing can read this entry any more (deleted, expired,
//!   superseded, or the tree's pointer for its version points elsewhere);
//! - `Live`: the tree's newest version of the key points exactly here: the
//!   value must be written again before the file goes;
//! - `Pinned`: a newer version exists but a snapshot that is still open may
//!   read this one: the file cannot be collected yet.

use crate::error::Result;
use crate::vfs::RandomAccessFile;
use crate::wal::{LogEntry, LogReader};
use std::sync::Arc;

/// The liveness of one value-log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Unreachable: drop it.
    Dead,
    /// The current value of its key: rewrite it.
    Live,
    /// Needed by an open snapshot: leave the file for later.
    Pinned,
}

/// What a scan of one file found. Only offsets are kept, so a scan of a
/// file of any size needs memory for one entry plus four bytes per live
/// entry; [`for_each_at`] reads the live entries again to rewrite them.
#[derive(Debug, Default)]
pub struct Scan {
    /// Offsets of the entries to write again, ascending.
    pub live: Vec<u32>,
    /// Bytes of the live entries.
    pub live_bytes: u64,
    /// Entries found dead.
    pub dead: u64,
    /// Bytes of dead entries.
    pub dead_bytes: u64,
    /// True when some entry was pinned: the file must stay.
    pub pinned: bool,
}

/// Walks `file` (valid up to `valid_len`), classifying every entry, and
/// stops early once `limit` bytes have been looked at (a sample) or an
/// entry is pinned.
pub fn scan(
    file: Arc<dyn RandomAccessFile>,
    valid_len: u64,
    limit: u64,
    liveness: &mut dyn FnMut(&LogEntry) -> Result<Verdict>,
) -> Result<Scan> {
    let mut out = Scan::default();
    let mut reader = LogReader::new(file)?;
    let start = reader.offset();
    while reader.offset() < valid_len && reader.offset() - start < limit {
        let Some(e) = reader.next_entry()? else { break };
        match liveness(&e)? {
            Verdict::Dead => {
                out.dead += 1;
                out.dead_bytes += u64::from(e.len);
            }
            Verdict::Live => {
                out.live.push(e.offset);
                out.live_bytes += u64::from(e.len);
            }
            Verdict::Pinned => {
                out.pinned = true;
                break;
            }
        }
    }
    Ok(out)
}

/// Calls `f` with the entries of `file` at `offsets` (ascending), in order.
/// An offset where no entry starts is corruption: the file changed under
/// the caller.
pub fn for_each_at(
    file: Arc<dyn RandomAccessFile>,
    path: &std::path::Path,
    offsets: &[u32],
    f: &mut dyn FnMut(LogEntry) -> Result<()>,
) -> Result<()> {
    let mut reader = LogReader::new(file)?;
    let mut want = offsets.iter().copied().peekable();
    while let Some(&next) = want.peek() {
        let Some(e) = reader.next_entry()? else {
            return Err(crate::error::Error::corruption(
                path,
                u64::from(next),
                crate::error::CorruptionKind::Inconsistent {
                    detail: "value-log entry to rewrite is past the readable end".into(),
                },
            ));
        };
        if e.offset < next {
            continue;
        }
        if e.offset > next {
            return Err(crate::error::Error::corruption(
                path,
                u64::from(next),
                crate::error::CorruptionKind::Inconsistent {
                    detail: "no value-log entry starts at this offset".into(),
                },
            ));
        }
        want.next();
        f(e)?;
    }
    Ok(())
}
