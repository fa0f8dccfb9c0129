//! Model-based test: random sequences of appends, truncations, reads and restarts against a
//! plain in-memory model of the log. Small segments and a tiny index interval make every
//! operation cross segment and index-entry boundaries.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use strom_storage::{LogConfig, PartitionLog, ReadBound};
use strom_types::{LeaderEpoch, Offset};

#[derive(Debug, Clone)]
enum Op {
    /// Append a batch of `count` records of `size` bytes.
    Append { count: usize, size: usize },
    /// Truncate at a point given as a fraction of the log in thousandths.
    Truncate { at: u16 },
    /// Read everything from a point given in thousandths and compare.
    Read { from: u16 },
    /// Restart: clean (close first) or unclean (just drop).
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, 0usize..120).prop_map(|(count, size)| Op::Append { count, size }),
        1 => (0u16..1000).prop_map(|at| Op::Truncate { at }),
        2 => (0u16..1000).prop_map(|from| Op::Read { from }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

/// What the log must contain: values by offset, and where each batch starts.
#[derive(Default)]
struct Model {
    values: Vec<Vec<u8>>,
    batch_starts: Vec<usize>,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 64,
        retention_ms: None,
        ..LogConfig::default()
    }
}

fn check_read(log: &PartitionLog, model: &Model, from: usize) {
    let got = read_all_from(log, Offset::new(from as i64), ReadBound::LogEnd);
    let expected: Vec<(i64, Vec<u8>)> = model
        .values
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, v)| (i as i64, v.clone()))
        .collect();
    assert_eq!(got, expected, "read from {from}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60), rocks in any::<bool>()) {
        let mut f = Fixture::new(if rocks { Kind::Rocks } else { Kind::Memory });
        let mut log = Some(f.open(config()));
        let mut model = Model::default();
        let mut epoch = 1;
        for (step, op) in ops.into_iter().enumerate() {
            let current = log.as_ref().unwrap();
            match op {
                Op::Append { count, size } => {
                    let values: Vec<Vec<u8>> = (0..count).map(|i| vec![(step * 7 + i) as u8; size]).collect();
                    let mut builder = strom_record::BatchBuilder::new(strom_record::Compression::None);
                    for v in &values {
                        builder.append(START_MS + step as i64, None, Some(v), &[]).unwrap();
                    }
                    let info = current.append_as_leader(&builder.build().unwrap(), LeaderEpoch::new(epoch)).unwrap();
                    prop_assert_eq!(info.first_offset.get(), model.values.len() as i64);
                    model.batch_starts.push(model.values.len());
                    model.values.extend(values);
                }
                Op::Truncate { at } => {
                    let target = model.values.len() * usize::from(at) / 1000;
                    let new_end = current.truncate_to(Offset::new(target as i64)).unwrap();
                    // The batch containing `target` goes entirely.
                    let keep = model.batch_starts.iter().copied().filter(|s| *s <= target).max().unwrap_or(0);
                    let keep = if target >= model.values.len() { model.values.len() } else { keep };
                    model.values.truncate(keep);
                    model.batch_starts.retain(|s| *s < keep);
                    prop_assert_eq!(new_end.get(), keep as i64);
                    epoch += 1;
                }
                Op::Read { from } => {
                    check_read(current, &model, model.values.len() * usize::from(from) / 1000);
                }
                Op::Reopen { clean } => {
                    if clean {
                        current.close().unwrap();
                    }
                    drop(log.take());
                    f.reopen_store();
                    log = Some(f.open(config()));
                }
            }
            let current = log.as_ref().unwrap();
            prop_assert_eq!(current.log_end_offset().unwrap().get(), model.values.len() as i64);
        }
        let current = log.as_ref().unwrap();
        check_read(current, &model, 0);
        for entry in current.epoch_history().unwrap() {
            prop_assert!(entry.start_offset.get() < model.values.len() as i64);
        }
    }
}
