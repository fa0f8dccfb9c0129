//! RocksDB-backed [`StateStore`]: one database per broker under `<data_dir>/state`.
//!
//! Each [`Area`] is a column family. Writes go through the WAL without syncing it; [`sync`]
//! flushes and fsyncs the WAL, which the log does before it advances a recovery point. A process
//! crash (kill -9) loses nothing that was written; a machine crash loses at most what was written
//! since the last sync, and every such entry is re-derived from the segment files on recovery.
//!
//! [`sync`]: StateStore::sync

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions};

use super::{Area, Entry, StateStore, WriteBatch, WriteOp};
use crate::{Error, Result};

/// A [`StateStore`] in a RocksDB database. Thread-safe; every call blocks on disk I/O.
pub struct RocksStateStore {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStateStore")
            .field("path", &self.path)
            .finish()
    }
}

fn engine(op: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |e| Error::State {
        op,
        source: Box::new(e),
    }
}

impl RocksStateStore {
    /// Opens (creating if needed) the database at `path` with every area present.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(Error::io("create state directory", &path))?;
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Small values and a modest working set: keep memory bounded and files few.
        options.set_max_open_files(256);
        options.set_keep_log_file_num(4);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let families = Area::ALL.iter().map(|area| {
            let mut cf = Options::default();
            cf.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(area.name(), cf)
        });
        let db = DB::open_cf_descriptors(&options, &path, families).map_err(engine("open"))?;
        Ok(Self { db, path })
    }

    fn cf(&self, area: Area) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(area.name()).ok_or(Error::MalformedState {
            area: area.name(),
            reason: "column family missing after open",
        })
    }

    fn bounded_read(prefix: &[u8]) -> ReadOptions {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(prefix.to_vec());
        read.set_iterate_upper_bound(super::keys::prefix_end(prefix));
        read
    }
}

impl StateStore for RocksStateStore {
    fn get(&self, area: Area, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(area)?, key).map_err(engine("get"))
    }

    fn floor(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>> {
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(area)?, Self::bounded_read(prefix));
        iter.seek_for_prev(key);
        if !iter.valid() {
            iter.status().map_err(engine("floor"))?;
            return Ok(None);
        }
        Ok(match (iter.key(), iter.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Some((k.to_vec(), v.to_vec())),
            _ => None,
        })
    }

    fn ceiling(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>> {
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(area)?, Self::bounded_read(prefix));
        iter.seek(key);
        if !iter.valid() {
            iter.status().map_err(engine("ceiling"))?;
            return Ok(None);
        }
        Ok(match (iter.key(), iter.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Some((k.to_vec(), v.to_vec())),
            _ => None,
        })
    }

    fn scan_prefix(&self, area: Area, prefix: &[u8]) -> Result<Vec<Entry>> {
        let iter = self.db.iterator_cf_opt(
            self.cf(area)?,
            Self::bounded_read(prefix),
            IteratorMode::From(prefix, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(engine("scan"))?;
            if !k.starts_with(prefix) {
                break;
            }
            entries.push((k.into_vec(), v.into_vec()));
        }
        Ok(entries)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut rocks = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                WriteOp::Put { area, key, value } => rocks.put_cf(self.cf(*area)?, key, value),
                WriteOp::Delete { area, key } => rocks.delete_cf(self.cf(*area)?, key),
                WriteOp::DeleteRange { area, start, end } => {
                    rocks.delete_range_cf(self.cf(*area)?, start, end)
                }
            }
        }
        self.db.write(rocks).map_err(engine("write"))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine("sync"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (RocksStateStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStateStore::open(dir.path().join("state")).unwrap();
        (store, dir)
    }

    crate::state::conformance::conformance_suite!(fixture);

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksStateStore::open(dir.path()).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(Area::Checkpoints, b"k".to_vec(), b"v".to_vec());
            store.write(batch).unwrap();
            store.sync().unwrap();
        }
        let store = RocksStateStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Area::Checkpoints, b"k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
