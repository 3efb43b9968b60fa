//! MANIFEST replay on arbitrary bytes (both with and without an expected
//! external magic), and the record decoder with every file length.
#![no_main]

use brock::format::manifest::{Record, decode_record};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("MANIFEST");
    if let Ok(r) = brock::levels::replay_manifest(data, p, None) {
        assert!(r.valid_end <= data.len() as u64);
        for (id, t) in &r.manifest.tables {
            assert!(r.manifest.levels[t.level as usize].contains(id));
        }
    }
    let _ = brock::levels::replay_manifest(data, p, Some(0));
    for file_len in [0, data.len() as u64, u64::MAX] {
        if let Ok(Record::Complete(_, n)) = decode_record(data, file_len) {
            assert!(n <= data.len());
        }
    }
});
