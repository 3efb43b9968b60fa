//! The engine end to end: open, commit, read, iterate, flush, close, reopen.

mod common;

use brock::{Db, Entry, Error, IterOptions, Options};
use std::time::Duration;

fn small(dir: &std::path::Path) -> Options {
    Options::new(dir)
        .with_mem_table_size(64 << 10)
        .with_value_threshold(1024)
        .with_num_compactors(0)
}

#[test]
fn write_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(Options::new(dir.path())).unwrap();
    db.update(|t| {
        t.set(&b"answer"[..], &b"42"[..])?;
        t.set_entry(
            Entry::new(&b"meta"[..], &b"x"[..])
                .with_user_meta(7)
                .with_ttl(Duration::from_secs(3600)),
        )
    })
    .unwrap();
    let v = db
        .view(|t| t.get(b"answer")?.map(|i| i.value()).transpose())
        .unwrap();
    assert_eq!(v.as_deref(), Some(&b"42"[..]));
    let item = db.view(|t| t.get(b"meta")).unwrap().unwrap();
    assert_eq!(item.user_meta(), 7);
    assert!(item.expires_at() > 0);
    db.update(|t| t.delete(&b"answer"[..])).unwrap();
    assert!(db.view(|t| t.get(b"answer")).unwrap().is_none());
    db.close().unwrap();
    assert!(matches!(
        db.begin_write().set(&b"k"[..], &b"v"[..]),
        Err(Error::Closed)
    ));

    let db = Db::open(Options::new(dir.path())).unwrap();
    assert!(db.view(|t| t.get(b"answer")).unwrap().is_none());
    assert_eq!(db.view(|t| t.get(b"meta")).unwrap().unwrap().value_ref(), b"x");
    db.close().unwrap();
    // A clean close leaves Badger's file set: no WAL, no LOCK; each open
    // starts a value log and the empty older one survives one more open.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "000001.sst",
            "000001.vlog",
            "000002.vlog",
            "DISCARD",
            "KEYREGISTRY",
            "MANIFEST"
        ]
    );
}

#[test]
fn many_writes_flush_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(small(dir.path())).unwrap();
    for batch in 0..50u32 {
        db.update(|t| {
            for i in 0..100u32 {
                let k = format!("key{:06}", batch * 100 + i);
                t.set(k.into_bytes(), format!("value-{batch}-{i}").into_bytes())?;
            }
            Ok(())
        })
        .unwrap();
    }
    db.wait_for_flushes().unwrap();
    assert!(db.stats().flushes > 3, "{:?}", db.stats());
    for n in [0u32, 1234, 4999] {
        let k = format!("key{n:06}");
        let v = db.view(|t| t.get(k.as_bytes())).unwrap().unwrap();
        assert_eq!(v.value_ref(), format!("value-{}-{}", n / 100, n % 100).as_bytes());
    }
    let count = db.begin_read().iter(IterOptions::default()).unwrap().count();
    assert_eq!(count, 5000);
    let prefixed: Vec<_> = db
        .begin_read()
        .iter(IterOptions::default().prefix(b"key0012"))
        .unwrap()
        .map(|i| i.unwrap())
        .collect();
    assert_eq!(prefixed.len(), 100);
    db.close().unwrap();
    let db = Db::open(small(dir.path())).unwrap();
    assert_eq!(
        db.begin_read().iter(IterOptions::default()).unwrap().count(),
        5000
    );
}

