//! `brock`: inspect, dump and (later) benchmark Brock and Badger directories.
//!
//! Uses only the public API of the `brock` crate. Errors go to stderr with
//! exit status 1; a closed output pipe (`brock dump | head`) ends quietly.

mod bench;
mod dump;
mod flatten;
mod gc;
mod info;
mod simulate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc, as RocksDB ships with jemalloc: the engine allocates a node per
/// memtable entry and frees a memtable's worth at each flush, where glibc's
/// allocator showed up in profiles. Every store in a benchmark run uses it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Brock: a Rust store that reads and writes BadgerDB v4 directories.
#[derive(Debug, Parser)]
#[command(name = "brock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark Brock: fill, random gets and a full scan, as JSON lines.
    Bench(bench::BenchArgs),
    /// Print every key and value of a directory as tab-separated hex.
    Dump(dump::DumpArgs),
    /// Compact a directory until all tables sit in one level.
    Flatten(flatten::FlattenArgs),
    /// Collect value-log files until none has enough garbage left.
    Gc(gc::GcArgs),
    /// Show levels, tables, logs and sizes of a directory.
    Info(info::InfoArgs),
    /// Run the compaction policy over a synthetic workload (no data).
    Simulate(simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(a) => bench::run(&a),
        Command::Dump(a) => dump::run(&a),
        Command::Flatten(a) => flatten::run(&a),
        Command::Gc(a) => gc::run(&a),
        Command::Info(a) => info::run(&a),
        Command::Simulate(a) => simulate::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brock: {e}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &brock::Error) -> bool {
    matches!(e, brock::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}
