//! Reads: whole batches from an offset, and offset lookup by timestamp.

use bytes::Bytes;
use strom_record::{BatchHeader, LOG_OVERHEAD, decode_records, peek_batch_size, validate_batch};
use strom_types::Offset;
use tracing::warn;

use super::partition::{Inner, PartitionLog};
use crate::segment::SegmentView;
use crate::{Error, Result};

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBound {
    /// Up to the high watermark: what consumers may see.
    HighWatermark,
    /// Up to the log end: what followers replicate.
    LogEnd,
}

/// The outcome of [`PartitionLog::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, back to back; empty when nothing is readable at the offset yet.
    pub records: Bytes,
    /// The offset after the last returned batch (the requested offset if none was returned).
    pub next_offset: Offset,
    /// The high watermark when the read started.
    pub high_watermark: Offset,
    /// The log start offset when the read started.
    pub log_start_offset: Offset,
    /// The log end offset when the read started.
    pub log_end_offset: Offset,
}

/// A record found by [`PartitionLog::offset_for_timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's offset.
    pub offset: Offset,
    /// The record's timestamp.
    pub timestamp: i64,
}

/// Where a read starts: a segment snapshot and a position at or before the wanted batch.
struct ReadPlan {
    view: SegmentView,
    position: u64,
    bound: Offset,
    /// The log's truncation generation when the plan was made.
    generation: u64,
}

