//! Truncation: followers cut their log back to where it agrees with the leader.

use std::sync::Arc;

use strom_types::Offset;
use tracing::{info, warn};

use super::partition::{Inner, PartitionLog};
use crate::segment::active::ActiveState;
use crate::segment::{ActiveSegment, SealedSegment, scan_segment};
use crate::state::keys::{key_i64, prefix_end};
use crate::state::{Area, WriteBatch};
use crate::{Error, Result};

impl PartitionLog {
    /// Removes every batch from the one containing `offset` onward; returns the new log end.
    ///
    /// Truncation works on whole batches, so the new log end is the base offset of the batch
    /// that contained `offset` (at most `offset`). Truncating at or past the log end does
    /// nothing; truncating below the log start empties the log and restarts it at `offset`.
    pub fn truncate_to(&self, offset: Offset) -> Result<Offset> {
        let mut producers = self.lock_producers()?;
        let new_end = self.truncate_locked(offset)?;
        self.reload_producers(&mut producers)?;
        Ok(new_end)
    }

    fn truncate_locked(&self, offset: Offset) -> Result<Offset> {
        let mut inner = self.lock()?;
        if offset >= inner.log_end() {
            return Ok(inner.log_end());
        }
        if offset < inner.log_start {
            self.reset_locked(&mut inner, offset)?;
            return Ok(offset);
        }
        inner.generation += 1;
        let mut batch = WriteBatch::new();
        inner.active.drain_index(&self.index, &mut batch);
        self.store.write(batch)?;
        if offset < inner.active.base_offset() {
            let Some((&base, _)) = inner.sealed.range(..=offset).next_back() else {
                // No segment holds `offset`: the chain has a hole there; start afresh.
                self.reset_locked(&mut inner, offset)?;
                return Ok(offset);
            };
            self.drop_segments_after(&mut inner, base)?;
        }
        let new_end = self.cut_active(&mut inner, offset)?;
        if new_end < inner.log_start {
            // The log start was inside the batch that had to go (after DeleteRecords); the
            // log cannot end before it starts, so it restarts empty at its start.
            let start = inner.log_start;
            self.reset_locked(&mut inner, start)?;
            return Ok(start);
        }
        let mut batch = WriteBatch::new();
        self.index.delete_offsets_from(&mut batch, new_end);
        self.index
            .delete_times_from(&mut batch, inner.active.base_offset(), new_end)?;
        batch.delete(
            Area::Segments,
            key_i64(&self.prefix, inner.active.base_offset().get()),
        );
        batch.delete_range(
            Area::ProducerState,
            key_i64(&self.prefix, new_end.get() + 1),
            prefix_end(&self.prefix),
        );
        inner.epochs.truncate_from_end(new_end, &mut batch);
        inner.high_watermark = inner.high_watermark.min(new_end);
        inner.recovery_point = inner.recovery_point.min(new_end);
        if inner.damaged_from.is_some_and(|d| d >= new_end) {
            inner.damaged_from = None;
        }
        inner.checkpoint().put(&mut batch, &self.prefix);
        self.store.write(batch)?;
        info!(partition = %self.tp, requested = offset.get(), log_end = new_end.get(), "truncated log");
        Ok(new_end)
    }

    /// Makes the sealed segment at `base` the active one, deleting every segment after it.
    ///
    /// The state entries of the doomed segments are removed before their files, so a crash in
    /// between leaves files without state (which recovery scans or drops), never state
    /// describing files that are gone.
    fn drop_segments_after(&self, inner: &mut Inner, base: Offset) -> Result<()> {
        let later: Vec<SealedSegment> = inner
            .sealed
            .range(base..)
            .skip(1)
            .map(|(_, s)| s.clone())
            .collect();
        let active = inner.active.view();
        let mut batch = WriteBatch::new();
        for segment in &later {
            self.index
                .delete_segment(&mut batch, segment.base_offset(), segment.next_offset());
            batch.delete(
                Area::Segments,
                key_i64(&self.prefix, segment.base_offset().get()),
            );
        }
        self.index
            .delete_segment(&mut batch, active.base_offset, Offset::new(i64::MAX));
        batch.delete(
            Area::Segments,
            key_i64(&self.prefix, active.base_offset.get()),
        );
        self.store.write(batch)?;
        let segment = inner
            .sealed
            .get(&base)
            .cloned()
            .ok_or(Error::MalformedState {
                area: "segments",
                reason: "segment vanished during truncation",
            })?;
        let reopened = reopen(segment)?;
        for doomed in &later {
            remove_file(doomed.path().as_path())?;
            inner.sealed.remove(&doomed.base_offset());
        }
        remove_file(active.path.as_path())?;
        inner.sealed.remove(&base);
        inner.active = reopened;
        Ok(())
    }

