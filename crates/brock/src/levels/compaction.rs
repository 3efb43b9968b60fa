//! Building the output tables of one compaction: merge, version GC, split.
//!
//! Badger's `subcompact`/`addKeys` (`levels.go`). The input is a merge of
//! the top tables (newest first) and the bottom level, restricted to one key
//! range `[left, right)`. Per user key, versions newer than the discard
//! timestamp are always kept. At or below it, versions are kept until one of
//! them is the `num_versions_to_keep`-th, carries the discard-earlier-versions
//! bit, or is a tombstone / expired; everything older is dropped. That last
//! kept version itself is dropped too when it is a tombstone or expired and no
//! lower level overlaps the compaction (nothing older below could resurface).
//! Merge-operator entries are never counted or dropped. Dropped entries that
//! point into the value log are tallied per value-log file for DISCARD.
//!
//! Output tables are cut only between user keys, when the builder reaches the
//! target file size (or the table would overlap 10 tables two levels down),
//! so every version of a key stays in one table.

use super::key_range::KeyRange;
use crate::error::Result;
use crate::format::meta::{
    BIT_DISCARD_EARLIER_VERSIONS, BIT_MERGE_ENTRY, BIT_VALUE_POINTER, is_deleted_or_expired,
};
use crate::format::{ValuePointer, ValueStruct, compare_keys, user_key, version};
use crate::iterator::KvIterator;
use crate::table::{BuilderOptions, TableBuilder};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How one compaction treats versions.
#[derive(Debug, Clone)]
pub struct GcParams {
    /// Versions at or below this may be garbage collected.
    pub discard_ts: u64,
    /// Versions kept per key at or below `discard_ts`.
    pub num_versions_to_keep: u32,
    /// A lower level overlaps the compaction: keep the last tombstone.
    pub has_overlap: bool,
    /// Keys with any of these prefixes are dropped outright.
    pub drop_prefixes: Vec<Vec<u8>>,
    /// "Now" for expiry, in Unix seconds.
    pub now: u64,
}

/// What a compaction dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    /// Entries written to output tables.
    pub kept: u64,
    /// Entries dropped.
    pub dropped: u64,
    /// Value-log bytes dropped, per value-log file id.
    pub discard: BTreeMap<u32, u64>,
}

impl GcStats {
    fn drop_entry(&mut self, v: &ValueStruct<'_>) {
        self.dropped += 1;
        if v.meta & BIT_VALUE_POINTER != 0
            && let Ok(vp) = ValuePointer::decode(v.value)
        {
            *self.discard.entry(vp.fid).or_insert(0) += u64::from(vp.len);
        }
    }
}

