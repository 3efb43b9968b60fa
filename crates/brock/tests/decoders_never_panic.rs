//! Bad bytes give an `Err`, never a panic: property tests over every decoder
//! and file reader.
//!
//! Each decoder of the format layer and each file reader above it gets
//! arbitrary bytes and mutated real bytes: the Go-written fixtures (MANIFESTs,
//! tables with Snappy, zstd and no compression, the `.mem` WAL, a value log,
//! KEYREGISTRY, DISCARD) with bit flips, byte overwrites, truncations,
//! insertions, removals and bumps of their length fields. Nothing may panic.
//! Where a single changed byte is certain to be caught (a MANIFEST record's
//! payload or CRC, a log entry's bytes under its CRC, a table's index bytes, an
//! uncompressed block under its checksum), the test also demands an error, and
//! for logs the exact set of transactions that survive.
//!
//! File readers read the mutated bytes from a temporary file through
//! [`OsVfs`]; whole directories are private copies of a fixture with one file
//! mutated, opened with [`DirView`] and read to the end.
//!
//! # Case counts
//!
//! Every property runs 256 cases by default: about a second for the whole
//! file on two cores. For a long run, set `BROCK_FUZZ_CASES=N` to run at least
//! `N` cases per property, for example (about 3.5 minutes):
//!
//! ```text
//! BROCK_FUZZ_CASES=20000 cargo test -p brock --test decoders_never_panic
//! ```
//!
//! Failing inputs are not persisted to a regressions file; proptest prints the
//! shrunk input, which is the reproducer.

mod common;

use brock::Error;
use brock::format::entry::{Decoded, MAX_LOG_KEY_LEN, decode_entry, decode_header};
use brock::format::key_registry::{KEY_REGISTRY_HEADER_LEN, KeyRegistryFile};
use brock::format::manifest::{MANIFEST_HEADER_LEN, ManifestHeader, Record, decode_record};
use brock::format::meta::BIT_VALUE_POINTER;
use brock::format::proto::{self, Checksum, DataKey, KvList, ManifestChangeSet};
use brock::format::varint::{decode_uvarint, put_uvarint};
use brock::format::{
    CompressionType, LOG_HEADER_LEN, LogFileHeader, TableIndex, VALUE_POINTER_LEN, ValuePointer, ValueStruct,
    bloom, checksum, discard, key_with_version,
};
use brock::inspect::{DirView, DumpMode, write_dump};
use brock::iterator::KvIterator;
use brock::table::block::{Block, BlockBuilder};
use brock::table::compression::{compress, decompress};
use brock::table::{BuilderOptions, Table, TableBuilder, TableIterator, TableOptions};
use brock::vfs::{OsVfs, RandomAccessFile, Vfs};
use brock::wal::{LogEntry, LogReader, TxnReplay, replay_file};
use proptest::prelude::*;
use proptest::sample::Index;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------------------
// Configuration

/// `default_cases`, raised to `$BROCK_FUZZ_CASES` when that is larger.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("BROCK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(default_cases, |n| n.max(default_cases));
    let mut c = ProptestConfig::with_cases(cases);
    c.failure_persistence = None;
    c
}

// ---------------------------------------------------------------------------
// Mutations

/// How a length field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    U32Be,
    U32Le,
    U16Le,
    Varint,
}

/// A length (or count, or offset) field at a known position in a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    at: usize,
    kind: FieldKind,
}

/// A change to a field's value.
#[derive(Debug, Clone, Copy)]
enum FieldEdit {
    Add(i64),
    Set(u64),
}

/// One mutation of a byte string. Positions are `Index`es so that they scale
/// to the buffer they are applied to.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: Index,
        bit: u8,
    },
    Set {
        at: Index,
        byte: u8,
    },
    Truncate {
        at: Index,
    },
    Remove {
        at: Index,
        len: u8,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    /// Adds `delta` to the u32 at a random position.
    BumpU32 {
        at: Index,
        big_endian: bool,
        delta: i32,
    },
    /// Edits one of the seed's known length fields.
    Field {
        which: Index,
        edit: FieldEdit,
    },
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        4 => (-4i64..=4).prop_map(FieldEdit::Add),
        2 => any::<i16>().prop_map(|d| FieldEdit::Add(i64::from(d))),
        1 => Just(FieldEdit::Set(0)),
        1 => Just(FieldEdit::Set(u64::from(u32::MAX))),
        1 => Just(FieldEdit::Set(1 << 31)),
        1 => Just(FieldEdit::Set(u64::MAX)),
        2 => any::<u32>().prop_map(|v| FieldEdit::Set(u64::from(v))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<Index>(), 1u8..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (any::<Index>(), any::<bool>(), prop_oneof![-3i32..=3, any::<i32>()])
            .prop_map(|(at, big_endian, delta)| Mutation::BumpU32 { at, big_endian, delta }),
        4 => (any::<Index>(), field_edit()).prop_map(|(which, edit)| Mutation::Field { which, edit }),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..5)
}

/// A single changed byte: position and a non-zero XOR mask.
fn byte_change() -> impl Strategy<Value = (Index, u8)> {
    (any::<Index>(), 1u8..=255)
}

fn edit_value(old: u64, edit: FieldEdit, max: u64) -> u64 {
    let v = match edit {
        FieldEdit::Add(d) => old.wrapping_add_signed(d),
        FieldEdit::Set(v) => v,
    };
    v & max
}

fn edit_field(buf: &mut Vec<u8>, f: Field, edit: FieldEdit) {
    let at = f.at;
    match f.kind {
        FieldKind::U32Be | FieldKind::U32Le => {
            let Some(b) = buf.get_mut(at..at.saturating_add(4)) else {
                return;
            };
            let arr = [b[0], b[1], b[2], b[3]];
            let old = if f.kind == FieldKind::U32Be {
                u32::from_be_bytes(arr)
            } else {
                u32::from_le_bytes(arr)
            };
            let new = edit_value(u64::from(old), edit, u64::from(u32::MAX)) as u32;
            let bytes = if f.kind == FieldKind::U32Be {
                new.to_be_bytes()
            } else {
                new.to_le_bytes()
            };
            b.copy_from_slice(&bytes);
        }
        FieldKind::U16Le => {
            let Some(b) = buf.get_mut(at..at.saturating_add(2)) else {
                return;
            };
            let old = u16::from_le_bytes([b[0], b[1]]);
            let new = edit_value(u64::from(old), edit, u64::from(u16::MAX)) as u16;
            b.copy_from_slice(&new.to_le_bytes());
        }
        FieldKind::Varint => {
            let Some(tail) = buf.get(at..) else { return };
            let Some((old, n)) = decode_uvarint(tail) else {
                return;
            };
            let mut enc = Vec::new();
            put_uvarint(&mut enc, edit_value(old, edit, u64::MAX));
            buf.splice(at..at + n, enc);
        }
    }
}

