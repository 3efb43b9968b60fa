//! Go Badger's directories with value-log values keep reading right after
//! Brock writes more (through its own value log) and runs GC to the end.

mod common;

use brock::{Db, Error, IterOptions, Options};
use std::collections::BTreeMap;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn contents(db: &Db) -> Model {
    db.view(|t| {
        t.iter(IterOptions::default())?
            .map(|i| {
                let i = i?;
                Ok((i.key().to_vec(), i.value()?.to_vec()))
            })
            .collect()
    })
    .unwrap()
}

fn big(i: usize, round: u8) -> Vec<u8> {
    (0..3000 + i % 700)
        .map(|j| (j as u8) ^ round ^ (i as u8))
        .collect()
}

#[test]
fn go_fixtures_read_right_after_brock_writes_and_collects() {
    for name in ["clean", "unflushed", "unflushed-small", "vlog"] {
        let copy = common::fixture_copy(name);
        // The fixtures' own threshold and file size, so Brock's values land
        // next to Go's in files of the same kind.
        let opts = Options::new(copy.path())
            .with_value_threshold(1024)
            .with_value_log_file_size(1 << 20)
            .with_mem_table_size(1 << 20);
        let db = Db::open(opts.clone()).unwrap();
        let mut model = contents(&db);
        assert!(!model.is_empty(), "{name}");
        // Overwrite every other Go key with a value-log value twice (the
        // first round becomes garbage), delete every fifth, add new keys.
        let go_keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for round in 0..2u8 {
            for chunk in go_keys.chunks(100) {
                db.update(|t| {
                    for (i, k) in chunk.iter().enumerate() {
                        if i % 2 == 0 {
                            t.set(k.clone(), big(i, round))?;
                        }
                    }
                    Ok(())
                })
                .unwrap();
            }
        }
        for (i, k) in go_keys.iter().enumerate() {
            if i % 100 % 2 == 0 {
                model.insert(k.clone(), big(i % 100, 1));
            }
        }
        db.update(|t| {
            for (i, k) in go_keys.iter().enumerate().filter(|(i, _)| i % 5 == 1) {
                t.delete(k.clone())?;
                model.remove(k);
                let _ = i;
            }
            for i in 0..50 {
                let k = format!("brock/{i:03}").into_bytes();
                t.set(k.clone(), big(i, 7))?;
                model.insert(k, big(i, 7));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(contents(&db), model, "{name}: after writes");
        let mut collected = 0;
        loop {
            match db.run_value_log_gc(0.1) {
                Ok(_) => collected += 1,
                Err(Error::NoRewrite) => break,
                Err(e) => panic!("{name}: gc: {e}"),
            }
            assert_eq!(contents(&db), model, "{name}: after a GC run");
        }
        assert!(collected > 0, "{name}: the first round of overwrites is garbage");
        db.close().unwrap();
        let db = Db::open(opts).unwrap();
        assert_eq!(contents(&db), model, "{name}: after reopen");
        db.close().unwrap();
    }
}
