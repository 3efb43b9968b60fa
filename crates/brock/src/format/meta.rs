//! The meta byte of an entry and the visibility rule built on it.
//!
//! Badger's `value.go` bit constants. The same byte travels in log entries and
//! in table value structs; logs strip `TXN`/`FIN_TXN` from value-log copies
//! only.

/// A tombstone.
pub const BIT_DELETE: u8 = 1 << 0;
/// The value field holds a 12-byte value pointer.
pub const BIT_VALUE_POINTER: u8 = 1 << 1;
/// Older versions may be dropped by compaction.
pub const BIT_DISCARD_EARLIER_VERSIONS: u8 = 1 << 2;
/// A merge-operator operand.
pub const BIT_MERGE_ENTRY: u8 = 1 << 3;
/// Part of a transaction batch in a log.
pub const BIT_TXN: u8 = 1 << 6;
/// The transaction-finish marker in a log.
pub const BIT_FIN_TXN: u8 = 1 << 7;

/// Badger's `isDeletedOrExpired`: a tombstone, or an expiry at or before `now_secs`.
pub fn is_deleted_or_expired(meta: u8, expires_at: u64, now_secs: u64) -> bool {
    meta & BIT_DELETE != 0 || (expires_at != 0 && expires_at <= now_secs)
}

/// [`is_deleted_or_expired`] now; the clock is read only for an entry with
/// an expiry (a point read without TTLs never asks the time).
pub fn is_deleted_or_expired_now(meta: u8, expires_at: u64) -> bool {
    meta & BIT_DELETE != 0 || (expires_at != 0 && expires_at <= now_secs())
}

/// Seconds since the Unix epoch, as Badger compares expiry times.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_badger() {
        assert_eq!(
            [
                BIT_DELETE,
                BIT_VALUE_POINTER,
                BIT_DISCARD_EARLIER_VERSIONS,
                BIT_MERGE_ENTRY,
                BIT_TXN,
                BIT_FIN_TXN
            ],
            [0x01, 0x02, 0x04, 0x08, 0x40, 0x80]
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        assert!(is_deleted_or_expired(0, 10, 10));
        assert!(!is_deleted_or_expired(0, 11, 10));
        assert!(!is_deleted_or_expired(0, 0, 10));
        assert!(is_deleted_or_expired(BIT_DELETE, 0, 10));
    }
}