/// Runs one key range of a compaction, handing each finished table builder
/// to `emit`. `too_much_overlap` is asked, every 5,000 keys, whether the
/// table built so far overlaps too many tables two levels down.
pub fn compact_range(
    it: &mut dyn KvIterator,
    range: &KeyRange,
    gc: &GcParams,
    builder_opts: BuilderOptions,
    too_much_overlap: &dyn Fn(&KeyRange) -> bool,
    emit: &mut dyn FnMut(TableBuilder) -> Result<()>,
) -> Result<GcStats> {
    let mut stats = GcStats::default();
    if range.left.is_empty() {
        it.seek_to_first()?;
    } else {
        it.seek(&range.left)?;
    }
    let past_right = |k: &[u8]| !range.right.is_empty() && compare_keys(k, &range.right) != Ordering::Less;
    let mut last_key: Vec<u8> = Vec::new();
    let mut skip_key: Vec<u8> = Vec::new();
    let mut num_versions = 0u32;
    let mut first_has_discard = false;
    while it.valid() {
        if past_right(it.key()) {
            break;
        }
        let mut b = TableBuilder::new(builder_opts);
        let mut table_left: Vec<u8> = Vec::new();
        let mut new_keys = 0u64;
        while it.valid() {
            let key = it.key();
            let v = it.value();
            if gc.drop_prefixes.iter().any(|p| user_key(key).starts_with(p)) {
                stats.drop_entry(&v);
                it.next()?;
                continue;
            }
            if !skip_key.is_empty() {
                if user_key(key) == user_key(&skip_key) {
                    stats.drop_entry(&v);
                    it.next()?;
                    continue;
                }
                skip_key.clear();
            }
            if user_key(key) != user_key(&last_key) || last_key.is_empty() {
                if past_right(key) || b.reached_capacity() {
                    break;
                }
                last_key.clear();
                last_key.extend_from_slice(key);
                num_versions = 0;
                first_has_discard = v.meta & BIT_DISCARD_EARLIER_VERSIONS != 0;
                if table_left.is_empty() {
                    table_left = key.to_vec();
                }
                new_keys += 1;
                if new_keys.is_multiple_of(5000) && too_much_overlap(&KeyRange::of_keys(&table_left, key)) {
                    break;
                }
            }
            let expired = is_deleted_or_expired(v.meta, v.expires_at, gc.now);
            if version(key) <= gc.discard_ts && v.meta & BIT_MERGE_ENTRY == 0 {
                num_versions += 1;
                let last_valid =
                    v.meta & BIT_DISCARD_EARLIER_VERSIONS != 0 || num_versions == gc.num_versions_to_keep;
                if expired || last_valid {
                    skip_key.clear();
                    skip_key.extend_from_slice(key);
                    if expired && !gc.has_overlap {
                        stats.drop_entry(&v);
                        it.next()?;
                        continue;
                    }
                }
            }
            let vlog_len = if v.meta & BIT_VALUE_POINTER != 0 {
                ValuePointer::decode(v.value).map(|p| p.len).unwrap_or(0)
            } else {
                0
            };
            if first_has_discard || expired {
                b.add_stale(key, &v, vlog_len);
            } else {
                b.add(key, &v, vlog_len);
            }
            stats.kept += 1;
            it.next()?;
        }
        if !b.is_empty() {
            emit(b)?;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_with_version;
    use crate::format::meta::BIT_DELETE;
    use crate::iterator::VecIterator;
    use crate::table::OwnedValue;

    fn entries(items: &[(&str, u64, u8, &str)]) -> VecIterator {
        VecIterator::new(
            items
                .iter()
                .map(|&(k, v, meta, val)| {
                    (
                        key_with_version(k.as_bytes(), v),
                        OwnedValue {
                            meta,
                            value: val.as_bytes().to_vec(),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        )
    }

    fn run(it: &mut VecIterator, gc: &GcParams) -> (Vec<(String, u64)>, GcStats) {
        let mut out = Vec::new();
        let stats = compact_range(
            it,
            &KeyRange::default(),
            gc,
            BuilderOptions::default(),
            &|_| false,
            &mut |b| {
                let bytes = b.finish();
                let f = std::sync::Arc::new(MemFile(bytes));
                let t = crate::table::Table::open(
                    f,
                    crate::table::TableOptions {
                        id: 1,
                        compression: crate::format::CompressionType::Snappy,
                        key_id: 0,
                        verify_blocks: true,
                    },
                )?;
                let mut ti = crate::table::TableIterator::new(&t);
                ti.seek_to_first()?;
                while ti.valid() {
                    out.push((
                        String::from_utf8(user_key(ti.key()).to_vec()).unwrap(),
                        version(ti.key()),
                    ));
                    ti.next()?;
                }
                Ok(())
            },
        )
        .unwrap();
        (out, stats)
    }

    #[derive(Debug)]
    struct MemFile(Vec<u8>);
    impl crate::vfs::RandomAccessFile for MemFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
            let start = (offset as usize).min(self.0.len());
            let n = buf.len().min(self.0.len() - start);
            buf[..n].copy_from_slice(&self.0[start..start + n]);
            Ok(n)
        }
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn path(&self) -> &std::path::Path {
            std::path::Path::new("mem")
        }
    }

    fn gc(discard_ts: u64, keep: u32, has_overlap: bool) -> GcParams {
        GcParams {
            discard_ts,
            num_versions_to_keep: keep,
            has_overlap,
            drop_prefixes: vec![],
            now: 1000,
        }
    }

    #[test]
    fn versions_above_discard_ts_are_all_kept() {
        let mut it = entries(&[("a", 5, 0, "5"), ("a", 4, 0, "4"), ("a", 3, 0, "3")]);
        let (out, s) = run(&mut it, &gc(2, 1, false));
        assert_eq!(out.len(), 3);
        assert_eq!(s.dropped, 0);
    }

    #[test]
    fn keeps_num_versions_at_or_below_discard_ts() {
        let mut it = entries(&[
            ("a", 5, 0, "5"),
            ("a", 4, 0, "4"),
            ("a", 3, 0, "3"),
            ("b", 1, 0, "1"),
        ]);
        assert_eq!(
            run(&mut it.clone(), &gc(10, 1, false)).0,
            vec![("a".into(), 5), ("b".into(), 1)]
        );
        assert_eq!(
            run(&mut it.clone(), &gc(10, 2, false)).0,
            vec![("a".into(), 5), ("a".into(), 4), ("b".into(), 1)]
        );
        // Only versions ≤ 4 count: 5 kept, then 4 is the first (and last) kept.
        assert_eq!(
            run(&mut it, &gc(4, 1, false)).0,
            vec![("a".into(), 5), ("a".into(), 4), ("b".into(), 1)]
        );
    }

    #[test]
    fn tombstones_drop_only_without_lower_overlap() {
        let mut it = entries(&[("a", 5, BIT_DELETE, ""), ("a", 4, 0, "4"), ("b", 1, 0, "1")]);
        assert_eq!(run(&mut it.clone(), &gc(10, 1, false)).0, vec![("b".into(), 1)]);
        assert_eq!(
            run(&mut it, &gc(10, 1, true)).0,
            vec![("a".into(), 5), ("b".into(), 1)]
        );
    }

    #[test]
    fn discard_earlier_versions_bit_stops_the_history() {
        let mut it = entries(&[
            ("a", 5, 0, "5"),
            ("a", 4, BIT_DISCARD_EARLIER_VERSIONS, "4"),
            ("a", 3, 0, "3"),
        ]);
        assert_eq!(
            run(&mut it, &gc(10, 5, false)).0,
            vec![("a".into(), 5), ("a".into(), 4)]
        );
    }

    #[test]
    fn dropped_value_pointers_feed_discard_stats() {
        let vp = ValuePointer {
            fid: 7,
            len: 300,
            offset: 20,
        }
        .encode();
        let items = vec![
            (
                key_with_version(b"a", 2),
                OwnedValue {
                    value: b"new".to_vec(),
                    ..Default::default()
                },
            ),
            (
                key_with_version(b"a", 1),
                OwnedValue {
                    meta: BIT_VALUE_POINTER,
                    value: vp.to_vec(),
                    ..Default::default()
                },
            ),
        ];
        let mut it = VecIterator::new(items);
        let (out, s) = run(&mut it, &gc(10, 1, false));
        assert_eq!(out, vec![("a".into(), 2)]);
        assert_eq!(s.discard.get(&7), Some(&300));
    }
}
