//! `brock flatten`: compact a directory until all its tables sit in one level.

use brock::inspect::human_bytes;
use brock::{Db, Options};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `brock flatten`.
#[derive(Debug, clap::Args)]
pub struct FlattenArgs {
    /// The directory (Badger's `Dir`).
    #[arg(long)]
    dir: PathBuf,
    /// The value-log directory, when it differs from `--dir`.
    #[arg(long)]
    value_dir: Option<PathBuf>,
    /// Compactions run in parallel.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    workers: u32,
}

fn level_line(sizes: &[u64]) -> String {
    sizes
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > 0)
        .map(|(i, s)| format!("L{i} {}", human_bytes(*s)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the command.
pub fn run(a: &FlattenArgs) -> brock::Result<()> {
    if !a.dir.join("MANIFEST").exists() {
        return Err(brock::Error::MissingFile {
            path: a.dir.join("MANIFEST"),
        });
    }
    let mut opts = Options::new(&a.dir).with_num_compactors(0);
    if let Some(v) = &a.value_dir {
        opts = opts.with_value_dir(v);
    }
    let db = Db::open(opts)?;
    db.wait_for_flushes()?;
    let before: Vec<u64> = db.levels().iter().map(|l| l.size).collect();
    let total_before: u64 = before.iter().sum();
    eprintln!("before: {} ({})", human_bytes(total_before), level_line(&before));
    let tty = std::io::stderr().is_terminal();
    let mut last = 0u64;
    db.flatten_with(a.workers as usize, &mut |p| {
        if p.compactions != last || p.compactions == 0 {
            last = p.compactions;
            let line = format!("compactions {:>5}  {}", p.compactions, level_line(&p.level_sizes));
            if tty {
                eprint!("\r{line:<100}");
            } else {
                eprintln!("{line}");
            }
        }
    })?;
    if tty {
        eprintln!();
    }
    let after: Vec<u64> = db.levels().iter().map(|l| l.size).collect();
    let total_after: u64 = after.iter().sum();
    db.close()?;
    println!(
        "flattened: {} -> {} ({}), {}",
        human_bytes(total_before),
        human_bytes(total_after),
        level_line(&after),
        if total_after <= total_before {
            format!("{} reclaimed", human_bytes(total_before - total_after))
        } else {
            format!("{} grew", human_bytes(total_after - total_before))
        }
    );
    Ok(())
}