fn apply(buf: &mut Vec<u8>, fields: &[Field], m: &Mutation) {
    let len = buf.len();
    match m {
        Mutation::Flip { at, bit } if len > 0 => buf[at.index(len)] ^= 1u8 << *bit,
        Mutation::Set { at, byte } if len > 0 => buf[at.index(len)] = *byte,
        Mutation::Truncate { at } => buf.truncate(at.index(len + 1)),
        Mutation::Remove { at, len: n } if len > 0 => {
            let start = at.index(len);
            let end = (start + usize::from(*n)).min(len);
            buf.drain(start..end);
        }
        Mutation::Insert { at, bytes } => {
            let pos = at.index(len + 1);
            buf.splice(pos..pos, bytes.iter().copied());
        }
        Mutation::BumpU32 {
            at,
            big_endian,
            delta,
        } if len >= 4 => {
            let f = Field {
                at: at.index(len - 3),
                kind: if *big_endian {
                    FieldKind::U32Be
                } else {
                    FieldKind::U32Le
                },
            };
            edit_field(buf, f, FieldEdit::Add(i64::from(*delta)));
        }
        Mutation::Field { which, edit } if !fields.is_empty() => {
            edit_field(buf, fields[which.index(fields.len())], *edit);
        }
        _ => {}
    }
}

fn mutate(seed: &[u8], fields: &[Field], ms: &[Mutation]) -> Vec<u8> {
    let mut buf = seed.to_vec();
    for m in ms {
        apply(&mut buf, fields, m);
    }
    buf
}

// ---------------------------------------------------------------------------
// Files

/// Writes `bytes` to a new temporary file.
fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(bytes).expect("write temp file");
    f.flush().expect("flush temp file");
    f
}

fn open_file(path: &Path) -> Arc<dyn RandomAccessFile> {
    OsVfs.open_read(path).expect("open temp file")
}

/// The first `limit` bytes of a file (the `.mem` WAL is a 128 MiB sparse file).
fn read_prefix(path: &Path, limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .take(limit)
        .read_to_end(&mut out)
        .expect("read fixture");
    out
}

// ---------------------------------------------------------------------------
// Seeds: real bytes from the fixtures, with their structure

/// A table file and where its parts are.
#[derive(Debug)]
struct TableSeed {
    name: String,
    bytes: Vec<u8>,
    compression: CompressionType,
    index_offset: usize,
    index_len: usize,
    /// (offset, len) of every block as stored.
    blocks: Vec<(usize, usize)>,
    fields: Vec<Field>,
}

/// One log entry in a seed: its offset and encoded length.
#[derive(Debug, Clone, Copy)]
struct EntrySpan {
    offset: usize,
    len: usize,
}

