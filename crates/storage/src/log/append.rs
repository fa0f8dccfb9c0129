//! Appends: as leader (assigning offsets) and as follower (offsets already assigned).
//!
//! Both validate every batch's header and CRC before writing anything, so bad input never
//! leaves a partial append. The leader also decodes every record of a produced batch, so no
//! batch a consumer cannot read is stored; a follower writes the leader's bytes as they are.

use std::io::IoSlice;

use strom_record::{BatchHeader, RecordIter, batches};
use strom_types::{LeaderEpoch, Offset};
use tracing::info;

use super::partition::{Inner, PartitionLog};
use crate::segment::{ActiveSegment, SealedSegment};
use crate::state::keys::key_i64;
use crate::state::{Area, WriteBatch};
use crate::{Error, Result};

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: Offset,
    /// Offset of the last record appended.
    pub last_offset: Offset,
    /// Largest batch max timestamp among the appended batches (-1 if none carried one).
    pub max_timestamp: i64,
    /// Base offset of every appended batch, in order.
    pub batch_base_offsets: Vec<Offset>,
    /// Records appended, from the batch headers.
    pub record_count: u64,
    /// The log start offset after the append.
    pub log_start_offset: Offset,
    /// Set when the batch was an idempotent producer's retry of a batch already in the log:
    /// nothing was appended and the offsets are those it was given the first time.
    pub duplicate: bool,
}

/// Validates every batch in `records`, returning each with its position.
///
/// Besides each header and CRC, every record is decoded (decompressing the batch): a batch
/// whose records area does not hold exactly the records its header declares is refused
/// before anything is appended, so consumers never meet a stored batch they cannot read.
fn validate_all(records: &[u8], max_batch_bytes: usize) -> Result<Vec<(usize, BatchHeader)>> {
    let mut headers = Vec::new();
    let mut position = 0usize;
    for item in batches(records) {
        let (header, bytes) = item.map_err(|source| Error::InvalidBatch { position, source })?;
        if bytes.len() > max_batch_bytes {
            return Err(Error::BatchTooLarge {
                size: bytes.len(),
                max: max_batch_bytes,
            });
        }
        let decoded = RecordIter::for_validated(header, bytes)
            .and_then(|mut records| records.try_for_each(|r| r.map(drop)));
        decoded.map_err(|source| Error::InvalidBatch { position, source })?;
        headers.push((position, header));
        position += bytes.len();
    }
    if headers.is_empty() {
        return Err(Error::EmptyAppend);
    }
    Ok(headers)
}

/// Bytes 0..16 of a batch as the leader rewrites them: base offset, length, leader epoch.
fn rewritten_prefix(header: &BatchHeader) -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix[0..8].copy_from_slice(&header.base_offset.to_be_bytes());
    prefix[8..12].copy_from_slice(&header.batch_length.to_be_bytes());
    prefix[12..16].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    prefix
}

impl PartitionLog {
    /// Appends producer batches as the partition leader in `epoch`.
    ///
    /// Each batch is validated (header, length, CRC), given the next offsets and stamped with
    /// `epoch`. Those fields lie outside the CRC, so the rewrite is done on the way to the file: the
    /// caller's buffer is not modified and not copied. Either every batch is appended or none is.
    ///
    /// A batch of an idempotent producer must be the only batch of the append. It is checked
    /// against the producer's last batches: a retry of one of them appends nothing and returns
    /// its original offsets (with [`AppendInfo::duplicate`] set), a sequence gap fails with
    /// [`Error::OutOfOrderSequence`] and an old producer epoch with
    /// [`Error::InvalidProducerEpoch`].
    pub fn append_as_leader(&self, records: &[u8], epoch: LeaderEpoch) -> Result<AppendInfo> {
        let mut producers = self.lock_producers()?;
        let mut inner = self.lock()?;
        let mut headers = validate_all(records, inner.config.max_batch_bytes)?;
        if let Some(latest) = inner.epochs.latest()
            && epoch < latest.epoch
        {
            return Err(Error::StaleLeaderEpoch {
                epoch,
                latest: latest.epoch,
            });
        }
        if let Some(duplicate) = self.check_producers(&producers, &inner, &headers)? {
            return Ok(duplicate);
        }
        if self.maybe_roll(&mut inner, records.len() as u64)? {
            self.write_producer_snapshot(&producers, inner.log_end())?;
        }
        let mut next = inner.log_end().get();
        for (_, header) in &mut headers {
            header.base_offset = next;
            header.partition_leader_epoch = epoch.get();
            next = header.next_offset();
        }
        let prefixes: Vec<[u8; 16]> = headers.iter().map(|(_, h)| rewritten_prefix(h)).collect();
        let mut parts: Vec<IoSlice<'_>> = Vec::with_capacity(headers.len() * 2);
        for ((position, header), prefix) in headers.iter().zip(&prefixes) {
            parts.push(IoSlice::new(prefix));
            parts.push(IoSlice::new(
                &records[position + 16..position + header.total_size()],
            ));
        }
        let first = Offset::new(headers[0].1.base_offset);
        inner.epochs.assign(epoch, first)?;
        let info = self.write_batches(&mut inner, &mut parts, &headers)?;
        for (_, header) in &headers {
            producers.record(header);
        }
        Ok(info)
    }

