//! The dump formats the fixtures' expected contents use.
//!
//! One line per item, key order, lowercase hex, tab-separated:
//! - latest: `key<TAB>value` for the newest visible version of each key;
//! - all versions: `key<TAB>version<TAB>user_meta (2 hex)<TAB>expires_at<TAB>flag<TAB>value`
//!   for every stored version, newest first, where flag is `D` for a
//!   tombstone or an expired entry and `-` otherwise.

use super::DirView;
use crate::error::{Error, Result};
use crate::format::meta::now_secs;
use std::io::Write;

/// Which dump to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpMode {
    /// The newest visible version of each key.
    Latest,
    /// Every stored version.
    AllVersions,
}

fn put_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// Writes the dump of `view` to `w`; returns the number of lines.
pub fn write_dump(view: &DirView, mode: DumpMode, w: &mut dyn Write) -> Result<u64> {
    let mut line = Vec::new();
    let mut lines = 0u64;
    let now = now_secs();
    let mut emit =
        |line: &[u8]| -> Result<()> { w.write_all(line).map_err(|e| Error::io("<dump output>", e)) };
    match mode {
        DumpMode::Latest => {
            for v in view.latest(u64::MAX)? {
                let v = v?;
                line.clear();
                put_hex(&mut line, &v.key);
                line.push(b'\t');
                put_hex(&mut line, &v.value);
                line.push(b'\n');
                emit(&line)?;
                lines += 1;
            }
        }
        DumpMode::AllVersions => {
            for v in view.versions()? {
                let v = v?;
                line.clear();
                put_hex(&mut line, &v.key);
                let flag = if v.is_deleted_or_expired(now) { 'D' } else { '-' };
                line.extend_from_slice(
                    format!("\t{}\t{:02x}\t{}\t{flag}\t", v.version, v.user_meta, v.expires_at).as_bytes(),
                );
                put_hex(&mut line, &v.value);
                line.push(b'\n');
                emit(&line)?;
                lines += 1;
            }
        }
    }
    w.flush().map_err(|e| Error::io("<dump output>", e))?;
    Ok(lines)
}
