//! `decode_entry` and `decode_header` on arbitrary bytes: a log entry decodes
//! inside the buffer or the log ends; never a panic.
#![no_main]

use brock::format::entry::{Decoded, MAX_LOG_KEY_LEN, decode_entry, decode_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = decode_header(data);
    if let Decoded::Entry(e, n) = decode_entry(data) {
        assert!(n <= data.len());
        assert!(!e.key.is_empty() && e.key.len() as u64 <= MAX_LOG_KEY_LEN);
        let (h, hlen) = header.expect("an entry has a header");
        assert_eq!(hlen + e.key.len() + e.value.len() + 4, n);
        assert_eq!(h.key_len as usize, e.key.len());
        assert_eq!(h.value_len as usize, e.value.len());
    }
});