#[test]
fn go_written_fixture_opens_read_write_and_keeps_reading() {
    let copy = common::fixture_copy("clean");
    let opts = Options::new(copy.path()).with_value_threshold(1024);
    let db = Db::open(opts.clone()).unwrap();
    // Old keys, including values in Go's value log.
    assert_eq!(
        db.view(|t| t.get(b"big/65536"))
            .unwrap()
            .unwrap()
            .value_ref()
            .len(),
        65536
    );
    assert_eq!(
        db.view(|t| t.get(b"usermeta/big")).unwrap().unwrap().user_meta(),
        0xa5
    );
    assert!(db.view(|t| t.get(b"deleted")).unwrap().is_none());
    assert!(db.view(|t| t.get(b"ttl/past")).unwrap().is_none());
    db.update(|t| t.set(&b"new/key"[..], &b"from brock"[..])).unwrap();
    db.update(|t| t.set(&b"multi"[..], &b"version 6 (brock)"[..]))
        .unwrap();
    db.close().unwrap();

    let view = brock::inspect::DirView::open(copy.path()).unwrap();
    assert_eq!(
        view.get(b"new/key", u64::MAX).unwrap().unwrap().value,
        b"from brock"
    );
    assert_eq!(
        view.get(b"multi", u64::MAX).unwrap().unwrap().value,
        b"version 6 (brock)"
    );
    assert_eq!(
        view.get(b"big/65536", u64::MAX).unwrap().unwrap().value.len(),
        65536
    );
    let db = Db::open(opts).unwrap();
    // Go's last version was 19; Brock's two commits took 20 and 21.
    assert_eq!(db.view(|t| t.get(b"multi")).unwrap().unwrap().version(), 21);
}

#[test]
fn unflushed_fixture_recovers_its_wal() {
    let copy = common::fixture_copy("unflushed");
    let db = Db::open(Options::new(copy.path()).with_value_threshold(1024)).unwrap();
    assert_eq!(
        db.view(|t| t.get(b"wal/small")).unwrap().unwrap().value_ref(),
        b"only in the .mem WAL"
    );
    assert_eq!(
        db.view(|t| t.get(b"wal/big")).unwrap().unwrap().value_ref().len(),
        3000
    );
    assert!(db.view(|t| t.get(b"small/00")).unwrap().is_none());
    db.close().unwrap();
    let mut out = Vec::new();
    let view = brock::inspect::DirView::open(copy.path()).unwrap();
    brock::inspect::write_dump(&view, brock::inspect::DumpMode::AllVersions, &mut out).unwrap();
    let want = std::fs::read(common::fixtures_dir().join("unflushed.all-versions.tsv")).unwrap();
    assert!(out == want, "after a Brock open and close, the dump is unchanged");
}

/// Regression: `commit` unregistered the transaction before checking for
/// conflicts, so when it was the only open transaction the oracle had
/// already dropped the newer write sets it had to check against: a
/// read-modify-write over a concurrent update committed (a lost update).
#[test]
fn regression_conflict_checked_while_still_registered() {
    let db = Db::open(Options::in_memory()).unwrap();
    db.update(|t| t.set(&b"k"[..], &b"1"[..])).unwrap();
    let mut t1 = db.begin_write();
    assert_eq!(t1.get(b"k").unwrap().unwrap().value_ref(), b"1");
    db.update(|t| t.set(&b"k"[..], &b"2"[..])).unwrap();
    t1.set(&b"k"[..], &b"3"[..]).unwrap();
    assert!(matches!(t1.commit(), Err(Error::Conflict)));
    // Blind writes never conflict.
    let mut t2 = db.begin_write();
    db.update(|t| t.set(&b"k"[..], &b"4"[..])).unwrap();
    t2.set(&b"k"[..], &b"5"[..]).unwrap();
    t2.commit().unwrap();
    assert_eq!(db.view(|t| t.get(b"k")).unwrap().unwrap().value_ref(), b"5");
}

#[test]
fn limits_and_bad_keys_are_typed_errors() {
    let db = Db::open(
        Options::in_memory()
            .with_mem_table_size(1 << 20)
            .with_value_threshold(1000),
    )
    .unwrap();
    let mut t = db.begin_write();
    assert!(matches!(
        t.set(Vec::new(), &b"v"[..]),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        t.set(&b"!badger!x"[..], &b"v"[..]),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        t.set(vec![b'k'; 65_001], &b"v"[..]),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        t.set(&b"k"[..], vec![0u8; 1000]),
        Err(Error::ValueTooLarge {
            len: 1000,
            limit: 999
        })
    ));
    t.set(&b"k"[..], vec![0u8; 999]).unwrap();
    let mut hit = None;
    for i in 0..10_000u32 {
        if let Err(e) = t.set(i.to_be_bytes().to_vec(), vec![0u8; 100]) {
            hit = Some(e);
            break;
        }
    }
    assert!(matches!(hit, Some(Error::TxnTooBig { .. })), "{hit:?}");
    let mut r = db.begin_read();
    assert!(matches!(r.set(&b"k"[..], &b"v"[..]), Err(Error::ReadOnly)));
    assert!(matches!(r.get(b""), Err(Error::InvalidKey { .. })));
}

