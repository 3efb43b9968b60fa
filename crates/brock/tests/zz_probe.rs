use brock::vfs::MemVfs;
use brock::{Db, Options};
use std::sync::Arc;
use std::time::Duration;

fn o(compactors: u32) -> Options {
    Options::new("/db")
        .with_mem_table_size(16 << 10)
        .with_value_threshold(1000)
        .with_base_table_size(8 << 10)
        .with_base_level_size(32 << 10)
        .with_level_size_multiplier(4)
        .with_num_level_zero_tables(1)
        .with_num_level_zero_tables_stall(1000)
        .with_num_compactors(compactors)
        .with_max_levels(4)
}

#[test]
fn probe() {
    let fs = MemVfs::new();
    let open = |c| Db::open_with_vfs(o(c), Arc::new(fs.clone())).unwrap();
    let db = open(0);
    db.update(|t| { t.set(&b"m/k"[..], &b"v1"[..])?; t.set(&b"p/x"[..], &b"1"[..]) }).unwrap();
    db.close().unwrap();
    let db = open(0);
    db.update(|t| t.delete(&b"m/k"[..])).unwrap();
    db.close().unwrap();
    let db = open(0);
    db.update(|t| t.set(&b"z/z"[..], &b"1"[..])).unwrap();
    db.close().unwrap();
    let db = open(0);
    for t in db.tables() { eprintln!("{} L{} {:?}..{:?}", t.id, t.level, String::from_utf8_lossy(&t.smallest.0), String::from_utf8_lossy(&t.biggest.0)); }
    db.drop_prefix(&[b"p/"]).unwrap();
    eprintln!("after drop_prefix");
    for t in db.tables() { eprintln!("{} L{} {:?}..{:?} maxv {}", t.id, t.level, String::from_utf8_lossy(&t.smallest.0), String::from_utf8_lossy(&t.biggest.0), t.max_version); }
    eprintln!("get m/k = {:?}", db.view(|t| t.get(b"m/k")).unwrap());
    db.close().unwrap();
    let db = open(2);
    for _ in 0..100 { if db.tables().iter().all(|t| t.level > 0) { break } std::thread::sleep(Duration::from_millis(20)); }
    for t in db.tables() { eprintln!("{} L{} {:?}..{:?} maxv {}", t.id, t.level, String::from_utf8_lossy(&t.smallest.0), String::from_utf8_lossy(&t.biggest.0), t.max_version); }
    eprintln!("compactions {}", db.stats().compactions);
    eprintln!("get m/k = {:?}", db.view(|t| t.get(b"m/k")).unwrap());
}
