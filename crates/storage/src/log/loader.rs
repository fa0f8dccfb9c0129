//! Opening a partition log: finding its segments and recovering from an unclean stop.
//!
//! Steps:
//! 1. Remove `*.log.deleted` leftovers of interrupted deletions.
//! 2. Load the checkpoint (HW, log start, recovery point) and the sealed-segment summaries.
//! 3. Delete segments wholly below the log start (a retention run that crashed midway).
//! 4. Trust segments that end at or below the recovery point and have a matching summary. Scan
//!    every other segment from its start: check each batch's length, CRC-32C and offset
//!    continuity, rebuild its index entries and epoch history, and stop at the first torn or
//!    corrupt batch: the file is cut there and every later segment is removed.
//! 5. The last segment becomes the active one; HW and log start are clamped to the log; the
//!    result is fsynced and the recovery point moved to the log end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_types::{LeaderEpoch, Offset, TopicPartition};
use tracing::{info, warn};

use super::partition::Inner;
use crate::checkpoint::Checkpoint;
use crate::config::LogConfig;
use crate::epoch::EpochCache;
use crate::index::PartitionIndex;
use crate::segment::active::ActiveState;
use crate::segment::sealed::Summary;
use crate::segment::{self, ActiveSegment, DELETED_SUFFIX, SealedSegment, open_file, scan_segment};
use crate::state::keys::{key_i64, prefix_end, suffix_i64};
use crate::state::{Area, StateStore, WriteBatch};
use crate::{Error, Result};

/// A segment file found on disk.
struct Found {
    base: Offset,
    path: PathBuf,
    len: u64,
}

/// Lists live segment files in `dir`, removing deletion leftovers.
fn list_segments(dir: &Path) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(Error::io("list partition directory", dir))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("list partition directory", dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(DELETED_SUFFIX) {
            std::fs::remove_file(&path).map_err(Error::io("remove deleted segment", &path))?;
            continue;
        }
        if let Some(base) = segment::parse_file_name(name) {
            let len = entry
                .metadata()
                .map_err(Error::io("stat segment", &path))?
                .len();
            found.push(Found { base, path, len });
        }
    }
    found.sort_by_key(|f| f.base);
    Ok(found)
}

fn load_summaries(store: &dyn StateStore, prefix: &[u8]) -> Result<BTreeMap<Offset, Summary>> {
    let mut summaries = BTreeMap::new();
    for (key, value) in store.scan_prefix(Area::Segments, prefix)? {
        let base = suffix_i64(prefix, &key)
            .and_then(|b| Offset::try_new(b).ok())
            .ok_or(Error::MalformedState {
                area: Area::Segments.name(),
                reason: "bad segment key",
            })?;
        summaries.insert(base, Summary::decode(&value)?);
    }
    Ok(summaries)
}