#[test]
fn directories_are_0700_and_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b");
    let db = Db::open(Options::new(&dir)).unwrap();
    db.update(|t| t.set(&b"k"[..], &b"v"[..])).unwrap();
    db.close().unwrap();
    for d in [parent.path().join("a"), dir.clone()] {
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        assert_eq!(
            e.metadata().unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            e.path().display()
        );
    }
}

#[test]
fn compact_l0_on_close_moves_l0_down() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small(dir.path()).with_compact_l0_on_close(true);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..2000u32 {
        db.update(|t| t.set(format!("k{i:05}").into_bytes(), vec![7u8; 50]))
            .unwrap();
    }
    db.close().unwrap();
    let view = brock::inspect::DirView::open(dir.path()).unwrap();
    assert!(
        view.levels()[0].is_empty(),
        "L0 still has {} tables",
        view.levels()[0].len()
    );
    assert_eq!(view.latest(u64::MAX).unwrap().count(), 2000);
}

#[test]
fn large_values_go_to_the_value_log_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_mem_table_size(256 << 10)
        .with_value_threshold(1024)
        .with_value_log_file_size(1 << 20);
    let db = Db::open(opts.clone()).unwrap();
    let value = |i: u32, len: usize| -> Vec<u8> { (0..len).map(|j| (i as usize * 31 + j) as u8).collect() };
    for i in 0..300u32 {
        let len = if i % 3 == 0 {
            100
        } else {
            1024 + (i as usize * 97) % 20_000
        };
        db.update(|t| t.set(format!("k{i:04}").into_bytes(), value(i, len)))
            .unwrap();
    }
    let check = |db: &Db| {
        for i in 0..300u32 {
            let len = if i % 3 == 0 {
                100
            } else {
                1024 + (i as usize * 97) % 20_000
            };
            let got = db
                .view(|t| t.get(format!("k{i:04}").as_bytes()))
                .unwrap()
                .unwrap();
            assert_eq!(got.value_ref(), &value(i, len)[..], "k{i:04}");
        }
    };
    check(&db);
    db.close().unwrap();
    let vlogs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".vlog"))
        .collect();
    assert!(vlogs.len() >= 2, "rotated across files: {vlogs:?}");
    let db = Db::open(opts).unwrap();
    check(&db);
    // The offline view (the dump's reader) resolves the same pointers.
    let view = brock::inspect::DirView::open(dir.path()).unwrap();
    assert_eq!(
        view.get(b"k0001", u64::MAX).unwrap().unwrap().value,
        value(1, 1024 + 97)
    );
}

