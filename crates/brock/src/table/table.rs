//! An open table (`NNNNNN.sst`): footer, index, and block access.
//!
//! Badger's `table/table.go`. File layout (see `docs/format.md`):
//!
//! ```text
//! block* | index (TableIndex flatbuffer) | u32 BE index_len | checksum (protobuf) | u32 BE checksum_len
//! ```
//!
//! Contract: [`Table::open`] reads the footer and index, always verifies the
//! index checksum (as Badger does), and finds the smallest and biggest keys.
//! Blocks are read with positional reads, decompressed as the MANIFEST's
//! compression for this table says, and their checksums verified unless the
//! caller opts out. A `Table` is immutable and `Send + Sync`.
//!
//! Differs from Badger: block checksums are verified on every read by default
//! (Badger's default is `NoVerification`), and a bad index or block is a
//! `Corruption` error naming the file and offset, never a panic.

use super::block::Block;
use super::cache::{BlockCache, BlockSlots};
use super::compression;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::key::KeySummaries;
use crate::format::table_index::TableIndex;
use crate::format::{CompressionType, checksum, compare_keys, user_key};
use crate::format::{bloom, value_struct::ValueStruct};
use crate::iterator::KvIterator;
use crate::vfs::RandomAccessFile;
use std::path::Path;
use std::sync::Arc;

/// How a table is to be read: facts that live in the MANIFEST, not the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// The table id (its file name).
    pub id: u64,
    /// Block compression.
    pub compression: CompressionType,
    /// Data-key id; non-zero means encrypted.
    pub key_id: u64,
    /// Verify each block's checksum when it is read.
    pub verify_blocks: bool,
}

/// An open, immutable table.
#[derive(Debug)]
pub struct Table {
    file: Arc<dyn RandomAccessFile>,
    opts: TableOptions,
    index: TableIndex,
    index_offset: u64,
    index_len: u64,
    smallest: Vec<u8>,
    biggest: Vec<u8>,
    cache: Option<BlockCache>,
    /// Direct slots into the cache, made on the first cached read.
    slots: std::sync::OnceLock<Arc<BlockSlots>>,
    /// Summaries of the blocks' base keys, for a cache-friendly block search.
    base_summaries: KeySummaries,
    /// Unique per opened table, so cached blocks never outlive their table
    /// even when ids restart (drop-all).
    cache_id: u64,
    opened_at: std::time::Instant,
}

