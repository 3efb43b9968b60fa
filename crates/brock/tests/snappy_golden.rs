//! Every Snappy block of the Go-written fixture tables, decompressed and
//! compressed again by Brock, equals the stored bytes (`s2.EncodeSnappy`).

mod common;

use brock::format::CompressionType;
use brock::table::compression::compress;
use brock::table::{Table, TableOptions};
use brock::vfs::{OsVfs, Vfs};
use std::path::{Path, PathBuf};

/// The `.sst` files of one fixture directory, sorted.
fn tables(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(common::fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    v.sort();
    v
}

/// Re-encodes every block of one table; returns (blocks, raw bytes) compared.
fn check_table(path: &Path) -> (usize, usize) {
    let id: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let file = OsVfs.open_read(path).unwrap();
    let opts = TableOptions {
        id,
        compression: CompressionType::Snappy,
        key_id: 0,
        verify_blocks: false,
    };
    let table = Table::open(file, opts).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let mut raw_total = 0;
    for (i, h) in table.index().blocks.iter().enumerate() {
        let stored = &bytes[h.offset as usize..(h.offset + h.len) as usize];
        let raw = snap::raw::Decoder::new().decompress_vec(stored).unwrap();
        raw_total += raw.len();
        let ours = compress(CompressionType::Snappy, &raw, 0);
        if ours != stored {
            let d = ours
                .iter()
                .zip(stored)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(stored.len()));
            let lo = d.saturating_sub(16);
            panic!(
                "{} block {i} ({} raw bytes at file offset {}): differs at byte {d} (ours {} bytes, go {} bytes)\n ours {}\n go   {}",
                path.display(),
                raw.len(),
                h.offset,
                ours.len(),
                stored.len(),
                common::hex(&ours[lo..(d + 32).min(ours.len())]),
                common::hex(&stored[lo..(d + 32).min(stored.len())]),
            );
        }
    }
    (table.index().blocks.len(), raw_total)
}

/// Checks the tables of `dir` (or only the file `only`) and that exactly
/// `want_blocks` blocks were compared, so no table is skipped unnoticed.
fn check_dir(dir: &str, only: Option<&str>, want_blocks: usize) {
    let (mut blocks, mut raw) = (0, 0);
    for p in tables(dir) {
        if only.is_some_and(|o| p.file_name().unwrap() != o) {
            continue;
        }
        let (b, r) = check_table(&p);
        blocks += b;
        raw += r;
    }
    eprintln!("{dir}: {blocks} blocks, {raw} uncompressed bytes, all equal");
    assert_eq!(blocks, want_blocks, "blocks compared in {dir}");
}

#[test]
fn clean_blocks_match_go() {
    check_dir("clean", Some("000001.sst"), 1);
}

#[test]
fn vlog_blocks_match_go() {
    check_dir("vlog", Some("000001.sst"), 25);
}

#[test]
fn overwritten_blocks_match_go() {
    check_dir("overwritten", None, 1637);
}

#[test]
fn multilevel_blocks_match_go() {
    check_dir("multilevel", None, 4559);
}
