//! Block decompression with a limit: the first byte picks the codec, the next
//! three the limit (up to 16 MiB). Output never exceeds the limit.
#![no_main]

use brock::format::CompressionType;
use brock::table::compression::decompress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let kind = CompressionType::from_u32(u32::from(head[0] % 3)).expect("0..3");
    let limit = u32::from_le_bytes([head[1], head[2], head[3], 0]) as usize;
    if let Ok(out) = decompress(kind, rest.to_vec(), limit) {
        match kind {
            CompressionType::None => assert_eq!(out, rest),
            _ => assert!(out.len() <= limit),
        }
    }
});
