//! Sealed segments: full, read-only members of the log chain.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use strom_types::Offset;

use super::SegmentView;
use crate::state::keys::read_i64;
use crate::state::keys::read_u64;
use crate::{Error, Result};

/// A segment that is no longer written. Its summary (next offset, max timestamp, size) is kept
/// in the state store so startup does not need to read sealed segments.
///
/// Thread-safe and cheap to clone: the file is shared.
#[derive(Debug, Clone)]
pub(crate) struct SealedSegment {
    file: Arc<File>,
    path: Arc<PathBuf>,
    base_offset: Offset,
    size: u64,
    next_offset: Offset,
    max_timestamp: i64,
}

/// Length of an encoded [`SealedSegment::summary`].
pub(crate) const SUMMARY_LEN: usize = 24;

impl SealedSegment {
    pub(crate) fn new(
        file: Arc<File>,
        path: Arc<PathBuf>,
        base_offset: Offset,
        size: u64,
        next_offset: Offset,
        max_timestamp: i64,
    ) -> Self {
        Self {
            file,
            path,
            base_offset,
            size,
            next_offset,
            max_timestamp,
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

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn path(&self) -> &Arc<PathBuf> {
        &self.path
    }

    /// The time retention ages this segment by: its newest record's timestamp, or the file's
    /// modification time when no record carries one.
    pub(crate) fn retention_timestamp(&self) -> i64 {
        retention_timestamp(self.max_timestamp, &self.file)
    }

    /// A snapshot for readers.
    pub(crate) fn view(&self) -> SegmentView {
        SegmentView {
            file: Arc::clone(&self.file),
            path: Arc::clone(&self.path),
            base_offset: self.base_offset,
            size: self.size,
        }
    }

    /// The summary stored in the `segments` area: next offset, max timestamp, size (big-endian).
    pub(crate) fn summary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SUMMARY_LEN);
        out.extend_from_slice(&self.next_offset.get().to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out
    }
}

/// `max_timestamp` if set, else the file's modification time in ms (or never, if unknown).
pub(crate) fn retention_timestamp(max_timestamp: i64, file: &File) -> i64 {
    if max_timestamp >= 0 {
        return max_timestamp;
    }
    file.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(i64::MAX)
}

/// A decoded segment summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) next_offset: Offset,
    pub(crate) max_timestamp: i64,
    pub(crate) size: u64,
}

impl Summary {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let malformed = Error::MalformedState {
            area: "segments",
            reason: "summary is not 24 bytes",
        };
        if bytes.len() != SUMMARY_LEN {
            return Err(malformed);
        }
        match (read_i64(bytes, 0), read_i64(bytes, 8), read_u64(bytes, 16)) {
            (Some(next), Some(max_timestamp), Some(size)) => Ok(Self {
                next_offset: Offset::new(next),
                max_timestamp,
                size,
            }),
            _ => Err(malformed),
        }
    }
}
