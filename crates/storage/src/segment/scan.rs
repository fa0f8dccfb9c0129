//! Sequential validation of a segment's bytes, used by recovery.
//!
//! The scan reads the file in large chunks and checks every batch's length, magic, CRC-32C and
//! offset continuity. It stops at the first batch that fails any check; everything before that
//! point is a valid log.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use strom_record::{BatchHeader, LOG_OVERHEAD, peek_batch_size, validate_batch};
use strom_types::Offset;

use crate::{Error, Result};

/// Bytes read per I/O while scanning.
const CHUNK_BYTES: usize = 1 << 20;

/// Why a scan stopped before the end of the file.
#[derive(Debug)]
pub(crate) enum StopReason {
    /// The file ends inside a batch (a torn write).
    Torn,
    /// A batch failed validation.
    Corrupt(strom_record::Error),
    /// A batch does not start where the previous one ended.
    OffsetGap {
        /// The offset the batch should have started at.
        expected: Offset,
        /// Its base offset.
        got: i64,
    },
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Torn => f.write_str("the file ends inside a batch"),
            StopReason::Corrupt(e) => write!(f, "corrupt batch: {e}"),
            StopReason::OffsetGap { expected, got } => {
                write!(f, "batch starts at offset {got}, expected {expected}")
            }
        }
    }
}

/// The result of scanning a segment.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// Byte position just past the last valid batch.
    pub(crate) valid_end: u64,
    /// The offset after the last valid batch (the `expected` offset if no batch was valid).
    pub(crate) next_offset: Offset,
    /// Why the scan stopped early, or `None` if it reached the end of the file cleanly.
    pub(crate) stopped: Option<StopReason>,
}

/// Scans `file` from `start` to `file_len`, expecting the first batch at offset `expected`.
///
/// `visit` sees every valid batch with its byte position, in order.
pub(crate) fn scan_segment(
    file: &File,
    path: &Path,
    start: u64,
    file_len: u64,
    mut expected: Offset,
    mut visit: impl FnMut(u64, &BatchHeader) -> Result<()>,
) -> Result<ScanOutcome> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = start;
    let mut pos = start;
    let refill = |buf: &mut Vec<u8>, buf_start: &mut u64, pos: u64, want: usize| -> Result<()> {
        let len = want.min(usize::try_from(file_len - pos).unwrap_or(usize::MAX));
        buf.resize(len, 0);
        file.read_exact_at(buf, pos)
            .map_err(Error::io("scan segment", path))?;
        *buf_start = pos;
        Ok(())
    };
    let outcome = |valid_end, next_offset, stopped| {
        Ok(ScanOutcome {
            valid_end,
            next_offset,
            stopped,
        })
    };
    loop {
        if pos == file_len {
            return outcome(pos, expected, None);
        }
        if file_len - pos < LOG_OVERHEAD as u64 {
            return outcome(pos, expected, Some(StopReason::Torn));
        }
        let mut off = (pos - buf_start) as usize;
        if buf.len() < off + LOG_OVERHEAD {
            refill(&mut buf, &mut buf_start, pos, CHUNK_BYTES)?;
            off = 0;
        }
        let size = match peek_batch_size(&buf[off..]) {
            Some(Ok(size)) => size,
            Some(Err(e)) => return outcome(pos, expected, Some(StopReason::Corrupt(e))),
            None => return outcome(pos, expected, Some(StopReason::Torn)),
        };
        if pos + size as u64 > file_len {
            return outcome(pos, expected, Some(StopReason::Torn));
        }
        if buf.len() < off + size {
            refill(&mut buf, &mut buf_start, pos, CHUNK_BYTES.max(size))?;
            off = 0;
        }
        let header = match validate_batch(&buf[off..off + size]) {
            Ok(header) => header,
            Err(e) => return outcome(pos, expected, Some(StopReason::Corrupt(e))),
        };
        if header.base_offset != expected.get() {
            let gap = StopReason::OffsetGap {
                expected,
                got: header.base_offset,
            };
            return outcome(pos, expected, Some(gap));
        }
        visit(pos, &header)?;
        expected = Offset::new(header.next_offset());
        pos += size as u64;
    }
}
