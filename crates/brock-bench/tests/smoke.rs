//! Every workload on every store this build has, small: the counts and the
//! values must come out right.

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