static NEXT_CACHE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Table {
    /// Opens a table: reads the footer and the index, verifies the index
    /// checksum, and finds the key range.
    pub fn open(file: Arc<dyn RandomAccessFile>, opts: TableOptions) -> Result<Self> {
        Self::open_cached(file, opts, None)
    }

    /// Opens a table whose blocks are cached in `cache`.
    pub fn open_cached(
        file: Arc<dyn RandomAccessFile>,
        opts: TableOptions,
        cache: Option<BlockCache>,
    ) -> Result<Self> {
        let path = file.path().to_path_buf();
        if opts.key_id != 0 {
            return Err(Error::EncryptionNotSupported {
                file: path,
                key_id: opts.key_id,
            });
        }
        let size = file.len();
        let corrupt = |offset: u64, kind: CorruptionKind| Error::corruption(&path, offset, kind);
        let read_u32 = |at: u64| -> Result<u32> {
            let mut b = [0u8; 4];
            file.read_exact_at(&mut b, at)?;
            Ok(u32::from_be_bytes(b))
        };
        if size < 8 {
            return Err(corrupt(
                0,
                CorruptionKind::Truncated {
                    needed: 8,
                    available: size,
                },
            ));
        }
        let chk_len = u64::from(read_u32(size - 4)?);
        let chk_start = (size - 4)
            .checked_sub(chk_len)
            .filter(|&s| s >= 4)
            .ok_or_else(|| {
                corrupt(
                    size - 4,
                    CorruptionKind::OutOfRange {
                        field: "table checksum length",
                        value: chk_len,
                        limit: size - 8,
                    },
                )
            })?;
        let chk = file.read_vec_at(chk_start, chk_len)?;
        let index_len = u64::from(read_u32(chk_start - 4)?);
        let index_offset = (chk_start - 4).checked_sub(index_len).ok_or_else(|| {
            corrupt(
                chk_start - 4,
                CorruptionKind::OutOfRange {
                    field: "table index length",
                    value: index_len,
                    limit: chk_start - 4,
                },
            )
        })?;
        let index_bytes = file.read_vec_at(index_offset, index_len)?;
        checksum::verify_checksum(&index_bytes, &chk).map_err(|e| e.in_file(&path, index_offset))?;
        let index = TableIndex::decode(&index_bytes).map_err(|e| e.in_file(&path, index_offset))?;
        if index.blocks.is_empty() {
            return Err(corrupt(
                index_offset,
                CorruptionKind::BadIndex {
                    detail: "table has no blocks",
                },
            ));
        }
        let mut end = 0u64;
        for b in &index.blocks {
            let (off, len) = (u64::from(b.offset), u64::from(b.len));
            // Blocks are laid end to end from offset 0 up to the index.
            if off != end || off + len > index_offset || len == 0 {
                return Err(corrupt(
                    index_offset,
                    CorruptionKind::OutOfRange {
                        field: "block offset",
                        value: off,
                        limit: index_offset,
                    },
                ));
            }
            end = off + len;
        }
        let mut t = Table {
            file,
            opts,
            smallest: index.blocks[0].base_key.clone(),
            biggest: Vec::new(),
            index,
            index_offset,
            index_len,
            cache: None,
            slots: std::sync::OnceLock::new(),
            base_summaries: KeySummaries::default(),
            cache_id: NEXT_CACHE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            opened_at: std::time::Instant::now(),
        };
        let blocks = &t.index.blocks;
        let mut sums = KeySummaries::with_bounds(
            &blocks[0].base_key,
            &blocks[blocks.len() - 1].base_key,
            blocks.len(),
        );
        for b in blocks {
            sums.push(&b.base_key);
        }
        sums.finish();
        t.base_summaries = sums;
        let last = t.block(t.index.blocks.len() - 1)?;
        last.key_into(last.len() - 1, &mut t.biggest);
        t.cache = cache;
        Ok(t)
    }

    /// The table id.
    pub fn id(&self) -> u64 {
        self.opts.id
    }

    /// When this process opened (or built) the table.
    pub fn opened_at(&self) -> std::time::Instant {
        self.opened_at
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Options it was opened with.
    pub fn options(&self) -> &TableOptions {
        &self.opts
    }

    /// The decoded index.
    pub fn index(&self) -> &TableIndex {
        &self.index
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.file.len()
    }

    /// Bytes of blocks (where the index starts).
    pub fn data_size(&self) -> u64 {
        self.index_offset
    }

    /// Length of the index in bytes.
    pub fn index_len(&self) -> u64 {
        self.index_len
    }

    /// The smallest internal key.
    pub fn smallest(&self) -> &[u8] {
        &self.smallest
    }

    /// The biggest internal key.
    pub fn biggest(&self) -> &[u8] {
        &self.biggest
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.index.blocks.len()
    }

    /// Whether the bloom filter rules out `user_key`.
    pub fn does_not_have(&self, user_key: &[u8]) -> bool {
        self.filter_rules_out(bloom::hash(user_key))
    }

    /// Whether the bloom filter rules out a user key of filter hash `hash`.
    fn filter_rules_out(&self, hash: u32) -> bool {
        !self.index.bloom_filter.is_empty() && !bloom::may_contain(&self.index.bloom_filter, hash)
    }

    /// Block `i`, from the cache or read, decompressed and validated.
    pub fn block(&self, i: usize) -> Result<Arc<Block>> {
        if let Some(c) = &self.cache {
            let slots = self
                .slots
                .get_or_init(|| Arc::new(BlockSlots::new(self.block_count())));
            return c.get_or_read(self.cache_id, slots, i as u32, || self.read_block(i));
        }
        Ok(Arc::new(self.read_block(i)?))
    }

    /// Puts the table's first blocks, given uncompressed as built
    /// ([`TableBuilder::take_raw_blocks`](super::TableBuilder::take_raw_blocks)),
    /// into the block cache, as a read of each would. Blocks already cached
    /// are replaced; without a cache this does nothing.
    pub fn prepopulate(&self, raw_blocks: Vec<Vec<u8>>) -> Result<()> {
        let Some(c) = &self.cache else {
            return Ok(());
        };
        let slots = self
            .slots
            .get_or_init(|| Arc::new(BlockSlots::new(self.block_count())));
        for (i, data) in raw_blocks.into_iter().enumerate().take(self.block_count()) {
            // Built by this process a moment ago: no checksum to verify.
            let block = Block::decode(data, false).map_err(|e| {
                Error::corruption(self.path(), u64::from(self.index.blocks[i].offset), e.kind)
            })?;
            c.insert(self.cache_id, slots, i as u32, Arc::new(block));
        }
        Ok(())
    }

    /// Drops the table's blocks from the block cache: for a table being
    /// deleted, whose blocks would otherwise sit there until evicted. A
    /// reader still holding the table reads them from its file again (and
    /// may cache them again; those then wait for eviction).
    pub fn forget_cached_blocks(&self) {
        if let (Some(c), Some(slots)) = (&self.cache, self.slots.get()) {
            c.forget(self.cache_id, slots);
        }
    }

    /// Reads, decompresses and validates block `i`, bypassing the cache.
    pub fn read_block(&self, i: usize) -> Result<Block> {
        let h = &self.index.blocks[i];
        let raw = self.file.read_vec_at(u64::from(h.offset), u64::from(h.len))?;
        let limit = (self.index.uncompressed_size as usize).max(raw.len());
        let data = compression::decompress(self.opts.compression, raw, limit)
            .map_err(|e| e.in_file(self.path(), u64::from(h.offset)))?;
        Block::decode(data, self.opts.verify_blocks).map_err(|e| {
            // Offsets inside a decompressed block are not file offsets: then name the block start.
            let within = if self.opts.compression == CompressionType::None {
                e.offset
            } else {
                0
            };
            Error::corruption(self.path(), u64::from(h.offset) + within, e.kind)
        })
    }

    /// Index of the block that may hold the first key ≥ `key`.
    fn block_for(&self, key: &[u8]) -> usize {
        // First block whose base key is > key; the answer is in the block before it.
        let blocks = &self.index.blocks;
        self.base_summaries
            .partition_point(key, |i| {
                compare_keys(&blocks[i].base_key, key) != std::cmp::Ordering::Greater
            })
            .saturating_sub(1)
    }

    /// The first entry with internal key ≥ `key`: its key and value.
    pub fn seek(&self, key: &[u8]) -> Result<Option<(Vec<u8>, OwnedValue)>> {
        let mut it = super::TableIterator::new(self);
        it.seek(key)?;
        Ok(it.entry())
    }

    /// The newest version ≤ the version in `key` of its user key, if this
    /// table has one; its value is a range of the cached block, which it
    /// keeps alive ([`ValueBytes`]).
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>> {
        self.get_hashed(key, bloom::hash(user_key(key)))
    }

    /// As [`get`](Self::get), with the user key's filter hash ([`bloom::hash`]).
    pub fn get_hashed(&self, key: &[u8], hash: u32) -> Result<Option<Found>> {
        let uk = user_key(key);
        if self.filter_rules_out(hash) {
            return Ok(None);
        }
        let mut bi = self.block_for(key);
        while bi < self.block_count() {
            let b = self.block(bi)?;
            let e = b.seek(key);
            if e < b.len() {
                let (same, version) = b.entry_matches(e, uk);
                if !same {
                    return Ok(None);
                }
                let v = b.value(e);
                let (meta, user_meta, expires_at) = (v.meta, v.user_meta, v.expires_at);
                let range = b.range_of(v.value);
                return Ok(Some(Found {
                    version,
                    meta,
                    user_meta,
                    expires_at,
                    value: ValueBytes::in_block(b, range),
                }));
            }
            bi += 1;
        }
        Ok(None)
    }

    pub(super) fn first_block_for(&self, key: &[u8]) -> usize {
        self.block_for(key)
    }
}

/// An entry found by a point lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its version.
    pub version: u64,
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// The value or an encoded value pointer.
    pub value: ValueBytes,
}