    /// Cuts the active segment before the batch containing `offset`; returns the new log end.
    fn cut_active(&self, inner: &mut Inner, offset: Offset) -> Result<Offset> {
        let view = inner.active.view();
        let mut position = inner.active.floor_position(&self.index, offset)?;
        while let Some(header) = view.header_at(position)? {
            if header.next_offset() > offset.get() {
                break;
            }
            position += header.total_size() as u64;
        }
        // Rebuild the segment's in-memory state (max timestamp, index position) over what stays.
        let interval = inner.config.index_interval_bytes;
        let mut rebuilt = ActiveSegment::for_replay(
            Arc::clone(&view.file),
            Arc::clone(&view.path),
            view.base_offset,
        );
        let outcome = scan_segment(
            &view.file,
            &view.path,
            0,
            position,
            view.base_offset,
            |pos, header| {
                rebuilt.replay(pos, header, interval);
                Ok(())
            },
        )?;
        if let Some(reason) = outcome.stopped {
            warn!(partition = %self.tp, %reason, "segment invalid below the truncation point");
        }
        view.file
            .set_len(outcome.valid_end)
            .map_err(Error::io("truncate segment", view.path.as_path()))?;
        rebuilt.discard_pending_index();
        inner.active = rebuilt;
        Ok(outcome.next_offset)
    }

    /// Empties the log and restarts it at `offset` (a follower far behind the leader's log start).
    pub fn truncate_fully_and_start_at(&self, offset: Offset) -> Result<()> {
        let mut producers = self.lock_producers()?;
        self.reset_locked(&mut *self.lock()?, offset)?;
        self.reload_producers(&mut producers)
    }

    pub(super) fn reset_locked(&self, inner: &mut Inner, offset: Offset) -> Result<()> {
        inner.generation += 1;
        let mut batch = WriteBatch::new();
        self.index.delete_all(&mut batch);
        inner.epochs.clear(&mut batch);
        for area in [Area::Segments, Area::ProducerState] {
            batch.delete_range(area, self.prefix.clone(), prefix_end(&self.prefix));
        }
        let checkpoint = crate::checkpoint::Checkpoint {
            high_watermark: offset,
            log_start: offset,
            recovery_point: offset,
        };
        checkpoint.put(&mut batch, &self.prefix);
        self.store.write(batch)?;
        inner.log_start = offset;
        inner.high_watermark = offset;
        inner.recovery_point = offset;
        inner.damaged_from = None;
        let sealed = std::mem::take(&mut inner.sealed);
        for segment in sealed.values() {
            remove_file(segment.path().as_path())?;
        }
        let old_active = inner.active.view();
        if old_active.base_offset != offset {
            remove_file(old_active.path.as_path())?;
        }
        inner.active = ActiveSegment::create(&self.dir, offset)?;
        sync_dir(&self.dir)?;
        info!(partition = %self.tp, offset = offset.get(), "reset log");
        Ok(())
    }

    /// Queues removal of a sealed segment's index entries and summary.
    pub(super) fn queue_segment_removal(&self, batch: &mut WriteBatch, segment: &SealedSegment) {
        self.index
            .delete_segment(batch, segment.base_offset(), segment.next_offset());
        batch.delete(
            Area::Segments,
            key_i64(&self.prefix, segment.base_offset().get()),
        );
    }
}

/// Turns a sealed segment back into the active one (its bytes are all valid).
fn reopen(segment: SealedSegment) -> Result<ActiveSegment> {
    let state = ActiveState {
        size: segment.size(),
        next_offset: segment.next_offset(),
        max_timestamp: segment.max_timestamp(),
        last_time_entry: segment.max_timestamp(),
        first_append_ms: None,
    };
    ActiveSegment::open(
        Arc::clone(segment.file()),
        Arc::clone(segment.path()),
        segment.base_offset(),
        state,
    )
}

/// Fsyncs a directory, making file creations, renames and removals in it durable.
pub(super) fn sync_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))
}

/// Renames `path` to `<path>.deleted` and unlinks it; recovery removes leftovers of a crash
/// between the two steps.
pub(super) fn remove_file(path: &std::path::Path) -> Result<()> {
    let mut trash = path.as_os_str().to_owned();
    trash.push(".deleted");
    std::fs::rename(path, &trash).map_err(Error::io("rename segment for deletion", path))?;
    std::fs::remove_file(&trash).map_err(Error::io("remove segment", path))
}