impl PartitionLog {
    /// Reads whole batches starting with the one that contains `from`, up to about `max_bytes`.
    ///
    /// At least one whole batch is returned when one is readable, even if it is larger than
    /// `max_bytes`, so a consumer always makes progress. A read returns data from one segment;
    /// the next read continues at `next_offset`. Every returned batch has passed its CRC check: if
    /// the first batch at the position is corrupt the read fails with [`Error::CorruptLog`],
    /// otherwise the batches before the corrupt one are returned.
    pub fn read(&self, from: Offset, max_bytes: usize, bound: ReadBound) -> Result<ReadResult> {
        // A truncation between planning and reading can replace the bytes a plan points at; the
        // first batch read then does not hold `from`, and the read is planned again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (plan, result) = {
                let inner = self.lock()?;
                let result = ReadResult {
                    records: Bytes::new(),
                    next_offset: from,
                    high_watermark: inner.high_watermark,
                    log_start_offset: inner.log_start,
                    log_end_offset: inner.log_end(),
                };
                if from < inner.log_start || from > inner.log_end() {
                    return Err(Error::OffsetOutOfRange {
                        requested: from,
                        log_start: inner.log_start,
                        log_end: inner.log_end(),
                    });
                }
                let limit = match bound {
                    ReadBound::HighWatermark => inner.high_watermark,
                    ReadBound::LogEnd => inner.log_end(),
                };
                if from >= limit {
                    return Ok(result);
                }
                (self.plan_read(&inner, from, limit)?, result)
            };
            let read = self.execute_read(&plan, from, max_bytes, result);
            if let Err(Error::CorruptLog { .. }) = &read {
                // Bytes a truncation replaced under the plan are not damage: plan again.
                if attempts < 3 && self.lock()?.generation != plan.generation {
                    continue;
                }
                self.note_damage(from)?;
            }
            match read? {
                Some(result) => return Ok(result),
                None if attempts < 3 && self.lock()?.generation != plan.generation => continue,
                None => {
                    return Err(Error::MissingOffset {
                        offset: from,
                        path: plan.view.path.to_path_buf(),
                    });
                }
            }
        }
    }

    /// Remembers that the batch holding `from` is damaged (see [`PartitionLog::damaged_from`]).
    fn note_damage(&self, from: Offset) -> Result<()> {
        let mut inner = self.lock()?;
        if inner.damaged_from.is_none_or(|d| from < d) {
            warn!(partition = %self.tp, offset = from.get(), "a stored batch failed its check; the log cannot serve from here");
            inner.damaged_from = Some(from);
        }
        Ok(())
    }

    /// Reads along `plan`; `None` if what is at the planned position does not hold `from`.
    fn execute_read(
        &self,
        plan: &ReadPlan,
        from: Offset,
        max_bytes: usize,
        mut result: ReadResult,
    ) -> Result<Option<ReadResult>> {
        let Some(position) = self.skip_to(&plan.view, plan.position, from)? else {
            return Ok(None);
        };
        let batches = read_batches(&plan.view, position, max_bytes, plan.bound)?;
        if let Some((first_base, next)) = batches.offsets {
            if first_base > from.get() {
                return Ok(None);
            }
            result.next_offset = Offset::new(next);
        }
        result.records = batches.bytes;
        Ok(Some(result))
    }

    /// Snapshots the segment holding `from` and an indexed position at or before it.
    fn plan_read(&self, inner: &Inner, from: Offset, bound: Offset) -> Result<ReadPlan> {
        let generation = inner.generation;
        if from >= inner.active.base_offset() {
            let position = inner.active.floor_position(&self.index, from)?;
            return Ok(ReadPlan {
                view: inner.active.view(),
                position,
                bound,
                generation,
            });
        }
        let segment = inner
            .sealed
            .range(..=from)
            .next_back()
            .map(|(_, s)| s)
            .filter(|s| s.next_offset() > from)
            .ok_or_else(|| Error::MissingOffset {
                offset: from,
                path: self.dir.clone(),
            })?;
        let position = self.index.floor_position(segment.base_offset(), from)?;
        Ok(ReadPlan {
            view: segment.view(),
            position,
            bound,
            generation,
        })
    }

    /// Walks batch headers from `position` to the batch whose last offset is at least `from`.
    fn skip_to(&self, view: &SegmentView, mut position: u64, from: Offset) -> Result<Option<u64>> {
        while let Some(header) = view.header_at(position)? {
            if header.last_offset() >= from.get() {
                return Ok(Some(position));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }

    /// The first record whose timestamp is at least `timestamp`, among records below the high
    /// watermark, or `None` if every such record is older.
    ///
    /// The segment is found from the segments' max timestamps, the batch from the time and
    /// offset indexes; only that one batch is decoded, to find the record within it.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        // Candidates are the segments whose newest record is recent enough, oldest first. The
        // active segment's time floor comes from its in-memory entries, so it is taken here.
        let (candidates, log_start, bound) = {
            let inner = self.lock()?;
            let mut candidates: Vec<(SegmentView, Option<Option<i64>>)> = inner
                .sealed
                .values()
                .filter(|s| s.next_offset() > inner.log_start && s.max_timestamp() >= timestamp)
                .map(|s| (s.view(), None))
                .collect();
            if inner.active.max_timestamp() >= timestamp {
                let floor = inner.active.time_floor(&self.index, timestamp)?;
                candidates.push((inner.active.view(), Some(floor)));
            }
            (candidates, inner.log_start, inner.high_watermark)
        };
        for (view, floor) in candidates {
            let floor = match floor {
                Some(floor) => floor,
                None => self.index.time_floor(view.base_offset, timestamp)?,
            };
            let start = floor
                .map_or(view.base_offset, |o| Offset::new(o + 1))
                .max(log_start);
            if let Some(found) = self.search_segment(&view, start, timestamp, bound)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first record at or after `timestamp` in `view`, from `start` and below `bound`.
    fn search_segment(
        &self,
        view: &SegmentView,
        start: Offset,
        timestamp: i64,
        bound: Offset,
    ) -> Result<Option<TimestampOffset>> {
        let position = self.index.floor_position(view.base_offset, start)?;
        let Some(mut position) = self.skip_to(view, position, start)? else {
            return Ok(None);
        };
        while let Some(header) = view.header_at(position)? {
            if header.base_offset >= bound.get() {
                return Ok(None);
            }
            if header.max_timestamp >= timestamp
                && let Some(found) = find_in_batch(view, position, &header, timestamp)?
            {
                return Ok(Some(found));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }
}

/// Decodes the batch at `position` and returns its first record at or after `timestamp`.
fn find_in_batch(
    view: &SegmentView,
    position: u64,
    header: &BatchHeader,
    timestamp: i64,
) -> Result<Option<TimestampOffset>> {
    let bytes = view.read_at(position, header.total_size())?;
    let corrupt = |source| Error::CorruptLog {
        path: view.path.to_path_buf(),
        position,
        source,
    };
    validate_batch(&bytes).map_err(corrupt)?;
    let records = decode_records(&bytes).map_err(corrupt)?;
    Ok(records
        .into_iter()
        .find(|r| r.timestamp >= timestamp)
        .map(|r| TimestampOffset {
            offset: Offset::new(r.offset),
            timestamp: r.timestamp,
        }))
}

/// Reads whole, CRC-checked batches from `position` up to about `max_bytes`, stopping before the
/// first batch at or past `bound`.
fn read_batches(
    view: &SegmentView,
    position: u64,
    max_bytes: usize,
    bound: Offset,
) -> Result<ReadBatches> {
    let available = usize::try_from(view.size - position).unwrap_or(usize::MAX);
    let first = match view.header_at(position)? {
        Some(header) if header.base_offset < bound.get() => header,
        _ => {
            return Ok(ReadBatches {
                bytes: Bytes::new(),
                offsets: None,
            });
        }
    };
    if first.total_size() > available {
        // The length field lies outside the CRC: a damaged one must not stall the reader.
        let source = strom_record::Error::Truncated {
            needed: first.total_size(),
            available,
        };
        return Err(Error::CorruptLog {
            path: view.path.to_path_buf(),
            position,
            source,
        });
    }
    let want = max_bytes.max(first.total_size()).min(available);
    let buf = view.read_at(position, want)?;
    let mut end = 0usize;
    let mut next = first.base_offset;
    while buf.len() - end >= LOG_OVERHEAD {
        let size = match peek_batch_size(&buf[end..]) {
            Some(Ok(size)) if end + size <= buf.len() => size,
            _ => break,
        };
        let batch = &buf[end..end + size];
        match validate_batch(batch) {
            Ok(header) if header.base_offset >= bound.get() => break,
            // The base offset lies outside the CRC: a batch that does not continue the one
            // before it is damaged, and is left for the next read to report.
            Ok(header) if end > 0 && header.base_offset != next => break,
            Ok(header) => {
                end += size;
                next = header.next_offset();
            }
            Err(source) if end == 0 => {
                return Err(Error::CorruptLog {
                    path: view.path.to_path_buf(),
                    position,
                    source,
                });
            }
            Err(_) => break,
        }
    }
    let mut buf = buf;
    buf.truncate(end);
    let offsets = (end > 0).then_some((first.base_offset, next));
    Ok(ReadBatches {
        bytes: Bytes::from(buf),
        offsets,
    })
}

/// Batches read by [`read_batches`].
struct ReadBatches {
    /// Whole, CRC-checked batches.
    bytes: Bytes,
    /// Base offset of the first batch and the offset after the last, if any was read.
    offsets: Option<(i64, i64)>,
}