/// A found key's or value's bytes: inline when short, shared, or a range of
/// the cached block the value was found in, which it keeps alive. A lookup
/// already holds the block, so handing it over costs neither an allocation
/// nor a copy of the value's (often cold) cache lines; only
/// [`to_bytes`](Self::to_bytes) copies.
#[derive(Clone)]
pub struct ValueBytes(ValueRepr);

/// Bytes up to this length are held inline by [`ValueBytes::copy_of`].
pub const INLINE_BYTES: usize = 32;

#[derive(Clone)]
enum ValueRepr {
    Inline { len: u8, buf: [u8; INLINE_BYTES] },
    Own(bytes::Bytes),
    InBlock { block: Arc<Block>, start: u32, len: u32 },
}

impl ValueBytes {
    /// Bytes `range` of `block`.
    pub fn in_block(block: Arc<Block>, range: std::ops::Range<usize>) -> Self {
        // A block is at most a few MiB; a range that does not fit in `u32`
        // cannot come from one, and is kept as an owned copy instead.
        match (u32::try_from(range.start), u32::try_from(range.len())) {
            (Ok(start), Ok(len)) => ValueBytes(ValueRepr::InBlock { block, start, len }),
            _ => ValueBytes(ValueRepr::Own(bytes::Bytes::copy_from_slice(block.bytes(range)))),
        }
    }

