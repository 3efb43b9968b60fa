//! Write batches (Badger's `WriteBatch`) and asynchronous commits.
//!
//! - A batch far over one transaction's limits splits itself, and every
//!   write is there after `flush` and after a reopen.
//! - `max_entries` commits every n writes (counted by the commit counter).
//! - Asynchronous commits apply in order: the last write of a key wins.
//! - A commit that fails (injected file-system fault) makes the batch
//!   refuse further writes, and `flush` reports it.
//! - A cancelled batch drops its uncommitted writes only.

use brock::vfs::MemVfs;
use brock::{Db, Entry, Error, Options};
use std::sync::Arc;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("{i}:{round}:").into_bytes();
    v.resize(100, b'v');
    v
}

#[test]
fn a_batch_over_the_transaction_limits_splits_itself_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB memtables: a transaction holds at most ~157 KB, ~1,600 of these.
    let opts = Options::new(dir.path())
        .with_mem_table_size(1 << 20)
        .with_value_threshold(1024);
    let db = Db::open(opts.clone()).unwrap();
    let n = 20_000;
    let mut wb = db.new_write_batch();
    for i in 0..n {
        wb.set(key(i), value(i, 0)).unwrap();
    }
    wb.flush().unwrap();
    let commits = db.stats().commits;
    assert!(commits >= 10, "20,000 writes fit in {commits} commits");
    let check = |db: &Db| {
        db.view(|t| {
            for i in 0..n {
                let got = t.get(&key(i))?.map(|it| it.value_ref().to_vec());
                assert_eq!(got, Some(value(i, 0)), "key {i}");
            }
            Ok(())
        })
        .unwrap();
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    check(&db);
}

#[test]
fn max_entries_commits_every_n_writes_and_later_writes_win() {
    let db = Db::open(Options::in_memory()).unwrap();
    let before = db.stats().commits;
    let mut wb = db.new_write_batch().max_entries(100).max_pending(2);
    // Three rounds over the same 1,000 keys, with TTL-less entries and
    // deletes of every tenth key in the last round.
    for round in 0..3 {
        for i in 0..1000 {
            if round == 2 && i % 10 == 0 {
                wb.delete(key(i)).unwrap();
            } else {
                wb.set_entry(Entry::new(key(i), value(i, round)).with_user_meta(round as u8))
                    .unwrap();
            }
        }
    }
    wb.flush().unwrap();
    assert_eq!(db.stats().commits - before, 30, "3,000 writes at 100 per commit");
    db.view(|t| {
        for i in 0..1000 {
            let got = t.get(&key(i))?;
            if i % 10 == 0 {
                assert!(got.is_none(), "key {i} was deleted last");
            } else {
                let got = got.unwrap();
                assert_eq!(got.value_ref(), value(i, 2).as_slice(), "key {i}");
                assert_eq!(got.user_meta(), 2);
            }
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_failed_commit_stops_the_batch_and_flush_reports_it() {
    let fs = MemVfs::new();
    let opts = Options::new("/db");
    let db = Db::open_with_vfs(opts, Arc::new(fs.clone())).unwrap();
    let mut wb = db.new_write_batch().max_entries(10);
    for i in 0..50 {
        wb.set(key(i), value(i, 0)).unwrap();
    }
    wb.flush().unwrap();
    // Every file-system write from here on fails: the next commits cannot
    // reach the WAL.
    fs.fail_from_op(fs.op_count());
    let mut wb = db.new_write_batch().max_entries(10);
    let mut refused = None;
    for i in 50..10_000 {
        if let Err(e) = wb.set(key(i), value(i, 0)) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, e) = refused.expect("the batch went on writing after its commits failed");
    assert!(
        matches!(e, Error::BatchFailed { .. } | Error::WritesPoisoned { .. }),
        "write {at}: {e}"
    );
    assert!(
        wb.flush().is_err(),
        "flush reported success after a failed commit"
    );
    // What the first batch's flush acknowledged is there.
    db.view(|t| {
        for i in 0..50 {
            assert!(t.get(&key(i))?.is_some(), "key {i}, committed before the fault");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn cancel_drops_only_the_uncommitted_writes() {
    let db = Db::open(Options::in_memory()).unwrap();
    let mut wb = db.new_write_batch().max_entries(100);
    for i in 0..250 {
        wb.set(key(i), value(i, 0)).unwrap();
    }
    wb.cancel();
    // The two full transactions were queued; wait for them by committing
    // behind them (commits apply in order).
    db.update(|t| t.set(b"marker".to_vec(), b"m".to_vec())).unwrap();
    db.view(|t| {
        for i in 0..250 {
            assert_eq!(t.get(&key(i))?.is_some(), i < 200, "key {i}");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn commit_async_applies_in_order() {
    let db = Db::open(Options::in_memory()).unwrap();
    let mut pending = Vec::new();
    for round in 0..50u32 {
        let mut t = db.begin_write();
        t.set(b"k".to_vec(), round.to_le_bytes().to_vec()).unwrap();
        pending.push(t.commit_async().unwrap());
    }
    for p in pending {
        p.wait().unwrap();
    }
    let got = db.view(|t| t.get(b"k")).unwrap().unwrap();
    assert_eq!(got.value_ref(), 49u32.to_le_bytes().as_slice());
    // An empty transaction's commit is done at once.
    db.begin_write().commit_async().unwrap().wait().unwrap();
}
