//! Options for opening a database, with Badger v4's defaults.
//!
//! Badger's `options.go` (`DefaultOptions`) and `db.go` (`checkAndSetOptions`).
//! [`Options::validate`] gives a typed error naming the bad option; an option
//! whose feature is not built yet is refused as [`Error::Unsupported`] when
//! set to anything but its inert default, never silently ignored.

use crate::error::{Error, Result};
use crate::format::CompressionType;
use std::path::PathBuf;

/// Badger's `maxValueThreshold` (1 MiB).
pub const MAX_VALUE_THRESHOLD: u64 = 1 << 20;

/// Badger's `skl.MaxNodeSize`, the per-entry overhead used to derive the
/// batch count limit.
pub const MAX_NODE_SIZE: u64 = 96;

/// How a database is opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Directory of the tree: MANIFEST, tables, WALs.
    pub dir: PathBuf,
    /// Directory of the value log; usually the same as `dir`.
    pub value_dir: PathBuf,
    /// Acknowledge a commit only once it is on stable storage.
    pub sync_writes: bool,
    /// Versions kept per key below the discard timestamp.
    pub num_versions_to_keep: u32,
    /// Open without writing anything; shares the lock with other readers.
    pub read_only: bool,
    /// Keep everything in memory; no files at all.
    pub in_memory: bool,
    /// Compression of newly written tables.
    pub compression: CompressionType,
    /// Zstd level when `compression` is Zstd.
    pub zstd_compression_level: i32,
    /// Bytes a memtable holds before it is flushed (also the L0 table size).
    pub mem_table_size: u64,
    /// Target table size at the base level.
    pub base_table_size: u64,
    /// Target size of the base level.
    pub base_level_size: u64,
    /// Growth of level targets per level.
    pub level_size_multiplier: u32,
    /// Growth of table size per level below the base level.
    pub table_size_multiplier: u32,
    /// Number of levels.
    pub max_levels: u32,
    /// Values at least this long go to the value log.
    pub value_threshold: u64,
    /// Memtables (mutable plus waiting to flush) before writes stall.
    pub num_memtables: u32,
    /// Uncompressed size of a table block.
    pub block_size: u32,
    /// Bloom filter false-positive rate; 0 disables filters.
    pub bloom_false_positive: f64,
    /// Bytes of the block cache; 0 disables it.
    pub block_cache_size: u64,
    /// Bytes of the index cache; 0 keeps every index in memory.
    pub index_cache_size: u64,
    /// Put the blocks of each flushed L0 table into the block cache as they
    /// are written, so that reads of recent writes find them there instead
    /// of reading them back (RocksDB's `prepopulate_block_cache`, for
    /// flushes). At most half the block cache per flush; nothing when
    /// `block_cache_size` is 0. Brock's own option; default `true`.
    pub prepopulate_block_cache: bool,
    /// L0 tables that make L0 eligible for compaction.
    pub num_level_zero_tables: u32,
    /// L0 tables at which flushes (and so writes) stall.
    pub num_level_zero_tables_stall: u32,
    /// Size at which a value-log file rotates.
    pub value_log_file_size: u64,
    /// Entries at which a value-log file rotates.
    pub value_log_max_entries: u32,
    /// Compaction threads; 0 disables compaction.
    pub num_compactors: u32,
    /// Compact L0 once more when closing.
    pub compact_l0_on_close: bool,
    /// Badger's switch for verifying value-log entry checksums on read.
    /// Brock always verifies them (a corrupt value is an error, never a
    /// wrong answer), so `false` does not turn the check off; the option is
    /// kept so Badger option sets carry over.
    pub verify_value_checksum: bool,
    /// Check transactions for read-write conflicts.
    pub detect_conflicts: bool,
    /// Dynamic value threshold percentile; 0 disables it.
    pub vlog_percentile: f64,
    /// Encryption master key (16, 24 or 32 bytes); empty = none.
    pub encryption_key: Vec<u8>,
    /// Namespace offset for banned namespaces; -1 disables it.
    pub namespace_offset: i64,
    /// Application magic stored in the MANIFEST.
    pub external_magic: u16,
    /// Skip the directory lock (dangerous; for tools only).
    pub bypass_lock_guard: bool,
    /// Run value-log GC in the background with this discard ratio (Brock's
    /// addition; Badger leaves GC to the application). `None` = off.
    pub auto_value_log_gc: Option<f64>,
    /// Verify table block checksums on every read (Badger's default is off;
    /// ours is on, see `docs/decisions/0003`).
    pub verify_block_checksums: bool,
}

