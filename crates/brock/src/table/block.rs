//! One table block: prefix-compressed entries and the trailer that indexes them.
//!
//! Badger's `table/builder.go` (writing) and `table/table.go` `block()` plus
//! `table/iterator.go` (reading). A block as built, before compression:
//!
//! ```text
//! entry*      u16 LE overlap | u16 LE diff_len | diff key bytes | value struct
//! offsets     u32 LE × n      (entry starts, relative to the block)
//! count       u32 BE n
//! checksum    Checksum protobuf over every byte before it
//! chk_len     u32 BE
//! ```
//!
//! `overlap` is the length of the prefix shared with the block's base key (its
//! first key), not with the previous key. An entry ends where the next starts,
//! or at the offsets array.
//!
//! Contract: [`Block::decode`] validates every offset, header and value struct
//! once, so the accessors afterwards index without further checks; bad bytes
//! are a [`DecodeError`] at decode time, never a panic later.

use crate::error::{CorruptionKind, DecodeError};
use crate::format::checksum;
use crate::format::cursor::{u16_le_at, u32_be_at, u32_le_at};
use crate::format::key::{KeySummaries, bytes_equal, compare_keys};
use crate::format::value_struct::ValueStruct;
use bytes::Bytes;
use std::cmp::Ordering;

/// Bytes of an entry header.
pub const ENTRY_HEADER_LEN: usize = 4;

/// Values up to this size are copied out of a block (or a memtable) rather
/// than shared: sharing touches the buffer's reference count, a cold line
/// and an atomic, which costs more than copying a few hundred bytes.
pub const COPY_VALUES_UP_TO: usize = 512;

/// A decoded, validated block.
#[derive(Debug, Clone)]
pub struct Block {
    data: Bytes,
    /// Where the offsets array starts (= end of the last entry).
    entries_end: usize,
    /// Number of entries.
    count: usize,
    /// Length of the base key (the first entry's full key).
    base_len: usize,
    /// Summaries of the entries' keys, each with the entry's offset, so a
    /// seek reads a few contiguous lines instead of an offset and an entry
    /// header per step.
    summaries: KeySummaries,
}

fn bad(offset: usize, detail: &'static str) -> DecodeError {
    DecodeError::new(offset, CorruptionKind::BadIndex { detail })
}

impl Block {
    /// Parses and validates an uncompressed block; checks its checksum when `verify`.
    pub fn decode(data: Vec<u8>, verify: bool) -> Result<Self, DecodeError> {
        let len = data.len();
        let chk_len =
            u32_be_at(&data, len.wrapping_sub(4)).ok_or_else(|| DecodeError::truncated(0, 4, len))? as usize;
        let chk_start = len.checked_sub(4 + chk_len).ok_or_else(|| {
            DecodeError::new(
                len - 4,
                CorruptionKind::OutOfRange {
                    field: "block checksum length",
                    value: chk_len as u64,
                    limit: len as u64 - 4,
                },
            )
        })?;
        let count_at = chk_start
            .checked_sub(4)
            .ok_or_else(|| DecodeError::truncated(0, 4, chk_start))?;
        if verify {
            checksum::verify_checksum(&data[..chk_start], &data[chk_start..len - 4])
                .map_err(|e| DecodeError::new(chk_start, e.kind))?;
        }
        let count = u32_be_at(&data, count_at).unwrap_or(0) as usize;
        let entries_end = count
            .checked_mul(4)
            .and_then(|b| count_at.checked_sub(b))
            .ok_or_else(|| {
                DecodeError::new(
                    count_at,
                    CorruptionKind::OutOfRange {
                        field: "block entry count",
                        value: count as u64,
                        limit: (count_at / 4) as u64,
                    },
                )
            })?;
        if count == 0 {
            return Err(bad(count_at, "block has no entries"));
        }
        let mut block = Block {
            data: Bytes::from(data),
            entries_end,
            count,
            base_len: 0,
            summaries: KeySummaries::default(),
        };
        block.validate()?;
        Ok(block)
    }

