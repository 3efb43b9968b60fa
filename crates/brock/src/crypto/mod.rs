//! Encryption at rest. For now: reading the KEYREGISTRY and telling whether a
//! directory is encrypted; AES-CTR arrives with the encryption issue.

pub mod key_registry;

pub use key_registry::{KeyRegistry, read_key_registry};
