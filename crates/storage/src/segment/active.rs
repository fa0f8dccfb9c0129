//! The active segment: the only segment that is appended to.

use std::fs::File;
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_record::BatchHeader;
use strom_types::Offset;

use super::{SealedSegment, SegmentView, open_file, segment_path};
use crate::index::{OffsetEntry, PartitionIndex, TimeEntry};
use crate::state::WriteBatch;
use crate::{Error, Result};

/// The writable tail of a partition log.
///
/// Invariants: `size` is the file's logical length and every byte below it is whole, valid
/// batches; `next_offset` is the offset after the last batch. Index entries created since the last
/// [`ActiveSegment::drain_index`] are held in memory (`pending_*`) and consulted before the store.
///
/// Not thread-safe on its own: the owning log serializes access; readers use [`SegmentView`].
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    file: Arc<File>,
    path: Arc<PathBuf>,
    base_offset: Offset,
    size: u64,
    next_offset: Offset,
    max_timestamp: i64,
    /// Wall time of the first append, which starts the `segment-ms` clock.
    first_append_ms: Option<i64>,
    bytes_since_index: u64,
    /// Time of the newest time index entry of this segment (persisted or pending).
    last_time_entry: i64,
    pending_offsets: Vec<OffsetEntry>,
    pending_times: Vec<TimeEntry>,
    /// Where the file cursor is, if known; appends skip the seek when it is at `size`.
    cursor: Option<u64>,
}

/// What [`ActiveSegment::open`] needs to know about a segment that already has data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActiveState {
    pub(crate) size: u64,
    pub(crate) next_offset: Offset,
    pub(crate) max_timestamp: i64,
    pub(crate) last_time_entry: i64,
    pub(crate) first_append_ms: Option<i64>,
}

impl ActiveState {
    /// The state of a segment with no batches.
    pub(crate) fn empty(base_offset: Offset) -> Self {
        Self {
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            last_time_entry: i64::MIN,
            first_append_ms: None,
        }
    }
}

impl ActiveSegment {
    /// Creates an empty segment file at `base_offset`, replacing any stale file of that name.
    pub(crate) fn create(dir: &Path, base_offset: Offset) -> Result<Self> {
        let path = segment_path(dir, base_offset);
        let file = open_file(&path)?;
        file.set_len(0).map_err(Error::io("reset segment", &path))?;
        Ok(Self::from_parts(
            Arc::new(file),
            Arc::new(path),
            base_offset,
            ActiveState::empty(base_offset),
        ))
    }

    /// Re-opens an existing segment for appending; its bytes up to `state.size` are valid.
    pub(crate) fn open(
        file: Arc<File>,
        path: Arc<PathBuf>,
        base_offset: Offset,
        state: ActiveState,
    ) -> Result<Self> {
        let len = file
            .metadata()
            .map_err(Error::io("stat segment", path.as_path()))?
            .len();
        if len != state.size {
            file.set_len(state.size)
                .map_err(Error::io("truncate segment", path.as_path()))?;
        }
        Ok(Self::from_parts(file, path, base_offset, state))
    }

    /// Wraps an existing file without touching it, for rebuilding state with [`ActiveSegment::replay`].
    pub(crate) fn for_replay(file: Arc<File>, path: Arc<PathBuf>, base_offset: Offset) -> Self {
        Self::from_parts(file, path, base_offset, ActiveState::empty(base_offset))
    }

    fn from_parts(
        file: Arc<File>,
        path: Arc<PathBuf>,
        base_offset: Offset,
        state: ActiveState,
    ) -> Self {
        Self {
            file,
            path,
            base_offset,
            size: state.size,
            next_offset: state.next_offset,
            max_timestamp: state.max_timestamp,
            first_append_ms: state.first_append_ms,
            bytes_since_index: 0,
            last_time_entry: state.last_time_entry,
            pending_offsets: Vec::new(),
            pending_times: Vec::new(),
            cursor: None,
        }
    }

