//! Value-log garbage collection end to end.

mod common;

use brock::{Db, Error, IterOptions, Options};

fn opts(dir: &std::path::Path) -> Options {
    Options::new(dir)
        .with_mem_table_size(256 << 10)
        .with_value_threshold(1024)
        .with_value_log_file_size(1 << 20)
        .with_num_level_zero_tables(1)
        .with_num_level_zero_tables_stall(8)
        .with_base_table_size(64 << 10)
        .with_base_level_size(256 << 10)
}

fn value(i: u32, round: u32) -> Vec<u8> {
    (0..4096u32).map(|j| (i * 7 + j + round * 13) as u8).collect()
}

/// Flushes, then lets background compaction move L0 down (one L0 table is
/// over target here), which drops the overwritten versions and records them
/// in DISCARD.
fn settle(db: &Db) {
    db.flush().unwrap();
    let start = std::time::Instant::now();
    while db.stats().tables_per_level[0] > 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "L0 never drained"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    db.flatten(1).unwrap();
}

#[test]
fn overwritten_values_are_reclaimed_and_live_ones_survive() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    for round in 0..3u32 {
        for chunk in (0..600u32).collect::<Vec<_>>().chunks(50) {
            db.update(|t| {
                for &i in chunk {
                    t.set(format!("k{i:04}").into_bytes(), value(i, round))?;
                }
                Ok(())
            })
            .unwrap();
        }
    }
    db.update(|t| {
        for i in 0..100u32 {
            t.delete(format!("k{i:04}").into_bytes())?;
        }
        Ok(())
    })
    .unwrap();
    settle(&db);
    let before = common::vlog_bytes(dir.path());
    let mut runs = 0;
    loop {
        match db.run_value_log_gc(0.5) {
            Ok(r) => {
                assert!(r.dropped > 0, "{r:?}");
                runs += 1;
            }
            Err(Error::NoRewrite) => break,
            Err(e) => panic!("gc: {e}"),
        }
        assert!(runs < 100);
    }
    assert!(runs > 0, "something was collected");
    let after = common::vlog_bytes(dir.path());
    assert!(after < before / 2, "value logs {before} -> {after} bytes");
    let check = |db: &Db| {
        for i in 0..600u32 {
            let got = db.view(|t| t.get(format!("k{i:04}").as_bytes())).unwrap();
            if i < 100 {
                assert!(got.is_none(), "k{i:04} was deleted");
            } else {
                assert_eq!(got.unwrap().value_ref(), &value(i, 2)[..], "k{i:04}");
            }
        }
        assert_eq!(db.begin_read().iter(IterOptions::default()).unwrap().count(), 500);
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    check(&db);
    // Deleted keys stay deleted through further compaction.
    settle(&db);
    check(&db);
}

