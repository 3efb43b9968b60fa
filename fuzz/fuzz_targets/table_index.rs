//! The FlatBuffers table index decoder on arbitrary bytes.
#![no_main]

use brock::format::TableIndex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = TableIndex::decode(data) {
        assert!(idx.blocks.len() <= data.len() / 4);
        assert!(idx.bloom_filter.len() <= data.len());
        let _ = brock::format::bloom::may_contain_key(&idx.bloom_filter, b"key");
    }
});
