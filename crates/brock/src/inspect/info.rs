//! A summary of a directory for people: levels, tables, logs and totals,
//! the facts `badger info` shows.

use super::DirView;
use crate::format::{CompressionType, user_key, version};
use crate::vfs::{FileKind, classify};
use std::fmt;

/// One table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Table id.
    pub id: u64,
    /// Level.
    pub level: usize,
    /// Smallest user key and its version.
    pub smallest: (Vec<u8>, u64),
    /// Biggest user key and its version.
    pub biggest: (Vec<u8>, u64),
    /// Entries (all versions).
    pub key_count: u32,
    /// File size.
    pub size: u64,
    /// Blocks.
    pub blocks: usize,
    /// Index bytes.
    pub index_size: u64,
    /// Bloom filter bytes.
    pub bloom_size: usize,
    /// Highest version.
    pub max_version: u64,
    /// Bytes before compression.
    pub uncompressed_size: u32,
    /// Estimated stale bytes.
    pub stale_data_size: u32,
    /// Block compression.
    pub compression: CompressionType,
}

/// One level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelInfo {
    /// Level number.
    pub level: usize,
    /// Tables in it.
    pub tables: usize,
    /// Their total size.
    pub size: u64,
    /// Their total entries.
    pub keys: u64,
}

/// A log or other file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// File name.
    pub name: String,
    /// Apparent size.
    pub size: u64,
    /// For a WAL: bytes of complete transactions (from the header on).
    pub valid_end: Option<u64>,
    /// For a WAL: entries replayed.
    pub entries: Option<usize>,
    /// For a value log: bytes compaction recorded as discardable.
    pub discard: Option<u64>,
}

/// Everything `brock info` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInfo {
    /// Per level.
    pub levels: Vec<LevelInfo>,
    /// Per table, by level then key order.
    pub tables: Vec<TableInfo>,
    /// `.mem` WALs.
    pub wals: Vec<FileInfo>,
    /// `.vlog` files.
    pub vlogs: Vec<FileInfo>,
    /// Everything else in the directory.
    pub others: Vec<FileInfo>,
    /// Highest version anywhere.
    pub max_version: u64,
    /// MANIFEST external magic.
    pub external_magic: u16,
    /// Whether the MANIFEST ends in a torn record.
    pub manifest_torn_tail: bool,
}

impl TableInfo {
    /// The facts of one open table at `level`.
    pub fn of(t: &crate::table::Table, level: usize) -> Self {
        let idx = t.index();
        TableInfo {
            id: t.id(),
            level,
            smallest: (user_key(t.smallest()).to_vec(), version(t.smallest())),
            biggest: (user_key(t.biggest()).to_vec(), version(t.biggest())),
            key_count: idx.key_count,
            size: t.size(),
            blocks: t.block_count(),
            index_size: t.index_len(),
            bloom_size: idx.bloom_filter.len(),
            max_version: idx.max_version,
            uncompressed_size: idx.uncompressed_size,
            stale_data_size: idx.stale_data_size,
            compression: t.options().compression,
        }
    }
}

