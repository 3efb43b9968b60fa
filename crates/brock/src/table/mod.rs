//! Tables (`NNNNNN.sst`): blocks, the builder, the reader and its iterator.
//!
//! Byte layout in `docs/format.md` §"Table"; Badger's `table/` package.

pub mod block;
mod builder;
mod cache;
pub mod compression;
mod concat;
mod iterator;
mod snappy;
#[expect(
    clippy::module_inception,
    reason = "the reader owns the `Table` type, as Badger's table.go"
)]
mod table;

pub use builder::{BuilderOptions, TableBuilder};
pub use cache::BlockCache;
pub use concat::ConcatIterator;
pub use iterator::TableIterator;
pub use table::{Found, INLINE_BYTES, OwnedValue, Table, TableOptions, ValueBytes};
