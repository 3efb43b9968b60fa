//! `brock dump`: the fixtures' TSV formats.

use brock::inspect::{DirView, DumpMode, ViewOptions, write_dump};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `brock dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// The directory (Badger's `Dir`).
    #[arg(long)]
    dir: PathBuf,
    /// The value-log directory, when it differs from `--dir`.
    #[arg(long)]
    value_dir: Option<PathBuf>,
    /// Every stored version (with version, user meta, expiry and a D flag for
    /// deleted or expired), instead of the latest visible value per key.
    #[arg(long)]
    all_versions: bool,
}

/// Runs the command.
pub fn run(a: &DumpArgs) -> brock::Result<()> {
    let mut opts = ViewOptions::new(&a.dir);
    opts.value_dir.clone_from(&a.value_dir);
    let view = DirView::open_with(&brock::vfs::OsVfs, opts)?;
    let mode = if a.all_versions {
        DumpMode::AllVersions
    } else {
        DumpMode::Latest
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    write_dump(&view, mode, &mut out)?;
    out.flush().map_err(|e| brock::Error::io("<stdout>", e))
}
