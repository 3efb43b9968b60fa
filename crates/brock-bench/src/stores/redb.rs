//! redb, with its default configuration and durability.

use crate::workload::{GcOutcome, KEY_LEN, Result, Store, Visitor};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

const TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("bench");

/// A redb database (one file, `bench.redb`, in the directory) with one table.
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish()
    }
}

impl RedbStore {
    /// Opens (or creates) `dir/bench.redb` and its table. Commits use
    /// redb's default durability, `Immediate`: see [`crate::stores`].
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join("bench.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn name(&self) -> &'static str {
        "redb"
    }

    fn write_batch(&mut self, batch: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(TABLE)?;
            for (k, v) in batch.iter() {
                t.insert(k.as_slice(), v.as_slice())?;
            }
        }
        txn.commit()?;
        batch.clear();
        Ok(())
    }

    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(TABLE)?;
            for k in keys {
                t.remove(k.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(TABLE)?;
        for (pos, k) in keys.iter().enumerate() {
            if let Some(v) = t.get(k.as_slice())? {
                found(pos, v.value());
            }
        }
        Ok(())
    }

    fn scan(&mut self, item: Visitor<'_>) -> Result<()> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(TABLE)?;
        for entry in t.iter()? {
            let (k, v) = entry?;
            item(k.value(), v.value())?;
        }
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(TABLE)?;
        Ok(t.is_empty()?)
    }

    fn compact_fully(&mut self) -> Result<Option<&'static str>> {
        // redb never gives freed pages back to the file system on its own;
        // `compact` moves pages down and truncates. It returns whether it
        // did anything; call it until it does not.
        while self.db.compact()? {}
        Ok(Some("redb Database::compact (until false)"))
    }

    fn collect_garbage(&mut self) -> Result<Option<GcOutcome>> {
        // No value log: the pages of overwritten values are freed at commit
        // and reused; `compact` is what returns them to the file system.
        let mut rounds = 0;
        while self.db.compact()? {
            rounds += 1;
        }
        Ok(Some(GcOutcome {
            call: "redb Database::compact (until false)",
            rounds,
            files: None,
            file_bytes: None,
            rewritten_bytes: None,
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}
