//! The tree's shape: the MANIFEST and, later, level handlers and compaction.

pub mod compact_status;
pub mod compaction;
pub mod key_range;
pub mod manifest;
pub mod manifest_file;
pub mod policy;
pub mod sim;
pub mod tree;

pub use manifest::{Manifest, ManifestReplay, TableManifest, replay_manifest};
pub use manifest_file::{ManifestFile, create_change, delete_change};
pub use tree::Tree;
