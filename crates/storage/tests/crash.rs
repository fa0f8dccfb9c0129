//! Crash recovery: cut the log at random byte positions or flip random bits, reopen, and check
//! the log is a valid prefix of what was written and keeps accepting appends.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_storage::{Error, LogConfig, ReadBound};
use strom_types::{LeaderEpoch, Offset};

const TRIALS: u64 = 40;

/// Flips bit `bit` of the byte at `position` in the file at `path`.
fn flip_bit(path: &std::path::Path, position: u64, bit: u32) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, position).unwrap();
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, position).unwrap();
}

/// Writes batches numbered `batches` (the number sets the epoch) of 1–5 random-length values; returns every value in offset order.
fn write_random(
    log: &strom_storage::PartitionLog,
    rng: &mut StdRng,
    batches: std::ops::Range<usize>,
) -> Vec<Vec<u8>> {
    let mut written = Vec::new();
    for b in batches {
        let count = rng.gen_range(1..=5);
        let values: Vec<String> = (0..count)
            .map(|r| format!("b{b}-r{r}-{}", "z".repeat(rng.gen_range(0..200))))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        log.append_as_leader(
            &batch(&refs, START_MS + b as i64),
            LeaderEpoch::new(1 + (b / 7) as i32),
        )
        .unwrap();
        written.extend(values.into_iter().map(String::into_bytes));
    }
    written
}

/// After recovery: offsets are dense from 0, values are a prefix of `written`, and appends resume.
fn assert_valid_prefix(f: &Fixture, config: LogConfig, written: &[Vec<u8>]) -> usize {
    let log = f.open(config);
    let all = read_all(&log);
    for (i, (offset, value)) in all.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets are dense");
        assert_eq!(
            value, &written[i],
            "offset {i} holds what was written there"
        );
    }
    assert_eq!(log.log_end_offset().unwrap(), Offset::new(all.len() as i64));
    assert!(log.high_watermark().unwrap() <= log.log_end_offset().unwrap());
    if let Some(last) = log.epoch_history().unwrap().last() {
        assert!(last.start_offset.get() < all.len() as i64 || all.is_empty());
    }
    let info = log
        .append_as_leader(&batch(&["after-crash"], START_MS), LeaderEpoch::new(100))
        .unwrap();
    assert_eq!(info.first_offset, Offset::new(all.len() as i64));
    all.len()
}

#[test]
fn cutting_the_active_segment_anywhere_leaves_a_valid_prefix() {
    let mut lost_data = 0;
    for seed in 0..TRIALS {
        let mut rng = StdRng::seed_from_u64(seed);
        let kind = if seed % 2 == 0 {
            Kind::Rocks
        } else {
            Kind::Memory
        };
        let mut f = Fixture::new(kind);
        let config = small_segments(8192);
        let written = {
            let log = f.open(config.clone());
            let mut written = write_random(&log, &mut rng, 0..30);
            if rng.gen_bool(0.5) {
                log.flush().unwrap();
                written.extend(write_random(&log, &mut rng, 30..40));
            }
            written
            // Dropped without close: an unclean stop.
        };
        let files = f.segment_files();
        let active = files.last().unwrap();
        let len = std::fs::metadata(active).unwrap().len();
        let cut = rng.gen_range(0..=len);
        OpenOptions::new()
            .write(true)
            .open(active)
            .unwrap()
            .set_len(cut)
            .unwrap();
        f.reopen_store();
        let kept = assert_valid_prefix(&f, config, &written);
        if kept < written.len() {
            lost_data += 1;
        }
    }
    // The cuts must actually have hit data, or the test proves nothing.
    assert!(
        lost_data > TRIALS / 2,
        "only {lost_data} of {TRIALS} cuts removed records"
    );
}

#[test]
fn flipped_bits_past_the_recovery_point_are_cut_off() {
    let mut lost_data = 0;
    for seed in 0..TRIALS {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let kind = if seed % 2 == 0 {
            Kind::Rocks
        } else {
            Kind::Memory
        };
        let mut f = Fixture::new(kind);
        let config = small_segments(8192);
        let written = {
            let log = f.open(config.clone());
            write_random(&log, &mut rng, 0..30)
        };
        // Nothing was flushed, so every segment is past the recovery point and gets scanned.
        let files = f.segment_files();
        let victim = &files[rng.gen_range(0..files.len())];
        let len = std::fs::metadata(victim).unwrap().len();
        if len == 0 {
            continue;
        }
        let position = rng.gen_range(0..len);
        flip_bit(victim, position, rng.gen_range(0..8));
        f.reopen_store();
        if assert_valid_prefix(&f, config, &written) < written.len() {
            lost_data += 1;
        }
    }
    // Flips outside the CRC-covered bytes (offset, length, epoch fields) may go unnoticed or be
    // caught as gaps; most flips land in CRC-covered data and must cut the log there.
    assert!(
        lost_data > TRIALS / 2,
        "only {lost_data} of {TRIALS} flips were detected"
    );
}

#[test]
fn corruption_in_trusted_data_is_never_returned() {
    let mut f = Fixture::new(Kind::Rocks);
    let config = small_segments(4096);
    let mut rng = StdRng::seed_from_u64(7);
    let written = {
        let log = f.open(config.clone());
        let written = write_random(&log, &mut rng, 0..40);
        log.close().unwrap();
        written
    };
    // Flip a bit inside the records of the first batch of the first segment: it lies below the
    // recovery point, so the loader trusts it, and the read path must catch it.
    let first = &f.segment_files()[0];
    flip_bit(first, 70, 4);
    f.reopen_store();
    let log = f.open(config);
    assert!(matches!(
        log.read(Offset::new(0), 1 << 20, ReadBound::LogEnd),
        Err(Error::CorruptLog { .. })
    ));
    // Data in later, intact segments is still served.
    let tail_start = log.segment_base_offsets().unwrap()[1];
    let tail = read_all_from(&log, tail_start, ReadBound::LogEnd);
    assert_eq!(tail.first().unwrap().1, written[tail_start.get() as usize]);
}