#[test]
fn gc_arguments_and_modes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    assert!(matches!(
        db.run_value_log_gc(0.0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        db.run_value_log_gc(1.0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(db.run_value_log_gc(0.5), Err(Error::NoRewrite)));
    let mem = Db::open(Options::in_memory()).unwrap();
    assert!(matches!(
        mem.run_value_log_gc(0.5),
        Err(Error::Unsupported { .. })
    ));
    db.close().unwrap();
    let ro = Db::open(opts(dir.path()).with_read_only(true)).unwrap();
    assert!(matches!(ro.run_value_log_gc(0.5), Err(Error::ReadOnly)));
}

#[test]
fn an_iterator_older_than_the_gc_keeps_reading_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    for round in 0..2u32 {
        for i in 0..200u32 {
            db.update(|t| t.set(format!("k{i:04}").into_bytes(), value(i, round)))
                .unwrap();
        }
    }
    settle(&db);
    let mut txn = db.begin_read();
    let it = txn.iter(IterOptions::default()).unwrap();
    while db.run_value_log_gc(0.3).is_ok() {}
    let mut n = 0;
    for item in it {
        let item = item.unwrap();
        let i: u32 = std::str::from_utf8(&item.key()[1..]).unwrap().parse().unwrap();
        assert_eq!(item.value_ref(), &value(i, 1)[..]);
        n += 1;
    }
    assert_eq!(n, 200);
}

/// Every key of `keys` reads back `want(key)`.
#[track_caller]
fn check_all(db: &Db, keys: &[(Vec<u8>, Vec<u8>)]) {
    db.view(|t| {
        for (k, v) in keys {
            let got = match t.get(k)? {
                Some(i) => Some(i.value()?.to_vec()),
                None => None,
            };
            assert_eq!(
                got.as_deref(),
                Some(v.as_slice()),
                "key {}",
                String::from_utf8_lossy(k)
            );
        }
        Ok(())
    })
    .unwrap();
}

/// GC found garbage by sampling (compaction is off, so DISCARD is empty),
/// and its rewrites land in an L0 table whose newest version is older than
/// that of the table still holding the old pointers. Reads, a reopen and a
/// full compaction must all take the rewritten copy, never the pointer into
/// the collected file.
#[test]
fn rewritten_copies_outrank_old_pointers_in_newer_tables() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path())
        .with_num_compactors(0)
        .with_mem_table_size(64 << 20);
    let db = Db::open(o.clone()).unwrap();
    let key = |p: &str, i: u32| format!("{p}{i:03}").into_bytes();
    // Version 1: the keys that stay, and garbage to be.
    db.update(|t| {
        for i in 0..50 {
            t.set(key("a", i), value(i, 0))?;
            t.set(key("g", i), value(i, 0))?;
        }
        Ok(())
    })
    .unwrap();
    // Version 2: the garbage overwritten (inline, so the file holds no
    // newer copy), then a later small write so the first table's newest
    // version is above anything GC writes.
    db.update(|t| {
        for i in 0..50 {
            t.set(key("g", i), b"small".to_vec())?;
        }
        Ok(())
    })
    .unwrap();
    db.update(|t| t.set(b"z".to_vec(), b"last".to_vec())).unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().tables_per_level[0], 1);

    let before = common::vlog_bytes(dir.path());
    let report = db.run_value_log_gc(0.3).unwrap();
    assert_eq!(report.rewritten, 50, "{report:?}");
    assert_eq!(report.dropped, 50, "{report:?}");
    db.flush().unwrap();
    assert_eq!(db.stats().tables_per_level[0], 2);
    assert!(
        common::vlog_bytes(dir.path()) < before,
        "the collected file is gone"
    );

    let mut want: Vec<(Vec<u8>, Vec<u8>)> = (0..50).map(|i| (key("a", i), value(i, 0))).collect();
    want.extend((0..50).map(|i| (key("g", i), b"small".to_vec())));
    check_all(&db, &want);
    let scanned: Vec<_> = db
        .view(|t| t.iter(IterOptions::default())?.collect::<brock::Result<Vec<_>>>())
        .unwrap();
    assert_eq!(scanned.len(), 101);

    db.close().unwrap();
    let db = Db::open(o.with_num_compactors(2)).unwrap();
    check_all(&db, &want);
    db.flatten(1).unwrap();
    assert_eq!(db.stats().tables_per_level[0], 0, "flatten moved L0 down");
    check_all(&db, &want);
    // Nothing is left to collect, and asking again changes nothing.
    assert!(matches!(db.run_value_log_gc(0.3), Err(Error::NoRewrite)));
    check_all(&db, &want);
    db.close().unwrap();
}

/// A value whose bytes rot on disk is a `Corruption` naming the file and
/// the entry's offset, through the mapped read path and never a panic;
/// the other values still read.
#[test]
fn a_corrupt_value_log_entry_is_an_error_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path());
    let db = Db::open(o.clone()).unwrap();
    db.update(|t| {
        t.set(b"a".to_vec(), value(1, 0))?;
        t.set(b"b".to_vec(), value(2, 0))
    })
    .unwrap();
    db.close().unwrap();
    // Entries are laid out in commit order after the 20-byte header: flip a
    // byte in the middle of the second value.
    let path = dir.path().join("000001.vlog");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 2000;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let db = Db::open(o).unwrap();
    let a = db.view(|t| t.get(b"a")?.unwrap().value()).unwrap();
    assert_eq!(a.as_ref(), value(1, 0).as_slice());
    match db.view(|t| t.get(b"b")?.unwrap().value()) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert!(file.ends_with("000001.vlog"), "{file:?}");
            assert!(offset > 20 && offset < at as u64, "{offset}");
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
    db.close().unwrap();
}

/// With `ValueDir` apart from `Dir`, value-log files live only there, GC
/// collects there, and everything reads back after a reopen.
#[test]
fn a_separate_value_dir_holds_the_value_log() {
    let (keys, values) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = opts(keys.path()).with_value_dir(values.path());
    let db = Db::open(o.clone()).unwrap();
    for round in 0..3u32 {
        db.update(|t| {
            for i in 0..100u32 {
                t.set(format!("k{i:03}").into_bytes(), value(i, round))?;
            }
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(
        common::vlog_bytes(keys.path()),
        0,
        "no value log beside the tables"
    );
    let before = common::vlog_bytes(values.path());
    assert!(before > 300 * 4096);
    let mut collected = 0;
    while db.run_value_log_gc(0.5).is_ok() {
        collected += 1;
    }
    assert!(collected > 0);
    assert!(common::vlog_bytes(values.path()) < before);
    db.close().unwrap();
    let db = Db::open(o).unwrap();
    db.view(|t| {
        for i in 0..100u32 {
            let v = t.get(format!("k{i:03}").as_bytes())?.expect("present").value()?;
            assert_eq!(v.as_ref(), value(i, 2).as_slice());
        }
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}
