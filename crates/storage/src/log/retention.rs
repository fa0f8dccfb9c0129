//! Retention: deleting whole old segments by age (`retention-ms`) and total size
//! (`retention-bytes`), and segments wholly below the log start offset.
//!
//! Only segments entirely below the high watermark are eligible, so nothing a follower or
//! consumer may still need from the uncommitted tail is removed. The log start offset only
//! moves forward. An active segment whose newest record has expired is rolled first, so an idle
//! partition's data still ages out.

use strom_types::Offset;
use tracing::info;

use super::partition::{Inner, PartitionLog};
use crate::Result;
use crate::state::WriteBatch;

/// What a retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<Offset>,
    /// Bytes freed.
    pub deleted_bytes: u64,
    /// The log start offset after the run.
    pub log_start_offset: Offset,
}

/// Why a segment is deleted, for the log line.
#[derive(Debug, Clone, Copy)]
enum Cause {
    LogStart,
    Time,
    Size,
}

impl PartitionLog {
    /// Deletes the segments that the retention settings and the log start offset no longer keep.
    pub fn apply_retention(&self) -> Result<RetentionOutcome> {
        let mut inner = self.lock()?;
        let now = self.clock.now_ms();
        if let Some(ms) = inner.config.retention_ms {
            let active = &inner.active;
            let expired =
                !active.is_empty() && active.retention_timestamp() < now.saturating_sub(ms);
            if expired && active.next_offset() <= inner.high_watermark {
                self.roll(&mut inner)?;
            }
        }
        let doomed = doomed_segments(&inner, now);
        let mut outcome = RetentionOutcome {
            log_start_offset: inner.log_start,
            ..RetentionOutcome::default()
        };
        if doomed.is_empty() {
            return Ok(outcome);
        }
        // State first (new log start, entries gone), files second: a crash in between leaves
        // files below the log start, which the loader deletes.
        let mut batch = WriteBatch::new();
        let mut log_start = inner.log_start;
        let mut segments = Vec::with_capacity(doomed.len());
        for (base, cause) in doomed {
            let Some(segment) = inner.sealed.get(&base).cloned() else {
                continue;
            };
            log_start = log_start.max(segment.next_offset());
            self.queue_segment_removal(&mut batch, &segment);
            segments.push((segment, cause));
        }
        inner.epochs.truncate_from_start(log_start, &mut batch);
        let mut checkpoint = inner.checkpoint();
        checkpoint.log_start = log_start;
        checkpoint.high_watermark = checkpoint.high_watermark.max(log_start);
        checkpoint.recovery_point = checkpoint.recovery_point.max(log_start);
        checkpoint.put(&mut batch, &self.prefix);
        self.store.write(batch)?;
        // The log start must never move back, even after a power loss.
        self.store.sync()?;
        inner.log_start = log_start;
        inner.high_watermark = checkpoint.high_watermark;
        inner.recovery_point = checkpoint.recovery_point;
        for (segment, cause) in segments {
            super::truncate::remove_file(segment.path().as_path())?;
            inner.sealed.remove(&segment.base_offset());
            info!(
                partition = %self.tp,
                base_offset = segment.base_offset().get(),
                size = segment.size(),
                cause = ?cause,
                log_start = log_start.get(),
                "deleted segment by retention"
            );
            outcome.deleted_segments.push(segment.base_offset());
            outcome.deleted_bytes += segment.size();
        }
        outcome.log_start_offset = log_start;
        Ok(outcome)
    }
}

/// The sealed segments to delete, oldest first: a pure decision over the segment summaries.
fn doomed_segments(inner: &Inner, now_ms: i64) -> Vec<(Offset, Cause)> {
    let config = &inner.config;
    let mut remaining = inner.size_bytes();
    let mut doomed = Vec::new();
    for segment in inner.sealed.values() {
        // Deletion is from the oldest end only, and never past the high watermark.
        if segment.next_offset() > inner.high_watermark {
            break;
        }
        let cause = if segment.next_offset() <= inner.log_start {
            Some(Cause::LogStart)
        } else if config
            .retention_ms
            .is_some_and(|ms| segment.retention_timestamp() < now_ms.saturating_sub(ms))
        {
            Some(Cause::Time)
        } else if config
            .retention_bytes
            .is_some_and(|limit| remaining.saturating_sub(segment.size()) >= limit)
        {
            Some(Cause::Size)
        } else {
            None
        };
        let Some(cause) = cause else { break };
        remaining -= segment.size();
        doomed.push((segment.base_offset(), cause));
    }
    doomed
}
