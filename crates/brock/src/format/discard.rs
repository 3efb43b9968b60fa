//! DISCARD bytes: per value-log file, how many bytes compaction found dead.
//!
//! Badger's `discard.go`: an array of 16-byte slots `u64 BE fid | u64 BE
//! discarded bytes`, sorted by fid; the first slot with fid 0 ends the array
//! and is always zero. Badger creates the file at 1 MiB and doubles it when the
//! slots fill it.

/// Bytes per slot.
pub const SLOT_LEN: usize = 16;

/// Badger's initial file size.
pub const INITIAL_DISCARD_FILE_LEN: usize = 1 << 20;

/// Reads the slots up to the first empty one, sorted by fid as Badger sorts
/// them at open. A trailing partial slot is ignored, as Badger's slot count
/// (`len / 16`) ignores it.
pub fn decode_slots(buf: &[u8]) -> Vec<(u64, u64)> {
    let mut slots: Vec<(u64, u64)> = buf
        .chunks_exact(SLOT_LEN)
        .map(|s| {
            let mut fid = [0u8; 8];
            let mut disc = [0u8; 8];
            fid.copy_from_slice(&s[..8]);
            disc.copy_from_slice(&s[8..]);
            (u64::from_be_bytes(fid), u64::from_be_bytes(disc))
        })
        .take_while(|&(fid, _)| fid != 0)
        .collect();
    slots.sort_by_key(|&(fid, _)| fid);
    slots
}

/// Encodes slots into a file image of `file_len` bytes (zero-filled after the
/// last slot). `file_len` must leave room for a terminating empty slot.
pub fn encode_slots(slots: &[(u64, u64)], file_len: usize) -> Vec<u8> {
    let mut out = vec![0u8; file_len.max((slots.len() + 1) * SLOT_LEN)];
    for (i, &(fid, disc)) in slots.iter().enumerate() {
        out[i * SLOT_LEN..i * SLOT_LEN + 8].copy_from_slice(&fid.to_be_bytes());
        out[i * SLOT_LEN + 8..(i + 1) * SLOT_LEN].copy_from_slice(&disc.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_and_round_trip() {
        let img = encode_slots(&[(1, 0x20), (3, 5)], 64);
        assert_eq!(img.len(), 64);
        assert_eq!(&img[..16], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x20]);
        assert_eq!(decode_slots(&img), vec![(1, 0x20), (3, 5)]);
    }

    #[test]
    fn unsorted_and_partial_input() {
        let mut img = encode_slots(&[(5, 1), (2, 9)], 48);
        img.truncate(40);
        assert_eq!(decode_slots(&img), vec![(2, 9), (5, 1)]);
        assert!(decode_slots(&[]).is_empty());
        assert!(decode_slots(&[0xff; 15]).is_empty());
    }
}
