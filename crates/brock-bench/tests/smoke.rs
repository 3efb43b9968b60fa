//! Every workload on every store this build has, small: the counts and the
//! values must come out right.

use brock::Options;
use brock_bench::stores::{self, brock::BrockStore};
use brock_bench::workload::{Config, Op, Order, Settle, Store, key, run_op, temp_dir, value};
use std::time::Duration;

fn small(order: Order) -> Config {
    Config {
        n: 2000,
        value_size: 100,
        batch: 300,
        order,
        sync: false,
        settle: Settle {
            quiet: Duration::from_millis(100),
            cap: Duration::from_secs(30),
        },
        value_threshold: None,
        generation: 0,
    }
}

fn check_store(name: &str, cfg: &Config) {
    let dir = temp_dir(None).unwrap();
    let mut s = stores::open(name, dir.path(), cfg).unwrap();
    assert!(s.is_empty().unwrap(), "{name}: a fresh store is not empty");
    let mut last = 0;
    let w = run_op(s.as_mut(), Op::Write, cfg, dir.path(), &mut |d| last = d).unwrap();
    assert_eq!((w.items, last), (cfg.n, cfg.n), "{name}: write");
    assert!(w.dir_bytes > 0, "{name}: nothing on disk");
    assert!(!s.is_empty().unwrap());
    let r = run_op(s.as_mut(), Op::Read, cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!(r.items, cfg.n, "{name}: every random read finds its key");
    let sc = run_op(s.as_mut(), Op::Scan, cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!(sc.items, cfg.n, "{name}: the scan sees every entry once");
    // Whole values, not just the prefix the runners check.
    let keys = [key(0), key(1), key(cfg.n - 1), key(cfg.n / 2)];
    let mut got = Vec::new();
    s.read_batch(&keys, &mut |pos, v| got.push((pos, v.to_vec())))
        .unwrap();
    let want: Vec<(usize, Vec<u8>)> = [0, 1, cfg.n - 1, cfg.n / 2]
        .iter()
        .enumerate()
        .map(|(p, &i)| (p, value(i, cfg.value_size)))
        .collect();
    assert_eq!(got, want, "{name}");
    let mut missing = 0;
    s.read_batch(&[key(cfg.n)], &mut |_, _| missing += 1).unwrap();
    assert_eq!(missing, 0, "{name}: a key never written is found");
    assert!(
        w.write_amp.is_some_and(|a| a >= 1.0),
        "{name}: write amp {:?}",
        w.write_amp
    );
    assert!(w.max_batch_secs.is_some_and(|b| b > 0.0), "{name}");
    assert!(w.dir_alloc_bytes > 0 && !w.dir_files.is_empty(), "{name}: {w:?}");
    // Delete 90%: exactly the keys i % 10 == 0 stay, before and after the
    // store's full compaction (run_op checks both with a scan).
    let d = run_op(s.as_mut(), Op::Delete, cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!((d.items, d.remaining), (1800, Some(200)), "{name}");
    assert_eq!(d.live_bytes, Some(200 * 116), "{name}");
    assert!(
        d.space_amp.is_some() && d.compacted_space_amp.is_some() && d.compact_call.is_some(),
        "{name}: {d:?}"
    );
    let mut found = Vec::new();
    s.read_batch(&[key(0), key(1), key(10), key(1999)], &mut |pos, _| {
        found.push(pos)
    })
    .unwrap();
    assert_eq!(found, [0, 2], "{name}: after the delete");
    s.close().unwrap();
}

#[test]
fn every_store_random_order() {
    for name in stores::AVAILABLE {
        check_store(name, &small(Order::Random));
    }
}

#[test]
fn brock_sequential_order_and_reopen() {
    let cfg = small(Order::Sequential);
    check_store("brock", &cfg);
    // A filled directory reopens with everything in it.
    let dir = temp_dir(None).unwrap();
    let mut s = BrockStore::open(dir.path(), false).unwrap();
    run_op(&mut s, Op::Write, &cfg, dir.path(), &mut |_| {}).unwrap();
    Box::new(s).close().unwrap();
    let mut s = BrockStore::open(dir.path(), false).unwrap();
    assert_eq!(
        run_op(&mut s, Op::Scan, &cfg, dir.path(), &mut |_| {})
            .unwrap()
            .items,
        cfg.n
    );
    assert_eq!(
        run_op(&mut s, Op::Read, &cfg, dir.path(), &mut |_| {})
            .unwrap()
            .items,
        cfg.n
    );
}

#[test]
fn a_wrong_value_size_is_an_error_not_a_miss() {
    let cfg = small(Order::Random);
    let dir = temp_dir(None).unwrap();
    let mut s = BrockStore::open(dir.path(), false).unwrap();
    run_op(&mut s, Op::Write, &cfg, dir.path(), &mut |_| {}).unwrap();
    let other = Config {
        value_size: 99,
        ..cfg
    };
    assert!(run_op(&mut s, Op::Read, &other, dir.path(), &mut |_| {}).is_err());
    assert!(run_op(&mut s, Op::Scan, &other, dir.path(), &mut |_| {}).is_err());
}

/// Overwrite then GC, values in the value log (fjall: blob files): every
/// key keeps its new value, and Brock's GC gives space back.
fn check_overwrite_and_gc(name: &str) {
    let mut cfg = Config {
        n: 300,
        value_size: 4096,
        batch: 100,
        value_threshold: Some(1024),
        ..small(Order::Random)
    };
    let dir = temp_dir(None).unwrap();
    let mut s = stores::open(name, dir.path(), &cfg).unwrap();
    let w = run_op(s.as_mut(), Op::Write, &cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!((w.items, w.value_threshold), (300, Some(1024)), "{name}");
    let o = run_op(s.as_mut(), Op::Overwrite, &cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!((o.op, o.items), (Op::Overwrite, 300), "{name}");
    assert!(
        o.write_amp.is_some() && o.max_batch_secs.is_some(),
        "{name}: {o:?}"
    );
    // The old values are gone for readers at once.
    cfg = cfg.after(Op::Overwrite);
    let r = run_op(s.as_mut(), Op::Read, &cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!(r.items, 300, "{name}: reads see the overwritten values");
    let g = run_op(s.as_mut(), Op::Gc, &cfg, dir.path(), &mut |_| {}).unwrap();
    assert_eq!((g.op, g.remaining), (Op::Gc, Some(300)), "{name}: {g:?}");
    assert_eq!(g.live_bytes, Some(300 * (16 + 4096)), "{name}");
    let before = g.gc_before_dir_alloc_bytes.unwrap();
    assert!(
        g.gc_call.is_some() && g.space_amp.is_some() && g.gc_before_space_amp.is_some(),
        "{name}: {g:?}"
    );
    if name == "brock" {
        // Two value-log files' worth of garbage at least: the fill's values,
        // all overwritten. GC must collect files and shrink the directory.
        assert!(g.gc_files.is_some_and(|f| f >= 1), "brock: {g:?}");
        assert!(g.gc_file_bytes.is_some_and(|b| b >= 300 * 4096), "brock: {g:?}");
        assert!(
            g.dir_alloc_bytes < before,
            "brock: GC reclaimed nothing: {before} bytes before, {} after: {g:?}",
            g.dir_alloc_bytes
        );
        assert!(g.mb_per_sec > 0.0, "brock: {g:?}");
    }
    // Whole values of the new generation, after GC.
    let mut got = Vec::new();
    s.read_batch(&[key(0), key(299)], &mut |_, v| got.push(v.to_vec()))
        .unwrap();
    let mut want = vec![Vec::new(), Vec::new()];
    brock_bench::workload::fill_value_of(0, 1, 4096, &mut want[0]);
    brock_bench::workload::fill_value_of(299, 1, 4096, &mut want[1]);
    assert_eq!(got, want, "{name}");
    assert_ne!(got[0], value(0, 4096), "{name}");
    s.close().unwrap();
}

#[test]
fn every_store_overwrite_and_gc() {
    for name in stores::AVAILABLE {
        check_overwrite_and_gc(name);
    }
}

/// `fitting_batch` is Brock's transaction limit exactly for values kept in
/// the tree (one more entry is `TxnTooBig`), by bytes and by count, and a
/// batch that size also commits with the values in the value log.
#[test]
fn fitting_batch_is_the_transaction_limit() {
    let dir = temp_dir(None).unwrap();
    // 64 KiB memtable: max_batch_size 9830 bytes, max_batch_count 102;
    // a transaction starts at 1 entry and 21 bytes (the commit marker).
    let opts = Options::new(dir.path())
        .with_mem_table_size(64 << 10)
        .with_value_threshold(4096);
    let mut s = BrockStore::open_with(opts.clone()).unwrap();
    for (value_size, limited_by) in [(100usize, "bytes"), (10, "count")] {
        let fits = stores::brock::fitting_batch(&opts, value_size).unwrap();
        assert_eq!(fits, if limited_by == "bytes" { 9808 / 128 } else { 100 });
        let batch = |n: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
            (0..n as u64)
                .map(|i| (key(i).to_vec(), value(i, value_size)))
                .collect()
        };
        s.write_batch(&mut batch(fits)).unwrap();
        let err = s.write_batch(&mut batch(fits + 1)).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<brock::Error>(),
                Some(brock::Error::TxnTooBig { .. })
            ),
            "{limited_by}: {err}"
        );
    }
    // Values at the threshold go to the value log and count as pointers.
    let fits = stores::brock::fitting_batch(&opts, 4096).unwrap();
    assert_eq!(fits, 9808 / (16 + 4096 + 12));
    let mut b: Vec<(Vec<u8>, Vec<u8>)> = (0..fits as u64)
        .map(|i| (key(i).to_vec(), value(i, 4096)))
        .collect();
    s.write_batch(&mut b).unwrap();
    // The harness's default: 16 KiB values, Badger's 64 MiB memtable.
    let default = Options::new(dir.path());
    assert_eq!(stores::brock::fitting_batch(&default, 16 << 10).unwrap(), 613);
    Box::new(s).close().unwrap();
}
