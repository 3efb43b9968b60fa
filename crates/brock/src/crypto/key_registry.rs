//! The KEYREGISTRY file: data keys for encryption at rest.
//!
//! Badger's `key_registry.go`; bytes in [`crate::format::key_registry`].
//! Without a master key the sanity text must read "Hello Badger" in plain;
//! otherwise the registry was written with a master key, which this build
//! cannot use yet, and opening fails with `EncryptionNotSupported`.

use crate::error::{Error, Result};
use crate::format::key_registry::KeyRegistryFile;
use crate::vfs::Vfs;
use std::path::Path;

/// The decoded registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRegistry {
    /// The file as stored.
    pub file: KeyRegistryFile,
}

impl KeyRegistry {
    /// Number of data keys.
    pub fn data_key_count(&self) -> usize {
        self.file.data_keys.len()
    }
}

/// Reads `dir/KEYREGISTRY`; `Ok(None)` if the file does not exist (a
/// read-only open of a directory Badger never finished creating).
pub fn read_key_registry(vfs: &dyn Vfs, dir: &Path) -> Result<Option<KeyRegistry>> {
    let path = dir.join("KEYREGISTRY");
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let buf = vfs.read_all(&path)?;
    let file = KeyRegistryFile::decode(&buf).map_err(|e| e.in_file(&path, 0))?;
    if !file.is_plaintext() {
        return Err(Error::EncryptionNotSupported {
            file: path,
            key_id: 0,
        });
    }
    if let Some(dk) = file.data_keys.first() {
        return Err(Error::EncryptionNotSupported {
            file: path,
            key_id: dk.key_id,
        });
    }
    Ok(Some(KeyRegistry { file }))
}
