//! Tables built by Brock from the entries of Go-written tables equal those
//! files byte for byte.

mod common;

use brock::format::CompressionType;
use brock::iterator::KvIterator;
use brock::table::{BuilderOptions, Table, TableBuilder, TableIterator, TableOptions};
use brock::vfs::{OsVfs, Vfs};

fn open(dir: &str, id: u64, compression: CompressionType) -> Table {
    let path = common::fixture(dir).join(format!("{id:06}.sst"));
    let file = OsVfs.open_read(&path).unwrap();
    Table::open(
        file,
        TableOptions {
            id,
            compression,
            key_id: 0,
            verify_blocks: true,
        },
    )
    .unwrap()
}

fn rebuild(t: &Table, compression: CompressionType) -> Vec<u8> {
    let mut b = TableBuilder::new(BuilderOptions {
        compression,
        ..BuilderOptions::default()
    });
    let mut it = TableIterator::new(t);
    it.seek_to_first().unwrap();
    while it.valid() {
        let v = it.value();
        let vlog_len = if v.meta & brock::format::meta::BIT_VALUE_POINTER != 0 {
            brock::format::ValuePointer::decode(v.value).unwrap().len
        } else {
            0
        };
        b.add(it.key(), &v, vlog_len);
        it.next().unwrap();
    }
    b.finish()
}

fn check(dir: &str, id: u64, compression: CompressionType) {
    let t = open(dir, id, compression);
    let built = rebuild(&t, compression);
    let orig = std::fs::read(t.path()).unwrap();
    assert_eq!(built.len(), orig.len(), "{dir}/{id:06}.sst length");
    let first_diff = built.iter().zip(&orig).position(|(a, b)| a != b);
    if let Some(d) = first_diff {
        let lo = d.saturating_sub(16);
        let hi = (d + 32).min(orig.len());
        panic!(
            "{dir}/{id:06}.sst differs at {d} of {}:\n ours {}\n go   {}",
            orig.len(),
            common::hex(&built[lo..hi]),
            common::hex(&orig[lo..hi])
        );
    }
}

#[test]
fn nocompress_tables_rebuild_byte_for_byte() {
    for id in 1..=5 {
        check("nocompress", id, CompressionType::None);
    }
}

#[test]
fn snappy_tables_rebuild_byte_for_byte() {
    check("clean", 1, CompressionType::Snappy);
    check("vlog", 1, CompressionType::Snappy);
    check("overwritten", 1, CompressionType::Snappy);
}
