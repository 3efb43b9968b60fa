//! Records Brock encodes are the bytes Go Badger wrote: MANIFEST change sets,
//! log entries in `.mem` and `.vlog` files, and the KEYREGISTRY.

mod common;

use brock::format::entry::{EntryRef, encode_entry};
use brock::format::key_registry::KeyRegistryFile;
use brock::format::manifest::{MANIFEST_HEADER_LEN, ManifestHeader, Record, decode_record, encode_record};
use brock::format::{LOG_HEADER_LEN, LogFileHeader};
use brock::vfs::{OsVfs, Vfs};
use brock::wal::LogReader;

#[test]
fn manifest_files_re_encode_byte_for_byte() {
    for dir in [
        "clean",
        "multilevel",
        "multilevel-zstd",
        "nocompress",
        "overwritten",
        "vlog",
    ] {
        let path = common::fixture(dir).join("MANIFEST");
        let orig = std::fs::read(&path).unwrap();
        let header = ManifestHeader::decode(&orig).unwrap().unwrap();
        let mut rebuilt = ManifestHeader::new(header.external_magic).encode().to_vec();
        let mut pos = MANIFEST_HEADER_LEN;
        loop {
            match decode_record(&orig[pos..], orig.len() as u64).unwrap() {
                Record::Complete(set, n) => {
                    encode_record(&mut rebuilt, &set);
                    pos += n;
                }
                Record::End => break,
                Record::TornTail => panic!("{dir}: unexpected torn tail"),
            }
        }
        assert_eq!(rebuilt, orig, "{dir}/MANIFEST");
    }
}

/// Re-encodes every entry of a log and compares with the file's bytes.
fn check_log(path: &std::path::Path) -> usize {
    let file = OsVfs.open_read(path).unwrap();
    let mut reader = LogReader::new(file.clone()).unwrap();
    let mut rebuilt = LogFileHeader {
        key_id: 0,
        base_iv: reader.header().base_iv,
    }
    .encode()
    .to_vec();
    let mut n = 0;
    while let Some(e) = reader.next_entry().unwrap() {
        assert_eq!(
            e.offset as usize,
            rebuilt.len(),
            "{}: entry offset",
            path.display()
        );
        let len = encode_entry(
            &mut rebuilt,
            &EntryRef {
                meta: e.meta,
                user_meta: e.user_meta,
                expires_at: e.expires_at,
                key: &e.key,
                value: &e.value,
            },
        );
        assert_eq!(len as u32, e.len);
        n += 1;
    }
    let orig = file.read_vec_at(0, rebuilt.len() as u64).unwrap();
    assert_eq!(rebuilt, orig, "{}", path.display());
    assert!(rebuilt.len() >= LOG_HEADER_LEN);
    n
}

#[test]
fn wal_entries_re_encode_byte_for_byte() {
    // The newest data of `unflushed` lives only in this WAL: txn entries,
    // their `!badger!txn` markers, value pointers into 000002.vlog.
    assert!(check_log(&common::fixture("unflushed").join("00001.mem")) >= 5);
    assert!(check_log(&common::fixture("unflushed-small").join("00001.mem")) >= 5);
}

#[test]
fn vlog_entries_re_encode_byte_for_byte() {
    assert_eq!(
        check_log(&common::fixture("clean").join("000001.vlog")),
        6,
        "big/1024, big/1025, big/4096, big/65536, usermeta/big, multi v3"
    );
    assert!(check_log(&common::fixture("unflushed").join("000002.vlog")) >= 1);
    for fid in 1..=12 {
        check_log(&common::fixture("vlog").join(format!("{fid:06}.vlog")));
    }
}

#[test]
fn key_registry_re_encodes() {
    let orig = std::fs::read(common::fixture("clean").join("KEYREGISTRY")).unwrap();
    let f = KeyRegistryFile::decode(&orig).unwrap();
    assert!(f.is_plaintext());
    assert_eq!(f.encode(), orig);
}

#[test]
fn discard_file_of_a_fresh_directory_is_all_zero() {
    let orig = std::fs::read(common::fixture("clean").join("DISCARD")).unwrap();
    assert_eq!(orig.len(), brock::format::discard::INITIAL_DISCARD_FILE_LEN);
    assert!(brock::format::discard::decode_slots(&orig).is_empty());
    assert_eq!(brock::format::discard::encode_slots(&[], orig.len()), orig);
}