    fn validate(&mut self) -> Result<(), DecodeError> {
        let mut prev_start = 0usize;
        for i in 0..self.count {
            let start = self.raw_offset(i);
            if i == 0 && start != 0 {
                return Err(bad(self.entries_end, "first entry does not start the block"));
            }
            if start < prev_start || start > self.entries_end {
                return Err(bad(self.entries_end + 4 * i, "entry offset out of order"));
            }
            prev_start = start;
        }
        for i in 0..self.count {
            let (start, end) = (self.raw_offset(i), self.entry_end(i));
            if end < start + ENTRY_HEADER_LEN {
                return Err(bad(start, "entry shorter than its header"));
            }
            let overlap = usize::from(u16_le_at(&self.data, start).unwrap_or(0));
            let diff = usize::from(u16_le_at(&self.data, start + 2).unwrap_or(0));
            if i == 0 {
                if overlap != 0 {
                    return Err(bad(start, "first entry overlaps a base key"));
                }
                self.base_len = diff;
            } else if overlap > self.base_len {
                return Err(bad(start, "overlap longer than the base key"));
            }
            let value_start = start + ENTRY_HEADER_LEN + diff;
            if value_start > end {
                return Err(bad(start, "key runs past its entry"));
            }
            ValueStruct::decode(&self.data[value_start..end]).map_err(|e| e.at(value_start as u64))?;
        }
        // Entries must ascend; a cheap check that catches mis-ordered data.
        let mut prev = Vec::with_capacity(self.base_len + 16);
        let mut cur = Vec::with_capacity(self.base_len + 16);
        self.key_into(self.count - 1, &mut cur);
        let mut sums = KeySummaries::with_bounds_and_extra(self.base_key(), &cur, self.count);
        for i in 0..self.count {
            self.key_into(i, &mut cur);
            if i > 0 && compare_keys(&prev, &cur) != Ordering::Less {
                return Err(bad(self.raw_offset(i), "keys not ascending"));
            }
            sums.push_with(&cur, self.raw_offset(i) as u32);
            std::mem::swap(&mut prev, &mut cur);
        }
        sums.finish();
        self.summaries = sums;
        Ok(())
    }

    /// Where entry `i` starts: kept with its key summary once validated
    /// (one cache line for the search and the offset), read from the
    /// block's offsets array before.
    fn raw_offset(&self, i: usize) -> usize {
        if i < self.summaries.len() {
            return self.summaries.extra(i) as usize;
        }
        u32_le_at(&self.data, self.entries_end + 4 * i).unwrap_or(u32::MAX) as usize
    }