#[test]
fn a_damaged_batch_is_remembered_until_a_truncation_removes_it() {
    let mut f = Fixture::new(Kind::Rocks);
    let config = small_segments(4096);
    let mut rng = StdRng::seed_from_u64(11);
    let written = {
        let log = f.open(config.clone());
        let written = write_random(&log, &mut rng, 0..40);
        log.close().unwrap();
        written
    };
    // Damage the records of the second segment's first batch, below the recovery point.
    flip_bit(&f.segment_files()[1], 70, 2);
    f.reopen_store();
    let log = f.open(config);
    let second = log.segment_base_offsets().unwrap()[1];
    assert_eq!(log.damaged_from().unwrap(), None);
    assert!(matches!(
        log.read(second, 1 << 20, ReadBound::LogEnd),
        Err(Error::CorruptLog { .. })
    ));
    assert_eq!(log.damaged_from().unwrap(), Some(second));
    // Truncating above the damage keeps it on record; truncating to it clears it.
    let end = log.log_end_offset().unwrap();
    log.truncate_to(Offset::new(end.get() - 1)).unwrap();
    assert_eq!(log.damaged_from().unwrap(), Some(second));
    assert_eq!(log.truncate_to(second).unwrap(), second);
    assert_eq!(log.damaged_from().unwrap(), None);
    let kept: Vec<Vec<u8>> = read_all_from(&log, Offset::new(0), ReadBound::LogEnd)
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(kept, written[..second.get() as usize]);
}

#[test]
fn leftover_deleted_files_and_segments_below_log_start_are_removed() {
    let mut f = Fixture::new(Kind::Rocks);
    let config = small_segments(2048);
    {
        let log = f.open(config.clone());
        let mut rng = StdRng::seed_from_u64(3);
        write_random(&log, &mut rng, 0..30);
        log.update_high_watermark(log.log_end_offset().unwrap())
            .unwrap();
        let third = log.segment_base_offsets().unwrap()[2];
        log.advance_log_start(third).unwrap();
        log.close().unwrap();
    }
    let stray = f.partition_dir().join("00000000000000000000.log.deleted");
    std::fs::write(&stray, b"garbage").unwrap();
    f.reopen_store();
    let log = f.open(config);
    assert!(!stray.exists());
    let start = log.log_start_offset().unwrap();
    assert_eq!(
        log.segment_base_offsets().unwrap()[0],
        start,
        "segments below the log start are gone"
    );
    assert_eq!(read_all(&log).first().unwrap().0, start.get());
}

#[test]
fn recovered_epoch_history_survives_a_second_restart() {
    let mut f = Fixture::new(Kind::Rocks);
    let config = small_segments(1 << 20);
    {
        let log = f.open(config.clone());
        log.append_as_leader(&batch(&["a"], START_MS), LeaderEpoch::new(1))
            .unwrap();
        log.close().unwrap();
        // Epoch 2 begins past the recovery point, in data the next open must scan.
        log.append_as_leader(&batch(&["b"], START_MS), LeaderEpoch::new(2))
            .unwrap();
        log.append_as_leader(&batch(&["c"], START_MS), LeaderEpoch::new(3))
            .unwrap();
    }
    let history = |log: &strom_storage::PartitionLog| -> Vec<(i32, i64)> {
        log.epoch_history()
            .unwrap()
            .iter()
            .map(|e| (e.epoch.get(), e.start_offset.get()))
            .collect()
    };
    f.reopen_store();
    {
        let log = f.open(config.clone());
        assert_eq!(history(&log), vec![(1, 0), (2, 1), (3, 2)]);
        log.close().unwrap();
    }
    f.reopen_store();
    let log = f.open(config);
    assert_eq!(
        history(&log),
        vec![(1, 0), (2, 1), (3, 2)],
        "the scan's epochs were persisted"
    );
}

#[test]
fn segments_whose_base_ends_in_ff_recover() {
    // A base offset of 255 encodes with a trailing 0xFF byte in state keys.
    for base in [255i64, 511, 65535] {
        let mut f = Fixture::new(Kind::Rocks);
        let config = small_segments(1 << 20);
        {
            let log = f.open(config.clone());
            log.truncate_fully_and_start_at(Offset::new(base)).unwrap();
            for i in 0..20 {
                log.append_as_leader(
                    &batch(&[&format!("{i:0>300}")], START_MS + i),
                    LeaderEpoch::new(1),
                )
                .unwrap();
            }
            // Unclean stop: the segment at `base` is scanned and its index rebuilt.
        }
        f.reopen_store();
        let log = f.open(config);
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(base + 20));
        log.update_high_watermark(Offset::new(base + 20)).unwrap();
        let found = log.offset_for_timestamp(START_MS + 13).unwrap().unwrap();
        assert_eq!(found.offset, Offset::new(base + 13));
        assert_eq!(read_all(&log).len(), 20);
        assert_eq!(
            log.truncate_to(Offset::new(base + 5)).unwrap(),
            Offset::new(base + 5)
        );
    }
}