    /// A copy of `b`: inline (no allocation) when short.
    pub fn copy_of(b: &[u8]) -> Self {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE_BYTES => {
                let mut buf = [0; INLINE_BYTES];
                buf[..b.len()].copy_from_slice(b);
                ValueBytes(ValueRepr::Inline { len, buf })
            }
            _ => ValueBytes(ValueRepr::Own(bytes::Bytes::copy_from_slice(b))),
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            ValueRepr::Inline { len, buf } => &buf[..usize::from(*len)],
            ValueRepr::Own(b) => b,
            ValueRepr::InBlock { block, start, len } => {
                let start = *start as usize;
                block.bytes(start..start + *len as usize)
            }
        }
    }

    /// The bytes as [`Bytes`](bytes::Bytes): a small value is copied, a
    /// large one shares the block's memory.
    pub fn to_bytes(&self) -> bytes::Bytes {
        match &self.0 {
            ValueRepr::Inline { .. } => bytes::Bytes::copy_from_slice(self.as_slice()),
            ValueRepr::Own(b) => b.clone(),
            ValueRepr::InBlock { block, start, len } => {
                let start = *start as usize;
                block.shared_bytes(start..start + *len as usize)
            }
        }
    }
}

impl From<bytes::Bytes> for ValueBytes {
    fn from(b: bytes::Bytes) -> Self {
        ValueBytes(ValueRepr::Own(b))
    }
}

impl std::ops::Deref for ValueBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for ValueBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ValueBytes {}

impl std::fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&bytes::Bytes::copy_from_slice(self), f)
    }
}

impl Found {
    /// True when this is a value pointer to the entry at `offset` of
    /// value-log file `fid` (value-log GC asks this of a key's newest copy).
    pub fn points_at(&self, fid: u32, offset: u32) -> bool {
        self.meta & crate::format::meta::BIT_VALUE_POINTER != 0
            && crate::format::ValuePointer::decode(&self.value)
                .is_ok_and(|vp| vp.fid == fid && vp.offset == offset)
    }
}

/// A value struct that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedValue {
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// The value or an encoded value pointer.
    pub value: Vec<u8>,
}

impl OwnedValue {
    /// Copies a borrowed value struct.
    pub fn from_ref(v: &ValueStruct<'_>) -> Self {
        OwnedValue {
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: v.value.to_vec(),
        }
    }

