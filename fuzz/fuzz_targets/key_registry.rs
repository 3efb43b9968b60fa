//! KEYREGISTRY bytes: the decoder on arbitrary bytes; a decoded registry
//! encodes back to the same bytes.
#![no_main]

use brock::format::key_registry::KeyRegistryFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = KeyRegistryFile::decode(data) {
        let _ = f.is_plaintext();
        // Re-encoding is canonical protobuf, so compare decoded values.
        assert_eq!(KeyRegistryFile::decode(&f.encode()).as_ref(), Ok(&f));
    }
});
