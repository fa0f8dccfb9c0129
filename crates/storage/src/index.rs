//! Sparse offset and time indexes of one partition, kept in the [`StateStore`].
//!
//! Offset index: key `prefix | offset` -> value `position: u32 BE`, the byte position of the batch
//! starting at `offset` within the segment that holds it. An entry is written every
//! `index-interval-bytes` of appended data, so a lookup finds a position at most that far before
//! the target and scans batch headers from there.
//!
//! Time index: key `prefix | segment base | timestamp` -> value `offset: i64 BE`. An entry
//! `(t, o)` says every batch of that segment up to and including offset `o` has a max timestamp of
//! at most `t`; within a segment entries increase in both `t` and `o`.
//!
//! Both indexes are derived data: recovery deletes and rebuilds the entries past the recovery
//! point. A lookup that finds no entry falls back to the segment's start, so a lost entry only
//! costs a longer scan.

use std::sync::Arc;

use strom_types::Offset;

use crate::state::keys::{key_i64, prefix_end, read_i64};
use crate::state::{Area, StateStore, WriteBatch};
use crate::{Error, Result};

/// One sparse offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Base offset of the indexed batch.
    pub(crate) offset: i64,
    /// Byte position of that batch in its segment.
    pub(crate) position: u32,
}

/// One sparse time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Largest timestamp of the segment's batches up to `offset`.
    pub(crate) timestamp: i64,
    /// Last offset of the batch that raised the maximum to `timestamp`.
    pub(crate) offset: i64,
}

/// Typed access to one partition's index entries.
#[derive(Debug, Clone)]
pub(crate) struct PartitionIndex {
    store: Arc<dyn StateStore>,
    prefix: Vec<u8>,
}

impl PartitionIndex {
    pub(crate) fn new(store: Arc<dyn StateStore>, prefix: Vec<u8>) -> Self {
        Self { store, prefix }
    }

    fn time_prefix(&self, segment_base: Offset) -> Vec<u8> {
        key_i64(&self.prefix, segment_base.get())
    }

    /// Queues an offset index entry into `batch`.
    pub(crate) fn put_offset(&self, batch: &mut WriteBatch, entry: OffsetEntry) {
        batch.put(
            Area::OffsetIndex,
            key_i64(&self.prefix, entry.offset),
            entry.position.to_be_bytes().to_vec(),
        );
    }

    /// Queues a time index entry of the segment starting at `segment_base` into `batch`.
    pub(crate) fn put_time(&self, batch: &mut WriteBatch, segment_base: Offset, entry: TimeEntry) {
        let key = key_i64(&self.time_prefix(segment_base), entry.timestamp);
        batch.put(Area::TimeIndex, key, entry.offset.to_be_bytes().to_vec());
    }

    /// The indexed position closest below `target` within the segment starting at `segment_base`,
    /// or the segment's start if no entry of that segment is at or below `target`.
    pub(crate) fn floor_position(&self, segment_base: Offset, target: Offset) -> Result<u64> {
        let found = self.store.floor(
            Area::OffsetIndex,
            &self.prefix,
            &key_i64(&self.prefix, target.get()),
        )?;
        let Some((key, value)) = found else {
            return Ok(0);
        };
        let offset =
            crate::state::keys::suffix_i64(&self.prefix, &key).ok_or(Error::MalformedState {
                area: Area::OffsetIndex.name(),
                reason: "key is not prefix + offset",
            })?;
        if offset < segment_base.get() {
            return Ok(0);
        }
        let raw: [u8; 4] = value
            .as_slice()
            .try_into()
            .map_err(|_| Error::MalformedState {
                area: Area::OffsetIndex.name(),
                reason: "position is not 4 bytes",
            })?;
        Ok(u64::from(u32::from_be_bytes(raw)))
    }

    /// The offset of the latest entry of the segment with a timestamp below `timestamp`.
    ///
    /// Every batch of the segment up to that offset is older than `timestamp`.
    pub(crate) fn time_floor(&self, segment_base: Offset, timestamp: i64) -> Result<Option<i64>> {
        let prefix = self.time_prefix(segment_base);
        let Some(probe) = timestamp.checked_sub(1) else {
            return Ok(None);
        };
        let found = self
            .store
            .floor(Area::TimeIndex, &prefix, &key_i64(&prefix, probe))?;
        found
            .map(|(_, value)| {
                read_i64(&value, 0).ok_or(Error::MalformedState {
                    area: Area::TimeIndex.name(),
                    reason: "offset is not 8 bytes",
                })
            })
            .transpose()
    }

    /// Queues deletion of every offset index entry at or after `from`.
    pub(crate) fn delete_offsets_from(&self, batch: &mut WriteBatch, from: Offset) {
        batch.delete_range(
            Area::OffsetIndex,
            key_i64(&self.prefix, from.get()),
            prefix_end(&self.prefix),
        );
    }

    /// Queues deletion of a whole segment's entries (offsets `[base, next)` and its time entries).
    pub(crate) fn delete_segment(&self, batch: &mut WriteBatch, base: Offset, next: Offset) {
        batch.delete_range(
            Area::OffsetIndex,
            key_i64(&self.prefix, base.get()),
            key_i64(&self.prefix, next.get().max(base.get())),
        );
        let time_prefix = self.time_prefix(base);
        batch.delete_range(
            Area::TimeIndex,
            time_prefix.clone(),
            prefix_end(&time_prefix),
        );
    }