    pub(crate) fn base_offset(&self) -> Offset {
        self.base_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn next_offset(&self) -> Offset {
        self.next_offset
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn path(&self) -> &Arc<PathBuf> {
        &self.path
    }

    /// The time retention ages this segment by (see [`SealedSegment::retention_timestamp`]).
    pub(crate) fn retention_timestamp(&self) -> i64 {
        super::sealed::retention_timestamp(self.max_timestamp, &self.file)
    }

    /// Whether an append of `incoming` bytes at `now_ms` must go to a new segment.
    pub(crate) fn should_roll(
        &self,
        incoming: u64,
        segment_bytes: u64,
        segment_ms: i64,
        now_ms: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let too_big = self.size + incoming > segment_bytes;
        let too_old = self
            .first_append_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= segment_ms);
        // Positions are stored as u32 in the index; never let a segment outgrow that.
        let position_overflow = self.size + incoming > u64::from(u32::MAX);
        too_big || too_old || position_overflow
    }

    /// Appends already validated batches and records index entries every `index_interval` bytes.
    ///
    /// `parts` are written back to back in one vectored write; `headers` describe the batches in
    /// them, with each batch's position relative to the start of `parts`.
    pub(crate) fn append(
        &mut self,
        parts: &mut [IoSlice<'_>],
        headers: &[(usize, BatchHeader)],
        index_interval: u64,
        now_ms: i64,
    ) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let path = Arc::clone(&self.path);
        let io = |e: std::io::Error| Error::Io {
            op: "append to segment",
            path: path.to_path_buf(),
            source: e,
        };
        let mut file: &File = &self.file;
        // Readers use positional reads and nothing else writes this file, so the cursor only
        // moves here; it needs setting after an open, a truncation or a failed write.
        if self.cursor != Some(self.size) {
            file.seek(SeekFrom::Start(self.size))
                .map_err(Error::io("seek segment", self.path.as_path()))?;
            self.cursor = Some(self.size);
        }
        let mut parts = &mut parts[..];
        let mut written = 0usize;
        while written < len {
            match file.write_vectored(parts) {
                Ok(0) => {
                    self.cursor = None;
                    let _ = self.file.set_len(self.size);
                    return Err(io(std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut parts, n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Leave no partial batch behind: cut the file back to where this append began.
                    self.cursor = None;
                    let _ = self.file.set_len(self.size);
                    return Err(io(e));
                }
            }
        }
        for (relative, header) in headers {
            let position = self.size + *relative as u64;
            self.track_batch(position, header, index_interval);
        }
        self.size += len as u64;
        self.cursor = Some(self.size);
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Accounts for a batch already in the file at `position` (recovery rebuilding the indexes).
    pub(crate) fn replay(&mut self, position: u64, header: &BatchHeader, index_interval: u64) {
        self.track_batch(position, header, index_interval);
        self.size = position + header.total_size() as u64;
    }

    /// Updates offsets, timestamps and pending index entries for one batch written at `position`.
    fn track_batch(&mut self, position: u64, header: &BatchHeader, index_interval: u64) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
        }
        if self.bytes_since_index >= index_interval {
            // Positions fit u32 because should_roll caps the segment size.
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            self.pending_offsets.push(OffsetEntry {
                offset: header.base_offset,
                position,
            });
            self.bytes_since_index = 0;
            self.note_time_entry(header.last_offset());
        }
        self.bytes_since_index += header.total_size() as u64;
        self.next_offset = Offset::new(header.next_offset());
    }

    fn note_time_entry(&mut self, offset: i64) {
        if self.max_timestamp > self.last_time_entry {
            self.pending_times.push(TimeEntry {
                timestamp: self.max_timestamp,
                offset,
            });
            self.last_time_entry = self.max_timestamp;
        }
    }

    /// The indexed position closest below `target`, looking at pending entries first.
    pub(crate) fn floor_position(&self, index: &PartitionIndex, target: Offset) -> Result<u64> {
        match self
            .pending_offsets
            .iter()
            .rev()
            .find(|e| e.offset <= target.get())
        {
            Some(entry) => Ok(u64::from(entry.position)),
            None => index.floor_position(self.base_offset, target),
        }
    }

    /// The offset of the latest time entry older than `timestamp`, pending entries first.
    pub(crate) fn time_floor(&self, index: &PartitionIndex, timestamp: i64) -> Result<Option<i64>> {
        match self
            .pending_times
            .iter()
            .rev()
            .find(|e| e.timestamp < timestamp)
        {
            Some(entry) => Ok(Some(entry.offset)),
            None => index.time_floor(self.base_offset, timestamp),
        }
    }

    /// Moves the pending index entries into `batch` for persisting.
    pub(crate) fn drain_index(&mut self, index: &PartitionIndex, batch: &mut WriteBatch) {
        for entry in self.pending_offsets.drain(..) {
            index.put_offset(batch, entry);
        }
        for entry in self.pending_times.drain(..) {
            index.put_time(batch, self.base_offset, entry);
        }
    }

    /// Forgets pending index entries (they are already in the store).
    pub(crate) fn discard_pending_index(&mut self) {
        self.pending_offsets.clear();
        self.pending_times.clear();
    }

    /// Sets when the `segment-ms` clock started for this segment.
    pub(crate) fn set_first_append_ms(&mut self, ms: i64) {
        self.first_append_ms = Some(ms);
    }

    /// Forces the segment's data to disk.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(Error::io("fsync segment", self.path.as_path()))
    }

    /// A snapshot for readers covering every byte written so far.
    pub(crate) fn view(&self) -> SegmentView {
        SegmentView {
            file: Arc::clone(&self.file),
            path: Arc::clone(&self.path),
            base_offset: self.base_offset,
            size: self.size,
        }
    }

    /// Seals the segment, queuing its remaining index entries (and a final time entry) into `batch`.
    pub(crate) fn seal(mut self, index: &PartitionIndex, batch: &mut WriteBatch) -> SealedSegment {
        let last = self.next_offset.get() - 1;
        self.note_time_entry(last);
        self.drain_index(index, batch);
        SealedSegment::new(
            self.file,
            self.path,
            self.base_offset,
            self.size,
            self.next_offset,
            self.max_timestamp,
        )
    }
}