    /// Borrows as a value struct.
    pub fn as_ref(&self) -> ValueStruct<'_> {
        ValueStruct {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: &self.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{CompressionType, ValueStruct, key_with_version};
    use crate::table::{BuilderOptions, TableBuilder, TableIterator};

    fn key(i: u32) -> Vec<u8> {
        key_with_version(format!("k{i:06}").as_bytes(), 1)
    }

    /// A table of 2,000 entries with the builder asked to keep up to
    /// `budget` bytes of uncompressed blocks: the table's bytes and the
    /// kept blocks.
    fn build(budget: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut b = TableBuilder::new(BuilderOptions::default());
        b.keep_raw_blocks(budget);
        for i in 0..2000u32 {
            let value = vec![(i % 251) as u8; 100];
            let v = ValueStruct {
                value: &value,
                ..ValueStruct::default()
            };
            b.add(&key(i), &v, 0);
        }
        let raw = b.take_raw_blocks();
        (b.finish(), raw)
    }

    fn open(bytes: &[u8], cache: &BlockCache) -> Table {
        let vfs = crate::vfs::MemVfs::new();
        let path = Path::new("000001.sst");
        vfs.put_file(path, bytes);
        let file = crate::vfs::Vfs::open_read(&vfs, path).unwrap();
        let opts = TableOptions {
            id: 1,
            compression: CompressionType::Snappy,
            key_id: 0,
            verify_blocks: true,
        };
        Table::open_cached(file, opts, Some(cache.clone())).unwrap()
    }

    fn walk(t: &Table) -> u32 {
        let mut it = TableIterator::new(t);
        it.seek_to_first().unwrap();
        let mut n = 0;
        while it.valid() {
            assert_eq!(it.key(), key(n));
            assert_eq!(it.value().value, vec![(n % 251) as u8; 100]);
            n += 1;
            it.next().unwrap();
        }
        n
    }

    /// The kept blocks are the table's blocks as stored, uncompressed; put
    /// in the cache, they are what reads find, so a full walk adds nothing.
    #[test]
    fn prepopulated_blocks_serve_reads() {
        let (bytes, raw) = build(usize::MAX);
        let cache = BlockCache::new(64 << 20, 4096);
        let t = open(&bytes, &cache);
        assert!(t.block_count() > 10);
        assert_eq!(raw.len(), t.block_count());
        for (i, r) in raw.iter().enumerate() {
            assert_eq!(&t.read_block(i).unwrap().bytes(0..r.len()), r, "block {i}");
        }
        t.prepopulate(raw).unwrap();
        let cached = cache.weight();
        assert!(cached > 0);
        assert_eq!(walk(&t), 2000);
        assert_eq!(cache.weight(), cached, "a walk read blocks the flush had cached");
        for i in (0..2000).step_by(97) {
            let found = t.get(&key(i)).unwrap().unwrap();
            assert_eq!(&*found.value, &vec![(i % 251) as u8; 100][..]);
        }
        // A table being deleted takes its blocks out of the cache; reads
        // still work, from the file.
        t.forget_cached_blocks();
        assert_eq!(cache.weight(), 0);
        assert_eq!(walk(&t), 2000);
    }

    /// Under a budget the builder keeps only the first blocks that fit,
    /// and the rest are read from the file as usual.
    #[test]
    fn a_budget_keeps_the_first_blocks() {
        let (_, all) = build(usize::MAX);
        let budget = all[0].len() + all[1].len() + all[2].len();
        let (bytes, raw) = build(budget + 1);
        assert_eq!(raw, all[..3]);
        let cache = BlockCache::new(64 << 20, 4096);
        let t = open(&bytes, &cache);
        t.prepopulate(raw).unwrap();
        let cached = cache.weight();
        assert_eq!(walk(&t), 2000);
        assert!(
            cache.weight() > cached,
            "blocks past the budget were not read into the cache"
        );
        let (_, none) = build(0);
        assert!(none.is_empty());
    }
}
