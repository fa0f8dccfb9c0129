//! Leader-epoch history: the first offset written under each leader epoch.
//!
//! Followers use it to truncate after a leader change (they ask the leader where their last epoch
//! ended, KIP-101/279), so it must survive restarts: every change is written through to the
//! `leader_epochs` area (key `prefix | epoch`, value `start offset`).

use std::sync::Arc;

use strom_types::{LeaderEpoch, Offset};

use crate::state::keys::{key_i64, prefix_end, read_i64, suffix_i64};
use crate::state::{Area, StateStore, WriteBatch};
use crate::{Error, Result};

/// One history entry: `epoch` began at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: LeaderEpoch,
    /// The first offset written in that epoch.
    pub start_offset: Offset,
}

/// The answer to "where did my epoch end?" (OffsetsForLeaderEpoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The largest epoch at or below the requested one that this log knows.
    pub epoch: LeaderEpoch,
    /// The first offset after that epoch's records.
    pub end_offset: Offset,
}

/// The in-memory history with write-through persistence. Entries increase in both epoch and
/// start offset. Not thread-safe on its own: the partition log serializes access.
#[derive(Debug)]
pub(crate) struct EpochCache {
    store: Arc<dyn StateStore>,
    prefix: Vec<u8>,
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    /// Loads the history persisted for this partition.
    pub(crate) fn load(store: Arc<dyn StateStore>, prefix: Vec<u8>) -> Result<Self> {
        let mut entries = Vec::new();
        for (key, value) in store.scan_prefix(Area::LeaderEpochs, &prefix)? {
            let malformed = || Error::MalformedState {
                area: Area::LeaderEpochs.name(),
                reason: "bad epoch entry",
            };
            let epoch = suffix_i64(&prefix, &key)
                .and_then(|e| i32::try_from(e).ok())
                .ok_or_else(malformed)?;
            let start = read_i64(&value, 0).ok_or_else(malformed)?;
            entries.push(EpochEntry {
                epoch: LeaderEpoch::new(epoch),
                start_offset: Offset::new(start),
            });
        }
        Ok(Self {
            store,
            prefix,
            entries,
        })
    }

    fn key(&self, epoch: LeaderEpoch) -> Vec<u8> {
        key_i64(&self.prefix, i64::from(epoch.get()))
    }

    /// Every entry, oldest first.
    pub(crate) fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest entry.
    pub(crate) fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    ///
    /// Returns an error for an epoch older than the latest; the same epoch is a no-op.
    pub(crate) fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> Result<()> {
        if let Some(latest) = self.latest() {
            if epoch < latest.epoch {
                return Err(Error::StaleLeaderEpoch {
                    epoch,
                    latest: latest.epoch,
                });
            }
            if epoch == latest.epoch {
                return Ok(());
            }
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Area::LeaderEpochs,
            self.key(epoch),
            start_offset.get().to_be_bytes().to_vec(),
        );
        self.store.write(batch)?;
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        Ok(())
    }

    /// Where `requested` ended in this log whose end offset is `log_end`, or `None` if the log
    /// knows no epoch at or below it.
    pub(crate) fn end_offset_for(
        &self,
        requested: LeaderEpoch,
        log_end: Offset,
    ) -> Option<EpochEndOffset> {
        let latest = self.latest()?;
        if requested >= latest.epoch {
            return (requested == latest.epoch).then_some(EpochEndOffset {
                epoch: latest.epoch,
                end_offset: log_end,
            });
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        // An epoch older than every known one ends where the first known epoch starts (as in
        // Kafka), and is reported as the requested epoch.
        let epoch = self
            .entries
            .iter()
            .rev()
            .find(|e| e.epoch <= requested)
            .map_or(requested, |e| e.epoch);
        Some(EpochEndOffset {
            epoch,
            end_offset: higher.start_offset,
        })
    }

    /// Drops entries that start at or after `log_end` (after the log was truncated).
    pub(crate) fn truncate_from_end(&mut self, log_end: Offset, batch: &mut WriteBatch) {
        while let Some(last) = self.entries.last().copied() {
            if last.start_offset < log_end {
                break;
            }
            batch.delete(Area::LeaderEpochs, self.key(last.epoch));
            self.entries.pop();
        }
    }

    /// Drops entries wholly before `log_start` and moves the first kept entry's start up to it.
    pub(crate) fn truncate_from_start(&mut self, log_start: Offset, batch: &mut WriteBatch) {
        let keep_from = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= log_start)
            .unwrap_or(0);
        for entry in self.entries.drain(..keep_from) {
            batch.delete(
                Area::LeaderEpochs,
                key_i64(&self.prefix, i64::from(entry.epoch.get())),
            );
        }
        if let Some(first) = self.entries.first_mut()
            && first.start_offset < log_start
        {
            first.start_offset = log_start;
            let key = key_i64(&self.prefix, i64::from(first.epoch.get()));
            batch.put(
                Area::LeaderEpochs,
                key,
                log_start.get().to_be_bytes().to_vec(),
            );
        }
    }