impl Options {
    /// Badger's `DefaultOptions(path)`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let dir = path.into();
        Options {
            value_dir: dir.clone(),
            dir,
            sync_writes: false,
            num_versions_to_keep: 1,
            read_only: false,
            in_memory: false,
            compression: CompressionType::Snappy,
            zstd_compression_level: 1,
            mem_table_size: 64 << 20,
            base_table_size: 2 << 20,
            base_level_size: 10 << 20,
            level_size_multiplier: 10,
            table_size_multiplier: 2,
            max_levels: 7,
            value_threshold: MAX_VALUE_THRESHOLD,
            num_memtables: 5,
            block_size: 4096,
            bloom_false_positive: 0.01,
            block_cache_size: 256 << 20,
            index_cache_size: 0,
            prepopulate_block_cache: true,
            num_level_zero_tables: 5,
            num_level_zero_tables_stall: 15,
            value_log_file_size: (1 << 30) - 1,
            value_log_max_entries: 1_000_000,
            num_compactors: 4,
            compact_l0_on_close: false,
            verify_value_checksum: false,
            detect_conflicts: true,
            vlog_percentile: 0.0,
            encryption_key: Vec::new(),
            namespace_offset: -1,
            external_magic: 0,
            bypass_lock_guard: false,
            auto_value_log_gc: None,
            verify_block_checksums: true,
        }
    }

    /// Options for an in-memory database (Badger's `DefaultOptions("").WithInMemory(true)`).
    pub fn in_memory() -> Self {
        let mut o = Options::new("");
        o.value_dir = PathBuf::new();
        o.in_memory = true;
        o
    }
}

macro_rules! with {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl Options {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $name(mut self, v: $ty) -> Self {
                    self.$field = v.into();
                    self
                }
            )*
        }
    };
}

with! {
    /// Sets `value_dir`.
    with_value_dir: value_dir: impl Into<PathBuf>;
    /// Sets `sync_writes`.
    with_sync_writes: sync_writes: bool;
    /// Sets `num_versions_to_keep`.
    with_num_versions_to_keep: num_versions_to_keep: u32;
    /// Sets `read_only`.
    with_read_only: read_only: bool;
    /// Sets `in_memory`.
    with_in_memory: in_memory: bool;
    /// Sets `compression`.
    with_compression: compression: CompressionType;
    /// Sets `zstd_compression_level`.
    with_zstd_compression_level: zstd_compression_level: i32;
    /// Sets `mem_table_size`.
    with_mem_table_size: mem_table_size: u64;
    /// Sets `base_table_size`.
    with_base_table_size: base_table_size: u64;
    /// Sets `base_level_size`.
    with_base_level_size: base_level_size: u64;
    /// Sets `level_size_multiplier`.
    with_level_size_multiplier: level_size_multiplier: u32;
    /// Sets `table_size_multiplier`.
    with_table_size_multiplier: table_size_multiplier: u32;
    /// Sets `max_levels`.
    with_max_levels: max_levels: u32;
    /// Sets `value_threshold`.
    with_value_threshold: value_threshold: u64;
    /// Sets `num_memtables`.
    with_num_memtables: num_memtables: u32;
    /// Sets `block_size`.
    with_block_size: block_size: u32;
    /// Sets `bloom_false_positive`.
    with_bloom_false_positive: bloom_false_positive: f64;
    /// Sets `block_cache_size`.
    with_block_cache_size: block_cache_size: u64;
    /// Sets `index_cache_size`.
    with_index_cache_size: index_cache_size: u64;
    /// Sets `prepopulate_block_cache`.
    with_prepopulate_block_cache: prepopulate_block_cache: bool;
    /// Sets `num_level_zero_tables`.
    with_num_level_zero_tables: num_level_zero_tables: u32;
    /// Sets `num_level_zero_tables_stall`.
    with_num_level_zero_tables_stall: num_level_zero_tables_stall: u32;
    /// Sets `value_log_file_size`.
    with_value_log_file_size: value_log_file_size: u64;
    /// Sets `value_log_max_entries`.
    with_value_log_max_entries: value_log_max_entries: u32;
    /// Sets `num_compactors`.
    with_num_compactors: num_compactors: u32;
    /// Sets `compact_l0_on_close`.
    with_compact_l0_on_close: compact_l0_on_close: bool;
    /// Sets `verify_value_checksum`.
    with_verify_value_checksum: verify_value_checksum: bool;
    /// Sets `detect_conflicts`.
    with_detect_conflicts: detect_conflicts: bool;
    /// Sets `vlog_percentile`.
    with_vlog_percentile: vlog_percentile: f64;
    /// Sets `encryption_key`.
    with_encryption_key: encryption_key: Vec<u8>;
    /// Sets `namespace_offset`.
    with_namespace_offset: namespace_offset: i64;
    /// Sets `external_magic`.
    with_external_magic: external_magic: u16;
    /// Sets `bypass_lock_guard`.
    with_bypass_lock_guard: bypass_lock_guard: bool;
    /// Sets `auto_value_log_gc`.
    with_auto_value_log_gc: auto_value_log_gc: Option<f64>;
    /// Sets `verify_block_checksums`.
    with_verify_block_checksums: verify_block_checksums: bool;
}

