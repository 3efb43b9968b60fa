//! Replaying the MANIFEST into the set of live tables.
//!
//! Badger's `manifest.go` (`ReplayManifestFile`, `applyManifestChange`).
//! Change sets apply in order: CREATE of a known id is corruption; DELETE of
//! an unknown id is tolerated (Badger only warns). Bad magic, an unsupported
//! version and an external-magic mismatch are distinct errors; a checksum
//! mismatch or a length beyond the file is `Corruption`; a record cut short at
//! the end is a torn tail, reported in [`ManifestReplay::torn_tail`] with the
//! offset to truncate to (the caller decides whether it may write).
//!
//! Differs from Badger: an unknown compression code or an absurd level is
//! rejected at replay with the record's offset, instead of failing later.

use crate::error::{CorruptionKind, Error, Result};
use crate::format::CompressionType;
use crate::format::manifest::{MANIFEST_HEADER_LEN, MANIFEST_VERSION, ManifestHeader, Record, decode_record};
use crate::format::proto::{ManifestChange, ManifestOp};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Levels above this cannot come from Badger (it allows at most a few dozen).
pub const MAX_MANIFEST_LEVEL: u32 = 64;

/// What the MANIFEST says about one live table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableManifest {
    /// Its level.
    pub level: u32,
    /// Data-key id; 0 = plaintext.
    pub key_id: u64,
    /// Block compression.
    pub compression: CompressionType,
}

/// The live tables after replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Table id → facts.
    pub tables: BTreeMap<u64, TableManifest>,
    /// Level → table ids (index = level).
    pub levels: Vec<BTreeSet<u64>>,
    /// CREATE changes applied (Badger counts these for the rewrite threshold).
    pub creations: u64,
    /// DELETE changes applied.
    pub deletions: u64,
}

impl Manifest {
    /// Applies one change at `offset` (for error messages) in `file`.
    pub fn apply(&mut self, change: &ManifestChange, file: &Path, offset: u64) -> Result<()> {
        let corrupt = |kind| Error::corruption(file, offset, kind);
        match change.operation() {
            Some(ManifestOp::Create) => {
                if self.tables.contains_key(&change.id) {
                    return Err(corrupt(CorruptionKind::Inconsistent {
                        detail: format!("table {} created twice", change.id),
                    }));
                }
                if change.level > MAX_MANIFEST_LEVEL {
                    return Err(corrupt(CorruptionKind::OutOfRange {
                        field: "table level",
                        value: u64::from(change.level),
                        limit: u64::from(MAX_MANIFEST_LEVEL),
                    }));
                }
                let compression = CompressionType::from_u32(change.compression).ok_or_else(|| {
                    corrupt(CorruptionKind::UnknownValue {
                        field: "compression",
                        value: u64::from(change.compression),
                    })
                })?;
                self.tables.insert(
                    change.id,
                    TableManifest {
                        level: change.level,
                        key_id: change.key_id,
                        compression,
                    },
                );
                let level = change.level as usize;
                if self.levels.len() <= level {
                    self.levels.resize_with(level + 1, BTreeSet::new);
                }
                self.levels[level].insert(change.id);
                self.creations += 1;
            }
            Some(ManifestOp::Delete) => {
                match self.tables.remove(&change.id) {
                    Some(tm) => {
                        self.levels[tm.level as usize].remove(&change.id);
                    }
                    None => {
                        for l in &mut self.levels {
                            l.remove(&change.id);
                        }
                    }
                }
                self.deletions += 1;
            }
            None => {
                return Err(corrupt(CorruptionKind::UnknownValue {
                    field: "manifest operation",
                    value: change.op as u64,
                }));
            }
        }
        Ok(())
    }
}

/// The result of replaying a MANIFEST file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestReplay {
    /// The live tables.
    pub manifest: Manifest,
    /// The header's external magic.
    pub external_magic: u16,
    /// End of the last complete record: the length to truncate a torn tail to.
    pub valid_end: u64,
    /// True when bytes after `valid_end` are a record cut short.
    pub torn_tail: bool,
}

