//! The tree's shape: the MANIFEST and, later, level handlers and compaction.

pub mod manifest;

pub use manifest::{Manifest, ManifestReplay, TableManifest, replay_manifest};