    fn entry_end(&self, i: usize) -> usize {
        if i + 1 < self.count {
            self.raw_offset(i + 1)
        } else {
            self.entries_end
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a block holds at least one entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The base key (the first entry's key).
    pub fn base_key(&self) -> &[u8] {
        &self.data[ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + self.base_len]
    }

    /// Writes entry `i`'s full key into `out` (replacing its contents).
    pub fn key_into(&self, i: usize, out: &mut Vec<u8>) {
        let start = self.raw_offset(i);
        let overlap = usize::from(u16_le_at(&self.data, start).unwrap_or(0));
        let diff = usize::from(u16_le_at(&self.data, start + 2).unwrap_or(0));
        out.clear();
        out.extend_from_slice(&self.base_key()[..overlap]);
        out.extend_from_slice(&self.data[start + ENTRY_HEADER_LEN..start + ENTRY_HEADER_LEN + diff]);
    }

    /// Entry `i`'s value struct.
    pub fn value(&self, i: usize) -> ValueStruct<'_> {
        let start = self.raw_offset(i);
        let diff = usize::from(u16_le_at(&self.data, start + 2).unwrap_or(0));
        let vs = &self.data[start + ENTRY_HEADER_LEN + diff..self.entry_end(i)];
        // Validated in `decode`.
        ValueStruct::decode(vs).unwrap_or_default()
    }

    /// Compares entry `i`'s key with `key` without assembling it.
    fn compare_entry(&self, i: usize, key: &[u8]) -> Ordering {
        let start = self.raw_offset(i);
        let overlap = usize::from(u16_le_at(&self.data, start).unwrap_or(0));
        let diff = usize::from(u16_le_at(&self.data, start + 2).unwrap_or(0));
        crate::format::key::compare_split_key(
            &self.base_key()[..overlap],
            &self.data[start + ENTRY_HEADER_LEN..start + ENTRY_HEADER_LEN + diff],
            key,
        )
    }

    /// Index of the first entry whose key is ≥ `key`, or `len()` if none.
    pub fn seek(&self, key: &[u8]) -> usize {
        self.summaries
            .partition_point(key, |i| self.compare_entry(i, key) == Ordering::Less)
    }

    /// Entry `i`'s version, and whether its user key equals `uk`, without
    /// assembling the key.
    pub fn entry_matches(&self, i: usize, uk: &[u8]) -> (bool, u64) {
        let start = self.raw_offset(i);
        let overlap = usize::from(u16_le_at(&self.data, start).unwrap_or(0));
        let diff = usize::from(u16_le_at(&self.data, start + 2).unwrap_or(0));
        let prefix = &self.base_key()[..overlap];
        let rest = &self.data[start + ENTRY_HEADER_LEN..start + ENTRY_HEADER_LEN + diff];
        let len = overlap + diff;
        if len < 8 {
            return (false, 0);
        }
        let ukl = len - 8;
        let same = ukl == uk.len() && {
            let p = overlap.min(ukl);
            bytes_equal(&prefix[..p], &uk[..p]) && bytes_equal(&rest[..ukl - p], &uk[p..])
        };
        let mut ver = [0u8; 8];
        for (j, b) in ver.iter_mut().enumerate() {
            let at = ukl + j;
            *b = if at < overlap {
                prefix[at]
            } else {
                rest[at - overlap]
            };
        }
        (same, u64::MAX - u64::from_be_bytes(ver))
    }

    /// Where `bytes`, a slice of this block (such as a value from
    /// [`value`](Self::value)), lie in it.
    pub fn range_of(&self, bytes: &[u8]) -> std::ops::Range<usize> {
        let start = bytes.as_ptr().addr().wrapping_sub(self.data.as_ptr().addr());
        start..start.wrapping_add(bytes.len())
    }

    /// The block's bytes in `r` (empty when out of range).
    pub fn bytes(&self, r: std::ops::Range<usize>) -> &[u8] {
        self.data.get(r).unwrap_or_default()
    }

    /// The block's bytes in `r` as [`Bytes`]: copied when small (a slice
    /// of the block would touch the block buffer's shared reference count,
    /// another cold cache line, and on its first slice allocate — dearer
    /// than copying a few hundred bytes), else sharing the block's memory.
    pub fn shared_bytes(&self, r: std::ops::Range<usize>) -> Bytes {
        let v = self.bytes(r);
        if v.len() <= COPY_VALUES_UP_TO {
            Bytes::copy_from_slice(v)
        } else {
            self.data.slice_ref(v)
        }
    }

    /// Bytes held in memory, for cache accounting.
    pub fn size_in_memory(&self) -> usize {
        self.data.len() + self.summaries.size_in_memory()
    }
}

/// Accumulates entries into one block, byte for byte as Badger's builder.
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    offsets: Vec<u32>,
    base_key: Vec<u8>,
}

impl BlockBuilder {
    /// Bytes of entries written so far.
    pub fn entries_len(&self) -> usize {
        self.buf.len()
    }

    /// Entries so far.
    pub fn count(&self) -> usize {
        self.offsets.len()
    }

    /// The first key added.
    pub fn base_key(&self) -> &[u8] {
        &self.base_key
    }