/// Replays the bytes of a MANIFEST file named `file`.
pub fn replay_manifest(buf: &[u8], file: &Path, expected_magic: Option<u16>) -> Result<ManifestReplay> {
    let header = match ManifestHeader::decode(buf) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Err(Error::BadMagic {
                file: file.to_path_buf(),
                found: buf.to_vec(),
            });
        }
        Err(found) => {
            return Err(Error::BadMagic {
                file: file.to_path_buf(),
                found,
            });
        }
    };
    if header.version != MANIFEST_VERSION {
        return Err(Error::UnsupportedVersion {
            file: file.to_path_buf(),
            found: u32::from(header.version),
            supported: u32::from(MANIFEST_VERSION),
        });
    }
    if let Some(expected) = expected_magic
        && expected != header.external_magic
    {
        return Err(Error::ExternalMagicMismatch {
            file: file.to_path_buf(),
            expected,
            found: header.external_magic,
        });
    }
    let mut manifest = Manifest::default();
    let mut pos = MANIFEST_HEADER_LEN;
    let torn_tail = loop {
        match decode_record(&buf[pos..], buf.len() as u64).map_err(|e| e.in_file(file, pos as u64))? {
            Record::Complete(set, n) => {
                for change in &set.changes {
                    manifest.apply(change, file, pos as u64)?;
                }
                pos += n;
            }
            Record::End => break false,
            Record::TornTail => break true,
        }
    };
    Ok(ManifestReplay {
        manifest,
        external_magic: header.external_magic,
        valid_end: pos as u64,
        torn_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::encode_record;
    use crate::format::proto::ManifestChangeSet;

    fn create(id: u64, level: u32) -> ManifestChange {
        ManifestChange {
            id,
            level,
            compression: 1,
            ..Default::default()
        }
    }

    fn delete(id: u64) -> ManifestChange {
        ManifestChange {
            id,
            op: 1,
            ..Default::default()
        }
    }

    fn file(sets: &[Vec<ManifestChange>]) -> Vec<u8> {
        let mut out = ManifestHeader::new(0).encode().to_vec();
        for s in sets {
            encode_record(&mut out, &ManifestChangeSet { changes: s.clone() });
        }
        out
    }

    #[test]
    fn replays_creates_and_deletes() {
        let buf = file(&[
            vec![create(1, 0), create(2, 0)],
            vec![create(3, 6), delete(1), delete(2)],
            vec![delete(9)],
        ]);
        let r = replay_manifest(&buf, Path::new("MANIFEST"), Some(0)).unwrap();
        assert_eq!(r.manifest.tables.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(r.manifest.levels[6].iter().copied().collect::<Vec<_>>(), vec![3]);
        assert!(r.manifest.levels[0].is_empty());
        assert_eq!((r.manifest.creations, r.manifest.deletions), (3, 3));
        assert_eq!(r.valid_end, buf.len() as u64);
        assert!(!r.torn_tail);
    }

    #[test]
    fn errors_are_distinct() {
        let good = file(&[vec![create(1, 0)]]);
        let p = Path::new("MANIFEST");
        let mut m = good.clone();
        m[3] = b'x';
        assert!(matches!(
            replay_manifest(&m, p, None),
            Err(Error::BadMagic { .. })
        ));
        let mut v = good.clone();
        v[7] = 9;
        assert!(matches!(
            replay_manifest(&v, p, None),
            Err(Error::UnsupportedVersion { found: 9, .. })
        ));
        assert!(matches!(
            replay_manifest(&good, p, Some(7)),
            Err(Error::ExternalMagicMismatch {
                expected: 7,
                found: 0,
                ..
            })
        ));
        let mut c = good.clone();
        *c.last_mut().unwrap() ^= 1;
        match replay_manifest(&c, p, None) {
            Err(Error::Corruption {
                offset: 8,
                kind: CorruptionKind::ChecksumMismatch { .. },
                ..
            }) => {}
            other => panic!("expected a checksum mismatch at offset 8, got {other:?}"),
        }
        let twice = file(&[vec![create(1, 0)], vec![create(1, 1)]]);
        assert!(replay_manifest(&twice, p, None).unwrap_err().is_corruption());
        assert!(matches!(
            replay_manifest(b"", p, None),
            Err(Error::BadMagic { .. })
        ));
    }

    #[test]
    fn torn_tail_keeps_complete_records() {
        let one = file(&[vec![create(1, 0)]]);
        let two = file(&[vec![create(1, 0)], vec![create(2, 0)]]);
        for cut in one.len() + 1..two.len() {
            let r = replay_manifest(&two[..cut], Path::new("MANIFEST"), None).unwrap();
            assert!(r.torn_tail, "cut {cut}");
            assert_eq!(r.valid_end, one.len() as u64);
            assert_eq!(r.manifest.tables.len(), 1);
        }
    }
}