impl DirView {
    /// Gathers the summary.
    pub fn info(&self) -> DirInfo {
        let mut levels = Vec::new();
        let mut tables = Vec::new();
        for (level, ts) in self.levels().iter().enumerate() {
            levels.push(LevelInfo {
                level,
                tables: ts.len(),
                size: ts.iter().map(|t| t.size()).sum(),
                keys: ts.iter().map(|t| u64::from(t.index().key_count)).sum(),
            });
            for t in ts {
                tables.push(TableInfo::of(t, level));
            }
        }
        let wals = self
            .mems
            .iter()
            .rev()
            .map(|m| FileInfo {
                name: m
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                size: m.file_len,
                valid_end: Some(m.valid_end),
                entries: Some(m.entries),
                discard: None,
            })
            .collect();
        let vlogs = self
            .vlogs
            .iter()
            .map(|(&fid, f)| FileInfo {
                name: crate::vfs::vlog_file_name(fid),
                size: f.len(),
                valid_end: None,
                entries: None,
                discard: self
                    .discard
                    .iter()
                    .find(|(d, _)| *d == u64::from(fid))
                    .map(|&(_, n)| n),
            })
            .collect();
        let others = self
            .other_files
            .iter()
            .filter(|(name, _)| !matches!(classify(name), Some(FileKind::Mem(_))))
            .map(|(name, size)| FileInfo {
                name: name.clone(),
                size: *size,
                valid_end: None,
                entries: None,
                discard: None,
            })
            .collect();
        DirInfo {
            levels,
            tables,
            wals,
            vlogs,
            others,
            max_version: self.max_version(),
            external_magic: self.manifest.external_magic,
            manifest_torn_tail: self.manifest.torn_tail,
        }
    }
}

/// Bytes for people: `846 B`, `1.9 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A key for people: printable ASCII as is, anything else as hex.
pub fn show_key(k: &[u8]) -> String {
    if !k.is_empty() && k.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(k).into_owned()
    } else {
        let mut s = String::from("0x");
        for b in k {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl fmt::Display for DirInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[Levels]")?;
        for l in &self.levels {
            writeln!(
                f,
                "  L{}: {:>4} tables  {:>10}  {:>10} keys",
                l.level,
                l.tables,
                human_bytes(l.size),
                l.keys
            )?;
        }
        writeln!(f, "\n[Tables]")?;
        for t in &self.tables {
            writeln!(
                f,
                "  L{} {}  {:>10}  {:>8} keys  {:>4} blocks  {:<6}  max v{}  [{}@{} .. {}@{}]",
                t.level,
                crate::vfs::sst_file_name(t.id),
                human_bytes(t.size),
                t.key_count,
                t.blocks,
                t.compression.name(),
                t.max_version,
                show_key(&t.smallest.0),
                t.smallest.1,
                show_key(&t.biggest.0),
                t.biggest.1,
            )?;
        }
        writeln!(f, "\n[Write-ahead logs]")?;
        if self.wals.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for w in &self.wals {
            writeln!(
                f,
                "  {}  {:>10} apparent  {} valid  {} entries",
                w.name,
                human_bytes(w.size),
                human_bytes(w.valid_end.unwrap_or(0)),
                w.entries.unwrap_or(0)
            )?;
        }
        writeln!(f, "\n[Value logs]")?;
        if self.vlogs.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for v in &self.vlogs {
            writeln!(
                f,
                "  {}  {:>10}  discard {}",
                v.name,
                human_bytes(v.size),
                human_bytes(v.discard.unwrap_or(0))
            )?;
        }
        writeln!(f, "\n[Other files]")?;
        for o in &self.others {
            writeln!(f, "  {:<20} {:>10}", o.name, human_bytes(o.size))?;
        }
        let sst: u64 = self.levels.iter().map(|l| l.size).sum();
        let vlog: u64 = self.vlogs.iter().map(|v| v.size).sum();
        let wal: u64 = self.wals.iter().map(|w| w.size).sum();
        writeln!(f, "\n[Totals]")?;
        writeln!(f, "  tables:      {:>4}  {}", self.tables.len(), human_bytes(sst))?;
        writeln!(f, "  value logs:  {:>4}  {}", self.vlogs.len(), human_bytes(vlog))?;
        writeln!(
            f,
            "  WALs:        {:>4}  {} apparent",
            self.wals.len(),
            human_bytes(wal)
        )?;
        writeln!(f, "  max version: {}", self.max_version)?;
        if self.external_magic != 0 {
            writeln!(f, "  external magic: {}", self.external_magic)?;
        }
        if self.manifest_torn_tail {
            writeln!(
                f,
                "  MANIFEST ends in a torn record (a crash mid-append); it will be cut on the next read-write open"
            )?;
        }
        Ok(())
    }
}