    /// Appends batches replicated from the leader, keeping their offsets and epochs.
    ///
    /// The first batch must start at the log end and each following one where the previous one
    /// ended; epochs must not go backwards. New epochs are added to the epoch history.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<AppendInfo> {
        let mut producers = self.lock_producers()?;
        let mut inner = self.lock()?;
        let headers = validate_all(
            records,
            inner
                .config
                .max_batch_bytes
                .max(strom_record::MAX_BATCH_SIZE),
        )?;
        let mut expected = inner.log_end();
        let mut latest = inner.epochs.latest().map(|e| e.epoch);
        for (_, header) in &headers {
            if header.base_offset != expected.get() {
                return Err(Error::NonContiguousAppend {
                    expected,
                    got: Offset::new(header.base_offset),
                });
            }
            let epoch = LeaderEpoch::try_new(header.partition_leader_epoch).map_err(|_| {
                Error::MissingLeaderEpoch {
                    offset: Offset::new(header.base_offset),
                }
            })?;
            if let Some(latest) = latest.filter(|l| epoch < *l) {
                return Err(Error::StaleLeaderEpoch { epoch, latest });
            }
            latest = Some(epoch);
            expected = Offset::new(header.next_offset());
        }
        if self.maybe_roll(&mut inner, records.len() as u64)? {
            self.write_producer_snapshot(&producers, inner.log_end())?;
        }
        for (_, header) in &headers {
            let epoch = LeaderEpoch::new(header.partition_leader_epoch);
            inner
                .epochs
                .assign(epoch, Offset::new(header.base_offset))?;
        }
        let mut parts = [IoSlice::new(records)];
        let info = self.write_batches(&mut inner, &mut parts, &headers)?;
        for (_, header) in &headers {
            producers.record(header);
        }
        Ok(info)
    }

    fn write_batches(
        &self,
        inner: &mut Inner,
        parts: &mut [IoSlice<'_>],
        headers: &[(usize, BatchHeader)],
    ) -> Result<AppendInfo> {
        let now = self.clock.now_ms();
        let interval = inner.config.index_interval_bytes;
        inner.active.append(parts, headers, interval, now)?;
        let record_count: u64 = headers
            .iter()
            .map(|(_, h)| u64::from(h.records_count.unsigned_abs()))
            .sum();
        inner.unflushed_records += record_count;
        let info = AppendInfo {
            first_offset: Offset::new(headers[0].1.base_offset),
            last_offset: Offset::new(headers[headers.len() - 1].1.last_offset()),
            max_timestamp: headers
                .iter()
                .map(|(_, h)| h.max_timestamp)
                .max()
                .unwrap_or(-1),
            batch_base_offsets: headers
                .iter()
                .map(|(_, h)| Offset::new(h.base_offset))
                .collect(),
            record_count,
            log_start_offset: inner.log_start,
            duplicate: false,
        };
        let flush_due = inner
            .config
            .flush_messages
            .is_some_and(|n| inner.unflushed_records >= n)
            || inner
                .config
                .flush_ms
                .is_some_and(|ms| now.saturating_sub(inner.last_flush_ms) >= ms);
        if flush_due {
            // The append asked for durability, so it waits for it: fsync with the lock held.
            let plan = self.plan_flush(inner)?;
            if let Err(e) = plan.execute(self.store.as_ref()) {
                self.fail_locked(inner, &e);
                return Err(e);
            }
            self.commit_flush(inner, &plan)?;
        }
        Ok(info)
    }

    /// Rolls to a new active segment if an append of `incoming` bytes must not go into this one;
    /// says whether it did.
    pub(super) fn maybe_roll(&self, inner: &mut Inner, incoming: u64) -> Result<bool> {
        let now = self.clock.now_ms();
        if inner.active.should_roll(
            incoming,
            inner.config.segment_bytes,
            inner.config.segment_ms,
            now,
        ) {
            self.roll(inner)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(super) fn roll(&self, inner: &mut Inner) -> Result<()> {
        let base = inner.log_end();
        let fresh = ActiveSegment::create(&self.dir, base)?;
        let old = std::mem::replace(&mut inner.active, fresh);
        let mut batch = WriteBatch::new();
        let sealed: SealedSegment = old.seal(&self.index, &mut batch);
        batch.put(
            Area::Segments,
            key_i64(&self.prefix, sealed.base_offset().get()),
            sealed.summary(),
        );
        inner.checkpoint().put(&mut batch, &self.prefix);
        let sealed_size = sealed.size();
        // The chain is whole in memory before the state write: if that write fails, only index
        // entries are missing, and lookups fall back to scanning.
        inner.sealed.insert(sealed.base_offset(), sealed);
        self.store.write(batch)?;
        info!(partition = %self.tp, base_offset = base.get(), sealed_size, "rolled segment");
        Ok(())
    }
}
