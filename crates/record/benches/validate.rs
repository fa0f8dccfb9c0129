//! Throughput of `validate_batch` (header parse plus CRC-32C) on a 16 KiB batch, the work the
//! broker does per produced batch.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use strom_record::{BatchBuilder, Compression, batches, validate_batch};

/// An uncompressed batch of 16 KiB (give or take the last record): 64 records of ~250 bytes.
fn batch_16k() -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    let value = vec![0x5a; 220];
    let mut i = 0i64;
    while builder.estimated_size_with(i, Some(b"key-0000"), Some(&value), &[]) <= 16 * 1024 {
        builder
            .append(1_700_000_000_000 + i, Some(b"key-0000"), Some(&value), &[])
            .expect("16 KiB is far below the batch size limit");
        i += 1;
    }
    builder.build().expect("the batch has records").to_vec()
}

fn bench_validate(c: &mut Criterion) {
    let batch = batch_16k();
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("validate_batch_16k", |b| {
        b.iter(|| validate_batch(black_box(&batch)).expect("built batches validate"))
    });
    let log: Vec<u8> = std::iter::repeat_n(&batch, 64).flatten().copied().collect();
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("batches_64x16k", |b| {
        b.iter(|| {
            batches(black_box(&log))
                .map(|r| r.expect("built batches validate").0.records_count)
                .sum::<i32>()
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_validate(&mut criterion);
    criterion.final_summary();
}