/// Big commits (mixing inline values, which the write thread moves into
/// the memtable, value-log values and deletes) are seen whole or not at all
/// by concurrent readers, and read back whole after a reopen.
#[test]
fn large_commits_are_applied_whole() {
    const BATCHES: u32 = 20;
    const PER_BATCH: u32 = 600;
    let key = |b: u32, i: u32| format!("b{b:03}-{i:04}").into_bytes();
    let value = |b: u32, i: u32| {
        let len = if i.is_multiple_of(50) { 2000 } else { 20 };
        vec![(b * 7 + i) as u8; len]
    };
    let dir = tempfile::tempdir().unwrap();
    // Room for 1,200-entry transactions; a few memtables fill and flush.
    let opts = || small(dir.path()).with_mem_table_size(640 << 10);
    let db = std::sync::Arc::new(Db::open(opts()).unwrap());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut snapshots = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut txn = db.begin_read();
                let mut visible = |b: u32| {
                    let prefix = format!("b{b:03}-");
                    txn.iter(IterOptions::default().prefix(prefix.as_bytes()))
                        .unwrap()
                        .count() as u32
                };
                let last = visible(BATCHES);
                assert!(last == 0 || last == PER_BATCH, "last commit: {last} keys visible");
                for b in 0..BATCHES {
                    let n = visible(b);
                    // The last commit also deleted half of batch 0.
                    let whole = if b == 0 && last > 0 {
                        PER_BATCH / 2
                    } else {
                        PER_BATCH
                    };
                    assert!(n == 0 || n == whole, "batch {b}: {n} keys visible");
                }
                snapshots += 1;
            }
            snapshots
        })
    };
    for b in 0..BATCHES {
        db.update(|t| {
            for i in 0..PER_BATCH {
                t.set(key(b, i), value(b, i))?;
            }
            Ok(())
        })
        .unwrap();
    }
    // One commit of deletes, again split between the two threads.
    db.update(|t| {
        for i in (0..PER_BATCH).step_by(2) {
            t.delete(key(0, i))?;
        }
        for i in 0..PER_BATCH {
            t.set(key(BATCHES, i), value(BATCHES, i))?;
        }
        Ok(())
    })
    .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let check = |db: &Db| {
        for b in 0..=BATCHES {
            for i in 0..PER_BATCH {
                let got = db.view(|t| t.get(&key(b, i))).unwrap();
                if b == 0 && i % 2 == 0 {
                    assert!(got.is_none(), "deleted {b}/{i} is back");
                } else {
                    assert_eq!(got.expect("present").value().unwrap().as_ref(), value(b, i));
                }
            }
        }
    };
    check(&db);
    assert!(db.stats().flushes > 0, "{:?}", db.stats());
    std::sync::Arc::try_unwrap(db).ok().unwrap().close().unwrap();
    let db = Db::open(opts()).unwrap();
    check(&db);
}

/// Items found in a table keep the bytes they were found in: they stay
/// right after their blocks are evicted from the cache and the store is
/// closed, for short (inline), small (copied on `value()`) and large
/// (shared) values, short (inline) and long keys, from gets and iterators.
#[test]
fn items_outlive_their_blocks_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let value = |i: u32, len: usize| -> Vec<u8> { (0..len).map(|j| (i as usize * 7 + j) as u8).collect() };
    let key = |i: u32| -> Vec<u8> {
        let mut k = format!("k{i:06}").into_bytes();
        if i.is_multiple_of(2) {
            k.resize(48, b'-');
        }
        k
    };
    let len = |i: u32| match i {
        _ if i.is_multiple_of(3) => 900,
        _ if i.is_multiple_of(5) => 10,
        _ => 100,
    };
    let db = Db::open(small(dir.path())).unwrap();
    for chunk in (0..600u32).collect::<Vec<_>>().chunks(10) {
        db.update(|t| {
            for &i in chunk {
                t.set(key(i), value(i, len(i)))?;
            }
            Ok(())
        })
        .unwrap();
    }
    db.close().unwrap();

    // A block cache of a few blocks, so the reads below evict.
    let db = Db::open(small(dir.path()).with_block_cache_size(16 << 10)).unwrap();
    let kept: Vec<_> = (0..600u32)
        .step_by(37)
        .map(|i| (i, db.view(|t| t.get(&key(i))).unwrap().unwrap()))
        .collect();
    for i in 0..600u32 {
        let got = db.view(|t| t.get(&key(i))).unwrap().unwrap();
        assert_eq!(got.value_ref(), value(i, len(i)));
    }
    let scanned: Vec<_> = db
        .view(|t| t.iter(IterOptions::default())?.collect::<Result<Vec<_>, _>>())
        .unwrap();
    assert_eq!(scanned.len(), 600);
    db.close().unwrap();
    drop(db);
    for item in scanned {
        let i: u32 = std::str::from_utf8(&item.key()[1..7]).unwrap().parse().unwrap();
        assert_eq!(item.key(), key(i));
        assert_eq!(item.value().unwrap(), value(i, len(i)));
    }
    for (i, item) in kept {
        assert_eq!(item.key(), key(i));
        assert_eq!(item.value_ref(), value(i, len(i)));
        assert_eq!(item.value().unwrap(), value(i, len(i)));
        assert_eq!(item.clone(), item);
    }
}

