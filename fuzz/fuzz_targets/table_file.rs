//! A whole table file in memory: `Table::open`, then every entry, seeks and
//! gets. The first byte picks the compression and block verification.
#![no_main]

use brock::format::CompressionType;
use brock::table::{Table, TableOptions};
use brock_fuzz::{MemFile, drain_table};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let compression = CompressionType::from_u32(u32::from(flags % 3)).expect("0..3");
    let opts = TableOptions {
        id: 1,
        compression,
        key_id: 0,
        verify_blocks: flags & 0x80 != 0,
    };
    if let Ok(t) = Table::open(Arc::new(MemFile::new("000001.sst", rest)), opts) {
        let _ = drain_table(&t, &rest[..rest.len().min(16)]);
    }
});
