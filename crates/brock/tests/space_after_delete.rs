//! Space comes back after a mass delete without anyone asking: the
//! deletes are flushed once the store is idle, pushed out of L0 because
//! they are mostly deletes, and compacted with the values they hide.

use brock::{Db, Options};
use std::time::{Duration, Instant};

fn value(i: u64) -> Vec<u8> {
    // Incompressible: splitmix64 bytes.
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..16)
        .flat_map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)).to_le_bytes()
        })
        .collect()
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:015}").into_bytes()
}

#[test]
fn deleting_ninety_percent_gives_the_space_back_unprompted() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_mem_table_size(2 << 20)
        .with_base_table_size(512 << 10)
        .with_base_level_size(2 << 20)
        .with_value_threshold(1024)
        .with_num_level_zero_tables(3);
    let db = Db::open(opts).unwrap();
    let n = 100_000u64;
    // A permutation of 0..n (7919 is prime and does not divide n).
    let order: Vec<u64> = (0..n).map(|i| (i * 7919) % n).collect();
    for chunk in order.chunks(1000) {
        db.update(|t| {
            for &i in chunk {
                t.set(key(i), value(i))?;
            }
            Ok(())
        })
        .unwrap();
    }
    let deleted: Vec<u64> = order.iter().copied().filter(|i| i % 10 != 0).collect();
    for chunk in deleted.chunks(1000) {
        db.update(|t| {
            for &i in chunk {
                t.delete(key(i))?;
            }
            Ok(())
        })
        .unwrap();
    }
    // Live data: the kept keys with their versions and values.
    let live = (n / 10) * (16 + 8 + 128);
    let start = Instant::now();
    let tables = loop {
        let (lsm, _) = db.size();
        let s = db.stats();
        if lsm <= live * 13 / 10 && s.immutable_memtables == 0 {
            break lsm;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "tables stay at {lsm} bytes for {live} live ({:?})",
            db.levels()
                .iter()
                .map(|l| (l.level, l.tables, l.size))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(tables > 0);
    // And what is left is right.
    db.view(|t| {
        for i in 0..n {
            let got = t.get(&key(i))?;
            if i % 10 == 0 {
                assert_eq!(got.expect("kept").value()?.as_ref(), value(i).as_slice());
            } else {
                assert!(got.is_none(), "deleted key {i} is back");
            }
        }
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}