    /// Queues deletion of the whole history.
    pub(crate) fn clear(&mut self, batch: &mut WriteBatch) {
        batch.delete_range(
            Area::LeaderEpochs,
            self.prefix.clone(),
            prefix_end(&self.prefix),
        );
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryStateStore;

    fn cache(store: &Arc<MemoryStateStore>) -> EpochCache {
        EpochCache::load(
            Arc::clone(store) as Arc<dyn StateStore>,
            b"t-0\x00".to_vec(),
        )
        .unwrap()
    }

    fn e(epoch: i32, start: i64) -> EpochEntry {
        EpochEntry {
            epoch: LeaderEpoch::new(epoch),
            start_offset: Offset::new(start),
        }
    }

    #[test]
    fn assign_is_monotonic_and_persistent() {
        let store = Arc::new(MemoryStateStore::new());
        let mut c = cache(&store);
        c.assign(LeaderEpoch::new(1), Offset::new(0)).unwrap();
        c.assign(LeaderEpoch::new(1), Offset::new(5)).unwrap();
        c.assign(LeaderEpoch::new(3), Offset::new(10)).unwrap();
        assert!(matches!(
            c.assign(LeaderEpoch::new(2), Offset::new(12)),
            Err(Error::StaleLeaderEpoch { .. })
        ));
        assert_eq!(cache(&store).entries(), &[e(1, 0), e(3, 10)]);
    }

    #[test]
    fn end_offset_follows_kafka_semantics() {
        let store = Arc::new(MemoryStateStore::new());
        let mut c = cache(&store);
        let leo = Offset::new(30);
        assert_eq!(c.end_offset_for(LeaderEpoch::new(0), leo), None);
        c.assign(LeaderEpoch::new(1), Offset::new(0)).unwrap();
        c.assign(LeaderEpoch::new(3), Offset::new(10)).unwrap();
        c.assign(LeaderEpoch::new(4), Offset::new(20)).unwrap();
        let end = |r| {
            c.end_offset_for(LeaderEpoch::new(r), leo)
                .map(|x| (x.epoch.get(), x.end_offset.get()))
        };
        assert_eq!(end(4), Some((4, 30)));
        assert_eq!(end(3), Some((3, 20)));
        assert_eq!(
            end(2),
            Some((1, 10)),
            "an unknown epoch ends where the next known one starts"
        );
        assert_eq!(end(1), Some((1, 10)));
        assert_eq!(
            end(0),
            Some((0, 0)),
            "older than all known: ends where the first starts"
        );
        assert_eq!(end(5), None);
    }

    #[test]
    fn truncation_from_both_ends() {
        let store = Arc::new(MemoryStateStore::new());
        let mut c = cache(&store);
        for (epoch, start) in [(1, 0), (2, 10), (3, 20), (4, 30)] {
            c.assign(LeaderEpoch::new(epoch), Offset::new(start))
                .unwrap();
        }
        let mut batch = WriteBatch::new();
        c.truncate_from_end(Offset::new(25), &mut batch);
        c.truncate_from_start(Offset::new(15), &mut batch);
        store.write(batch).unwrap();
        assert_eq!(c.entries(), &[e(2, 15), e(3, 20)]);
        assert_eq!(cache(&store).entries(), &[e(2, 15), e(3, 20)]);
    }
}
