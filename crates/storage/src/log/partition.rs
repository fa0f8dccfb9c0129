//! [`PartitionLog`]: construction, offsets, flushing, closing and deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use strom_types::{LeaderEpoch, Offset, TopicPartition};
use tracing::{debug, info};

use crate::checkpoint::Checkpoint;
use crate::clock::Clock;
use crate::config::LogConfig;
use crate::epoch::{EpochCache, EpochEndOffset, EpochEntry};
use crate::index::PartitionIndex;
use crate::producer_table::ProducerTable;
use crate::segment::{ActiveSegment, SealedSegment};
use crate::state::keys::{key_i64, partition_prefix, prefix_end};
use crate::state::{Area, StateStore, WriteBatch};
use crate::{Error, Result};

/// One partition's log on this broker. See the [module docs](crate::log).
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) tp: TopicPartition,
    pub(super) dir: PathBuf,
    pub(super) prefix: Vec<u8>,
    pub(super) store: Arc<dyn StateStore>,
    pub(super) index: PartitionIndex,
    pub(super) clock: Arc<dyn Clock>,
    /// The idempotent producers. Lock order: `producers` before `inner`; every append and
    /// truncation holds it throughout, so the table always matches the log end.
    pub(super) producers: Mutex<ProducerTable>,
    pub(super) inner: Mutex<Inner>,
}

/// The files a flush must fsync and the recovery point it establishes.
pub(super) struct FlushPlan {
    files: Vec<(Arc<std::fs::File>, Arc<PathBuf>)>,
    dir: PathBuf,
    pub(super) target: Offset,
    generation: u64,
}

impl FlushPlan {
    /// Fsyncs the segment files, then the state store.
    pub(super) fn execute(&self, store: &dyn StateStore) -> Result<()> {
        for (file, path) in &self.files {
            file.sync_data()
                .map_err(Error::io("fsync segment", path.as_path()))?;
        }
        // Segment files created since the last flush must be durable entries of the directory.
        super::truncate::sync_dir(&self.dir)?;
        store.sync()
    }
}

/// The mutable state behind the partition mutex.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: LogConfig,
    pub(super) sealed: BTreeMap<Offset, SealedSegment>,
    pub(super) active: ActiveSegment,
    pub(super) log_start: Offset,
    pub(super) high_watermark: Offset,
    pub(super) recovery_point: Offset,
    pub(super) epochs: EpochCache,
    /// Records appended since the last flush, for `flush-messages`.
    pub(super) unflushed_records: u64,
    pub(super) last_flush_ms: i64,
    pub(super) deleted: bool,
    /// Set when an fsync failed: the kernel may have dropped the dirty pages it could not write,
    /// so retrying could report success for lost data. The log refuses all further use.
    pub(super) failed: bool,
    /// Bumped by every truncation or reset, so a flush that raced with one does not move the
    /// recovery point over bytes it did not fsync.
    pub(super) generation: u64,
    /// The lowest offset a read found in a batch that failed its checksum or structure check.
    /// The log cannot serve from there on; a follower truncates to it and fetches it again.
    pub(super) damaged_from: Option<Offset>,
}

impl Inner {
    pub(super) fn log_end(&self) -> Offset {
        self.active.next_offset()
    }

    pub(super) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            high_watermark: self.high_watermark,
            log_start: self.log_start,
            recovery_point: self.recovery_point,
        }
    }

    /// Total bytes in all segments.
    pub(super) fn size_bytes(&self) -> u64 {
        self.sealed.values().map(SealedSegment::size).sum::<u64>() + self.active.size()
    }
}

impl PartitionLog {
    /// Opens the log of `tp` under `logs_dir/<topic>-<partition>`, creating it if new and
    /// recovering it if it was not closed cleanly (see `loader`).
    pub fn open(
        logs_dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = logs_dir.join(tp.dir_name());
        let prefix = partition_prefix(&tp);
        if !dir.exists() {
            // A new partition: any state under its prefix belongs to an earlier partition of
            // the same name whose deletion was interrupted.
            let mut batch = WriteBatch::new();
            for area in Area::PARTITION {
                batch.delete_range(area, prefix.clone(), prefix_end(&prefix));
            }
            store.write(batch)?;
        }
        std::fs::create_dir_all(&dir).map_err(Error::io("create partition directory", &dir))?;
        let index = PartitionIndex::new(Arc::clone(&store), prefix.clone());
        let inner =
            super::loader::load(&dir, &tp, &prefix, &store, &index, config, clock.now_ms())?;
        info!(
            partition = %tp,
            log_start = inner.log_start.get(),
            log_end = inner.log_end().get(),
            segments = inner.sealed.len() + 1,
            "opened partition log"
        );
        let log = Self {
            tp,
            dir,
            prefix,
            store,
            index,
            clock,
            producers: Mutex::new(ProducerTable::default()),
            inner: Mutex::new(inner),
        };
        let mut producers = log.lock_producers()?;
        log.reload_producers(&mut producers)?;
        drop(producers);
        Ok(log)
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        // A panic while holding the lock is a bug; the state it guards stays structurally valid
        // (segment chain and offsets change only after the I/O behind them succeeded), so keep
        // serving.
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.deleted {
            return Err(Error::Deleted {
                partition: self.tp.dir_name(),
            });
        }
        if guard.failed {
            return Err(Error::Failed {
                partition: self.tp.dir_name(),
            });
        }
        Ok(guard)
    }

