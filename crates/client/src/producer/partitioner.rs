//! Choosing a partition: Kafka's murmur2 hash for keyed records, sticky partitioning for the
//! rest.
//!
//! Keyed records land where Kafka's Java client would put them, so Kafka and Strom producers
//! agree on key placement. Records without a key stick to one partition until the batch they
//! fill is closed (full or lingered), then move to another partition chosen at random; this
//! fills batches quickly instead of spreading a trickle over every partition.

use rand::Rng;

/// Kafka's `Utils.murmur2`: the 32-bit MurmurHash2 with seed `0x9747b28c`, as Kafka's Java
/// client computes it.
#[must_use]
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka takes the length as a Java int; keys never approach 2^32 bytes.
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    // Reinterpret the bits as Java's signed int.
    h as i32
}

/// The partition Kafka's default partitioner gives `key`:
/// `(murmur2(key) & 0x7fffffff) % partitions`.
///
/// `partitions` must be positive.
#[must_use]
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// The sticky choice for one topic: the partition and the batch generation it was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sticky {
    current: Option<(i32, u64)>,
}

impl Sticky {
    /// The partition for the next record without a key.
    ///
    /// `generation(p)` counts the batches of partition `p` closed so far; once the batch the
    /// sticky partition was chosen for has closed, another partition is picked at random (a
    /// different one when there is more than one).
    pub(crate) fn partition(
        &mut self,
        partitions: i32,
        generation: impl Fn(i32) -> u64,
        rng: &mut impl Rng,
    ) -> i32 {
        let partitions = partitions.max(1);
        if let Some((partition, chosen_in)) = self.current
            && partition < partitions
            && generation(partition) == chosen_in
        {
            return partition;
        }
        let previous = self.current.map(|(p, _)| p);
        let partition = match previous {
            Some(previous) if partitions > 1 && previous < partitions => {
                // Uniform over the other partitions.
                let pick = rng.gen_range(0..partitions - 1);
                if pick >= previous { pick + 1 } else { pick }
            }
            _ => rng.gen_range(0..partitions),
        };
        self.current = Some((partition, generation(partition)));
        partition
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // The vectors of Kafka's UtilsTest.testMurmur2.
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for &(key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected, "{key}");
        }
    }

    #[test]
    fn keyed_records_always_map_to_the_same_partition() {
        for partitions in [1, 3, 12, 100] {
            let first = partition_for_key(b"user-42", partitions);
            assert!((0..partitions).contains(&first));
            assert_eq!(partition_for_key(b"user-42", partitions), first);
        }
        // (-790332482 & 0x7fffffff) % 12 == 1357151166 % 12 == 6.
        assert_eq!(partition_for_key(b"foobar", 12), 6);
        assert_eq!(partition_for_key(b"", 1), 0);
    }

    #[test]
    fn sticky_partition_holds_until_its_batch_closes() {
        let mut rng = StdRng::seed_from_u64(7);
        let generations: Vec<Cell<u64>> = (0..8).map(|_| Cell::new(0)).collect();
        let generation = |p: i32| generations[p as usize].get();
        let mut sticky = Sticky::default();
        let first = sticky.partition(8, generation, &mut rng);
        for _ in 0..100 {
            assert_eq!(sticky.partition(8, generation, &mut rng), first);
        }
        // Another partition's batch closing changes nothing.
        let other = (first + 1) % 8;
        generations[other as usize].set(5);
        assert_eq!(sticky.partition(8, generation, &mut rng), first);
        // Its own batch closing moves it elsewhere.
        generations[first as usize].set(1);
        let second = sticky.partition(8, generation, &mut rng);
        assert_ne!(second, first);
        assert_eq!(sticky.partition(8, generation, &mut rng), second);
    }

    #[test]
    fn sticky_partition_spreads_over_all_partitions_and_survives_shrinking() {
        let mut rng = StdRng::seed_from_u64(1);
        let closed = Cell::new(0u64);
        let mut sticky = Sticky::default();
        let mut seen = [false; 4];
        for _ in 0..200 {
            closed.set(closed.get() + 1);
            let p = sticky.partition(4, |_| closed.get(), &mut rng);
            seen[p as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        // A single partition is always chosen, and a partition beyond the count is left.
        assert_eq!(sticky.partition(1, |_| 0, &mut rng), 0);
    }
}