    /// Queues deletion of the segment's time entries that point at or after `from`.
    pub(crate) fn delete_times_from(
        &self,
        batch: &mut WriteBatch,
        segment_base: Offset,
        from: Offset,
    ) -> Result<()> {
        let prefix = self.time_prefix(segment_base);
        for (key, value) in self.store.scan_prefix(Area::TimeIndex, &prefix)? {
            if read_i64(&value, 0).is_none_or(|offset| offset >= from.get()) {
                batch.delete(Area::TimeIndex, key);
            }
        }
        Ok(())
    }

    /// Queues deletion of every index entry of this partition.
    pub(crate) fn delete_all(&self, batch: &mut WriteBatch) {
        for area in [Area::OffsetIndex, Area::TimeIndex] {
            batch.delete_range(area, self.prefix.clone(), prefix_end(&self.prefix));
        }
    }

    /// The byte encoding of `timestamp` used in time index keys (exposed for tests).
    #[cfg(test)]
    pub(crate) fn encoded_timestamp(timestamp: i64) -> [u8; 8] {
        crate::state::keys::ordered_i64(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStateStore;

    fn index() -> PartitionIndex {
        PartitionIndex::new(Arc::new(MemoryStateStore::new()), b"t-0\x00".to_vec())
    }

    #[test]
    fn floor_position_respects_segment_bounds() {
        let idx = index();
        let mut batch = WriteBatch::new();
        idx.put_offset(
            &mut batch,
            OffsetEntry {
                offset: 10,
                position: 4096,
            },
        );
        idx.put_offset(
            &mut batch,
            OffsetEntry {
                offset: 20,
                position: 8192,
            },
        );
        idx.store.write(batch).unwrap();
        assert_eq!(
            idx.floor_position(Offset::new(0), Offset::new(5)).unwrap(),
            0
        );
        assert_eq!(
            idx.floor_position(Offset::new(0), Offset::new(15)).unwrap(),
            4096
        );
        assert_eq!(
            idx.floor_position(Offset::new(0), Offset::new(25)).unwrap(),
            8192
        );
        // An entry from an earlier segment is ignored.
        assert_eq!(
            idx.floor_position(Offset::new(21), Offset::new(25))
                .unwrap(),
            0
        );
    }

    #[test]
    fn time_floor_finds_latest_entry_strictly_older() {
        let idx = index();
        let mut batch = WriteBatch::new();
        idx.put_time(
            &mut batch,
            Offset::new(0),
            TimeEntry {
                timestamp: 100,
                offset: 9,
            },
        );
        idx.put_time(
            &mut batch,
            Offset::new(0),
            TimeEntry {
                timestamp: 200,
                offset: 19,
            },
        );
        idx.put_time(
            &mut batch,
            Offset::new(50),
            TimeEntry {
                timestamp: 150,
                offset: 59,
            },
        );
        idx.store.write(batch).unwrap();
        assert_eq!(idx.time_floor(Offset::new(0), 100).unwrap(), None);
        assert_eq!(idx.time_floor(Offset::new(0), 101).unwrap(), Some(9));
        assert_eq!(idx.time_floor(Offset::new(0), 1_000).unwrap(), Some(19));
        assert_eq!(idx.time_floor(Offset::new(50), 151).unwrap(), Some(59));
        assert_eq!(idx.time_floor(Offset::new(0), i64::MIN).unwrap(), None);
        assert!(PartitionIndex::encoded_timestamp(-1) < PartitionIndex::encoded_timestamp(0));
    }

    #[test]
    fn deletes_are_scoped() {
        let idx = index();
        let mut batch = WriteBatch::new();
        for (i, offset) in [0i64, 10, 20, 30].into_iter().enumerate() {
            idx.put_offset(
                &mut batch,
                OffsetEntry {
                    offset,
                    position: i as u32 * 100,
                },
            );
            idx.put_time(
                &mut batch,
                Offset::new(0),
                TimeEntry {
                    timestamp: offset,
                    offset,
                },
            );
        }
        idx.store.write(batch).unwrap();
        let mut batch = WriteBatch::new();
        idx.delete_offsets_from(&mut batch, Offset::new(20));
        idx.delete_times_from(&mut batch, Offset::new(0), Offset::new(20))
            .unwrap();
        idx.store.write(batch).unwrap();
        assert_eq!(
            idx.floor_position(Offset::new(0), Offset::new(99)).unwrap(),
            100
        );
        assert_eq!(idx.time_floor(Offset::new(0), 99).unwrap(), Some(10));
        let mut batch = WriteBatch::new();
        idx.delete_segment(&mut batch, Offset::new(0), Offset::new(20));
        idx.store.write(batch).unwrap();
        assert_eq!(
            idx.floor_position(Offset::new(0), Offset::new(99)).unwrap(),
            0
        );
        assert_eq!(idx.time_floor(Offset::new(0), 99).unwrap(), None);
    }
}