/// A commit packs its values of 33 bytes to 4 KiB into one buffer that the
/// memtable's entries slice, and memtable hits share those slices; shorter
/// values are copied inline, longer ones kept as given, and values in the
/// value log become 12-byte pointers. Every kind must stay right in items
/// kept past later commits, the memtable's flush and the store's close, and
/// each entry must get its own slice (an off-by-one would shift every value
/// after the first in a commit).
#[test]
fn memtable_items_outlive_their_commit_buffers() {
    let sizes = [0usize, 1, 32, 33, 200, 4096, 4097, 8000];
    let value = |i: usize, len: usize| -> Vec<u8> { (0..len).map(|j| (i * 31 + j * 7) as u8).collect() };
    let key = |round: usize, i: usize| format!("r{round}-k{i:03}").into_bytes();
    // All values inline; then values of 100 bytes or more in the value
    // log, so the memtable holds 12-byte pointers for them.
    for threshold in [9000, 100] {
        let dir = tempfile::tempdir().unwrap();
        let opts = small(dir.path()).with_mem_table_size(1 << 20);
        let db = Db::open(opts.with_value_threshold(threshold)).unwrap();
        let mut kept = Vec::new();
        for round in 0..3 {
            db.update(|t| {
                for (i, &len) in sizes.iter().enumerate() {
                    t.set(key(round, i), value(round * 10 + i, len))?;
                }
                Ok(())
            })
            .unwrap();
            for (i, &len) in sizes.iter().enumerate() {
                let item = db.view(|t| t.get(&key(round, i))).unwrap().unwrap();
                assert_eq!(
                    item.value_ref(),
                    value(round * 10 + i, len),
                    "threshold {threshold} size {len}"
                );
                kept.push((round, i, item));
            }
        }
        db.flatten(2).unwrap();
        db.close().unwrap();
        drop(db);
        for (round, i, item) in kept {
            let len = sizes[i];
            assert_eq!(item.key(), key(round, i));
            assert_eq!(
                item.value().unwrap(),
                value(round * 10 + i, len),
                "threshold {threshold} size {len}"
            );
        }
    }
}

/// A flush puts the blocks it writes into the block cache (unless
/// `prepopulate_block_cache` is off), and a compaction that deletes a table
/// takes its blocks out again; reads stay right throughout.
#[test]
fn flushes_warm_the_block_cache_and_compactions_empty_it() {
    for prepopulate in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        // No background compactions: a read racing one may cache a block
        // of a table it deletes again (the block then waits for eviction).
        let opts = small(dir.path())
            .with_num_level_zero_tables(2)
            .with_prepopulate_block_cache(prepopulate);
        let db = Db::open(opts).unwrap();
        let value = |i: u32| format!("value-{i:05}-").repeat(8).into_bytes();
        let check = |db: &Db| {
            for i in (0..3000u32).step_by(7) {
                let got = db
                    .view(|t| t.get(format!("k{i:05}").as_bytes()))
                    .unwrap()
                    .unwrap();
                assert_eq!(got.value_ref(), value(i));
            }
        };
        for chunk in (0..3000u32).collect::<Vec<_>>().chunks(50) {
            db.update(|t| {
                for &i in chunk {
                    t.set(format!("k{i:05}").into_bytes(), value(i))?;
                }
                Ok(())
            })
            .unwrap();
        }
        // Let the flushes finish, then check the cache before any read.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db.stats().immutable_memtables > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = db.stats();
        assert!(stats.flushes > 0);
        if prepopulate {
            assert!(stats.block_cache_bytes > 0, "flushed blocks were not cached");
        } else {
            assert_eq!(stats.block_cache_bytes, 0, "blocks cached with prepopulation off");
        }
        check(&db);
        // Flatten rewrites every table; the deleted inputs' blocks leave
        // the cache, and compaction outputs are not put in it.
        assert!(db.stats().tables_per_level[0] > 2);
        db.flatten(2).unwrap();
        assert_eq!(db.stats().tables_per_level[0], 0, "flatten left L0 tables");
        assert_eq!(
            db.stats().block_cache_bytes,
            0,
            "deleted tables' blocks stayed cached"
        );
        check(&db);
        db.close().unwrap();
    }
}
