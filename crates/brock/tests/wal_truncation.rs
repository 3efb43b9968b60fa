//! A WAL truncated at every byte offset yields exactly the complete
//! transactions before the cut.
//!
//! Two logs are cut at every offset from 0 to their full length: the valid
//! part of the Go-written `unflushed/00001.mem` (plus some of the zero tail
//! that follows it), and a synthetic WAL built here with several multi-entry
//! transactions interleaved with stand-alone entries. Each prefix is written to
//! a file and replayed; the replay must return exactly the batches that end at
//! or before the cut, in order and with the same entries, and its valid end
//! must be the end of the last of them (20, the header length, when there is
//! none). Then the ways a log's framing can break: a damaged byte, a marker
//! whose timestamp does not match, a stand-alone entry inside an open
//! transaction, and an encrypted header.

mod common;

use brock::Error;
use brock::format::entry::{EntryRef, encode_entry};
use brock::format::meta::{BIT_DELETE, BIT_FIN_TXN, BIT_TXN, BIT_VALUE_POINTER};
use brock::format::{LOG_HEADER_LEN, LogEnd, LogFileHeader, ValuePointer, key_with_version};
use brock::vfs::{OsVfs, Vfs};
use brock::wal::{LogEntry, LogReader, TxnReplay, replay_file};
use std::io::Read;
use std::path::Path;

const HEADER: u64 = LOG_HEADER_LEN as u64;

/// One entry of a transaction: extra meta bits, user meta, expiry, user key, value.
type TxnEntry<'a> = (u8, u8, u64, &'a [u8], &'a [u8]);

/// A log under construction, with the batches replay must return and where
/// each ends.
struct WalBuilder {
    bytes: Vec<u8>,
    batches: Vec<(Vec<LogEntry>, u64)>,
}

impl WalBuilder {
    fn new(key_id: u64) -> Self {
        let header = LogFileHeader {
            key_id,
            base_iv: [0x5a; 12],
        };
        WalBuilder {
            bytes: header.encode().to_vec(),
            batches: Vec::new(),
        }
    }

    fn entry(&mut self, meta: u8, user_meta: u8, expires_at: u64, key: &[u8], value: &[u8]) -> LogEntry {
        let offset = self.bytes.len() as u32;
        let len = encode_entry(
            &mut self.bytes,
            &EntryRef {
                meta,
                user_meta,
                expires_at,
                key,
                value,
            },
        ) as u32;
        LogEntry {
            key: key.to_vec(),
            value: value.to_vec(),
            meta,
            user_meta,
            expires_at,
            offset,
            len,
        }
    }

    /// The `!badger!txn` marker closing the transaction committed at `ts`.
    fn marker(&mut self, ts: u64, value: &[u8]) {
        self.entry(BIT_FIN_TXN, 0, 0, &key_with_version(b"!badger!txn", ts), value);
    }

