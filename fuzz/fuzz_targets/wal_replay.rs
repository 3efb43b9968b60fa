//! A `.mem` WAL in memory: the entry reader and transaction replay. Entries
//! lie inside the file, one after another; the valid end covers the batches.
#![no_main]

use brock::format::LOG_HEADER_LEN;
use brock::wal::{LogReader, replay_file};
use brock_fuzz::MemFile;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // Mostly plaintext: clear the key id unless the first byte says otherwise.
    let mut bytes = data.to_vec();
    if bytes.len() >= 8 && bytes[0] & 0x80 == 0 {
        bytes[..8].fill(0);
    }
    let file = || Arc::new(MemFile::new("00001.mem", &bytes));
    let Ok(mut reader) = LogReader::new(file()) else {
        return;
    };
    let mut end = LOG_HEADER_LEN as u64;
    while let Ok(Some(e)) = reader.next_entry() {
        assert_eq!(u64::from(e.offset), end);
        end += u64::from(e.len);
        assert!(end <= bytes.len() as u64);
    }
    if let Ok((batches, valid_end)) = replay_file(file()) {
        assert!(valid_end >= LOG_HEADER_LEN as u64);
        assert!(valid_end <= (bytes.len() as u64).max(LOG_HEADER_LEN as u64));
        for e in batches.iter().flatten() {
            assert!(u64::from(e.offset) + u64::from(e.len) <= valid_end);
        }
    }
});
