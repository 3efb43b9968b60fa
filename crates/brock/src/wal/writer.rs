//! Appending to a log file (`.mem` WAL; later `.vlog`).
//!
//! Badger's `logFile` writes through a writable mmap preallocated to twice
//! the target size; a full disk then kills the process with SIGBUS (its
//! issues #1682, #1199, #1801). We append with ordinary writes, so the file
//! is exactly as long as its valid data and a full disk is an `Io` error.
//! The bytes are Badger's: a 20-byte header, then entries.

use crate::error::Result;
use crate::format::entry::{EntryRef, encode_entry};
use crate::format::key::{TXN_KEY, append_key_with_version};
use crate::format::meta::{BIT_FIN_TXN, BIT_TXN};
use crate::format::{LOG_HEADER_LEN, LogFileHeader};
use crate::vfs::{OpenMode, Vfs, WritableFile};
use std::path::{Path, PathBuf};

/// An open log being appended to.
#[derive(Debug)]
pub struct LogWriter {
    file: Box<dyn WritableFile>,
    fid: u32,
    path: PathBuf,
    offset: u64,
}

impl LogWriter {
    /// Creates a new log with a fresh header (plaintext, random base IV).
    pub fn create(vfs: &dyn Vfs, path: &Path, fid: u32) -> Result<Self> {
        let mut file = vfs.open_write(path, OpenMode::CreateNew)?;
        let header = LogFileHeader {
            key_id: 0,
            base_iv: rand::random(),
        };
        file.append(&header.encode())?;
        Ok(LogWriter {
            file,
            fid,
            path: path.to_path_buf(),
            offset: LOG_HEADER_LEN as u64,
        })
    }

    /// The file id.
    pub fn fid(&self) -> u32 {
        self.fid
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written, header included.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends encoded entries.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.append(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything appended durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data()
    }
}

/// One entry of a transaction, before versioning.
#[derive(Debug, Clone, Copy)]
pub struct TxnEntry<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for a delete).
    pub value: &'a [u8],
    /// Meta bits (delete, discard-earlier-versions, ...); the txn bit is added here.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
}

/// Encodes a committed transaction as Badger frames it in a WAL: each entry
/// at version `ts` with `BIT_TXN`, then the `!badger!txn` marker whose value
/// is `ts` in ASCII decimal. `key_buf` is scratch space.
pub fn encode_txn(out: &mut Vec<u8>, key_buf: &mut Vec<u8>, ts: u64, entries: &[TxnEntry<'_>]) {
    for e in entries {
        key_buf.clear();
        append_key_with_version(key_buf, e.key, ts);
        encode_entry(
            out,
            &EntryRef {
                meta: e.meta | BIT_TXN,
                user_meta: e.user_meta,
                expires_at: e.expires_at,
                key: key_buf,
                value: e.value,
            },
        );
    }
    key_buf.clear();
    append_key_with_version(key_buf, TXN_KEY, ts);
    let ts_text = ts.to_string();
    encode_entry(
        out,
        &EntryRef {
            meta: BIT_FIN_TXN,
            user_meta: 0,
            expires_at: 0,
            key: key_buf,
            value: ts_text.as_bytes(),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::MemVfs;
    use crate::wal::replay_file;

    #[test]
    fn written_transactions_replay() {
        let vfs = MemVfs::new();
        vfs.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/00001.mem");
        let mut w = LogWriter::create(&vfs, path, 1).unwrap();
        let mut buf = Vec::new();
        let mut kb = Vec::new();
        encode_txn(
            &mut buf,
            &mut kb,
            7,
            &[
                TxnEntry {
                    key: b"a",
                    value: b"1",
                    meta: 0,
                    user_meta: 0,
                    expires_at: 0,
                },
                TxnEntry {
                    key: b"b",
                    value: b"",
                    meta: 1,
                    user_meta: 3,
                    expires_at: 9,
                },
            ],
        );
        encode_txn(
            &mut buf,
            &mut kb,
            8,
            &[TxnEntry {
                key: b"c",
                value: b"2",
                meta: 0,
                user_meta: 0,
                expires_at: 0,
            }],
        );
        w.append(&buf).unwrap();
        let (batches, end) = replay_file(vfs.open_read(path).unwrap()).unwrap();
        assert_eq!(end, w.offset());
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].len(), 2);
        assert_eq!(batches[0][1].meta, 1 | BIT_TXN);
        assert_eq!(batches[0][1].user_meta, 3);
        assert_eq!(crate::format::version(&batches[1][0].key), 8);
    }
}
