//! Segment files: one `{base_offset:020}.log` file per segment, holding whole RecordBatch v2
//! batches back to back, exactly as they were appended (no extra framing).
//!
//! A partition's log is a chain of segments; only the newest, the [`ActiveSegment`], is written.
//! Older ones are [`SealedSegment`]s, read-only. Both share the file through an `Arc<File>` so a
//! reader can keep reading a segment after it is rolled or even deleted (the inode lives until
//! the last handle closes).

pub(crate) mod active;
mod scan;
pub(crate) mod sealed;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) use active::ActiveSegment;
pub(crate) use scan::scan_segment;
pub(crate) use sealed::SealedSegment;
use strom_record::{BatchHeader, HEADER_SIZE};
use strom_types::Offset;

use crate::{Error, Result};

/// Suffix of a live segment file.
pub(crate) const LOG_SUFFIX: &str = ".log";
/// Suffix of a segment file being deleted; removed on sight at startup.
pub(crate) const DELETED_SUFFIX: &str = ".log.deleted";

/// The file name of the segment starting at `base_offset`.
pub(crate) fn file_name(base_offset: Offset) -> String {
    format!("{:020}{LOG_SUFFIX}", base_offset.get())
}

/// The base offset encoded in a live segment's file name, if `name` is one.
pub(crate) fn parse_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(LOG_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| Offset::try_new(n).ok())
}

/// The path of the segment starting at `base_offset` in `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: Offset) -> PathBuf {
    dir.join(file_name(base_offset))
}

/// A read-only snapshot of a segment: its file and how many bytes of it are readable.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub(crate) file: Arc<File>,
    pub(crate) path: Arc<PathBuf>,
    pub(crate) base_offset: Offset,
    /// Bytes written when the snapshot was taken; bytes past this are not yet visible.
    pub(crate) size: u64,
}

impl SegmentView {
    /// Reads the batch header at `position`, or `None` if fewer than a header's bytes remain.
    pub(crate) fn header_at(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position + HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(Error::io("read batch header", self.path.as_path()))?;
        BatchHeader::parse(&buf)
            .map(Some)
            .map_err(|source| Error::CorruptLog {
                path: self.path.to_path_buf(),
                position,
                source,
            })
    }

    /// Reads `len` bytes at `position` into a fresh buffer.
    pub(crate) fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(Error::io("read segment", self.path.as_path()))?;
        Ok(buf)
    }
}

/// Opens a segment file for reading and writing, creating it if missing.
pub(crate) fn open_file(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io("open segment", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        let name = file_name(Offset::new(1234));
        assert_eq!(name, "00000000000000001234.log");
        assert_eq!(parse_file_name(&name), Some(Offset::new(1234)));
        assert_eq!(parse_file_name("00000000000000001234.log.deleted"), None);
        assert_eq!(parse_file_name("1234.log"), None);
        assert_eq!(parse_file_name("0000000000000000123x.log"), None);
    }
}
