//! `brock gc`: collect value-log files until none has enough garbage left.

use brock::inspect::human_bytes;
use brock::{Db, Error, Options};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `brock gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// The directory (Badger's `Dir`).
    #[arg(long)]
    dir: PathBuf,
    /// The value-log directory, when it differs from `--dir`.
    #[arg(long)]
    value_dir: Option<PathBuf>,
    /// Collect a file once at least this share of it is garbage, in (0, 1).
    #[arg(long, default_value_t = 0.5)]
    ratio: f64,
}

/// Runs the command.
pub fn run(a: &GcArgs) -> brock::Result<()> {
    if !(a.ratio > 0.0 && a.ratio < 1.0) {
        return Err(Error::InvalidArgument {
            name: "--ratio",
            reason: format!("{} is not in (0, 1)", a.ratio),
        });
    }
    if !a.dir.join("MANIFEST").exists() {
        return Err(Error::MissingFile {
            path: a.dir.join("MANIFEST"),
        });
    }
    let mut opts = Options::new(&a.dir);
    if let Some(v) = &a.value_dir {
        opts = opts.with_value_dir(v);
    }
    let db = Db::open(opts)?;
    let (_, vlog_before) = db.size();
    eprintln!("value log before: {}", human_bytes(vlog_before));
    let started = Instant::now();
    let (mut files, mut rewritten, mut file_bytes) = (0u64, 0u64, 0u64);
    loop {
        match db.run_value_log_gc(a.ratio) {
            Ok(r) => {
                files += 1;
                rewritten += r.rewritten_bytes;
                file_bytes += r.file_bytes;
                eprintln!(
                    "collected {:06}.vlog: {}, {} entries rewritten ({}), {} dropped",
                    r.fid,
                    human_bytes(r.file_bytes),
                    r.rewritten,
                    human_bytes(r.rewritten_bytes),
                    r.dropped
                );
            }
            Err(Error::NoRewrite) => break,
            Err(e) => return Err(e),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (_, vlog_after) = db.size();
    db.close()?;
    println!(
        "gc: {files} files collected in {secs:.1} s ({:.1} MB/s read); value log {} -> {}, {} reclaimed, {} rewritten",
        file_bytes as f64 / 1e6 / secs.max(1e-9),
        human_bytes(vlog_before),
        human_bytes(vlog_after),
        human_bytes(vlog_before.saturating_sub(vlog_after)),
        human_bytes(rewritten)
    );
    Ok(())
}