/// Opens and recovers the log in `dir`. See the module docs for the steps.
pub(super) fn load(
    dir: &Path,
    tp: &TopicPartition,
    prefix: &[u8],
    store: &Arc<dyn StateStore>,
    index: &PartitionIndex,
    config: LogConfig,
    now_ms: i64,
) -> Result<Inner> {
    let checkpoint = Checkpoint::load(store.as_ref(), prefix)?;
    let summaries = load_summaries(store.as_ref(), prefix)?;
    let mut epochs = EpochCache::load(Arc::clone(store), prefix.to_vec())?;
    let mut files = list_segments(dir)?;
    let mut batch = WriteBatch::new();

    // Segments that end at or below the log start are garbage from an interrupted retention run.
    while files.len() > 1 && files[1].base <= checkpoint.log_start {
        let doomed = files.remove(0);
        index.delete_segment(&mut batch, doomed.base, files[0].base);
        batch.delete(Area::Segments, key_i64(prefix, doomed.base.get()));
        super::truncate::remove_file(&doomed.path)?;
    }

    let mut sealed = BTreeMap::new();
    let mut active: Option<ActiveSegment> = None;
    let mut expected: Option<Offset> = None;
    let mut scanning = false;
    let mut dropped_from: Option<usize> = None;
    for (i, found) in files.iter().enumerate() {
        let is_last = i + 1 == files.len();
        let next_base = files.get(i + 1).map(|f| f.base);
        if let Some(expected) = expected.filter(|e| *e != found.base) {
            warn!(partition = %tp, expected = expected.get(), found = found.base.get(), "segment chain has a gap; dropping the rest");
            dropped_from = Some(i);
            break;
        }
        let summary = summaries.get(&found.base).copied();
        let trusted = !scanning
            && summary.is_some_and(|s| {
                s.size == found.len
                    && s.next_offset <= checkpoint.recovery_point
                    && next_base.is_none_or(|n| n == s.next_offset)
            });
        let file = Arc::new(open_file(&found.path)?);
        let path = Arc::new(found.path.clone());
        if let (true, Some(s)) = (trusted, summary) {
            expected = Some(s.next_offset);
            if is_last {
                let state = ActiveState {
                    size: s.size,
                    next_offset: s.next_offset,
                    max_timestamp: s.max_timestamp,
                    last_time_entry: index
                        .time_floor(found.base, i64::MAX)?
                        .map_or(i64::MIN, |_| s.max_timestamp),
                    first_append_ms: (s.size > 0).then_some(now_ms),
                };
                active = Some(ActiveSegment::open(file, path, found.base, state)?);
            } else {
                sealed.insert(
                    found.base,
                    SealedSegment::new(
                        file,
                        path,
                        found.base,
                        s.size,
                        s.next_offset,
                        s.max_timestamp,
                    ),
                );
            }
            continue;
        }
        // Everything from here on is scanned and its derived state rebuilt.
        if !scanning {
            scanning = true;
            index.delete_offsets_from(&mut batch, found.base);
            // Written now, not with `batch`: the replay below writes epoch entries directly,
            // and they must land after these deletions.
            let mut epoch_batch = WriteBatch::new();
            epochs.truncate_from_end(found.base, &mut epoch_batch);
            store.write(epoch_batch)?;
        }
        index.delete_segment(&mut batch, found.base, Offset::new(i64::MAX));
        let mut segment =
            ActiveSegment::for_replay(Arc::clone(&file), Arc::clone(&path), found.base);
        let interval = config.index_interval_bytes;
        let mut epoch_error = None;
        let outcome = scan_segment(
            &file,
            &path,
            0,
            found.len,
            found.base,
            |position, header| {
                if let Ok(epoch) = LeaderEpoch::try_new(header.partition_leader_epoch)
                    && let Err(e) = epochs.assign(epoch, Offset::new(header.base_offset))
                {
                    epoch_error.get_or_insert(e);
                }
                segment.replay(position, header, interval);
                Ok(())
            },
        )?;
        if let Some(e) = epoch_error {
            warn!(partition = %tp, error = %e, "epoch history inconsistent with the log");
        }
        let truncated = outcome.stopped.is_some();
        if let Some(reason) = &outcome.stopped {
            warn!(
                partition = %tp,
                segment = %found.path.display(),
                valid_bytes = outcome.valid_end,
                file_bytes = found.len,
                %reason,
                "truncating log at the first invalid batch"
            );
            file.set_len(outcome.valid_end)
                .map_err(Error::io("truncate segment", &found.path))?;
        }
        expected = Some(outcome.next_offset);
        if is_last || truncated {
            segment.set_first_append_ms(now_ms);
            active = Some(segment);
            if !is_last {
                dropped_from = Some(i + 1);
            }
            break;
        }
        let sealed_segment = segment.seal(index, &mut batch);
        batch.put(
            Area::Segments,
            key_i64(prefix, found.base.get()),
            sealed_segment.summary(),
        );
        sealed.insert(found.base, sealed_segment);
    }
    if let Some(from) = dropped_from {
        for doomed in &files[from..] {
            index.delete_segment(&mut batch, doomed.base, Offset::new(i64::MAX));
            batch.delete(Area::Segments, key_i64(prefix, doomed.base.get()));
            super::truncate::remove_file(&doomed.path)?;
        }
    }
    let mut active = match active {
        Some(active) => active,
        None => {
            // No segment at all (new partition, or everything was deleted): start at the log
            // start, or after the last sealed segment if the chain ended at a gap.
            let base = expected
                .unwrap_or(checkpoint.log_start)
                .max(checkpoint.log_start);
            ActiveSegment::create(dir, base)?
        }
    };
    let log_end = active.next_offset();
    let first_base = sealed
        .keys()
        .next()
        .copied()
        .unwrap_or(active.base_offset());
    let log_start = checkpoint.log_start.max(first_base).min(log_end);
    epochs.truncate_from_end(log_end, &mut batch);
    epochs.truncate_from_start(log_start, &mut batch);
    active.drain_index(index, &mut batch);
    // Derived state must not describe anything past the log end or segments that are gone: a
    // crash may have removed files (or cut them) after their state was written.
    index.delete_offsets_from(&mut batch, log_end);
    batch.delete_range(
        Area::TimeIndex,
        key_i64(prefix, log_end.get()),
        prefix_end(prefix),
    );
    batch.delete_range(
        Area::ProducerState,
        key_i64(prefix, log_end.get() + 1),
        prefix_end(prefix),
    );
    for base in summaries.keys().filter(|base| !sealed.contains_key(*base)) {
        batch.delete(Area::Segments, key_i64(prefix, base.get()));
    }
    let mut inner = Inner {
        config,
        sealed,
        active,
        log_start,
        high_watermark: checkpoint.high_watermark.clamp(log_start, log_end),
        recovery_point: checkpoint.recovery_point.min(log_end),
        epochs,
        unflushed_records: 0,
        last_flush_ms: now_ms,
        deleted: false,
        failed: false,
        generation: 0,
        damaged_from: None,
    };
    store.write(batch)?;
    if scanning {
        // The scanned data is valid; make it durable so the next open need not scan it again.
        inner.active.sync()?;
        for segment in inner
            .sealed
            .values()
            .filter(|s| s.next_offset() > checkpoint.recovery_point)
        {
            segment
                .file()
                .sync_data()
                .map_err(Error::io("fsync segment", segment.path().as_path()))?;
        }
        inner.recovery_point = log_end;
        info!(partition = %tp, recovered_to = log_end.get(), "recovered log");
    }
    let mut batch = WriteBatch::new();
    inner.checkpoint().put(&mut batch, prefix);
    store.write(batch)?;
    store.sync()?;
    Ok(inner)
}
