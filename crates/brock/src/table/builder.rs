//! Builds a table file byte for byte as Go Badger's `table.Builder` does.
//!
//! Badger's `table/builder.go`. Entries arrive in internal-key order. A block
//! is closed before an entry whose estimated size would push it past
//! `block_size` (Badger's estimate: entries so far + 6 + key + value struct +
//! (n+1)·4 + 4 + 8 + 4). Each closed block gets its trailer, then is
//! compressed. `finish` writes the flatbuffers index (bloom filter over the
//! user-key hash of every entry, max version, counts and sizes), its checksum
//! and the two length words.
//!
//! Differs from Badger: blocks are compressed on the calling thread, so the
//! capacity estimate ([`TableBuilder::reached_capacity`]) always sees the
//! compressed sizes of every closed block and splitting is deterministic
//! (Badger compresses in goroutines and reads a size that may lag).

use super::block::BlockBuilder;
use super::compression;
use crate::format::table_index::{BlockHandle, TableIndex};
use crate::format::value_struct::ValueStruct;
use crate::format::{CompressionType, bloom, checksum, key};

/// Options of one table build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuilderOptions {
    /// Target uncompressed block size (Badger `BlockSize`, 4096).
    pub block_size: usize,
    /// Bloom filter false-positive rate; 0 disables the filter.
    pub bloom_false_positive: f64,
    /// Block compression.
    pub compression: CompressionType,
    /// Zstd level when compressing with zstd.
    pub zstd_level: i32,
    /// Target table size for [`TableBuilder::reached_capacity`].
    pub table_size: u64,
}

impl Default for BuilderOptions {
    fn default() -> Self {
        BuilderOptions {
            block_size: 4096,
            bloom_false_positive: 0.01,
            compression: CompressionType::Snappy,
            zstd_level: compression::DEFAULT_ZSTD_LEVEL,
            table_size: 2 << 20,
        }
    }
}

/// Accumulates sorted entries into a table image.
#[derive(Debug)]
pub struct TableBuilder {
    opts: BuilderOptions,
    cur: BlockBuilder,
    /// Closed blocks as stored (compressed), with their base keys.
    blocks: Vec<(Vec<u8>, Vec<u8>)>,
    key_hashes: Vec<u32>,
    max_version: u64,
    /// Sum of value-pointer lengths of the entries (value-log bytes they own).
    vlog_bytes: u32,
    stale_data_size: usize,
    uncompressed_size: u32,
    stored_size: u32,
    /// Badger's estimate of index bytes per block (`lenOffsets`).
    index_estimate: u32,
    /// Uncompressed copies of the first closed blocks, kept for the block
    /// cache while they fit in the budget ([`TableBuilder::keep_raw_blocks`]).
    raw_blocks: Vec<Vec<u8>>,
    /// Bytes of uncompressed blocks still to keep.
    raw_budget: usize,
}

impl TableBuilder {
    /// An empty builder.
    pub fn new(opts: BuilderOptions) -> Self {
        TableBuilder {
            opts,
            cur: BlockBuilder::default(),
            blocks: Vec::new(),
            key_hashes: Vec::new(),
            max_version: 0,
            vlog_bytes: 0,
            stale_data_size: 0,
            uncompressed_size: 0,
            stored_size: 0,
            index_estimate: 0,
            raw_blocks: Vec::new(),
            raw_budget: 0,
        }
    }

    /// Keeps an uncompressed copy of each closed block, from the first on,
    /// while their total stays within `budget` bytes, so that a flush can
    /// put the blocks it writes straight into the block cache.
    pub fn keep_raw_blocks(&mut self, budget: usize) {
        self.raw_budget = budget;
    }

    /// Closes the open block and hands over the uncompressed blocks kept
    /// so far ([`keep_raw_blocks`](Self::keep_raw_blocks)): block `i` of the
    /// table is element `i`. Call after the last [`add`](Self::add).
    pub fn take_raw_blocks(&mut self) -> Vec<Vec<u8>> {
        self.finish_block();
        self.raw_budget = 0;
        std::mem::take(&mut self.raw_blocks)
    }

