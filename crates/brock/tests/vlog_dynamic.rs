//! The dynamic value threshold (`vlog_percentile`).

mod common;

use brock::{Db, Error, Options};

fn write(db: &Db, from: u32, to: u32, size: usize) {
    db.update(|t| {
        for i in from..to {
            t.set(format!("k{i:06}").into_bytes(), vec![(i % 251) as u8; size])?;
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn the_threshold_rises_to_keep_the_percentile_inline() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_value_threshold(64)
        .with_vlog_percentile(0.9);
    let db = Db::open(opts.clone()).unwrap();
    // The first batch is judged by the configured threshold: to the log.
    write(&db, 0, 100, 500);
    let after_first = common::vlog_bytes(dir.path());
    assert!(after_first > 100 * 500, "{after_first}");
    // Now nine in ten values are 500 bytes: they stay in the tree.
    for b in 1..20 {
        write(&db, b * 100, b * 100 + 100, 500);
    }
    assert_eq!(
        common::vlog_bytes(dir.path()),
        after_first,
        "500-byte values stopped going to the log"
    );
    // Values well above the percentile still go to the log.
    write(&db, 5000, 5005, 200_000);
    assert!(common::vlog_bytes(dir.path()) > after_first + 5 * 200_000);
    let check = |db: &Db| {
        db.view(|t| {
            for i in (0..2000).chain(5000..5005) {
                let v = t
                    .get(format!("k{i:06}").as_bytes())?
                    .unwrap_or_else(|| panic!("k{i:06} missing"))
                    .value()?;
                let size = if i >= 5000 { 200_000 } else { 500 };
                assert_eq!(v.len(), size);
                assert!(v.iter().all(|&b| b == (i % 251) as u8));
            }
            Ok(())
        })
        .unwrap();
    };
    check(&db);
    // drop_all starts the histogram over: the configured threshold again.
    db.drop_all().unwrap();
    write(&db, 0, 10, 500);
    assert!(common::vlog_bytes(dir.path()) >= 10 * 500);
    write(&db, 0, 2000, 500);
    write(&db, 5000, 5005, 200_000);
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    check(&db);
    db.close().unwrap();
}

#[test]
fn percentile_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [-0.1, 1.5, f64::NAN] {
        let r = Db::open(Options::new(dir.path()).with_vlog_percentile(bad));
        assert!(
            matches!(
                r,
                Err(Error::InvalidOption {
                    name: "vlog_percentile",
                    ..
                })
            ),
            "{bad}: {r:?}"
        );
    }
    let r = Db::open(Options::in_memory().with_vlog_percentile(0.5));
    assert!(
        matches!(
            r,
            Err(Error::InvalidOption {
                name: "vlog_percentile",
                ..
            })
        ),
        "{r:?}"
    );
}