    /// Appends an entry; `key` must sort after every key added before.
    pub fn add(&mut self, key: &[u8], value: &ValueStruct<'_>) {
        let overlap = if self.offsets.is_empty() {
            self.base_key.clear();
            self.base_key.extend_from_slice(key);
            0
        } else {
            key.iter().zip(&self.base_key).take_while(|(a, b)| a == b).count()
        };
        let diff = &key[overlap..];
        self.offsets.push(self.buf.len() as u32);
        self.buf.extend_from_slice(&(overlap as u16).to_le_bytes());
        self.buf.extend_from_slice(&(diff.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(diff);
        value.encode_into(&mut self.buf);
    }

    /// Appends the trailer and returns the finished block bytes and base key,
    /// leaving the builder empty.
    pub fn finish(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut out = std::mem::take(&mut self.buf);
        for off in &self.offsets {
            out.extend_from_slice(&off.to_le_bytes());
        }
        out.extend_from_slice(&(self.offsets.len() as u32).to_be_bytes());
        let chk = checksum::encode_crc32c_checksum(&out);
        out.extend_from_slice(&chk);
        out.extend_from_slice(&(chk.len() as u32).to_be_bytes());
        self.offsets.clear();
        (out, std::mem::take(&mut self.base_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key::key_with_version;

    fn vs(v: &[u8]) -> ValueStruct<'_> {
        ValueStruct {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: v,
        }
    }

    fn sample() -> Vec<u8> {
        let mut b = BlockBuilder::default();
        b.add(&key_with_version(b"apple", 2), &vs(b"red"));
        b.add(&key_with_version(b"apple", 1), &vs(b"green"));
        b.add(&key_with_version(b"apricot", 5), &vs(b""));
        b.finish().0
    }

    #[test]
    fn golden_bytes() {
        let mut b = BlockBuilder::default();
        b.add(b"ab\0\0\0\0\0\0\0\x01", &vs(b"x"));
        b.add(b"ac\0\0\0\0\0\0\0\x01", &vs(b"y"));
        let (bytes, base) = b.finish();
        assert_eq!(base, b"ab\0\0\0\0\0\0\0\x01");
        let mut want: Vec<u8> = vec![0, 0, 10, 0];
        want.extend_from_slice(b"ab\0\0\0\0\0\0\0\x01");
        want.extend_from_slice(&[0, 0, 0, b'x']);
        want.extend_from_slice(&[1, 0, 9, 0]);
        want.extend_from_slice(b"c\0\0\0\0\0\0\0\x01");
        want.extend_from_slice(&[0, 0, 0, b'y']);
        want.extend_from_slice(&[0, 0, 0, 0, 18, 0, 0, 0]); // offsets, LE
        want.extend_from_slice(&[0, 0, 0, 2]); // count, BE
        let chk = checksum::encode_crc32c_checksum(&want);
        want.extend_from_slice(&chk);
        want.extend_from_slice(&(chk.len() as u32).to_be_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn decode_and_seek() {
        let blk = Block::decode(sample(), true).unwrap();
        assert_eq!(blk.len(), 3);
        let mut k = Vec::new();
        blk.key_into(1, &mut k);
        assert_eq!(k, key_with_version(b"apple", 1));
        assert_eq!(blk.value(1).value, b"green");
        assert_eq!(blk.seek(&key_with_version(b"apple", 3)), 0);
        assert_eq!(blk.seek(&key_with_version(b"apple", 2)), 0);
        assert_eq!(blk.seek(&key_with_version(b"apple", 0)), 2);
        assert_eq!(blk.seek(&key_with_version(b"b", 0)), 3);
    }

    #[test]
    fn checksum_is_verified() {
        let mut data = sample();
        data[5] ^= 1;
        let err = Block::decode(data.clone(), true).unwrap_err();
        assert!(matches!(err.kind, CorruptionKind::ChecksumMismatch { .. }));
        // Without verification the same flip still decodes (a key byte changed).
        assert!(Block::decode(data, false).is_ok());
    }

    #[test]
    fn mutations_never_panic() {
        let data = sample();
        for i in 0..data.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut m = data.clone();
                m[i] ^= flip;
                if let Ok(b) = Block::decode(m, false) {
                    let mut k = Vec::new();
                    for j in 0..b.len() {
                        b.key_into(j, &mut k);
                        let _ = b.value(j);
                    }
                    let _ = b.seek(b"zzzzzzzzzz");
                }
            }
        }
        for cut in 0..data.len() {
            let _ = Block::decode(data[..cut].to_vec(), false);
        }
    }

    proptest::proptest! {
        /// `seek`'s binary search over prefix-compressed entries agrees with
        /// a plain scan that compares whole internal keys, for user keys of
        /// any length over a
        /// small alphabet (so prefixes are long and shared, and one key is
        /// often a prefix of another) and probes inside and outside the block.
        #[test]
        fn seek_agrees_with_a_plain_scan(
            keys in proptest::collection::btree_set(
                (proptest::collection::vec(0u8..3, 0..12), 0u64..4), 1..40),
            probes in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..12), 0u64..5), 1..20),
        ) {
            let mut sorted: Vec<Vec<u8>> = keys.iter().map(|(k, v)| key_with_version(k, *v)).collect();
            sorted.sort_by(|a, b| compare_keys(a, b));
            let mut b = BlockBuilder::default();
            for k in &sorted {
                b.add(k, &ValueStruct::default());
            }
            let (bytes, _) = b.finish();
            let blk = Block::decode(bytes, true).unwrap();
            for (uk, v) in &probes {
                let probe = key_with_version(uk, *v);
                let want = sorted
                    .iter()
                    .position(|k| compare_keys(k, &probe) != Ordering::Less)
                    .unwrap_or(sorted.len());
                proptest::prop_assert_eq!(blk.seek(&probe), want);
            }
        }
    }
}
