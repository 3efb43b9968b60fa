//! The small fixed decoders: value struct, value pointer, varint, log-file
//! header, DISCARD slots and the bloom filter probe.
#![no_main]

use brock::format::discard::decode_slots;
use brock::format::varint::{decode_uvarint, put_uvarint};
use brock::format::{LogFileHeader, VALUE_POINTER_LEN, ValuePointer, ValueStruct, bloom};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(vs) = ValueStruct::decode(data) {
        let mut out = Vec::new();
        vs.encode_into(&mut out);
        // The varint may have been non-minimal; the value must be the tail.
        assert!(data.ends_with(vs.value) && out.ends_with(vs.value));
        assert_eq!(ValueStruct::decode(&out), Ok(vs));
    }
    match ValuePointer::decode(data) {
        Ok(vp) => assert_eq!(&vp.encode()[..], data),
        Err(_) => assert_ne!(data.len(), VALUE_POINTER_LEN),
    }
    if let Some((v, n)) = decode_uvarint(data) {
        assert!(n <= data.len() && n <= 10);
        let mut out = Vec::new();
        put_uvarint(&mut out, v);
        assert!(out.len() <= n);
    }
    let _ = LogFileHeader::decode(data);
    let slots = decode_slots(data);
    assert!(slots.len() <= data.len() / 16);
    let _ = bloom::may_contain_key(data, data);
});
