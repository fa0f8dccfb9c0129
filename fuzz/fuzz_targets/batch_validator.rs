//! Feeds arbitrary bytes to the batch iterator and fully decodes every batch that validates.
//!
//! The input is tried twice: as it is, and with the first batch's CRC field rewritten to match,
//! so that mutations reach the header checks, the record decoder and the codecs without the
//! fuzzer having to forge a CRC-32C. Any panic, overflow or out-of-bounds access is a bug;
//! errors are expected.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_record::{
    HEADER_SIZE, batches, decode_records, peek_batch_size, update_crc, validate_batch,
};

fn check(data: &[u8]) {
    let _ = validate_batch(data);
    for item in batches(data) {
        let Ok((header, batch)) = item else { break };
        assert_eq!(header.total_size(), batch.len());
        if let Ok(records) = decode_records(batch) {
            assert_eq!(Ok(records.len()), usize::try_from(header.records_count));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_SIZE {
        let mut fixed = data.to_vec();
        let end = match peek_batch_size(&fixed) {
            Some(Ok(size)) if size <= fixed.len() => size,
            _ => fixed.len(),
        };
        update_crc(&mut fixed[..end]);
        check(&fixed);
    }
});