/// Limits derived from validated options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Badger's `maxBatchSize`: 15% of the memtable size.
    pub max_batch_size: u64,
    /// Badger's `maxBatchCount`: `max_batch_size / 96`.
    pub max_batch_count: u64,
    /// The largest value accepted.
    pub max_value_size: u64,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidOption {
        name,
        reason: reason.into(),
    }
}

fn unsupported(feature: &'static str) -> Error {
    Error::Unsupported { feature }
}

impl Options {
    /// Checks every option; returns the derived limits.
    pub fn validate(&self) -> Result<Limits> {
        if self.in_memory {
            if !self.dir.as_os_str().is_empty() || !self.value_dir.as_os_str().is_empty() {
                return Err(invalid("dir", "must be empty for an in-memory database"));
            }
            if self.read_only {
                return Err(invalid("read_only", "an in-memory database cannot be read-only"));
            }
        } else if self.dir.as_os_str().is_empty() {
            return Err(invalid("dir", "must name a directory"));
        } else if self.value_dir.as_os_str().is_empty() {
            return Err(invalid("value_dir", "must name a directory"));
        }
        if self.mem_table_size < 1 << 10 {
            return Err(invalid("mem_table_size", "must be at least 1 KiB"));
        }
        if self.mem_table_size > 1 << 31 {
            return Err(invalid("mem_table_size", "must be at most 2 GiB"));
        }
        let max_batch_size = 15 * self.mem_table_size / 100;
        let max_batch_count = max_batch_size / MAX_NODE_SIZE;
        if self.num_compactors == 1 {
            return Err(invalid(
                "num_compactors",
                "cannot be 1: use 0 (no compaction) or at least 2",
            ));
        }
        if self.num_versions_to_keep == 0 {
            return Err(invalid("num_versions_to_keep", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.vlog_percentile) || self.vlog_percentile.is_nan() {
            return Err(invalid("vlog_percentile", "must be within 0.0..=1.0"));
        }
        if self.value_threshold > MAX_VALUE_THRESHOLD {
            return Err(invalid(
                "value_threshold",
                format!("must be at most {MAX_VALUE_THRESHOLD}"),
            ));
        }
        if self.value_threshold > max_batch_size {
            return Err(invalid(
                "value_threshold",
                format!(
                    "{} exceeds the max batch size {max_batch_size} (15% of mem_table_size)",
                    self.value_threshold
                ),
            ));
        }
        if !(1 << 20..2 << 30).contains(&self.value_log_file_size) {
            return Err(invalid("value_log_file_size", "must be in [1 MiB, 2 GiB)"));
        }
        if self.value_log_max_entries == 0 {
            return Err(invalid("value_log_max_entries", "must be at least 1"));
        }
        if self.block_size < 64 || self.block_size > 1 << 30 {
            return Err(invalid("block_size", "must be in [64 B, 1 GiB]"));
        }
        if !(0.0..1.0).contains(&self.bloom_false_positive) || self.bloom_false_positive.is_nan() {
            return Err(invalid(
                "bloom_false_positive",
                "must be within 0.0..1.0 (0 disables filters)",
            ));
        }
        if self.max_levels < 2 || self.max_levels > 32 {
            return Err(invalid("max_levels", "must be in 2..=32"));
        }
        if self.level_size_multiplier < 2 {
            return Err(invalid("level_size_multiplier", "must be at least 2"));
        }
        if self.table_size_multiplier < 1 {
            return Err(invalid("table_size_multiplier", "must be at least 1"));
        }
        if self.base_table_size == 0 || self.base_level_size == 0 {
            return Err(invalid("base_table_size", "base sizes must be positive"));
        }
        if self.num_memtables == 0 {
            return Err(invalid("num_memtables", "must be at least 1"));
        }
        if self.num_level_zero_tables == 0 {
            return Err(invalid("num_level_zero_tables", "must be at least 1"));
        }
        if self.num_level_zero_tables_stall <= self.num_level_zero_tables {
            return Err(invalid(
                "num_level_zero_tables_stall",
                "must exceed num_level_zero_tables",
            ));
        }
        if self.compression == CompressionType::Zstd && !(-7..=22).contains(&self.zstd_compression_level) {
            return Err(invalid("zstd_compression_level", "must be in -7..=22"));
        }
        if !self.encryption_key.is_empty() {
            if ![16, 24, 32].contains(&self.encryption_key.len()) {
                return Err(invalid("encryption_key", "must be 16, 24 or 32 bytes"));
            }
            return Err(unsupported("encryption at rest"));
        }
        if self.vlog_percentile > 0.0 && self.in_memory {
            return Err(invalid(
                "vlog_percentile",
                "moves values between the tree and the value log, and in-memory mode has no value log",
            ));
        }
        if self.namespace_offset >= 0 {
            return Err(unsupported("banned namespaces (namespace_offset)"));
        }
        if self.namespace_offset < -1 {
            return Err(invalid("namespace_offset", "must be -1 (off) or an offset"));
        }
        if let Some(r) = self.auto_value_log_gc
            && !(r > 0.0 && r < 1.0)
        {
            return Err(invalid(
                "auto_value_log_gc",
                "the discard ratio must be in (0, 1)",
            ));
        }
        if self.index_cache_size > 0 {
            return Err(unsupported(
                "index_cache_size (table indexes are kept decoded in memory)",
            ));
        }
        if self.in_memory && self.value_threshold == 0 {
            return Err(invalid(
                "value_threshold",
                "in-memory mode keeps values below the threshold and has no value log, so 0 would refuse every value",
            ));
        }
        Ok(Limits {
            max_batch_size,
            max_batch_count,
            // Badger: a value may be as large as a value-log file; in memory
            // (no value log) it must stay below the configured threshold.
            max_value_size: if self.in_memory {
                self.value_threshold - 1
            } else {
                self.value_log_file_size
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_badgers() {
        let o = Options::new("/tmp/x");
        let l = o.validate().unwrap();
        assert_eq!(l.max_batch_size, 10_066_329);
        assert_eq!(l.max_batch_count, 104_857);
        assert_eq!(o.value_log_file_size, 1_073_741_823);
        assert_eq!(o.value_threshold, 1 << 20);
    }

    #[test]
    fn every_bad_option_is_named() {
        let base = Options::new("/tmp/x");
        let cases: Vec<(Options, &str)> = vec![
            (base.clone().with_num_compactors(1), "num_compactors"),
            (base.clone().with_value_threshold(2 << 20), "value_threshold"),
            (
                base.clone()
                    .with_mem_table_size(1 << 20)
                    .with_value_threshold(1 << 20),
                "value_threshold",
            ),
            (base.clone().with_value_log_file_size(1), "value_log_file_size"),
            (base.clone().with_vlog_percentile(1.5), "vlog_percentile"),
            (
                base.clone().with_bloom_false_positive(1.0),
                "bloom_false_positive",
            ),
            (base.clone().with_max_levels(1), "max_levels"),
            (
                base.clone().with_num_level_zero_tables_stall(5),
                "num_level_zero_tables_stall",
            ),
            (base.clone().with_mem_table_size(10), "mem_table_size"),
            (base.clone().with_encryption_key(vec![1; 7]), "encryption_key"),
            (base.clone().with_num_versions_to_keep(0), "num_versions_to_keep"),
            (Options::new(""), "dir"),
            (Options::in_memory().with_read_only(true), "read_only"),
        ];
        for (o, name) in cases {
            match o.validate() {
                Err(Error::InvalidOption { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: expected InvalidOption, got {other:?}"),
            }
        }
    }

    #[test]
    fn unbuilt_features_are_refused_not_ignored() {
        let base = Options::new("/tmp/x");
        for o in [
            base.clone().with_encryption_key(vec![1; 16]),
            base.clone().with_namespace_offset(0),
            base.clone().with_index_cache_size(1 << 20),
        ] {
            assert!(matches!(o.validate(), Err(Error::Unsupported { .. })), "{o:?}");
        }
    }
}
