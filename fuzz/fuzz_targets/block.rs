//! `Block::decode` on arbitrary bytes (the first byte picks checksum
//! verification and is the seek probe), then every entry and seeks.
#![no_main]

use brock::table::block::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if let Ok(b) = Block::decode(rest.to_vec(), flags & 1 != 0) {
        brock_fuzz::exercise_block(&b, &data[..data.len().min(12)]);
    }
});
