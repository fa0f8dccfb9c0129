//! The conformance suite every [`StateStore`] implementation must pass.
//!
//! `conformance_suite!(fixture)` expands to one `#[test]` per case; `fixture` is a function
//! returning the store and a guard (e.g. its temp directory) kept alive for the test's duration.

use super::{Area, StateStore, WriteBatch};

fn put(store: &dyn StateStore, area: Area, key: &[u8], value: &[u8]) {
    let mut batch = WriteBatch::new();
    batch.put(area, key.to_vec(), value.to_vec());
    store.write(batch).unwrap();
}

pub(crate) fn get_put_delete(store: &dyn StateStore) {
    assert_eq!(store.get(Area::Checkpoints, b"a").unwrap(), None);
    put(store, Area::Checkpoints, b"a", b"1");
    assert_eq!(
        store.get(Area::Checkpoints, b"a").unwrap(),
        Some(b"1".to_vec())
    );
    put(store, Area::Checkpoints, b"a", b"2");
    assert_eq!(
        store.get(Area::Checkpoints, b"a").unwrap(),
        Some(b"2".to_vec())
    );
    let mut batch = WriteBatch::new();
    batch.delete(Area::Checkpoints, b"a".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Area::Checkpoints, b"a").unwrap(), None);
}

pub(crate) fn areas_are_separate(store: &dyn StateStore) {
    put(store, Area::OffsetIndex, b"k", b"offset");
    put(store, Area::TimeIndex, b"k", b"time");
    assert_eq!(
        store.get(Area::OffsetIndex, b"k").unwrap(),
        Some(b"offset".to_vec())
    );
    assert_eq!(
        store.get(Area::TimeIndex, b"k").unwrap(),
        Some(b"time".to_vec())
    );
    assert_eq!(store.get(Area::Segments, b"k").unwrap(), None);
}

pub(crate) fn floor_and_ceiling_stay_within_prefix(store: &dyn StateStore) {
    for key in [
        &b"p1\x00\x05"[..],
        b"p1\x00\x09",
        b"p2\x00\x01",
        b"p0\x00\x07",
    ] {
        put(store, Area::OffsetIndex, key, key);
    }
    let floor = |key: &[u8]| {
        store
            .floor(Area::OffsetIndex, b"p1\x00", key)
            .unwrap()
            .map(|e| e.0)
    };
    assert_eq!(
        floor(b"p1\x00\x04"),
        None,
        "nothing at or below, and p0 is another prefix"
    );
    assert_eq!(floor(b"p1\x00\x05"), Some(b"p1\x00\x05".to_vec()));
    assert_eq!(floor(b"p1\x00\x08"), Some(b"p1\x00\x05".to_vec()));
    assert_eq!(floor(b"p1\x00\xff"), Some(b"p1\x00\x09".to_vec()));
    let ceiling = |key: &[u8]| {
        store
            .ceiling(Area::OffsetIndex, b"p1\x00", key)
            .unwrap()
            .map(|e| e.0)
    };
    assert_eq!(ceiling(b"p1\x00\x00"), Some(b"p1\x00\x05".to_vec()));
    assert_eq!(ceiling(b"p1\x00\x06"), Some(b"p1\x00\x09".to_vec()));
    assert_eq!(ceiling(b"p1\x00\x0a"), None, "p2 is another prefix");
}

pub(crate) fn scan_prefix_is_ordered_and_bounded(store: &dyn StateStore) {
    for key in [
        &b"b\x00\x03"[..],
        b"b\x00\x01",
        b"a\x00\x02",
        b"c\x00\x00",
        b"b\x00\x02",
    ] {
        put(store, Area::Segments, key, b"v");
    }
    let keys: Vec<Vec<u8>> = store
        .scan_prefix(Area::Segments, b"b\x00")
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        keys,
        vec![
            b"b\x00\x01".to_vec(),
            b"b\x00\x02".to_vec(),
            b"b\x00\x03".to_vec()
        ]
    );
    assert!(
        store
            .scan_prefix(Area::Segments, b"z\x00")
            .unwrap()
            .is_empty()
    );
}

pub(crate) fn delete_range_is_half_open(store: &dyn StateStore) {
    for i in 0u8..6 {
        put(store, Area::TimeIndex, &[b'p', 0, i], &[i]);
    }
    let mut batch = WriteBatch::new();
    batch.delete_range(Area::TimeIndex, vec![b'p', 0, 1], vec![b'p', 0, 4]);
    store.write(batch).unwrap();
    let left: Vec<u8> = store
        .scan_prefix(Area::TimeIndex, b"p\x00")
        .unwrap()
        .into_iter()
        .map(|e| e.1[0])
        .collect();
    assert_eq!(left, vec![0, 4, 5]);
}

pub(crate) fn batches_apply_in_order(store: &dyn StateStore) {
    let mut batch = WriteBatch::new();
    batch
        .put(Area::LeaderEpochs, b"x".to_vec(), b"1".to_vec())
        .delete(Area::LeaderEpochs, b"x".to_vec())
        .put(Area::LeaderEpochs, b"y".to_vec(), b"2".to_vec())
        .put(Area::LeaderEpochs, b"y".to_vec(), b"3".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Area::LeaderEpochs, b"x").unwrap(), None);
    assert_eq!(
        store.get(Area::LeaderEpochs, b"y").unwrap(),
        Some(b"3".to_vec())
    );
    store.sync().unwrap();
}

pub(crate) fn empty_batch_is_a_no_op(store: &dyn StateStore) {
    store.write(WriteBatch::new()).unwrap();
    assert!(
        store
            .scan_prefix(Area::ProducerState, b"")
            .unwrap()
            .is_empty()
    );
}

macro_rules! conformance_suite {
    ($fixture:ident) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[test]
                    fn $name() {
                        let (store, _guard) = super::$fixture();
                        crate::state::conformance::$name(&store);
                    }
                };
            }

            case!(get_put_delete);
            case!(areas_are_separate);
            case!(floor_and_ceiling_stay_within_prefix);
            case!(scan_prefix_is_ordered_and_bounded);
            case!(delete_range_is_half_open);
            case!(batches_apply_in_order);
            case!(empty_batch_is_a_no_op);
        }
    };
}
pub(crate) use conformance_suite;
