//! The one error type of the crate.
//!
//! Contract: every fallible public function returns [`Result<T>`]. Bytes read
//! from disk that do not decode give [`Error::Corruption`] with the file and the
//! byte offset where decoding failed; they never panic. The pure `format` layer
//! reports [`DecodeError`] (an offset inside the buffer it was given), and the
//! file readers above it attach the path and the buffer's position in the file
//! with [`DecodeError::in_file`].
//!
//! Badger differs: it wraps errors into strings and panics on several kinds of
//! bad bytes (its pain-point list, §6 item 9). We keep kinds a caller can match.

use std::fmt;
use std::path::{Path, PathBuf};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in Brock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while touching `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The error the OS reported.
        #[source]
        source: std::io::Error,
    },

    /// Bytes on disk that cannot be what Badger or Brock wrote.
    #[error("corruption in {} at offset {offset}: {kind}", file.display())]
    Corruption {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset in that file where decoding failed.
        offset: u64,
        /// What was wrong.
        kind: CorruptionKind,
    },

    /// A file does not start with the magic bytes of its kind.
    #[error("{} has bad magic bytes {found:02x?}: not a Badger file of this kind", file.display())]
    BadMagic {
        /// The file.
        file: PathBuf,
        /// The bytes found where the magic belongs.
        found: Vec<u8>,
    },

    /// A file declares a format version this build cannot read.
    #[error("{} has unsupported format version {found} (supported: {supported})", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The MANIFEST was written with a different external magic number.
    #[error("{} has external magic {found}, but the options say {expected}", file.display())]
    ExternalMagicMismatch {
        /// The file.
        file: PathBuf,
        /// The value in the options.
        expected: u16,
        /// The value in the file.
        found: u16,
    },

    /// The file is encrypted with a data key and this build cannot decrypt it yet.
    #[error("{} is encrypted (data key id {key_id}); encryption is not supported yet", file.display())]
    EncryptionNotSupported {
        /// The encrypted file.
        file: PathBuf,
        /// The data-key id it names.
        key_id: u64,
    },

    /// A caller passed a value that is not allowed.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// An option has a value that is not allowed.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name (the `Options` field).
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A feature this build does not have yet was asked for.
    #[error("not supported yet: {feature}")]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
    },

    /// Another process or handle holds the directory lock.
    #[error("{} is locked by another {} (pid {})", path.display(), if *exclusive { "writer" } else { "reader" }, holder_pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()))]
    Locked {
        /// The locked directory.
        path: PathBuf,
        /// The pid in its `LOCK` file, if readable.
        holder_pid: Option<u32>,
        /// Whether the holder is a writer (as far as we can tell).
        exclusive: bool,
    },

    /// The database was opened read-only.
    #[error("the database is read-only")]
    ReadOnly,

    /// The database is closed (or closing).
    #[error("the database is closed")]
    Closed,

    /// A transaction would exceed Badger's batch limits.
    #[error(
        "transaction too big: {entries} entries, {bytes} bytes (limits {max_entries} entries, {max_bytes} bytes)"
    )]
    TxnTooBig {
        /// Entries including this one.
        entries: u64,
        /// Estimated bytes including this one.
        bytes: u64,
        /// `max_batch_count`.
        max_entries: u64,
        /// `max_batch_size`.
        max_bytes: u64,
    },

    /// A write batch had a commit fail; it takes no more writes.
    #[error("an earlier commit of this write batch failed: {cause}")]
    BatchFailed {
        /// The failure.
        cause: String,
    },

    /// A serializable-snapshot conflict: retry the transaction.
    #[error("transaction conflict: a key it read was written by a newer commit; retry")]
    Conflict,

    /// A key that may not be written or read.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why.
        reason: &'static str,
    },

    /// A value larger than this build stores.
    #[error("value of {len} bytes is too large (limit {limit})")]
    ValueTooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        limit: u64,
    },

    /// The transaction was already committed or discarded.
    #[error("the transaction has already been committed or discarded")]
    TxnDone,

    /// An earlier write or sync failed; the database refuses further writes
    /// rather than carry on over data it may have lost.
    #[error("an earlier write failed ({cause}); the database refuses writes until reopened")]
    WritesPoisoned {
        /// The first failure.
        cause: String,
    },

    /// Value-log GC found nothing worth rewriting (Badger's `ErrNoRewrite`).
    #[error("value-log GC found no file to rewrite")]
    NoRewrite,

    /// Value-log GC is already running (Badger's `ErrRejected`).
    #[error("value-log GC is already running")]
    Rejected,

    /// A directory lacks a file that its MANIFEST or layout requires.
    #[error("{} is missing", path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption error at `offset` in `file`.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, kind: CorruptionKind) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            kind,
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// What exactly was wrong with corrupt bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The data ended before a structure did.
    Truncated {
        /// Bytes the structure needed from the offset.
        needed: u64,
        /// Bytes that were there.
        available: u64,
    },
    /// A checksum did not match.
    ChecksumMismatch {
        /// The checksum stored in the file.
        stored: u64,
        /// The checksum of the bytes as read.
        computed: u64,
    },
    /// A variable-length integer ran past its maximum length or the buffer.
    BadVarint,
    /// A length or offset field points outside its container.
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The largest value allowed there.
        limit: u64,
    },
    /// A protobuf message did not decode.
    BadProtobuf {
        /// The message type.
        message: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The flatbuffers table index is malformed.
    BadIndex {
        /// What was malformed.
        detail: &'static str,
    },
    /// A compressed block did not decompress.
    BadCompression {
        /// The codec.
        codec: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// An enum-like field holds a value with no meaning.
    UnknownValue {
        /// Which field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// Keys are not in the order the format requires.
    OutOfOrder {
        /// Where the order broke.
        detail: &'static str,
    },
    /// A record contradicts the state built so far (e.g. a table created twice).
    Inconsistent {
        /// What contradicted what.
        detail: String,
    },
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::Truncated { needed, available } => {
                write!(f, "truncated: needed {needed} bytes, {available} available")
            }
            CorruptionKind::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#x}, computed {computed:#x}")
            }
            CorruptionKind::BadVarint => f.write_str("malformed varint"),
            CorruptionKind::OutOfRange { field, value, limit } => {
                write!(f, "{field} = {value} is out of range (limit {limit})")
            }
            CorruptionKind::BadProtobuf { message, detail } => {
                write!(f, "bad protobuf {message}: {detail}")
            }
            CorruptionKind::BadIndex { detail } => write!(f, "bad table index: {detail}"),
            CorruptionKind::BadCompression { codec, detail } => {
                write!(f, "bad {codec} data: {detail}")
            }
            CorruptionKind::UnknownValue { field, value } => {
                write!(f, "unknown {field} value {value}")
            }
            CorruptionKind::OutOfOrder { detail } => write!(f, "out of order: {detail}"),
            CorruptionKind::Inconsistent { detail } => write!(f, "inconsistent: {detail}"),
        }
    }
}

/// A decoding failure inside one buffer, before the file is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset inside the buffer given to the decoder.
    pub offset: u64,
    /// What was wrong.
    pub kind: CorruptionKind,
}

impl DecodeError {
    /// A new decode error at `offset`.
    pub fn new(offset: usize, kind: CorruptionKind) -> Self {
        DecodeError {
            offset: offset as u64,
            kind,
        }
    }

    /// The buffer ended: `needed` bytes were required at `offset`, `available` remained.
    pub fn truncated(offset: usize, needed: usize, available: usize) -> Self {
        DecodeError::new(
            offset,
            CorruptionKind::Truncated {
                needed: needed as u64,
                available: available as u64,
            },
        )
    }

    /// Shifts the offset by `base` (the buffer's position in a larger buffer).
    #[must_use]
    pub fn at(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }

    /// Turns this into [`Error::Corruption`] for `file`, whose byte `base` is the buffer's start.
    pub fn in_file(self, file: &Path, base: u64) -> Error {
        Error::Corruption {
            file: file.to_path_buf(),
            offset: self.offset.saturating_add(base),
            kind: self.kind,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}