    /// A transaction committed at `ts`: its entries, then its marker.
    fn txn(&mut self, ts: u64, entries: &[TxnEntry<'_>]) {
        let batch = entries
            .iter()
            .map(|&(meta, user_meta, expires_at, key, value)| {
                self.entry(
                    BIT_TXN | meta,
                    user_meta,
                    expires_at,
                    &key_with_version(key, ts),
                    value,
                )
            })
            .collect();
        self.marker(ts, ts.to_string().as_bytes());
        self.batches.push((batch, self.bytes.len() as u64));
    }

    /// An entry outside any transaction.
    fn single(&mut self, meta: u8, key: &[u8], ts: u64, value: &[u8]) {
        let e = self.entry(meta, 0, 0, &key_with_version(key, ts), value);
        self.batches.push((vec![e], self.bytes.len() as u64));
    }

    /// The end offset of batch `i`.
    fn end(&self, i: usize) -> u64 {
        self.batches[i].1
    }
}

/// The synthetic WAL: transactions of one to five entries (tombstones, value
/// pointers, user meta, expiry, a key and a value long enough for multi-byte
/// varints) interleaved with stand-alone entries.
fn synthetic() -> WalBuilder {
    let vp = ValuePointer {
        fid: 2,
        len: 4096,
        offset: 20,
    }
    .encode();
    let long_key = vec![b'k'; 150];
    let long_value: Vec<u8> = (0..400u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = WalBuilder::new(0);
    w.txn(
        1,
        &[
            (0, 0, 0, b"alpha", b"one"),
            (0, 0x5a, 0, b"beta", b"two"),
            (0, 0, 4_102_444_800, b"gamma", b"three"),
        ],
    );
    w.txn(
        2,
        &[
            (BIT_DELETE, 0, 0, b"alpha", b""),
            (BIT_VALUE_POINTER, 0xa5, 0, b"delta", &vp),
        ],
    );
    w.single(0, b"standalone", 3, b"gc rewrite");
    w.txn(4, &[(0, 0, 0, &long_key, &long_value)]);
    w.single(BIT_DELETE, b"banned", 5, b"");
    w.single(0, b"again", 6, b"x");
    w.txn(
        7,
        &[
            (0, 1, 0, b"e1", b"v1"),
            (0, 2, 0, b"e2", b"v2"),
            (0, 3, 0, b"e3", &long_value[..130]),
            (0, 4, 1, b"e4", b"v4"),
            (0, 5, 0, b"e5", b"v5"),
        ],
    );
    w.txn(1_000_000_007, &[(0, 0, 0, b"big ts", b"v")]);
    w.single(0, b"last", 1_000_000_008, b"tail");
    w
}

/// What replaying a file gave: the batches, the valid end after each, the
/// final valid end and why the log ended.
#[derive(Debug, PartialEq, Eq)]
struct Replayed {
    batches: Vec<Vec<LogEntry>>,
    ends: Vec<u64>,
    valid_end: u64,
    log_end: Option<LogEnd>,
}

fn replay(path: &Path) -> brock::Result<Replayed> {
    let mut r = TxnReplay::new(OsVfs.open_read(path)?)?;
    let mut batches = Vec::new();
    let mut ends = Vec::new();
    while let Some(b) = r.next_batch()? {
        batches.push(b);
        ends.push(r.valid_end());
    }
    // Asking again after the end changes nothing.
    assert_eq!(r.next_batch()?, None);
    let out = Replayed {
        batches,
        ends,
        valid_end: r.valid_end(),
        log_end: r.log_end(),
    };
    // `replay_file` agrees with the step-by-step replay.
    let (all, valid_end) = replay_file(OsVfs.open_read(path)?)?;
    assert_eq!(all, out.batches, "replay_file batches");
    assert_eq!(valid_end, out.valid_end, "replay_file valid end");
    Ok(out)
}

/// A directory for the logs a test replays, one new file per replay.
///
/// A new file each time rather than one file truncated and rewritten: ext4
/// flushes a file truncated to zero when it is closed (`auto_da_alloc`), which
/// makes thousands of rewrites slow on a busy disk.
struct Scratch {
    dir: tempfile::TempDir,
    next: std::cell::Cell<u64>,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
            next: std::cell::Cell::new(0),
        }
    }

    /// Writes `bytes` to a new file and returns its path; the previous file
    /// is removed.
    fn write(&self, bytes: &[u8]) -> std::path::PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        if n > 0 {
            let _ = std::fs::remove_file(self.dir.path().join(format!("{:05}.mem", n - 1)));
        }
        let path = self.dir.path().join(format!("{n:05}.mem"));
        std::fs::write(&path, bytes).expect("write log");
        path
    }

    fn replay(&self, bytes: &[u8]) -> brock::Result<Replayed> {
        replay(&self.write(bytes))
    }
}

fn replay_bytes(bytes: &[u8]) -> brock::Result<Replayed> {
    Scratch::new().replay(bytes)
}

/// Every offset where an entry starts or ends, from the header on.
fn entry_boundaries(bytes: &[u8]) -> Vec<u64> {
    let scratch = Scratch::new();
    let path = scratch.write(bytes);
    let mut r = LogReader::new(OsVfs.open_read(&path).expect("open")).expect("reader");
    let mut out = vec![HEADER];
    while let Some(e) = r.next_entry().expect("read entry") {
        out.push(u64::from(e.offset) + u64::from(e.len));
    }
    out
}

/// Cuts `bytes` at every offset and checks the replay of each prefix against
/// `batches` (each with the offset just past it).
fn check_every_cut(name: &str, bytes: &[u8], batches: &[(Vec<LogEntry>, u64)]) {
    let boundaries = entry_boundaries(bytes);
    let data_end = *boundaries.last().expect("boundaries");
    let scratch = Scratch::new();
    for cut in 0..=bytes.len() {
        let got = scratch
            .replay(&bytes[..cut])
            .unwrap_or_else(|e| panic!("{name}: cut at {cut}: {e}"));
        let kept: Vec<&(Vec<LogEntry>, u64)> = if cut < LOG_HEADER_LEN {
            Vec::new()
        } else {
            batches.iter().filter(|(_, end)| *end <= cut as u64).collect()
        };
        let want = Replayed {
            batches: kept.iter().map(|(b, _)| b.clone()).collect(),
            ends: kept.iter().map(|(_, end)| *end).collect(),
            valid_end: kept.last().map_or(HEADER, |(_, end)| *end),
            log_end: Some(if cut < LOG_HEADER_LEN {
                // A file shorter than its header is an empty log.
                LogEnd::Eof
            } else if cut as u64 > data_end {
                // Zeros after the last entry: too few to hold a header, then a zero entry.
                if cut as u64 - data_end < 5 {
                    LogEnd::Truncated
                } else {
                    LogEnd::Zero
                }
            } else if boundaries.contains(&(cut as u64)) {
                LogEnd::Eof
            } else {
                LogEnd::Truncated
            }),
        };
        assert_eq!(
            got.batches.len(),
            want.batches.len(),
            "{name}: cut at {cut}: batch count"
        );
        assert_eq!(got, want, "{name}: cut at {cut}");
    }
}

