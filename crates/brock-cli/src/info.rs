//! `brock info`: levels, tables, logs and totals.

use brock::inspect::{DirView, ViewOptions};
use std::path::PathBuf;

/// Arguments of `brock info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The directory (Badger's `Dir`).
    #[arg(long)]
    dir: PathBuf,
    /// The value-log directory, when it differs from `--dir`.
    #[arg(long)]
    value_dir: Option<PathBuf>,
}

/// Runs the command.
pub fn run(a: &InfoArgs) -> brock::Result<()> {
    let mut opts = ViewOptions::new(&a.dir);
    opts.value_dir.clone_from(&a.value_dir);
    let view = DirView::open_with(&brock::vfs::OsVfs, opts)?;
    let text = view.info().to_string();
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, text.as_bytes()).map_err(|e| brock::Error::io("<stdout>", e))
}
