//! Sequential reading of log entries with bounded buffering.

use crate::error::{Error, Result};
use crate::format::entry::{CRC_LEN, Decoded, LogEnd, MAX_HEADER_LEN, decode_entry, decode_header};
use crate::format::{LOG_HEADER_LEN, LogFileHeader};
use crate::vfs::RandomAccessFile;
use std::sync::Arc;

/// Bytes read from the file at a time.
const CHUNK: usize = 1 << 20;

/// One entry as stored in a log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Internal key (user key ‖ version).
    pub key: Vec<u8>,
    /// Value bytes, or an encoded value pointer.
    pub value: Vec<u8>,
    /// Badger's meta bits as stored.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// Offset of the entry in the file.
    pub offset: u32,
    /// Encoded length of the entry.
    pub len: u32,
}

/// Walks the entries of one log file from the first entry on.
#[derive(Debug)]
pub struct LogReader {
    file: Arc<dyn RandomAccessFile>,
    header: LogFileHeader,
    /// File offset of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
    /// Position in `buf` of the next entry.
    pos: usize,
    end: Option<LogEnd>,
}

impl LogReader {
    /// Opens a reader; checks the header and refuses encrypted logs.
    pub fn new(file: Arc<dyn RandomAccessFile>) -> Result<Self> {
        let mut h = [0u8; LOG_HEADER_LEN];
        if file.len() < LOG_HEADER_LEN as u64 {
            // Badger treats a log shorter than its header as empty.
            return Ok(LogReader {
                file,
                header: LogFileHeader::default(),
                buf_start: LOG_HEADER_LEN as u64,
                buf: Vec::new(),
                pos: 0,
                end: Some(LogEnd::Eof),
            });
        }
        file.read_exact_at(&mut h, 0)?;
        let header = LogFileHeader::decode(&h).map_err(|e| e.in_file(file.path(), 0))?;
        if header.key_id != 0 {
            return Err(Error::EncryptionNotSupported {
                file: file.path().to_path_buf(),
                key_id: header.key_id,
            });
        }
        Ok(LogReader {
            file,
            header,
            buf_start: LOG_HEADER_LEN as u64,
            buf: Vec::new(),
            pos: 0,
            end: None,
        })
    }

    /// The file header.
    pub fn header(&self) -> &LogFileHeader {
        &self.header
    }

    /// Offset in the file of the next entry (after the last one returned).
    pub fn offset(&self) -> u64 {
        self.buf_start + self.pos as u64
    }

    /// Why reading stopped, once [`next_entry`](Self::next_entry) returned `None`.
    pub fn end_reason(&self) -> Option<LogEnd> {
        self.end
    }

    /// Makes sure `buf[pos..]` holds at least `need` bytes, or all that is left.
    fn fill(&mut self, need: usize) -> Result<()> {
        if self.buf.len() - self.pos >= need {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.buf_start += self.pos as u64;
        self.pos = 0;
        let file_left = self
            .file
            .len()
            .saturating_sub(self.buf_start + self.buf.len() as u64);
        let want = need.max(CHUNK).saturating_sub(self.buf.len()) as u64;
        let take = want.min(file_left) as usize;
        if take == 0 {
            return Ok(());
        }
        let old = self.buf.len();
        self.buf.resize(old + take, 0);
        let at = self.buf_start + old as u64;
        self.file.read_exact_at(&mut self.buf[old..], at)?;
        Ok(())
    }

    /// The next entry, or `None` at the end of the valid log.
    pub fn next_entry(&mut self) -> Result<Option<LogEntry>> {
        if self.end.is_some() {
            return Ok(None);
        }
        self.fill(MAX_HEADER_LEN)?;
        // The header tells the entry's length; check it against the file
        // before buffering that much.
        let need = match decode_header(&self.buf[self.pos..]) {
            Ok((h, hlen)) => {
                let total = hlen as u64 + u64::from(h.key_len) + u64::from(h.value_len) + CRC_LEN as u64;
                let left = self.file.len().saturating_sub(self.offset());
                if h.key_len != 0 && total > left {
                    self.end = Some(LogEnd::Truncated);
                    return Ok(None);
                }
                total as usize
            }
            Err(_) => MAX_HEADER_LEN,
        };
        self.fill(need)?;
        match decode_entry(&self.buf[self.pos..]) {
            Decoded::Entry(e, n) => {
                let entry = LogEntry {
                    key: e.key.to_vec(),
                    value: e.value.to_vec(),
                    meta: e.meta,
                    user_meta: e.user_meta,
                    expires_at: e.expires_at,
                    offset: self.offset() as u32,
                    len: n as u32,
                };
                self.pos += n;
                Ok(Some(entry))
            }
            Decoded::End(why) => {
                self.end = Some(why);
                Ok(None)
            }
        }
    }
}