#[test]
fn synthetic_wal_cut_at_every_offset() {
    let mut w = synthetic();
    assert_eq!(w.batches.len(), 9);
    // The whole log replays to exactly what was written.
    let full = replay_bytes(&w.bytes).unwrap();
    assert_eq!(
        full.batches,
        w.batches.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>()
    );
    assert_eq!(full.valid_end, w.bytes.len() as u64);
    assert_eq!(full.log_end, Some(LogEnd::Eof));
    // A preallocated file: zeros after the last entry.
    w.bytes.extend_from_slice(&[0; 64]);
    check_every_cut("synthetic", &w.bytes, &w.batches);
}

/// The valid part of the Go-written WAL and the start of its zero tail.
fn go_wal() -> (Vec<u8>, Vec<(Vec<LogEntry>, u64)>) {
    let path = common::fixture("unflushed").join("00001.mem");
    let full = replay(&path).unwrap();
    let batches: Vec<(Vec<LogEntry>, u64)> = full.batches.into_iter().zip(full.ends).collect();
    assert_eq!(
        full.log_end,
        Some(LogEnd::Zero),
        "the WAL ends in preallocated zeros"
    );
    assert_eq!(batches.last().map(|(_, end)| *end), Some(full.valid_end));
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .take(full.valid_end + 64)
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(bytes[full.valid_end as usize..].iter().all(|&b| b == 0));
    (bytes, batches)
}

#[test]
fn go_wal_cut_at_every_offset() {
    let (bytes, batches) = go_wal();
    // What the fixture's README says the WAL holds: five transactions of one
    // entry each, at versions 20 to 24.
    let keys: Vec<(Vec<u8>, u64)> = batches
        .iter()
        .flat_map(|(b, _)| {
            b.iter().map(|e| {
                (
                    brock::format::user_key(&e.key).to_vec(),
                    brock::format::version(&e.key),
                )
            })
        })
        .collect();
    assert_eq!(
        keys,
        [
            (b"wal/small".to_vec(), 20),
            (b"wal/big".to_vec(), 21),
            (b"multi".to_vec(), 22),
            (b"small/00".to_vec(), 23),
            (b"wal/ttl+meta".to_vec(), 24),
        ]
    );
    check_every_cut("unflushed/00001.mem", &bytes, &batches);
}

/// Replays `bytes` with byte `pos` changed by `xor`.
fn replay_with_flip(scratch: &Scratch, bytes: &[u8], pos: usize, xor: u8) -> Replayed {
    let mut b = bytes.to_vec();
    b[pos] ^= xor;
    scratch
        .replay(&b)
        .unwrap_or_else(|e| panic!("flip {xor:#x} at {pos}: {e}"))
}

#[test]
fn corrupt_byte_in_second_transaction_keeps_only_the_first() {
    let scratch = Scratch::new();
    let w = synthetic();
    let (first, first_end) = &w.batches[0];
    for pos in *first_end as usize..w.end(1) as usize {
        for xor in [0x01, 0x10, 0x80, 0xff] {
            let got = replay_with_flip(&scratch, &w.bytes, pos, xor);
            assert_eq!(got.batches, vec![first.clone()], "flip {xor:#x} at {pos}");
            assert_eq!(got.valid_end, *first_end, "flip {xor:#x} at {pos}");
        }
    }
    // The same in the Go-written WAL: damage anywhere in its second
    // transaction (entry or marker) leaves exactly the first.
    let (bytes, batches) = go_wal();
    let (first, first_end) = &batches[0];
    for pos in *first_end as usize..batches[1].1 as usize {
        let got = replay_with_flip(&scratch, &bytes, pos, 0x04);
        assert_eq!(got.batches, vec![first.clone()], "go WAL: flip at {pos}");
        assert_eq!(got.valid_end, *first_end, "go WAL: flip at {pos}");
    }
}