    /// The partition this log stores.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The directory holding the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> Result<Offset> {
        Ok(self.lock()?.log_start)
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> Result<Offset> {
        Ok(self.lock()?.log_end())
    }

    /// The high watermark: consumers read below it.
    pub fn high_watermark(&self) -> Result<Offset> {
        Ok(self.lock()?.high_watermark)
    }

    /// The lowest offset a read found damaged (a batch that failed its checksum or structure
    /// check), if any since the last truncation below it. Nothing is served from there on.
    pub fn damaged_from(&self) -> Result<Option<Offset>> {
        let inner = self.lock()?;
        Ok(inner.damaged_from.filter(|d| *d >= inner.log_start))
    }

    /// The offset below which the log is known durable.
    pub fn recovery_point(&self) -> Result<Offset> {
        Ok(self.lock()?.recovery_point)
    }

    /// Total size of the segment files in bytes.
    pub fn size_bytes(&self) -> Result<u64> {
        Ok(self.lock()?.size_bytes())
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> Result<usize> {
        Ok(self.lock()?.sealed.len() + 1)
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Result<Vec<Offset>> {
        let inner = self.lock()?;
        Ok(inner
            .sealed
            .keys()
            .copied()
            .chain(std::iter::once(inner.active.base_offset()))
            .collect())
    }

    /// The config in force.
    pub fn config(&self) -> Result<LogConfig> {
        Ok(self.lock()?.config.clone())
    }

    /// Replaces the config (after validating it); it applies from the next append or retention run.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.lock()?.config = config;
        Ok(())
    }

    /// Moves the high watermark to `offset`, clamped to `[log_start, log_end]`; returns the new value.
    ///
    /// The value is checkpointed on the next flush or [`PartitionLog::checkpoint`]; after a crash
    /// it may come back lower, never higher.
    pub fn update_high_watermark(&self, offset: Offset) -> Result<Offset> {
        let mut inner = self.lock()?;
        let hw = offset.max(inner.log_start).min(inner.log_end());
        inner.high_watermark = hw;
        Ok(hw)
    }

    /// Moves the log start offset forward to `offset` (as Kafka's DeleteRecords does); it may not
    /// pass the high watermark. Whole segments below it are deleted by the next retention run.
    pub fn advance_log_start(&self, offset: Offset) -> Result<Offset> {
        let mut inner = self.lock()?;
        if offset > inner.high_watermark {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start: inner.log_start,
                log_end: inner.high_watermark,
            });
        }
        if offset > inner.log_start {
            inner.log_start = offset;
            let mut batch = WriteBatch::new();
            inner.epochs.truncate_from_start(offset, &mut batch);
            inner.checkpoint().put(&mut batch, &self.prefix);
            self.store.write(batch)?;
            // The log start must never move back, even after a power loss.
            self.store.sync()?;
        }
        Ok(inner.log_start)
    }

    /// The leader-epoch history, oldest first.
    pub fn epoch_history(&self) -> Result<Vec<EpochEntry>> {
        Ok(self.lock()?.epochs.entries().to_vec())
    }

    /// The newest leader epoch in the log.
    pub fn latest_epoch(&self) -> Result<Option<LeaderEpoch>> {
        Ok(self.lock()?.epochs.latest().map(|e| e.epoch))
    }

    /// Where `epoch` ended in this log (OffsetsForLeaderEpoch), or `None` if unknown.
    pub fn epoch_end_offset(&self, epoch: LeaderEpoch) -> Result<Option<EpochEndOffset>> {
        let inner = self.lock()?;
        Ok(inner.epochs.end_offset_for(epoch, inner.log_end()))
    }

    /// Writes pending index entries, segment summary and checkpoints to the state store, without
    /// forcing anything to disk.
    pub fn checkpoint(&self) -> Result<()> {
        let mut inner = self.lock()?;
        let mut batch = WriteBatch::new();
        self.queue_state(&mut inner, &mut batch);
        self.store.write(batch)
    }

    pub(super) fn queue_state(&self, inner: &mut Inner, batch: &mut WriteBatch) {
        inner.active.drain_index(&self.index, batch);
        inner.checkpoint().put(batch, &self.prefix);
    }

    /// Forces every appended byte and all state to disk, then moves the recovery point to the log
    /// end. The fsyncs run without holding the partition lock, so appends and reads continue.
    pub fn flush(&self) -> Result<()> {
        let plan = {
            let mut inner = self.lock()?;
            self.plan_flush(&mut inner)?
        };
        if let Err(e) = plan.execute(self.store.as_ref()) {
            self.fail(&e);
            return Err(e);
        }
        let mut inner = self.lock()?;
        self.commit_flush(&mut inner, &plan)
    }

    /// Takes the log out of service after a failed fsync.
    fn fail(&self, error: &Error) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.fail_locked(&mut inner, error);
    }

    /// [`PartitionLog::fail`] for a caller already holding the lock.
    pub(super) fn fail_locked(&self, inner: &mut Inner, error: &Error) {
        inner.failed = true;
        tracing::error!(partition = %self.tp, error = %error, "fsync failed; the log is out of service");
    }

    /// Persists pending index entries and lists the files a flush must fsync.
    pub(super) fn plan_flush(&self, inner: &mut Inner) -> Result<FlushPlan> {
        let mut batch = WriteBatch::new();
        inner.active.drain_index(&self.index, &mut batch);
        self.store.write(batch)?;
        let rp = inner.recovery_point;
        let files = inner
            .sealed
            .values()
            .filter(|s| s.next_offset() > rp)
            .map(|s| (Arc::clone(s.file()), Arc::clone(s.path())))
            .chain(std::iter::once((
                Arc::clone(inner.active.file()),
                Arc::clone(inner.active.path()),
            )))
            .collect();
        inner.unflushed_records = 0;
        inner.last_flush_ms = self.clock.now_ms();
        Ok(FlushPlan {
            files,
            dir: self.dir.clone(),
            target: inner.log_end(),
            generation: inner.generation,
        })
    }

    /// Moves the recovery point to `target` once everything below it is durable.
    pub(super) fn commit_flush(&self, inner: &mut Inner, plan: &FlushPlan) -> Result<()> {
        // A truncation while the fsyncs ran may have replaced bytes below the target with
        // bytes this flush never saw: then the recovery point stays where it was.
        let target = plan.target;
        if plan.generation == inner.generation
            && target > inner.recovery_point
            && target <= inner.log_end()
        {
            inner.recovery_point = target;
            let mut batch = WriteBatch::new();
            inner.checkpoint().put(&mut batch, &self.prefix);
            self.store.write(batch)?;
            self.store.sync()?;
        }
        debug!(partition = %self.tp, recovery_point = inner.recovery_point.get(), "flushed");
        Ok(())
    }

    /// Flushes if `flush-ms` has passed since the last flush and there is something to flush.
    pub fn flush_if_due(&self) -> Result<bool> {
        let due = {
            let inner = self.lock()?;
            let dirty = inner.recovery_point < inner.log_end();
            let now = self.clock.now_ms();
            dirty
                && inner
                    .config
                    .flush_ms
                    .is_some_and(|ms| now.saturating_sub(inner.last_flush_ms) >= ms)
        };
        if due {
            self.flush()?;
        }
        Ok(due)
    }

    /// Flushes everything and records the active segment's summary, so the next open scans
    /// nothing. The log stays usable; dropping it after `close` is a clean shutdown.
    pub fn close(&self) -> Result<()> {
        self.snapshot_producers()?;
        self.flush()?;
        let inner = self.lock()?;
        let mut batch = WriteBatch::new();
        let active = &inner.active;
        let summary = SealedSegment::new(
            Arc::clone(active.file()),
            Arc::clone(active.path()),
            active.base_offset(),
            active.size(),
            active.next_offset(),
            active.max_timestamp(),
        )
        .summary();
        batch.put(
            Area::Segments,
            key_i64(&self.prefix, active.base_offset().get()),
            summary,
        );
        self.store.write(batch)?;
        self.store.sync()
    }

    /// Deletes the partition: its directory and every state entry. Later calls fail with
    /// [`Error::Deleted`]; readers holding segment snapshots finish reading them.
    pub fn delete(&self) -> Result<()> {
        let mut inner = self.lock()?;
        // Move the files out of the way first: a crash afterwards leaves a `*.deleted` directory
        // (removed at startup) and stale state that a re-created partition overwrites, never
        // old segments that a re-created partition would take for its own.
        let mut trash = self.dir.as_os_str().to_owned();
        trash.push(format!(".{}.deleted", self.clock.now_ms()));
        let trash = PathBuf::from(trash);
        std::fs::rename(&self.dir, &trash)
            .map_err(Error::io("rename partition directory", &self.dir))?;
        inner.deleted = true;
        let mut batch = WriteBatch::new();
        self.index.delete_all(&mut batch);
        inner.epochs.clear(&mut batch);
        for area in [Area::Checkpoints, Area::Segments, Area::ProducerState] {
            batch.delete_range(area, self.prefix.clone(), prefix_end(&self.prefix));
        }
        self.store.write(batch)?;
        std::fs::remove_dir_all(&trash).map_err(Error::io("remove partition directory", &trash))?;
        info!(partition = %self.tp, "deleted partition log");
        Ok(())
    }
}
