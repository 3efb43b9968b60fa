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

/// What a scan of one file found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Entries to write again.
    pub live: Vec<LogEntry>,
    /// Entries and bytes found dead.
    pub dead: u64,
    /// Bytes of dead entries.
    pub dead_bytes: u64,
    /// True when some entry was pinned: the file must stay.
    pub pinned: bool,
}

/// Walks `file` (valid up to `valid_len`), classifying every entry.
pub fn scan(
    file: Arc<dyn RandomAccessFile>,
    valid_len: u64,
    liveness: &mut dyn FnMut(&LogEntry) -> Result<Verdict>,
) -> Result<Scan> {
    let mut out = Scan::default();
    let mut reader = LogReader::new(file)?;
    while reader.offset() < valid_len {
        let Some(e) = reader.next_entry()? else { break };
        match liveness(&e)? {
            Verdict::Dead => {
                out.dead += 1;
                out.dead_bytes += u64::from(e.len);
            }
            Verdict::Live => out.live.push(e),
            Verdict::Pinned => {
                out.pinned = true;
                break;
            }
        }
    }
    Ok(out)
}
