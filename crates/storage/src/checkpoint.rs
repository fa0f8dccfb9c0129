//! Per-partition checkpoints: high watermark, log start offset and recovery point.
//!
//! Stored as one 24-byte value (three big-endian `i64`) under the partition prefix in the
//! `checkpoints` area, so the three always change together.

use strom_types::Offset;

use crate::state::keys::read_i64;
use crate::state::{Area, StateStore, WriteBatch};
use crate::{Error, Result};

/// The offsets a partition log persists besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Offset below which records are replicated to the whole ISR.
    pub high_watermark: Offset,
    /// First offset still readable.
    pub log_start: Offset,
    /// Offset below which segments and state are known durable; recovery scans from here.
    pub recovery_point: Offset,
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        for value in [self.high_watermark, self.log_start, self.recovery_point] {
            out.extend_from_slice(&value.get().to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let read = |at| {
            read_i64(bytes, at)
                .and_then(|v| Offset::try_new(v).ok())
                .ok_or(Error::MalformedState {
                    area: Area::Checkpoints.name(),
                    reason: "checkpoint is not three non-negative i64",
                })
        };
        if bytes.len() != 24 {
            return Err(Error::MalformedState {
                area: Area::Checkpoints.name(),
                reason: "checkpoint is not 24 bytes",
            });
        }
        Ok(Self {
            high_watermark: read(0)?,
            log_start: read(8)?,
            recovery_point: read(16)?,
        })
    }

    /// Loads the partition's checkpoint, or all zeros for a new partition.
    pub(crate) fn load(store: &dyn StateStore, prefix: &[u8]) -> Result<Self> {
        store
            .get(Area::Checkpoints, prefix)?
            .map(|bytes| Self::decode(&bytes))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Queues this checkpoint for writing.
    pub(crate) fn put(&self, batch: &mut WriteBatch, prefix: &[u8]) {
        batch.put(Area::Checkpoints, prefix.to_vec(), self.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStateStore;

    #[test]
    fn round_trips_and_defaults_to_zero() {
        let store = MemoryStateStore::new();
        assert_eq!(
            Checkpoint::load(&store, b"p\x00").unwrap(),
            Checkpoint::default()
        );
        let cp = Checkpoint {
            high_watermark: Offset::new(7),
            log_start: Offset::new(3),
            recovery_point: Offset::new(5),
        };
        let mut batch = WriteBatch::new();
        cp.put(&mut batch, b"p\x00");
        store.write(batch).unwrap();
        assert_eq!(Checkpoint::load(&store, b"p\x00").unwrap(), cp);
    }

    #[test]
    fn malformed_values_are_errors() {
        let store = MemoryStateStore::new();
        let mut batch = WriteBatch::new();
        batch.put(Area::Checkpoints, b"p\x00".to_vec(), vec![1, 2, 3]);
        store.write(batch).unwrap();
        assert!(matches!(
            Checkpoint::load(&store, b"p\x00"),
            Err(Error::MalformedState { .. })
        ));
    }
}
