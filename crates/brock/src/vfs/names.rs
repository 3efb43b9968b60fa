//! File names in a Badger directory and how to tell them apart.
//!
//! `NNNNN.mem` (5 digits, memtable WAL), `NNNNNN.sst` and `NNNNNN.vlog` (6
//! digits; Go's `%05d`/`%06d`, so larger ids simply grow wider), `MANIFEST`,
//! `MANIFEST-REWRITE`, `KEYREGISTRY`, `REWRITE-KEYREGISTRY`, `DISCARD`, `LOCK`.

/// What a file in a Badger directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// `MANIFEST`.
    Manifest,
    /// `MANIFEST-REWRITE`, a manifest rewrite in progress.
    ManifestRewrite,
    /// `KEYREGISTRY`.
    KeyRegistry,
    /// `REWRITE-KEYREGISTRY`.
    KeyRegistryRewrite,
    /// `DISCARD`.
    Discard,
    /// `LOCK`.
    Lock,
    /// A memtable WAL with its id.
    Mem(u32),
    /// A table with its id.
    Sst(u64),
    /// A value log with its id.
    Vlog(u32),
}

/// Classifies a file name; `None` for names Badger does not write.
pub fn classify(name: &str) -> Option<FileKind> {
    match name {
        "MANIFEST" => return Some(FileKind::Manifest),
        "MANIFEST-REWRITE" => return Some(FileKind::ManifestRewrite),
        "KEYREGISTRY" => return Some(FileKind::KeyRegistry),
        "REWRITE-KEYREGISTRY" => return Some(FileKind::KeyRegistryRewrite),
        "DISCARD" => return Some(FileKind::Discard),
        "LOCK" => return Some(FileKind::Lock),
        _ => {}
    }
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match ext {
        "mem" => stem.parse().ok().map(FileKind::Mem),
        "sst" => stem.parse().ok().map(FileKind::Sst),
        "vlog" => stem.parse().ok().map(FileKind::Vlog),
        _ => None,
    }
}

/// `NNNNN.mem`.
pub fn mem_file_name(fid: u32) -> String {
    format!("{fid:05}.mem")
}

/// `NNNNNN.sst`.
pub fn sst_file_name(id: u64) -> String {
    format!("{id:06}.sst")
}

/// `NNNNNN.vlog`.
pub fn vlog_file_name(fid: u32) -> String {
    format!("{fid:06}.vlog")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(mem_file_name(1), "00001.mem");
        assert_eq!(sst_file_name(25), "000025.sst");
        assert_eq!(vlog_file_name(1234567), "1234567.vlog");
        assert_eq!(classify("00001.mem"), Some(FileKind::Mem(1)));
        assert_eq!(classify("000025.sst"), Some(FileKind::Sst(25)));
        assert_eq!(classify("000002.vlog"), Some(FileKind::Vlog(2)));
        assert_eq!(classify("MANIFEST"), Some(FileKind::Manifest));
        assert_eq!(classify("x.sst"), None);
        assert_eq!(classify(".sst"), None);
        assert_eq!(classify("1.tmp"), None);
        assert_eq!(classify("99999999999.mem"), None);
    }
}
