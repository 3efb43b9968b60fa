//! `brock simulate`: the compaction policy over a synthetic workload, no data.

use brock::inspect::human_bytes;
use brock::levels::policy::PolicyOptions;
use brock::levels::sim::simulate;

/// Arguments of `brock simulate` (Badger's defaults).
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Bytes written, in MiB.
    #[arg(long, default_value_t = 10_240, value_parser = clap::value_parser!(u64).range(1..))]
    data_mib: u64,
    /// Memtable size (L0 table size), in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    mem_table_mib: u64,
    /// Base level target size, in MiB.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    base_level_mib: u64,
    /// Base table size, in MiB.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    base_table_mib: u64,
    /// Level size multiplier.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    level_multiplier: u64,
    /// Levels.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(2..=32))]
    levels: u64,
}

/// Runs the command.
pub fn run(a: &SimulateArgs) -> brock::Result<()> {
    const MIB: u64 = 1 << 20;
    let o = PolicyOptions {
        base_level_size: a.base_level_mib * MIB,
        level_size_multiplier: a.level_multiplier,
        base_table_size: a.base_table_mib * MIB,
        table_size_multiplier: 2,
        mem_table_size: a.mem_table_mib * MIB,
        num_level_zero_tables: 5,
    };
    let r = simulate(&o, a.levels as usize, a.data_mib * MIB);
    println!(
        "wrote {} in {} compactions",
        human_bytes(r.user_bytes),
        r.compactions
    );
    println!(
        "write amplification (tables only; the WAL adds 1): {:.2}",
        r.write_amplification()
    );
    for (i, (b, t)) in r.level_bytes.iter().zip(&r.level_tables).enumerate() {
        println!("  L{i}: {t:>6} tables  {:>10}", human_bytes(*b));
    }
    Ok(())
}
