//! Brock's benchmark workloads, shared by `brock bench` and the
//! `brock-bench` harness so that every store sees the same keys and values.
//!
//! - [`workload`]: the generator (keys, values, write order, read order), the
//!   [`Store`](workload::Store) trait, the three runners (fill, random reads,
//!   full scan) and the JSON report line.
//! - [`stores`]: Brock and, behind the default features `fjall` and `redb`,
//!   the peer stores.

pub mod stores;
pub mod workload;