#[test]
fn corrupt_byte_anywhere_keeps_the_batches_before_it() {
    let scratch = Scratch::new();
    let w = synthetic();
    for pos in LOG_HEADER_LEN..w.bytes.len() {
        let got = replay_with_flip(&scratch, &w.bytes, pos, 0x20);
        let kept: Vec<&(Vec<LogEntry>, u64)> = w
            .batches
            .iter()
            .take_while(|(_, end)| *end as usize <= pos)
            .collect();
        assert_eq!(
            got.batches,
            kept.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(),
            "flip at {pos}"
        );
        assert_eq!(
            got.valid_end,
            kept.last().map_or(HEADER, |(_, end)| *end),
            "flip at {pos}"
        );
    }
}

/// A log of: the first transaction, then `broken`, then a valid transaction
/// that replay must not reach.
fn after_first(broken: impl FnOnce(&mut WalBuilder)) -> (WalBuilder, Replayed) {
    let mut w = WalBuilder::new(0);
    w.txn(1, &[(0, 0, 0, b"a", b"1"), (0, 0, 0, b"b", b"2")]);
    broken(&mut w);
    w.txn(9, &[(0, 0, 0, b"c", b"3")]);
    w.single(0, b"d", 10, b"4");
    let got = replay_bytes(&w.bytes).unwrap();
    (w, got)
}

fn assert_stops_after_first(what: &str, w: &WalBuilder, got: &Replayed) {
    assert_eq!(got.batches, vec![w.batches[0].0.clone()], "{what}");
    assert_eq!(got.valid_end, w.end(0), "{what}");
    assert_eq!(got.ends, vec![w.end(0)], "{what}");
}

#[test]
fn marker_with_another_timestamp_stops_replay() {
    for (what, value) in [
        ("a later timestamp", &b"6"[..]),
        ("an earlier timestamp", b"4"),
        ("a timestamp that does not parse", b"five"),
        ("an empty timestamp", b""),
        ("a negative timestamp", b"-5"),
        ("a timestamp with a space", b" 5"),
    ] {
        let (w, got) = after_first(|w| {
            w.entry(BIT_TXN, 0, 0, &key_with_version(b"x", 5), b"v");
            w.entry(BIT_TXN, 0, 0, &key_with_version(b"y", 5), b"w");
            w.marker(5, value);
        });
        assert_stops_after_first(what, &w, &got);
    }
}

#[test]
fn broken_transaction_framing_stops_replay() {
    let (w, got) = after_first(|w| {
        w.entry(BIT_TXN, 0, 0, &key_with_version(b"x", 5), b"v");
        w.single(0, b"standalone", 5, b"inside an open transaction");
        w.marker(5, b"5");
    });
    assert_stops_after_first("a stand-alone entry inside an open transaction", &w, &got);

    let (w, got) = after_first(|w| {
        w.entry(BIT_TXN, 0, 0, &key_with_version(b"x", 5), b"v");
        w.entry(BIT_TXN, 0, 0, &key_with_version(b"y", 6), b"w");
        w.marker(6, b"6");
    });
    assert_stops_after_first("entries of two versions in one transaction", &w, &got);

    let (w, got) = after_first(|w| w.marker(5, b"5"));
    assert_stops_after_first("a marker closing no entries", &w, &got);

    let (w, got) = after_first(|w| {
        w.entry(BIT_TXN, 0, 0, &key_with_version(b"x", 5), b"v");
    });
    // Without its marker the transaction is open when the next one starts
    // (at another version): replay stops there too.
    assert_stops_after_first("a transaction without its marker", &w, &got);
}

#[test]
fn encrypted_header_is_refused() {
    let mut w = WalBuilder::new(7);
    w.txn(1, &[(0, 0, 0, b"a", b"1")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00001.mem");
    std::fs::write(&path, &w.bytes).unwrap();
    for result in [
        replay_file(OsVfs.open_read(&path).unwrap()).map(|_| ()),
        TxnReplay::new(OsVfs.open_read(&path).unwrap()).map(|_| ()),
        LogReader::new(OsVfs.open_read(&path).unwrap()).map(|_| ()),
    ] {
        match result {
            Err(Error::EncryptionNotSupported { file, key_id: 7 }) => assert_eq!(file, path),
            other => panic!("expected EncryptionNotSupported, got {other:?}"),
        }
    }
    // Only the key id counts: any IV with key id 0 is plaintext.
    let mut plain = w.bytes.clone();
    plain[..8].copy_from_slice(&0u64.to_be_bytes());
    plain[8..20].copy_from_slice(&[0xff; 12]);
    assert_eq!(replay_bytes(&plain).unwrap().batches.len(), 1);
    // A header too short to hold the key id is an empty log, not an error.
    assert!(replay_bytes(&w.bytes[..19]).unwrap().batches.is_empty());
}
