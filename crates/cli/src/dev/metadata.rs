//! The dev cluster's metadata on disk: the metadata store's [`Persistence`] as the
//! `metadata` area of a RocksDB state store in `<data-dir>/meta`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_meta::{PersistBatch, Persistence};
use strom_storage::{Area, RocksStateStore, StateStore, WriteBatch};

/// A [`Persistence`] in a RocksDB database of its own. Batches go through RocksDB's WAL
/// without an fsync, as the brokers' own state does: a killed process loses nothing that was
/// acknowledged; a machine crash may lose the last writes, as it may the brokers' unflushed
/// records.
#[derive(Debug)]
pub(crate) struct RocksMetadata {
    store: RocksStateStore,
    path: PathBuf,
}

impl RocksMetadata {
    /// Opens (creating if needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> strom_meta::Result<Arc<Self>> {
        let store = RocksStateStore::open(path).map_err(|e| disk_error(path, &e))?;
        Ok(Arc::new(Self {
            store,
            path: path.to_path_buf(),
        }))
    }
}

fn disk_error(path: &Path, error: &dyn std::fmt::Display) -> strom_meta::Error {
    strom_meta::Error::Disk {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

impl Persistence for RocksMetadata {
    fn load(&self) -> strom_meta::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.store
            .scan_prefix(Area::Metadata, b"")
            .map_err(|e| disk_error(&self.path, &e))
    }

    fn write(&self, batch: PersistBatch) -> strom_meta::Result<()> {
        let mut write = WriteBatch::new();
        for key in batch.deletes {
            write.delete(Area::Metadata, key);
        }
        for (key, value) in batch.puts {
            write.put(Area::Metadata, key, value);
        }
        self.store
            .write(write)
            .map_err(|e| disk_error(&self.path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_load_back_after_a_reopen() -> strom_meta::Result<()> {
        let dir = tempfile::tempdir().map_err(|e| disk_error(Path::new("tmp"), &e))?;
        {
            let store = RocksMetadata::open(dir.path())?;
            store.write(PersistBatch {
                puts: vec![
                    (b"a".to_vec(), b"1".to_vec()),
                    (b"b".to_vec(), b"2".to_vec()),
                ],
                deletes: Vec::new(),
            })?;
            store.write(PersistBatch {
                puts: vec![(b"c".to_vec(), b"3".to_vec())],
                deletes: vec![b"a".to_vec()],
            })?;
        }
        let store = RocksMetadata::open(dir.path())?;
        assert_eq!(
            store.load()?,
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        Ok(())
    }

    #[test]
    fn a_path_that_is_a_file_is_refused_with_its_path() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let file = dir.path().join("not-a-dir");
        assert!(std::fs::write(&file, b"x").is_ok());
        match RocksMetadata::open(&file) {
            Err(strom_meta::Error::Disk { path, .. }) => assert!(path.contains("not-a-dir")),
            other => panic!("expected a disk error, got {other:?}"),
        }
    }
}