/// A log file and its entries.
#[derive(Debug)]
struct LogSeed {
    bytes: Vec<u8>,
    entries: Vec<EntrySpan>,
    /// Complete batches, each with the offset just past it.
    batches: Vec<(Vec<LogEntry>, u64)>,
    valid_end: u64,
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Seeds {
    manifests: Vec<(String, Vec<u8>, Vec<Field>)>,
    tables: Vec<TableSeed>,
    mem: LogSeed,
    vlog: LogSeed,
    /// Value pointers into `vlog` taken from the `clean` table.
    vlog_pointers: Vec<ValuePointer>,
    key_registry: Vec<u8>,
    discard: Vec<u8>,
    /// Blocks: compression, bytes as stored, bytes decompressed.
    blocks: Vec<(CompressionType, Vec<u8>, Vec<u8>)>,
}

fn manifest_fields(buf: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut pos = MANIFEST_HEADER_LEN;
    while let Ok(Record::Complete(_, n)) = decode_record(&buf[pos..], buf.len() as u64) {
        fields.push(Field {
            at: pos,
            kind: FieldKind::U32Be,
        });
        pos += n;
    }
    fields
}

/// (start, payload length) of every record of a MANIFEST.
fn manifest_records(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = MANIFEST_HEADER_LEN;
    while let Ok(Record::Complete(_, n)) = decode_record(&buf[pos..], buf.len() as u64) {
        out.push((pos, n - 8));
        pos += n;
    }
    out
}

fn table_seed(name: String, path: &Path, compression: CompressionType) -> TableSeed {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = Table::open(
        open_file(path),
        TableOptions {
            id: 1,
            compression,
            key_id: 0,
            verify_blocks: true,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let index_offset = t.data_size() as usize;
    let index_len = t.index_len() as usize;
    let blocks: Vec<(usize, usize)> = t
        .index()
        .blocks
        .iter()
        .map(|b| (b.offset as usize, b.len as usize))
        .collect();
    let size = bytes.len();
    let mut fields = vec![
        Field {
            at: size - 4,
            kind: FieldKind::U32Be,
        },
        Field {
            at: index_offset + index_len,
            kind: FieldKind::U32Be,
        },
        Field {
            at: index_offset,
            kind: FieldKind::U32Le,
        },
    ];
    for &(off, len) in blocks.iter().take(64) {
        match compression {
            CompressionType::None => {
                fields.extend(
                    block_fields(&bytes[off..off + len])
                        .into_iter()
                        .map(|f| Field { at: f.at + off, ..f }),
                );
            }
            CompressionType::Snappy => fields.push(Field {
                at: off,
                kind: FieldKind::Varint,
            }),
            CompressionType::Zstd => {}
        }
    }
    TableSeed {
        name,
        bytes,
        compression,
        index_offset,
        index_len,
        blocks,
        fields,
    }
}

/// Length fields of an uncompressed block: checksum length, entry count,
/// entry offsets and entry headers.
fn block_fields(b: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let Some(len) = b.len().checked_sub(4) else {
        return fields;
    };
    fields.push(Field {
        at: len,
        kind: FieldKind::U32Be,
    });
    let chk_len = u32::from_be_bytes([b[len], b[len + 1], b[len + 2], b[len + 3]]) as usize;
    let Some(count_at) = len.checked_sub(chk_len + 4) else {
        return fields;
    };
    fields.push(Field {
        at: count_at,
        kind: FieldKind::U32Be,
    });
    let count = u32::from_be_bytes([b[count_at], b[count_at + 1], b[count_at + 2], b[count_at + 3]]) as usize;
    let Some(offsets_at) = count_at.checked_sub(4 * count) else {
        return fields;
    };
    for i in 0..count.min(16) {
        let at = offsets_at + 4 * i;
        fields.push(Field {
            at,
            kind: FieldKind::U32Le,
        });
        let entry = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        fields.push(Field {
            at: entry,
            kind: FieldKind::U16Le,
        });
        fields.push(Field {
            at: entry + 2,
            kind: FieldKind::U16Le,
        });
    }
    fields
}

fn log_seed(bytes: Vec<u8>) -> LogSeed {
    let f = temp_file(&bytes);
    let mut reader = LogReader::new(open_file(f.path())).expect("seed log opens");
    let mut entries = Vec::new();
    let mut fields = Vec::new();
    while let Some(e) = reader.next_entry().expect("seed log reads") {
        let offset = e.offset as usize;
        entries.push(EntrySpan {
            offset,
            len: e.len as usize,
        });
        fields.push(Field {
            at: offset + 2,
            kind: FieldKind::Varint,
        });
        let (_, n) = decode_uvarint(&bytes[offset + 2..]).expect("key length varint");
        fields.push(Field {
            at: offset + 2 + n,
            kind: FieldKind::Varint,
        });
    }
    let mut replay = TxnReplay::new(open_file(f.path())).expect("seed replay");
    let mut batches = Vec::new();
    while let Some(b) = replay.next_batch().expect("seed replays") {
        batches.push((b, replay.valid_end()));
    }
    let valid_end = replay.valid_end();
    LogSeed {
        bytes,
        entries,
        batches,
        valid_end,
        fields,
    }
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let clean = common::fixture("clean");
        let manifests = ["clean", "multilevel", "multilevel-zstd", "overwritten"]
            .iter()
            .map(|d| {
                let bytes = std::fs::read(common::fixture(d).join("MANIFEST")).expect("MANIFEST");
                let fields = manifest_fields(&bytes);
                (format!("{d}/MANIFEST"), bytes, fields)
            })
            .collect();

        // The smallest zstd table keeps each case cheap.
        let zstd_dir = common::fixture("multilevel-zstd");
        let mut zstd_tables: Vec<(u64, PathBuf)> = std::fs::read_dir(&zstd_dir)
            .expect("multilevel-zstd")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sst"))
            .map(|p| (std::fs::metadata(&p).expect("stat").len(), p))
            .collect();
        zstd_tables.sort();
        let zstd_path = zstd_tables[0].1.clone();

        let tables = vec![
            table_seed(
                "clean/000001.sst".into(),
                &clean.join("000001.sst"),
                CompressionType::Snappy,
            ),
            table_seed(
                "nocompress/000001.sst".into(),
                &common::fixture("nocompress").join("000001.sst"),
                CompressionType::None,
            ),
            table_seed(
                format!(
                    "multilevel-zstd/{}",
                    zstd_path.file_name().unwrap().to_string_lossy()
                ),
                &zstd_path,
                CompressionType::Zstd,
            ),
        ];

        // A few blocks of each compression, as stored and decompressed.
        let mut blocks = Vec::new();
        for (dir, file, compression) in [
            ("clean", "000001.sst", CompressionType::Snappy),
            ("multilevel", "000030.sst", CompressionType::Snappy),
            ("nocompress", "000001.sst", CompressionType::None),
            ("multilevel-zstd", "000025.sst", CompressionType::Zstd),
        ] {
            let path = common::fixture(dir).join(file);
            let t = Table::open(
                open_file(&path),
                TableOptions {
                    id: 1,
                    compression,
                    key_id: 0,
                    verify_blocks: true,
                },
            )
            .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"));
            let bytes = std::fs::read(&path).expect("table");
            let n = t.index().blocks.len();
            for i in [0, n / 2, n - 1] {
                let h = &t.index().blocks[i];
                let stored = bytes[h.offset as usize..(h.offset + h.len) as usize].to_vec();
                let plain =
                    decompress(compression, stored.clone(), 1 << 24).expect("seed block decompresses");
                blocks.push((compression, stored, plain));
            }
        }

        let mem = log_seed(read_prefix(&common::fixture("unflushed").join("00001.mem"), 4096));
        assert!(
            mem.valid_end < 4096 && mem.batches.len() >= 3,
            "the WAL seed holds its transactions"
        );
        let vlog = log_seed(std::fs::read(clean.join("000001.vlog")).expect("vlog"));

        let mut vlog_pointers = Vec::new();
        let t = Table::open(
            open_file(&clean.join("000001.sst")),
            TableOptions {
                id: 1,
                compression: CompressionType::Snappy,
                key_id: 0,
                verify_blocks: true,
            },
        )
        .expect("clean table");
        let mut it = TableIterator::new(&t);
        it.seek_to_first().expect("iterate clean table");
        while it.valid() {
            let v = it.value();
            if v.meta & BIT_VALUE_POINTER != 0 {
                let vp = ValuePointer::decode(v.value).expect("value pointer");
                if vp.fid == 1 {
                    vlog_pointers.push(vp);
                }
            }
            it.next().expect("iterate clean table");
        }
        assert!(
            vlog_pointers.len() >= 5,
            "the clean table points into its value log"
        );

        Seeds {
            manifests,
            tables,
            mem,
            vlog,
            vlog_pointers,
            key_registry: std::fs::read(clean.join("KEYREGISTRY")).expect("KEYREGISTRY"),
            discard: read_prefix(&clean.join("DISCARD"), 4096),
            blocks,
        }
    })
}

// ---------------------------------------------------------------------------
// Readers driven to the end

/// Opens a table from `bytes` and reads every entry, seeks and gets.
fn exercise_table(
    bytes: &[u8],
    compression: CompressionType,
    verify_blocks: bool,
    probe: &[u8],
) -> brock::Result<usize> {
    let f = temp_file(bytes);
    let t = Table::open(
        open_file(f.path()),
        TableOptions {
            id: 7,
            compression,
            key_id: 0,
            verify_blocks,
        },
    )?;
    let _ = (t.smallest(), t.biggest(), t.block_count(), t.size(), t.index());
    let n = drain_table(&t)?;
    for key in [
        t.smallest().to_vec(),
        t.biggest().to_vec(),
        probe.to_vec(),
        Vec::new(),
    ] {
        let _ = t.seek(&key)?;
        let _ = t.get(&key)?;
        let _ = t.does_not_have(&key);
    }
    Ok(n)
}

fn drain_table(t: &Table) -> brock::Result<usize> {
    let mut it = TableIterator::new(t);
    it.seek_to_first()?;
    let mut n = 0;
    while it.valid() {
        let _ = (it.key().len(), it.value().value.len(), it.entry());
        it.next()?;
        n += 1;
    }
    Ok(n)
}

/// Replays a log from `bytes` and checks the replay's own invariants.
fn exercise_log(bytes: &[u8]) -> brock::Result<(Vec<Vec<LogEntry>>, u64)> {
    let f = temp_file(bytes);
    let mut reader = LogReader::new(open_file(f.path()))?;
    let mut last_end = LOG_HEADER_LEN as u64;
    while let Some(e) = reader.next_entry()? {
        assert_eq!(u64::from(e.offset), last_end, "entries are contiguous");
        last_end += u64::from(e.len);
        assert!(last_end <= bytes.len() as u64, "entry inside the file");
        assert!(!e.key.is_empty() && e.key.len() as u64 <= MAX_LOG_KEY_LEN);
    }
    assert!(reader.end_reason().is_some());
    let (batches, valid_end) = replay_file(open_file(f.path()))?;
    assert!(valid_end >= LOG_HEADER_LEN as u64);
    assert!(valid_end <= (bytes.len() as u64).max(LOG_HEADER_LEN as u64));
    for e in batches.iter().flatten() {
        assert!(u64::from(e.offset) >= LOG_HEADER_LEN as u64);
        assert!(u64::from(e.offset) + u64::from(e.len) <= valid_end);
    }
    Ok((batches, valid_end))
}

/// Decodes a block and, when it decodes, uses every accessor.
fn exercise_block(data: Vec<u8>, verify: bool, probe: &[u8]) -> Result<usize, brock::DecodeError> {
    let b = Block::decode(data, verify)?;
    assert!(!b.is_empty());
    let _ = (b.base_key(), b.size_in_memory());
    let mut k = Vec::new();
    for i in 0..b.len() {
        b.key_into(i, &mut k);
        let _ = b.value(i);
        // `decode` checks that keys strictly ascend, so seeking a key finds it.
        assert_eq!(b.seek(&k), i, "seek finds entry {i}");
    }
    assert!(b.seek(probe) <= b.len());
    Ok(b.len())
}

/// Batches of `seed` that end at or before `offset`, and the valid end they give.
fn batches_before(seed: &LogSeed, offset: usize) -> (Vec<Vec<LogEntry>>, u64) {
    let kept: Vec<_> = seed
        .batches
        .iter()
        .filter(|(_, end)| *end <= offset as u64)
        .collect();
    let valid_end = kept.last().map_or(LOG_HEADER_LEN as u64, |(_, end)| *end);
    (kept.into_iter().map(|(b, _)| b.clone()).collect(), valid_end)
}

/// Whether `mutated` (a log entry's bytes with one byte changed) keeps the
/// header layout of `orig`: same key and value lengths, same header size. Then
/// every byte that changed is under the CRC, at the same place.
fn same_layout(orig: &[u8], mutated: &[u8]) -> bool {
    match (decode_header(orig), decode_header(mutated)) {
        (Ok((a, alen)), Ok((b, blen))) => {
            alen == blen && a.key_len == b.key_len && a.value_len == b.value_len
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Arbitrary bytes into the pure decoders

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn log_entry_decoders_on_arbitrary_bytes(buf in bytes(300)) {
        match decode_entry(&buf) {
            Decoded::Entry(e, n) => {
                prop_assert!(n <= buf.len());
                prop_assert!(!e.key.is_empty() && e.key.len() as u64 <= MAX_LOG_KEY_LEN);
                let (h, hlen) = decode_header(&buf).expect("an entry has a header");
                prop_assert_eq!(hlen + e.key.len() + e.value.len() + 4, n);
                prop_assert_eq!(h.key_len as usize, e.key.len());
            }
            Decoded::End(_) => {}
        }
        let _ = LogFileHeader::decode(&buf);
    }

    #[test]
    fn small_decoders_on_arbitrary_bytes(buf in bytes(64), h in any::<u32>()) {
        if let Some((_, n)) = decode_uvarint(&buf) {
            prop_assert!(n <= buf.len() && n <= 10);
        }
        if let Ok(vs) = ValueStruct::decode(&buf) {
            prop_assert!(vs.value.len() + 2 <= buf.len());
        }
        prop_assert_eq!(ValuePointer::decode(&buf).is_ok(), buf.len() == VALUE_POINTER_LEN);
        let _ = bloom::may_contain(&buf, h);
        let _ = bloom::may_contain_key(&buf, &buf);
        let _ = checksum::verify_checksum(&buf, &buf);
        let _ = proto::decode::<Checksum>(&buf, "Checksum");
        let _ = proto::decode::<DataKey>(&buf, "DataKey");
        let _ = proto::decode::<KvList>(&buf, "KVList");
        let _ = proto::decode::<ManifestChangeSet>(&buf, "ManifestChangeSet");
    }

    #[test]
    fn manifest_decoders_on_arbitrary_bytes(tail in bytes(200), with_header in any::<bool>(), file_len in any::<u64>()) {
        let mut buf = if with_header { ManifestHeader::new(0).encode().to_vec() } else { Vec::new() };
        buf.extend_from_slice(&tail);
        let _ = ManifestHeader::decode(&buf);
        if let Ok(Record::Complete(_, n)) = decode_record(&tail, file_len) {
            prop_assert!(n <= tail.len());
        }
        let p = Path::new("MANIFEST");
        if let Ok(r) = brock::levels::replay_manifest(&buf, p, None) {
            prop_assert!(r.valid_end <= buf.len() as u64);
        }
        let _ = brock::levels::replay_manifest(&buf, p, Some(0));
    }

    #[test]
    fn key_registry_and_discard_on_arbitrary_bytes(tail in bytes(200), with_header in any::<bool>()) {
        let mut buf = if with_header { KeyRegistryFile::plaintext([3; 16]).encode() } else { Vec::new() };
        buf.extend_from_slice(&tail);
        if let Ok(f) = KeyRegistryFile::decode(&buf) {
            prop_assert!(buf.len() >= KEY_REGISTRY_HEADER_LEN);
            let _ = f.is_plaintext();
        }
        let slots = discard::decode_slots(&buf);
        prop_assert!(slots.len() <= buf.len() / 16);
        prop_assert!(slots.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn table_index_on_arbitrary_bytes(buf in bytes(400)) {
        if let Ok(idx) = TableIndex::decode(&buf) {
            prop_assert!(idx.blocks.len() <= buf.len() / 4);
            prop_assert!(idx.bloom_filter.len() <= buf.len());
        }
    }

    #[test]
    fn block_on_arbitrary_bytes(buf in bytes(400), verify in any::<bool>(), probe in bytes(20)) {
        let _ = exercise_block(buf, verify, &probe);
    }

    #[test]
    fn decompress_on_arbitrary_bytes(buf in bytes(400), kind in 0u32..3, limit in prop_oneof![0usize..64, 0usize..(1 << 20)]) {
        let kind = CompressionType::from_u32(kind).unwrap();
        let len = buf.len();
        if let Ok(out) = decompress(kind, buf, limit) {
            if kind == CompressionType::None {
                prop_assert_eq!(out.len(), len);
            } else {
                prop_assert!(out.len() <= limit);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Arbitrary bytes into the file readers

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn table_open_on_arbitrary_bytes(buf in bytes(600), kind in 0u32..3, verify in any::<bool>()) {
        let _ = exercise_table(&buf, CompressionType::from_u32(kind).unwrap(), verify, b"k");
    }

    #[test]
    fn log_readers_on_arbitrary_bytes(tail in bytes(400), header in prop_oneof![Just(0u64), any::<u64>()]) {
        let mut buf = LogFileHeader { key_id: header, base_iv: [9; 12] }.encode().to_vec();
        buf.extend_from_slice(&tail);
        match exercise_log(&buf) {
            Ok(_) => prop_assert_eq!(header, 0),
            Err(Error::EncryptionNotSupported { key_id, .. }) => prop_assert_eq!(key_id, header),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
        // A file shorter than the header replays as empty.
        let short = tail.len().min(LOG_HEADER_LEN - 1);
        let (batches, _) = exercise_log(&tail[..short]).expect("a short log is empty");
        prop_assert!(batches.is_empty());
    }

    #[test]
    fn value_reads_with_arbitrary_pointers(fid in any::<u32>(), len in prop_oneof![0u32..200, any::<u32>()],
                                            offset in prop_oneof![0u32..80_000, any::<u32>()]) {
        let s = seeds();
        let f = temp_file(&s.vlog.bytes);
        let file = open_file(f.path());
        let vp = ValuePointer { fid, len, offset };
        if let Ok(v) = brock::vlog::read_value(file.as_ref(), &vp) {
            prop_assert!(u64::from(offset) + u64::from(len) <= s.vlog.bytes.len() as u64);
            prop_assert!(v.key.len() + v.value.len() < len as usize);
        }
    }
}

// ---------------------------------------------------------------------------
// Mutated real bytes: the pure decoders

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn manifest_mutations(which in any::<Index>(), ms in mutations(), magic in prop_oneof![Just(None), Just(Some(0u16))]) {
        let s = seeds();
        let (name, seed, fields) = &s.manifests[which.index(s.manifests.len())];
        let buf = mutate(seed, fields, &ms);
        let p = Path::new(name);
        if let Ok(r) = brock::levels::replay_manifest(&buf, p, magic) {
            prop_assert!(r.valid_end <= buf.len() as u64);
            prop_assert!(r.valid_end >= MANIFEST_HEADER_LEN as u64);
        }
    }

    /// A changed byte under a record's CRC is always caught; so are a bad
    /// magic and a bad version.
    #[test]
    fn manifest_byte_change_is_detected(which in any::<Index>(), (at, xor) in byte_change()) {
        let s = seeds();
        let (name, seed, _) = &s.manifests[which.index(s.manifests.len())];
        let pos = at.index(seed.len());
        let mut buf = seed.clone();
        buf[pos] ^= xor;
        let p = Path::new(name);
        let r = brock::levels::replay_manifest(&buf, p, Some(0));
        let r_any = brock::levels::replay_manifest(&buf, p, None);
        match pos {
            0..4 => prop_assert!(matches!(r_any, Err(Error::BadMagic { .. })), "{r_any:?}"),
            4..6 => {
                prop_assert!(matches!(r, Err(Error::ExternalMagicMismatch { expected: 0, .. })), "{r:?}");
                prop_assert!(r_any.is_ok());
            }
            6..8 => prop_assert!(matches!(r_any, Err(Error::UnsupportedVersion { .. })), "{r_any:?}"),
            _ => {
                let records = manifest_records(seed);
                let (start, _) = *records.iter().find(|(st, l)| pos < st + 8 + l).expect("inside a record");
                if pos >= start + 4 {
                    match r_any {
                        Err(Error::Corruption { offset, .. }) => prop_assert_eq!(offset, start as u64),
                        other => prop_assert!(false, "byte {pos} changed, got {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn log_entry_mutations(which in any::<Index>(), ms in mutations()) {
        let s = seeds();
        let log = if which.index(2) == 0 { &s.mem } else { &s.vlog };
        let e = log.entries[which.index(log.entries.len())];
        let seed = &log.bytes[e.offset..(e.offset + e.len + 64).min(log.bytes.len())];
        let fields = [Field { at: 2, kind: FieldKind::Varint }, Field { at: 2 + decode_uvarint(&seed[2..]).unwrap().1, kind: FieldKind::Varint }];
        let buf = mutate(seed, &fields, &ms);
        if let Decoded::Entry(d, n) = decode_entry(&buf) {
            prop_assert!(n <= buf.len());
            prop_assert!(!d.key.is_empty());
        }
    }

    /// A changed byte that leaves an entry's header layout as it was (its
    /// lengths and header size) is under the CRC: the entry must fail it.
    #[test]
    fn log_entry_byte_change_is_detected(which in any::<Index>(), (at, xor) in byte_change()) {
        let s = seeds();
        let log = if which.index(2) == 0 { &s.mem } else { &s.vlog };
        let e = log.entries[which.index(log.entries.len())];
        let orig = &log.bytes[e.offset..e.offset + e.len];
        let mut buf = orig.to_vec();
        buf[at.index(orig.len())] ^= xor;
        let got = decode_entry(&buf);
        if same_layout(orig, &buf) {
            prop_assert_eq!(got, Decoded::End(brock::format::LogEnd::BadChecksum));
        } else if let Decoded::Entry(_, n) = got {
            prop_assert!(n <= buf.len());
        }
    }

    #[test]
    fn table_index_mutations(which in any::<Index>(), ms in mutations()) {
        let s = seeds();
        let t = &s.tables[which.index(s.tables.len())];
        let seed = &t.bytes[t.index_offset..t.index_offset + t.index_len];
        let buf = mutate(seed, &[Field { at: 0, kind: FieldKind::U32Le }], &ms);
        if let Ok(idx) = TableIndex::decode(&buf) {
            prop_assert!(idx.blocks.len() <= buf.len() / 4);
        }
    }

    #[test]
    fn block_mutations(which in any::<Index>(), ms in mutations(), verify in any::<bool>(), probe in bytes(24)) {
        let s = seeds();
        let (_, _, plain) = &s.blocks[which.index(s.blocks.len())];
        let buf = mutate(plain, &block_fields(plain), &ms);
        let _ = exercise_block(buf, verify, &probe);
    }

    /// A changed byte before a block's checksum fails verification.
    #[test]
    fn block_byte_change_is_detected(which in any::<Index>(), (at, xor) in byte_change()) {
        let s = seeds();
        let (_, _, plain) = &s.blocks[which.index(s.blocks.len())];
        let len = plain.len() - 4;
        let chk_len = u32::from_be_bytes(plain[len..].try_into().unwrap()) as usize;
        let data_len = len - chk_len;
        let mut buf = plain.clone();
        let pos = at.index(data_len);
        buf[pos] ^= xor;
        let err = exercise_block(buf, true, b"").expect_err("checksum catches the change");
        prop_assert!(matches!(err.kind, brock::CorruptionKind::ChecksumMismatch { .. }), "{err:?}");
    }

    #[test]
    fn decompress_mutations(which in any::<Index>(), ms in mutations(), slack in prop_oneof![Just(0usize), 0usize..4096]) {
        let s = seeds();
        let (kind, stored, plain) = &s.blocks[which.index(s.blocks.len())];
        let fields = [Field { at: 0, kind: FieldKind::Varint }];
        let buf = mutate(stored, if *kind == CompressionType::Snappy { &fields } else { &[] }, &ms);
        let limit = plain.len() + slack;
        if let Ok(out) = decompress(*kind, buf, limit)
            && *kind != CompressionType::None
        {
            prop_assert!(out.len() <= limit);
        }
    }

    #[test]
    fn key_registry_mutations(ms in mutations(), keys in proptest::collection::vec((any::<u64>(), bytes(40), bytes(20), any::<i64>()), 0..4)) {
        let s = seeds();
        let _ = KeyRegistryFile::decode(&mutate(&s.key_registry, &[], &ms));
        let mut f = KeyRegistryFile::decode(&s.key_registry).expect("clean registry");
        f.data_keys = keys.into_iter().map(|(key_id, data, iv, created_at)| DataKey { key_id, data, iv, created_at }).collect();
        let enc = f.encode();
        let mut fields = Vec::new();
        let mut pos = KEY_REGISTRY_HEADER_LEN;
        while pos < enc.len() {
            fields.push(Field { at: pos, kind: FieldKind::U32Be });
            pos += 8 + u32::from_be_bytes(enc[pos..pos + 4].try_into().unwrap()) as usize;
        }
        if let Ok(back) = KeyRegistryFile::decode(&mutate(&enc, &fields, &ms)) {
            prop_assert!(back.data_keys.len() <= enc.len() + 64);
        }
    }

    /// A changed byte in a data-key record's CRC or payload is caught.
    #[test]
    fn key_registry_byte_change_is_detected(keys in proptest::collection::vec((any::<u64>(), bytes(40), bytes(20), any::<i64>()), 1..4),
                                            (at, xor) in byte_change()) {
        let mut f = KeyRegistryFile::plaintext([5; 16]);
        f.data_keys = keys.into_iter().map(|(key_id, data, iv, created_at)| DataKey { key_id, data, iv, created_at }).collect();
        let mut enc = f.encode();
        prop_assert_eq!(KeyRegistryFile::decode(&enc), Ok(f));
        let mut starts = Vec::new();
        let mut pos = KEY_REGISTRY_HEADER_LEN;
        while pos < enc.len() {
            starts.push(pos);
            pos += 8 + u32::from_be_bytes(enc[pos..pos + 4].try_into().unwrap()) as usize;
        }
        // Pick a byte after some record's length field.
        let covered: Vec<usize> = starts
            .iter()
            .enumerate()
            .flat_map(|(i, &st)| (st + 4..starts.get(i + 1).copied().unwrap_or(enc.len())).collect::<Vec<_>>())
            .collect();
        let pos = covered[at.index(covered.len())];
        enc[pos] ^= xor;
        prop_assert!(KeyRegistryFile::decode(&enc).is_err());
    }

    #[test]
    fn discard_mutations(ms in mutations()) {
        let s = seeds();
        let buf = mutate(&s.discard, &[], &ms);
        let slots = discard::decode_slots(&buf);
        prop_assert!(slots.len() <= buf.len() / 16);
    }
}

// ---------------------------------------------------------------------------
// Mutated real bytes: the file readers

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn table_file_mutations(which in any::<Index>(), ms in mutations(), verify in any::<bool>(), probe in bytes(24)) {
        let s = seeds();
        let t = &s.tables[which.index(s.tables.len())];
        let buf = mutate(&t.bytes, &t.fields, &ms);
        let _ = exercise_table(&buf, t.compression, verify, &probe);
    }

    /// Bytes of the index are under the index checksum, always verified at
    /// open; bytes of an uncompressed block before its checksum are caught
    /// when the block is read (here: a full scan with verification on).
    #[test]
    fn table_byte_change_is_detected(which in any::<Index>(), (at, xor) in byte_change(), aim_at_index in any::<bool>()) {
        let s = seeds();
        let t = &s.tables[which.index(s.tables.len())];
        let pos = if aim_at_index {
            t.index_offset + at.index(t.index_len)
        } else {
            at.index(t.bytes.len())
        };
        let mut buf = t.bytes.clone();
        buf[pos] ^= xor;
        let got = exercise_table(&buf, t.compression, true, b"");
        let in_index = (t.index_offset..t.index_offset + t.index_len).contains(&pos);
        let in_block_data = t.compression == CompressionType::None
            && t.blocks.iter().any(|&(off, len)| {
                let b = &t.bytes[off..off + len];
                let chk_len = u32::from_be_bytes(b[len - 4..].try_into().unwrap()) as usize;
                (off..off + len - 4 - chk_len).contains(&pos)
            });
        if in_index || in_block_data {
            prop_assert!(got.is_err(), "{}: byte {pos} changed (in_index {in_index}) but read {got:?}", t.name);
        }
        if in_index {
            prop_assert!(matches!(got, Err(Error::Corruption { .. })), "{got:?}");
        }
    }

    /// Tables built from random entries, with every compression, mutated.
    #[test]
    fn built_table_mutations(entries in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 1..24), (bytes(80), any::<u8>(), any::<u8>(), prop_oneof![Just(0u64), any::<u64>()]), 1..120),
                             kind in 0u32..3, block_size in prop_oneof![Just(64usize), Just(4096usize)],
                             ms in mutations(), verify in any::<bool>()) {
        let compression = CompressionType::from_u32(kind).unwrap();
        let mut b = TableBuilder::new(BuilderOptions { compression, block_size, ..BuilderOptions::default() });
        for (i, (k, (v, meta, user_meta, expires_at))) in entries.iter().enumerate() {
            let key = key_with_version(k, 1 + i as u64 % 3);
            b.add(&key, &ValueStruct { meta: meta & !BIT_VALUE_POINTER, user_meta: *user_meta, expires_at: *expires_at, value: v }, 0);
        }
        let built = b.finish();
        let pristine = exercise_table(&built, compression, true, b"");
        prop_assert_eq!(pristine.expect("built table reads"), entries.len());
        let _ = exercise_table(&mutate(&built, &[Field { at: built.len() - 4, kind: FieldKind::U32Be }], &ms), compression, verify, b"k");
    }

    /// Blocks built from random entries, mutated.
    #[test]
    fn built_block_mutations(entries in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 1..40), bytes(40), 1..60), ms in mutations(), verify in any::<bool>()) {
        let mut bb = BlockBuilder::default();
        for (k, v) in &entries {
            bb.add(&key_with_version(k, 5), &ValueStruct { meta: 0, user_meta: 0, expires_at: 0, value: v });
        }
        let (block, _) = bb.finish();
        prop_assert_eq!(exercise_block(block.clone(), true, b"").expect("built block decodes"), entries.len());
        let _ = exercise_block(mutate(&block, &block_fields(&block), &ms), verify, b"k");
        for kind in [CompressionType::Snappy, CompressionType::Zstd] {
            let c = mutate(&compress(kind, &block, 1), &[], &ms);
            if let Ok(out) = decompress(kind, c, block.len()) {
                prop_assert!(out.len() <= block.len());
            }
        }
    }

    #[test]
    fn log_file_mutations(which in any::<Index>(), ms in mutations()) {
        let s = seeds();
        let log = if which.index(2) == 0 { &s.mem } else { &s.vlog };
        let buf = mutate(&log.bytes, &log.fields, &ms);
        match exercise_log(&buf) {
            Ok(_) | Err(Error::EncryptionNotSupported { .. }) => {}
            Err(e) => prop_assert!(false, "a log never fails on bad entries: {e}"),
        }
    }

    /// One changed byte in the WAL: exactly the transactions that end before
    /// the damaged entry survive.
    #[test]
    fn wal_byte_change_keeps_earlier_transactions(which in any::<Index>(), (at, xor) in byte_change(), in_data in any::<bool>()) {
        let s = seeds();
        let log = if which.index(2) == 0 { &s.mem } else { &s.vlog };
        let data_end = log.entries.last().map_or(LOG_HEADER_LEN, |e| e.offset + e.len);
        let pos = if in_data { at.index(data_end) } else { at.index(log.bytes.len()) };
        let mut buf = log.bytes.clone();
        buf[pos] ^= xor;
        let got = exercise_log(&buf);
        if pos < 8 {
            prop_assert!(matches!(got, Err(Error::EncryptionNotSupported { .. })), "{got:?}");
            return Ok(());
        }
        let (batches, valid_end) = got.expect("a log with a plaintext header replays");
        let whole: Vec<Vec<LogEntry>> = log.batches.iter().map(|(b, _)| b.clone()).collect();
        match log.entries.iter().find(|e| (e.offset..e.offset + e.len).contains(&pos)) {
            None => {
                // The IV of the header, or the zero tail after the last
                // entry, where a lone non-zero byte never makes an entry.
                prop_assert_eq!(&batches, &whole);
                prop_assert_eq!(valid_end, log.valid_end);
            }
            Some(e) => {
                let span = e.offset..e.offset + e.len;
                let (want, want_end) = batches_before(log, e.offset);
                if same_layout(&log.bytes[span.clone()], &buf[span]) {
                    prop_assert_eq!(&batches, &want);
                    prop_assert_eq!(valid_end, want_end);
                } else {
                    // A length changed: the entry ends the log unless a CRC
                    // collides; either way nothing after the log's end appears.
                    prop_assert!(valid_end <= log.valid_end);
                    prop_assert!(batches.len() <= log.batches.len());
                }
            }
        }
    }

    #[test]
    fn value_reads_from_mutated_vlog(ms in mutations(), which in any::<Index>(), edit in field_edit(), bump_len in any::<bool>()) {
        let s = seeds();
        let buf = mutate(&s.vlog.bytes, &s.vlog.fields, &ms);
        let f = temp_file(&buf);
        let file = open_file(f.path());
        for vp in &s.vlog_pointers {
            let _ = brock::vlog::read_value(file.as_ref(), vp);
        }
        let mut vp = s.vlog_pointers[which.index(s.vlog_pointers.len())];
        let old = if bump_len { vp.len } else { vp.offset };
        let new = edit_value(u64::from(old), edit, u64::from(u32::MAX)) as u32;
        if bump_len { vp.len = new } else { vp.offset = new }
        let _ = brock::vlog::read_value(file.as_ref(), &vp);
    }

    /// A changed byte inside a pointed-to entry (outside its length varints)
    /// fails that read; every other pointer still reads its original value.
    #[test]
    fn value_read_byte_change_is_detected(which in any::<Index>(), (at, xor) in byte_change()) {
        let s = seeds();
        let target = s.vlog_pointers[which.index(s.vlog_pointers.len())];
        let pos = target.offset as usize + at.index(target.len as usize);
        let orig = temp_file(&s.vlog.bytes);
        let mut buf = s.vlog.bytes.clone();
        buf[pos] ^= xor;
        let f = temp_file(&buf);
        let file = open_file(f.path());
        let orig_file = open_file(orig.path());
        for vp in &s.vlog_pointers {
            let got = brock::vlog::read_value(file.as_ref(), vp);
            let start = vp.offset as usize;
            if !(start..start + vp.len as usize).contains(&pos) {
                let want = brock::vlog::read_value(orig_file.as_ref(), vp).expect("original value");
                prop_assert_eq!(got.expect("untouched entry reads"), want);
                continue;
            }
            let span = start..start + vp.len as usize;
            if same_layout(&s.vlog.bytes[span.clone()], &buf[span]) {
                prop_assert!(matches!(got, Err(Error::Corruption { .. })), "byte {pos} changed, got {got:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Whole directories

/// A private copy of a fixture whose files a test mutates and restores.
struct DirCase {
    dir: tempfile::TempDir,
    /// Each file: its name, its bytes (the first `window` bytes of a longer
    /// file) and its length fields.
    files: Vec<(String, Vec<u8>, Vec<Field>)>,
}

impl DirCase {
    fn new(fixture: &str, window: u64) -> DirCase {
        let dir = common::fixture_copy(fixture);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("fixture copy")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "LOCK")
            .collect();
        names.sort();
        let files = names
            .into_iter()
            .map(|name| {
                let path = dir.path().join(&name);
                let bytes = read_prefix(&path, window);
                let fields = if name == "MANIFEST" {
                    manifest_fields(&bytes)
                } else if name.ends_with(".mem") || name.ends_with(".vlog") {
                    log_seed(bytes.clone()).fields
                } else if name.ends_with(".sst") {
                    table_seed(name.clone(), &path, CompressionType::Snappy).fields
                } else {
                    Vec::new()
                };
                (name, bytes, fields)
            })
            .collect();
        DirCase { dir, files }
    }

    /// Puts `bytes` in place of file `name` (of its first `window` bytes for a
    /// file longer than the window, keeping its length), runs `f`, and
    /// restores the file, even when `f` panics.
    fn with_file<T>(&self, name: &str, bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
        struct Restore<'a> {
            path: PathBuf,
            orig: &'a [u8],
            whole: bool,
        }
        impl Restore<'_> {
            fn write(&self, content: &[u8]) {
                // Written in place, never truncated to zero: ext4 flushes a
                // file truncated to zero when it is closed, which is slow.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .expect("open file");
                if self.whole {
                    file.write_all(content).expect("write file");
                    file.set_len(content.len() as u64).expect("set file length");
                } else {
                    // Only the window of a long (sparse) file: same length.
                    let mut window = content.to_vec();
                    window.resize(self.orig.len(), 0);
                    file.write_all(&window).expect("write window");
                }
            }
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.write(self.orig);
            }
        }
        let path = self.dir.path().join(name);
        let (_, orig, _) = self.files.iter().find(|(n, _, _)| n == name).expect("known file");
        let whole = std::fs::metadata(&path).expect("stat").len() == orig.len() as u64;
        let restore = Restore { path, orig, whole };
        restore.write(bytes);
        f(self.dir.path())
    }
}

/// Opens a directory and reads everything there is to read.
fn exercise_dir(dir: &Path) -> brock::Result<usize> {
    let view = DirView::open(dir)?;
    let _ = (
        view.info(),
        view.max_version(),
        view.manifest(),
        view.key_registry(),
        view.mem_wals(),
    );
    let mut n = 0;
    let mut keys = Vec::new();
    for v in view.versions()? {
        let v = v?;
        keys.push((v.key.clone(), v.version));
        n += 1;
    }
    for v in view.latest(u64::MAX)? {
        v?;
    }
    for v in view.latest(2)? {
        v?;
    }
    for (k, ver) in keys.iter().take(20) {
        let _ = view.get(k, *ver)?;
        let _ = view.get(k, u64::MAX)?;
    }
    let _ = view.get(b"no such key", u64::MAX)?;
    write_dump(&view, DumpMode::AllVersions, &mut std::io::sink())?;
    write_dump(&view, DumpMode::Latest, &mut std::io::sink())?;
    Ok(n)
}

/// Runs `test` on cases of `strategy` with this file's configuration;
/// a failure panics with the shrunk input.
fn run_cases<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let mut runner = proptest::test_runner::TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// Mutates one file of a private copy of `fixture` per case (only the first
/// `window` bytes of longer files) and reads the whole directory.
fn dir_with_one_mutated_file(fixture: &str, window: u64) {
    let case = DirCase::new(fixture, window);
    run_cases(256, (any::<Index>(), mutations()), |(which, ms)| {
        let (name, orig, fields) = &case.files[which.index(case.files.len())];
        let buf = mutate(orig, fields, &ms);
        let _ = case.with_file(name, &buf, exercise_dir);
        Ok(())
    });
}

#[test]
fn clean_dir_with_one_mutated_file() {
    dir_with_one_mutated_file("clean", 1 << 21);
}

#[test]
fn unflushed_dir_with_one_mutated_file() {
    dir_with_one_mutated_file("unflushed-small", 8192);
}

/// Changes a directory must report: a byte of a MANIFEST record's CRC or
/// payload, of the table index, of the KEYREGISTRY sanity text, or of a
/// value-log entry a key points to (past its header).
#[test]
fn clean_dir_byte_change_is_detected() {
    let s = seeds();
    let case = DirCase::new("clean", 1 << 21);
    let original = |name: &str| {
        &case
            .files
            .iter()
            .find(|(n, _, _)| n == name)
            .expect("fixture file")
            .1
    };
    let manifest_covered: Vec<usize> = manifest_records(original("MANIFEST"))
        .into_iter()
        .flat_map(|(start, len)| start + 4..start + 8 + len)
        .collect();
    let strategy = (0usize..4, byte_change(), any::<Index>());
    run_cases(256, strategy, |(which, (at, xor), at2)| {
        let (name, pos) = match which {
            0 => ("MANIFEST", manifest_covered[at.index(manifest_covered.len())]),
            1 => {
                let t = &s.tables[0];
                ("000001.sst", t.index_offset + at.index(t.index_len))
            }
            2 => ("KEYREGISTRY", 16 + at.index(12)),
            _ => {
                let vp = s.vlog_pointers[at2.index(s.vlog_pointers.len())];
                let (_, hlen) = decode_header(&s.vlog.bytes[vp.offset as usize..]).expect("entry header");
                (
                    "000001.vlog",
                    vp.offset as usize + hlen + at.index(vp.len as usize - hlen),
                )
            }
        };
        let mut buf = original(name).clone();
        buf[pos] ^= xor;
        let got = case.with_file(name, &buf, exercise_dir);
        match name {
            "KEYREGISTRY" => prop_assert!(
                matches!(got, Err(Error::EncryptionNotSupported { .. })),
                "{got:?}"
            ),
            _ => prop_assert!(
                matches!(got, Err(Error::Corruption { .. })),
                "{name} byte {pos}: {got:?}"
            ),
        }
        Ok(())
    });
}

/// The seeds themselves read cleanly, so the properties start from valid bytes.
#[test]
fn seeds_are_valid() {
    let s = seeds();
    for (name, m, _) in &s.manifests {
        let r = brock::levels::replay_manifest(m, Path::new(name), Some(0)).unwrap();
        assert!(!r.torn_tail, "{name}");
    }
    for t in &s.tables {
        let n = exercise_table(&t.bytes, t.compression, true, b"").unwrap();
        assert!(n > 0, "{}", t.name);
    }
    assert!(!s.mem.batches.is_empty());
    assert!(s.vlog.entries.len() >= s.vlog_pointers.len());
    assert!(KeyRegistryFile::decode(&s.key_registry).unwrap().is_plaintext());
    for (kind, stored, plain) in &s.blocks {
        assert_eq!(&decompress(*kind, stored.clone(), plain.len()).unwrap(), plain);
        exercise_block(plain.clone(), true, b"").unwrap();
    }
    assert!(exercise_dir(&common::fixture("clean")).unwrap() > 0);
}

/// Tables and indexes that Brock builds read back, whatever the size at which
/// the index builder's buffer grows.
///
/// Regression for a bug `built_table_mutations` found (fixed in 2d918b8):
/// `FbBuilder::end_object` took the object's position in the buffer before
/// prepending a new vtable, so when that prepend grew the buffer (past 1024
/// bytes, then 2048, ...) the vtable offset went to a stale position and the
/// index decoded as "vtable length out of range". Smallest cases: 24 blocks
/// with 16-byte base keys, 30 with 8-byte keys; a table of the 24 entries
/// `key0000`..`key0023` in 64-byte blocks.
#[test]
fn table_index_survives_builder_growth() {
    use brock::format::BlockHandle;
    let mut broken = Vec::new();
    for n in 1..160usize {
        for key_len in [1usize, 8, 9, 10, 12, 16, 40] {
            let idx = TableIndex {
                blocks: (0..n)
                    .map(|i| BlockHandle {
                        base_key: vec![0; key_len],
                        offset: (i * 10) as u32,
                        len: 10,
                    })
                    .collect(),
                max_version: 1,
                key_count: n as u32,
                uncompressed_size: 10 * n as u32,
                on_disk_size: 10 * n as u32,
                ..TableIndex::default()
            };
            let enc = idx.encode();
            match TableIndex::decode(&enc) {
                Ok(back) => assert_eq!(back.blocks, idx.blocks),
                Err(e) => broken.push(format!(
                    "{n} blocks of {key_len}-byte keys ({} bytes): {e}",
                    enc.len()
                )),
            }
        }
    }
    for n in 1..100usize {
        let mut b = TableBuilder::new(BuilderOptions {
            compression: CompressionType::None,
            block_size: 64,
            bloom_false_positive: 0.0,
            ..BuilderOptions::default()
        });
        for i in 0..n {
            let value = ValueStruct {
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                value: b"value",
            };
            b.add(&key_with_version(format!("key{i:04}").as_bytes(), 1), &value, 0);
        }
        if let Err(e) = exercise_table(&b.finish(), CompressionType::None, true, b"") {
            broken.push(format!("table of {n} entries: {e}"));
        }
    }
    assert!(
        broken.is_empty(),
        "{} indexes do not decode:\n{}",
        broken.len(),
        broken.join("\n")
    );
}
