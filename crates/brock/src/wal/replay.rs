//! Transaction framing: turning a log's entries into complete commits.
//!
//! Badger's `logFile.iterate`. Entries with `BIT_TXN` are buffered until a
//! `BIT_FIN_TXN` marker whose value (the commit timestamp in ASCII decimal)
//! matches their version; then the batch is complete. An entry without either
//! bit stands alone (value-log GC rewrites, bans, write-batch sets). Replay
//! stops, and the valid end stays at the last complete unit, when:
//! - a `BIT_TXN` entry's version differs from the open transaction's,
//! - a marker's timestamp does not parse or does not match,
//! - a stand-alone entry arrives inside an open transaction,
//! - or the log itself ends ([`LogReader`]).

use super::reader::{LogEntry, LogReader};
use crate::error::Result;
use crate::format::entry::LogEnd;
use crate::format::key;
use crate::format::meta::{BIT_FIN_TXN, BIT_TXN};
use crate::vfs::RandomAccessFile;
use std::sync::Arc;

/// Yields complete transactions (or stand-alone entries) from a log.
#[derive(Debug)]
pub struct TxnReplay {
    reader: LogReader,
    valid_end: u64,
    stopped: bool,
    pending: Vec<LogEntry>,
    pending_ts: u64,
}

impl TxnReplay {
    /// Starts replaying a log file.
    pub fn new(file: Arc<dyn RandomAccessFile>) -> Result<Self> {
        let reader = LogReader::new(file)?;
        let valid_end = reader.offset();
        Ok(TxnReplay {
            reader,
            valid_end,
            stopped: false,
            pending: Vec::new(),
            pending_ts: 0,
        })
    }

    /// The offset just past the last complete unit returned so far; after
    /// replay finishes, the end of the valid log.
    pub fn valid_end(&self) -> u64 {
        self.valid_end
    }

    /// Why the underlying log ended (`None` while replay runs, or when it
    /// stopped on broken framing rather than on bytes).
    pub fn log_end(&self) -> Option<LogEnd> {
        self.reader.end_reason()
    }

    /// The next complete unit: all entries of one transaction (without the
    /// marker) or one stand-alone entry. `None` at the end of the valid log.
    pub fn next_batch(&mut self) -> Result<Option<Vec<LogEntry>>> {
        if self.stopped {
            return Ok(None);
        }
        while let Some(e) = self.reader.next_entry()? {
            if e.meta & BIT_TXN != 0 {
                let ts = key::version(&e.key);
                if self.pending.is_empty() {
                    self.pending_ts = ts;
                } else if ts != self.pending_ts {
                    break;
                }
                self.pending.push(e);
            } else if e.meta & BIT_FIN_TXN != 0 {
                let ts = std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                // An empty transaction has a marker and nothing else; Badger
                // never writes one, and treats the marker as closing nothing.
                if ts != Some(self.pending_ts) || self.pending.is_empty() {
                    break;
                }
                self.valid_end = self.reader.offset();
                return Ok(Some(std::mem::take(&mut self.pending)));
            } else {
                if !self.pending.is_empty() {
                    break;
                }
                self.valid_end = self.reader.offset();
                return Ok(Some(vec![e]));
            }
        }
        self.stopped = true;
        self.pending.clear();
        Ok(None)
    }
}

/// Replays a whole log: every complete unit, and the valid end offset.
pub fn replay_file(file: Arc<dyn RandomAccessFile>) -> Result<(Vec<Vec<LogEntry>>, u64)> {
    let mut r = TxnReplay::new(file)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_batch()? {
        out.push(b);
    }
    Ok((out, r.valid_end()))
}
