//! The partition's idempotent producers: checking leader appends, rebuilding the table after
//! open and truncation, and snapshotting it.
//!
//! A snapshot taken at offset `o` describes the producers as of the records below `o`. Snapshots
//! are written when a segment rolls and when the log closes; after a restart or a truncation the
//! table is the newest snapshot at or below the log end plus the batch headers replayed from
//! there. The two newest snapshots are kept, so a truncation below the newest still finds one.

use std::sync::MutexGuard;

use strom_record::{BatchHeader, batches};
use strom_types::Offset;
use tracing::debug;

use super::append::AppendInfo;
use super::partition::{Inner, PartitionLog};
use super::read::ReadBound;
use crate::producer_state::{self, ProducerEntry};
use crate::producer_table::{PRODUCER_EXPIRATION_MS, ProducerTable, Verdict, is_idempotent};
use crate::state::keys::{key_i64, suffix_i64};
use crate::state::{Area, WriteBatch};
use crate::{Error, Result};

/// Bytes read per step when replaying batch headers.
const REPLAY_READ_BYTES: usize = 1 << 20;

impl PartitionLog {
    pub(super) fn lock_producers(&self) -> Result<MutexGuard<'_, ProducerTable>> {
        Ok(self
            .producers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Checks a leader append against the producer table. Idempotent batches must come one per
    /// append; a duplicate is answered with the offsets it was first given.
    pub(super) fn check_producers(
        &self,
        producers: &ProducerTable,
        inner: &Inner,
        headers: &[(usize, BatchHeader)],
    ) -> Result<Option<AppendInfo>> {
        if !headers.iter().any(|(_, h)| is_idempotent(h)) {
            return Ok(None);
        }
        let [(_, header)] = headers else {
            return Err(Error::InvalidIdempotentAppend {
                reason: "idempotent batches must be appended one per partition per request",
            });
        };
        match producers.check(header)? {
            Verdict::Append => Ok(None),
            Verdict::Duplicate(batch) => {
                debug!(
                    partition = %self.tp,
                    producer_id = header.producer_id,
                    sequence = header.base_sequence,
                    offset = batch.first_offset.get(),
                    "duplicate batch; answering with its original offsets"
                );
                Ok(Some(AppendInfo {
                    first_offset: batch.first_offset,
                    last_offset: batch.last_offset,
                    max_timestamp: batch.max_timestamp,
                    batch_base_offsets: vec![batch.first_offset],
                    record_count: 0,
                    log_start_offset: inner.log_start,
                    duplicate: true,
                }))
            }
        }
    }

    /// Rebuilds the table from the newest usable snapshot and the batches after it.
    pub(super) fn reload_producers(&self, producers: &mut ProducerTable) -> Result<()> {
        let (snapshot, log_start, log_end) = {
            let inner = self.lock()?;
            (
                self.latest_snapshot(&inner)?,
                inner.log_start,
                inner.log_end(),
            )
        };
        let (mut from, entries) = snapshot.unwrap_or((log_start, Vec::new()));
        *producers = ProducerTable::from_entries(entries);
        from = from.max(log_start);
        let mut replayed = 0u64;
        while from < log_end {
            let read = self.read(from, REPLAY_READ_BYTES, ReadBound::LogEnd)?;
            if read.records.is_empty() {
                break;
            }
            for item in batches(&read.records) {
                let (header, _) = item.map_err(|source| Error::CorruptLog {
                    path: self.dir.clone(),
                    position: 0,
                    source,
                })?;
                producers.record(&header);
                replayed += 1;
            }
            from = read.next_offset;
        }
        debug!(
            partition = %self.tp,
            producers = producers.len(),
            replayed_batches = replayed,
            "rebuilt producer state"
        );
        Ok(())
    }

    /// Snapshots the table as of `offset`, the log end, dropping expired producers and old
    /// snapshots. The caller holds the producers lock, so no append moves the log end meanwhile.
    pub(super) fn write_producer_snapshot(
        &self,
        producers: &ProducerTable,
        offset: Offset,
    ) -> Result<()> {
        let mut table = producers.clone();
        table.expire(self.clock.now_ms(), PRODUCER_EXPIRATION_MS);
        let mut batch = WriteBatch::new();
        let key = key_i64(&self.prefix, offset.get());
        // Keep the previous snapshot; everything older goes.
        if offset.get() > 0
            && let Some((previous, _)) = self.store.floor(
                Area::ProducerState,
                &self.prefix,
                &key_i64(&self.prefix, offset.get() - 1),
            )?
        {
            batch.delete_range(Area::ProducerState, self.prefix.clone(), previous);
        }
        batch.put(
            Area::ProducerState,
            key,
            producer_state::encode(&table.entries()),
        );
        self.store.write(batch)
    }

    /// The newest snapshot at or below the log end, with the offset it was taken at.
    fn latest_snapshot(&self, inner: &Inner) -> Result<Option<(Offset, Vec<ProducerEntry>)>> {
        let probe = key_i64(&self.prefix, inner.log_end().get());
        let Some((key, value)) = self
            .store
            .floor(Area::ProducerState, &self.prefix, &probe)?
        else {
            return Ok(None);
        };
        let offset = suffix_i64(&self.prefix, &key)
            .and_then(|o| Offset::try_new(o).ok())
            .ok_or(Error::MalformedState {
                area: Area::ProducerState.name(),
                reason: "bad snapshot key",
            })?;
        Ok(Some((offset, producer_state::decode(&value)?)))
    }

    /// The idempotent producers this partition knows, ordered by producer id.
    pub fn producers(&self) -> Result<Vec<ProducerEntry>> {
        Ok(self.lock_producers()?.entries())
    }

    /// Snapshots the producer table now (also done on every segment roll and on close).
    pub fn snapshot_producers(&self) -> Result<()> {
        let producers = self.lock_producers()?;
        let offset = self.log_end_offset()?;
        self.write_producer_snapshot(&producers, offset)
    }
}