    /// True when nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.key_hashes.is_empty()
    }

    /// Entries added so far.
    pub fn key_count(&self) -> usize {
        self.key_hashes.len()
    }

    /// Adds an entry. `vlog_len` is the value pointer's `len` when the value
    /// lives in the value log, else 0.
    pub fn add(&mut self, key: &[u8], value: &ValueStruct<'_>, vlog_len: u32) {
        self.add_inner(key, value, vlog_len, false);
    }

    /// Adds an entry that is stale (kept only because a snapshot may need it);
    /// it counts toward the table's stale data size.
    pub fn add_stale(&mut self, key: &[u8], value: &ValueStruct<'_>, vlog_len: u32) {
        self.stale_data_size += key.len() + value.value.len() + 4 + 4;
        self.add_inner(key, value, vlog_len, true);
    }

    /// Makes the table's recorded max version at least `version` (a
    /// compaction passes on the newest version of its inputs, even when the
    /// entry that carried it was dropped).
    pub fn raise_max_version(&mut self, version: u64) {
        self.max_version = self.max_version.max(version);
    }

    fn add_inner(&mut self, key: &[u8], value: &ValueStruct<'_>, vlog_len: u32, stale: bool) {
        if self.should_finish_block(key, value) {
            if stale {
                self.stale_data_size += key.len() + 4 + 4;
            }
            self.finish_block();
        }
        self.key_hashes.push(bloom::hash(key::user_key(key)));
        self.max_version = self.max_version.max(key::version(key));
        self.cur.add(key, value);
        self.vlog_bytes = self.vlog_bytes.wrapping_add(vlog_len);
    }

    fn should_finish_block(&self, key: &[u8], value: &ValueStruct<'_>) -> bool {
        let n = self.cur.count();
        if n == 0 {
            return false;
        }
        let trailer = (n + 1) * 4 + 4 + 8 + 4;
        let estimate = self.cur.entries_len() + 6 + key.len() + value.encoded_len() + trailer;
        estimate > self.opts.block_size
    }

    fn finish_block(&mut self) {
        if self.cur.count() == 0 {
            return;
        }
        let (raw, base_key) = self.cur.finish();
        self.uncompressed_size = self.uncompressed_size.wrapping_add(raw.len() as u32);
        self.index_estimate += (base_key.len().div_ceil(4) * 4) as u32 + 40;
        // Blocks are kept only while none has been skipped, so that the
        // kept ones are exactly the table's first blocks.
        let keep = raw.len() <= self.raw_budget;
        if !keep {
            self.raw_budget = 0;
        }
        let (stored, kept) = match self.opts.compression {
            CompressionType::None if keep => (raw.clone(), Some(raw)),
            CompressionType::None => (raw, None),
            kind => (
                compression::compress(kind, &raw, self.opts.zstd_level),
                keep.then_some(raw),
            ),
        };
        if let Some(raw) = kept {
            self.raw_budget -= raw.len();
            self.raw_blocks.push(raw);
        }
        self.stored_size = self.stored_size.wrapping_add(stored.len() as u32);
        self.blocks.push((stored, base_key));
    }

    /// Badger's `ReachedCapacity`: the estimated file size passed 95% of the
    /// target table size.
    pub fn reached_capacity(&self) -> bool {
        let blocks = u64::from(self.stored_size) + (self.cur.count() * 4) as u64 + 4 + 8 + 4;
        let estimate = blocks + 4 + u64::from(self.index_estimate);
        estimate > (self.opts.table_size as f64 * 0.95) as u64
    }

    /// The finished table's bytes (Badger's `Finish`); empty when nothing
    /// was added.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.stored_size as usize + self.index_estimate as usize + 64);
        let written = self.finish_to(|piece| {
            out.extend_from_slice(piece);
            Ok::<(), std::convert::Infallible>(())
        });
        match written {
            Ok(_) => out,
            Err(never) => match never {},
        }
    }

    /// Hands the finished table to `sink` in pieces of about 1 MiB, in
    /// order, so that a large table is written without first being copied
    /// into one buffer; returns the bytes handed over (0 when nothing was
    /// added).
    pub fn finish_to<E>(mut self, mut sink: impl FnMut(&[u8]) -> Result<(), E>) -> Result<u64, E> {
        const PIECE: usize = 1 << 20;
        self.finish_block();
        if self.blocks.is_empty() {
            return Ok(0);
        }
        let bloom_filter = if self.opts.bloom_false_positive > 0.0 {
            let bits = bloom::bits_per_key(self.key_hashes.len(), self.opts.bloom_false_positive);
            bloom::build_filter(&self.key_hashes, bits)
        } else {
            Vec::new()
        };
        let mut piece: Vec<u8> = Vec::with_capacity(PIECE.min(self.stored_size as usize) + 64);
        let mut handles = Vec::with_capacity(self.blocks.len());
        let mut offset = 0u64;
        for (stored, base_key) in self.blocks {
            handles.push(BlockHandle {
                base_key,
                offset: offset as u32,
                len: stored.len() as u32,
            });
            offset += stored.len() as u64;
            if !piece.is_empty() && piece.len() + stored.len() > PIECE {
                sink(&piece)?;
                piece.clear();
            }
            piece.extend_from_slice(&stored);
        }
        let data_size = offset as u32;
        let index = TableIndex {
            blocks: handles,
            bloom_filter,
            max_version: self.max_version,
            key_count: self.key_hashes.len() as u32,
            uncompressed_size: self.uncompressed_size,
            on_disk_size: self.vlog_bytes.wrapping_add(data_size),
            stale_data_size: self.stale_data_size as u32,
        }
        .encode();
        let chk = checksum::encode_crc32c_checksum(&index);
        piece.extend_from_slice(&index);
        piece.extend_from_slice(&(index.len() as u32).to_be_bytes());
        piece.extend_from_slice(&chk);
        piece.extend_from_slice(&(chk.len() as u32).to_be_bytes());
        sink(&piece)?;
        Ok(offset + (index.len() + 4 + chk.len() + 4) as u64)
    }
}
