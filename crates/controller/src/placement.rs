//! Replica placement for new partitions.
//!
//! [`place_replicas`] picks each partition's replicas and its preferred leader (the first
//! replica) from the live brokers:
//!
//! 1. **Distinct brokers**: a partition never has two replicas on one broker.
//! 2. **Racks first**: each replica goes to the rack this partition uses least so far, so a
//!    partition spans `min(rf, racks)` racks. When racks are uneven this wins over balance,
//!    as in Kafka (a lone broker in its own rack gets a replica of every partition).
//! 3. **Balanced replicas**: among those, the broker with the fewest replicas (existing ones
//!    included) wins, so with uniform brokers (no racks, or racks of equal size) replica
//!    counts differ by at most one, on a fresh cluster and as topics accumulate. No broker
//!    takes more than `rf * ceil(partitions / brokers)` of one topic's replicas unless
//!    nothing else is possible, which keeps the leader bound below reachable.
//! 4. **Balanced leaders**: the preferred leader is the replica with the fewest preferred
//!    leaderships, and no broker gets more than `ceil(partitions / brokers)` of the new
//!    topic's, moving earlier choices of the same topic along an augmenting path when
//!    needed. Total leaderships over all topics are balanced as far as the replica sets
//!    allow (replica balance comes first).
//!
//! Ties go to the broker that comes first in Kafka's *rack-alternated* broker list (one
//! broker of each rack in turn), rotated by `start + partition`; callers randomise `start`
//! so successive topics do not all start on the same broker. Otherwise the output depends
//! only on the inputs.

use std::collections::{BTreeMap, VecDeque};

use strom_types::BrokerId;

use crate::{Error, Result};

/// A placement candidate: a live broker and its rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementBroker {
    /// The broker's id.
    pub id: BrokerId,
    /// Its rack; brokers without one count as one shared unnamed rack.
    pub rack: Option<String>,
}

/// What a broker already holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerLoad {
    /// Replicas of any partition, leaders included.
    pub replicas: u32,
    /// Partitions of which it is the preferred leader.
    pub leaders: u32,
}

/// The inputs of [`place_replicas`].
#[derive(Debug, Clone, Copy)]
pub struct PlacementRequest<'a> {
    /// The live brokers; duplicates are ignored and order does not matter.
    pub brokers: &'a [PlacementBroker],
    /// What each broker already holds; absent brokers hold nothing.
    pub loads: &'a BTreeMap<BrokerId, BrokerLoad>,
    /// How many partitions to place.
    pub partitions: u32,
    /// How many replicas each partition gets.
    pub replication_factor: u16,
    /// Rotates tie-breaks; callers pick it at random.
    pub start: usize,
}

/// Per-broker working state, indexed like the deduplicated, id-sorted broker list.
struct Candidate {
    id: BrokerId,
    rack: usize,
    /// Position in the rack-alternated list.
    position: usize,
    replicas: u64,
    leaders: u64,
    /// Replicas of the topic being placed.
    new_replicas: u64,
    new_leaders: u64,
}

/// Places `request.partitions` partitions; returns one replica list per partition, preferred
/// leader first.
///
/// Fails with [`Error::InvalidReplicationFactor`] when the factor is 0 or larger than the
/// number of brokers.
pub fn place_replicas(request: &PlacementRequest<'_>) -> Result<Vec<Vec<BrokerId>>> {
    let mut brokers: Vec<&PlacementBroker> = request.brokers.iter().collect();
    brokers.sort_by_key(|b| b.id);
    brokers.dedup_by_key(|b| b.id);
    let rf = usize::from(request.replication_factor);
    if rf == 0 || rf > brokers.len() {
        return Err(Error::InvalidReplicationFactor {
            requested: i64::from(request.replication_factor),
            live_brokers: brokers.len(),
        });
    }
    let mut candidates = candidates(&brokers, request.loads);
    let racks = candidates.iter().map(|c| c.rack).max().map_or(0, |r| r + 1);
    let n = candidates.len();
    let partitions = request.partitions as usize;
    let cap = partitions.div_ceil(n) as u64;

    let mut leadership = Leadership {
        sets: Vec::with_capacity(partitions),
        leaders: Vec::with_capacity(partitions),
        led: vec![Vec::new(); n],
        cap,
    };
    for p in 0..partitions {
        let offset = (request.start % n + p % n) % n;
        let set = choose_replicas(&mut candidates, racks, rf, cap * rf as u64, offset);
        leadership.assign(&mut candidates, set);
    }
    let Leadership { sets, leaders, .. } = leadership;
    Ok(sets
        .iter()
        .zip(&leaders)
        .map(|(set, leader)| {
            let followers = set.iter().filter(|b| *b != leader);
            std::iter::once(leader)
                .chain(followers)
                .map(|b| candidates[*b].id)
                .collect()
        })
        .collect())
}

/// Builds the working state: rack indexes and positions in the rack-alternated list.
fn candidates(
    brokers: &[&PlacementBroker],
    loads: &BTreeMap<BrokerId, BrokerLoad>,
) -> Vec<Candidate> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, broker) in brokers.iter().enumerate() {
        by_rack.entry(broker.rack.as_deref()).or_default().push(i);
    }
    let mut rack_of = vec![0; brokers.len()];
    for (rack, members) in by_rack.values().enumerate() {
        for member in members {
            rack_of[*member] = rack;
        }
    }
    // Kafka's rack-alternated list: the first broker of each rack, then the second, ...
    let mut position = vec![0; brokers.len()];
    let rounds = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let alternated =
        (0..rounds).flat_map(|round| by_rack.values().filter_map(move |m| m.get(round)));
    for (pos, broker) in alternated.enumerate() {
        position[*broker] = pos;
    }
    brokers
        .iter()
        .enumerate()
        .map(|(i, broker)| {
            let load = loads.get(&broker.id).copied().unwrap_or_default();
            Candidate {
                id: broker.id,
                rack: rack_of[i],
                position: position[i],
                replicas: u64::from(load.replicas),
                leaders: u64::from(load.leaders),
                new_replicas: 0,
                new_leaders: 0,
            }
        })
        .collect()
}

/// Picks `rf` distinct brokers for one partition: least-used rack first, then brokers holding
/// fewer than `limit` replicas of this topic, then fewest replicas, then the rack with the
/// fewest replicas per broker, then fewest preferred leaderships, then rotated list
/// position. Counts the new replicas.
///
/// The limit (`rf * ceil(partitions / brokers)`) only binds when prior load is uneven. It
/// keeps the leader cap achievable: if no broker holds more than `rf * cap` of the topic's
/// replicas, every set of `k` partitions spans at least `k / cap` brokers, which is Hall's
/// condition for giving each partition a leader with at most `cap` per broker.
fn choose_replicas(
    candidates: &mut [Candidate],
    racks: usize,
    rf: usize,
    limit: u64,
    offset: usize,
) -> Vec<usize> {
    let n = candidates.len();
    let rotated = |c: &Candidate| (c.position + n - offset) % n;
    let mut rack_use = vec![0usize; racks];
    // Each rack's (replicas, brokers), to compare racks by replicas per broker.
    let mut rack_load = vec![(0u64, 0u64); racks];
    for c in candidates.iter() {
        rack_load[c.rack].0 += c.replicas;
        rack_load[c.rack].1 += 1;
    }
    let mut set: Vec<usize> = Vec::with_capacity(rf);
    for _ in 0..rf {
        let best = (0..n).filter(|b| !set.contains(b)).min_by(|a, b| {
            let (x, y) = (&candidates[*a], &candidates[*b]);
            let (rx, ry) = (rack_load[x.rack], rack_load[y.rack]);
            (rack_use[x.rack], x.new_replicas >= limit, x.replicas)
                .cmp(&(rack_use[y.rack], y.new_replicas >= limit, y.replicas))
                // Between equally loaded brokers, the emptier rack, so racks stay even.
                .then((rx.0 * ry.1).cmp(&(ry.0 * rx.1)))
                .then((x.leaders, rotated(x)).cmp(&(y.leaders, rotated(y))))
        });
        // rf <= n, so a broker outside `set` remains.
        let Some(best) = best else { break };
        let rack = candidates[best].rack;
        rack_use[rack] += 1;
        rack_load[rack].0 += 1;
        candidates[best].replicas += 1;
        candidates[best].new_replicas += 1;
        set.push(best);
    }
    set
}

/// The preferred-leader assignment built so far.
struct Leadership {
    /// Each placed partition's replicas (indexes into the candidates), in selection order.
    sets: Vec<Vec<usize>>,
    /// Each placed partition's preferred leader.
    leaders: Vec<usize>,
    /// The partitions each candidate leads.
    led: Vec<Vec<usize>>,
    /// The most new partitions one broker should lead.
    cap: u64,
}

impl Leadership {
    /// Picks the preferred leader of a new partition with replicas `set` and records it.
    fn assign(&mut self, candidates: &mut [Candidate], set: Vec<usize>) {
        let cap = self.cap;
        let best = set
            .iter()
            .copied()
            .filter(|b| candidates[*b].new_leaders < cap)
            .min_by_key(|b| (candidates[*b].leaders, candidates[*b].new_leaders));
        let leader = match best {
            // A broker outside `set` may lead fewer partitions than any member: shift
            // earlier partitions toward it, so the member that takes this one gives one away.
            Some(best) => {
                let most = candidates[best].leaders;
                let wanted = |c: &Candidate| c.leaders < most && c.new_leaders < cap;
                let fewer = candidates.iter().any(wanted);
                fewer
                    .then(|| self.augment(candidates, &set, wanted))
                    .flatten()
                    .unwrap_or(best)
            }
            // Every member is at the cap: shift earlier partitions toward one below it.
            None => match self.augment(candidates, &set, |c| c.new_leaders < cap) {
                Some(freed) => freed,
                // Prior load skewed the replica sets so much that the cap cannot hold; stay
                // as balanced as the sets allow. `set` is never empty (rf >= 1).
                None => set
                    .iter()
                    .copied()
                    .min_by_key(|b| candidates[*b].leaders)
                    .unwrap_or(set[0]),
            },
        };
        candidates[leader].leaders += 1;
        candidates[leader].new_leaders += 1;
        self.led[leader].push(self.leaders.len());
        self.leaders.push(leader);
        self.sets.push(set);
    }

    /// Searches (breadth first, so the shortest chain wins) for a chain of this topic's
    /// earlier partitions whose preferred leadership can each shift to another of their
    /// replicas, starting at a member of `set` and ending at a broker outside it that is
    /// `wanted`. Applies the chain and returns the member of `set` it starts at, which now
    /// leads one partition fewer and is free to lead the new one.
    fn augment(
        &mut self,
        candidates: &mut [Candidate],
        set: &[usize],
        wanted: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        let n = candidates.len();
        // For each reached broker: the broker and partition it was reached through.
        let mut reached_by: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut visited = vec![false; n];
        let mut queue = VecDeque::new();
        for b in set {
            visited[*b] = true;
            queue.push_back(*b);
        }
        let mut end = None;
        'search: while let Some(b) = queue.pop_front() {
            for q in &self.led[b] {
                for c in &self.sets[*q] {
                    if visited[*c] {
                        continue;
                    }
                    visited[*c] = true;
                    reached_by[*c] = Some((b, *q));
                    if wanted(&candidates[*c]) {
                        end = Some(*c);
                        break 'search;
                    }
                    queue.push_back(*c);
                }
            }
        }
        end.map(|end| self.shift(candidates, &reached_by, end))
    }

    /// Moves each partition on the chain ending at `end` one step along it; returns the
    /// chain's start, which now leads one partition fewer.
    fn shift(
        &mut self,
        candidates: &mut [Candidate],
        reached_by: &[Option<(usize, usize)>],
        end: usize,
    ) -> usize {
        let mut to = end;
        while let Some((from, partition)) = reached_by[to] {
            self.leaders[partition] = to;
            self.led[from].retain(|p| *p != partition);
            self.led[to].push(partition);
            candidates[from].leaders -= 1;
            candidates[from].new_leaders -= 1;
            candidates[to].leaders += 1;
            candidates[to].new_leaders += 1;
            to = from;
        }
        to
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// `n` brokers with ids 1..=n; with `racks > 0`, broker `i` is in rack `i % racks`.
    fn brokers(n: i32, racks: i32) -> Vec<PlacementBroker> {
        (1..=n)
            .map(|id| PlacementBroker {
                id: BrokerId::new(id),
                rack: (racks > 0).then(|| format!("rack-{}", id % racks)),
            })
            .collect()
    }

    fn place(
        brokers: &[PlacementBroker],
        loads: &BTreeMap<BrokerId, BrokerLoad>,
        partitions: u32,
        rf: u16,
        start: usize,
    ) -> Vec<Vec<BrokerId>> {
        place_replicas(&PlacementRequest {
            brokers,
            loads,
            partitions,
            replication_factor: rf,
            start,
        })
        .unwrap()
    }

    /// Adds a placement's replicas and preferred leaders to `loads`.
    fn add_loads(loads: &mut BTreeMap<BrokerId, BrokerLoad>, placement: &[Vec<BrokerId>]) {
        for replicas in placement {
            for (i, b) in replicas.iter().enumerate() {
                let load = loads.entry(*b).or_default();
                load.replicas += 1;
                load.leaders += u32::from(i == 0);
            }
        }
    }

    /// Replica and leader counts of every broker in `brokers`, zeros included.
    fn counts(brokers: &[PlacementBroker], placement: &[Vec<BrokerId>]) -> (Vec<u32>, Vec<u32>) {
        let mut loads = BTreeMap::new();
        add_loads(&mut loads, placement);
        brokers
            .iter()
            .map(|b| {
                let load = loads.get(&b.id).copied().unwrap_or_default();
                (load.replicas, load.leaders)
            })
            .unzip()
    }

    fn spread(values: &[u32]) -> u32 {
        values.iter().max().unwrap() - values.iter().min().unwrap()
    }

    fn rack_of(brokers: &[PlacementBroker], id: BrokerId) -> Option<String> {
        brokers.iter().find(|b| b.id == id).unwrap().rack.clone()
    }

    /// The invariants every placement on a fresh cluster of uniform brokers satisfies.
    fn check_fresh(
        brokers: &[PlacementBroker],
        placement: &[Vec<BrokerId>],
        partitions: u32,
        rf: u16,
    ) {
        assert_eq!(placement.len(), partitions as usize);
        let racks: BTreeSet<_> = brokers.iter().map(|b| b.rack.clone()).collect();
        for replicas in placement {
            assert_eq!(replicas.len(), usize::from(rf));
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), replicas.len(), "{replicas:?}");
            let used: BTreeSet<_> = replicas.iter().map(|b| rack_of(brokers, *b)).collect();
            assert_eq!(used.len(), usize::from(rf).min(racks.len()), "{replicas:?}");
        }
        let (replicas, leaders) = counts(brokers, placement);
        assert!(spread(&replicas) <= 1, "replicas {replicas:?}");
        let cap = partitions.div_ceil(brokers.len() as u32);
        assert!(
            leaders.iter().all(|l| *l <= cap),
            "leaders {leaders:?}, cap {cap}"
        );
    }

    #[test]
    fn six_partitions_rf3_on_three_brokers_lead_two_each() {
        let brokers = brokers(3, 0);
        let placement = place(&brokers, &BTreeMap::new(), 6, 3, 0);
        let (replicas, leaders) = counts(&brokers, &placement);
        assert_eq!(replicas, vec![6, 6, 6]);
        assert_eq!(leaders, vec![2, 2, 2]);
    }

    #[test]
    fn fresh_clusters_of_three_four_and_five_brokers_are_balanced() {
        for n in 3..=5 {
            let brokers = brokers(n, 0);
            for rf in 1..=3 {
                for partitions in 1..=24 {
                    for start in 0..3 {
                        let placement = place(&brokers, &BTreeMap::new(), partitions, rf, start);
                        check_fresh(&brokers, &placement, partitions, rf);
                    }
                }
            }
        }
    }

    #[test]
    fn replicas_spread_over_racks() {
        // Six brokers in three racks: every partition spans all three (rf 3) or two (rf 2).
        let brokers = brokers(6, 3);
        for rf in 2..=3 {
            let placement = place(&brokers, &BTreeMap::new(), 12, rf, 1);
            check_fresh(&brokers, &placement, 12, rf);
        }
        // Four brokers in two racks with rf 3: two racks used, never three in one.
        let brokers = self::brokers(4, 2);
        let placement = place(&brokers, &BTreeMap::new(), 8, 3, 0);
        check_fresh(&brokers, &placement, 8, 3);
    }

    #[test]
    fn uneven_racks_prefer_rack_spread_over_balance() {
        let mut brokers = brokers(4, 0);
        brokers[0].rack = Some("lonely".into());
        for b in &mut brokers[1..] {
            b.rack = Some("crowded".into());
        }
        let placement = place(&brokers, &BTreeMap::new(), 6, 2, 0);
        for replicas in &placement {
            assert!(replicas.contains(&BrokerId::new(1)), "{replicas:?}");
        }
    }

    #[test]
    fn existing_load_steers_new_replicas_away() {
        let brokers = brokers(3, 0);
        let loads = BTreeMap::from([(
            BrokerId::new(1),
            BrokerLoad {
                replicas: 10,
                leaders: 10,
            },
        )]);
        let placement = place(&brokers, &loads, 2, 1, 0);
        assert_eq!(
            placement,
            vec![vec![BrokerId::new(2)], vec![BrokerId::new(3)]]
        );
    }

    #[test]
    fn successive_topics_stay_balanced() {
        let brokers = brokers(4, 0);
        let mut loads = BTreeMap::new();
        let mut all = Vec::new();
        for (partitions, rf, start) in [(5, 2, 0), (3, 2, 0), (7, 3, 2), (1, 1, 0), (2, 2, 3)] {
            let placement = place(&brokers, &loads, partitions, rf, start);
            add_loads(&mut loads, &placement);
            all.extend(placement);
            let (replicas, leaders) = counts(&brokers, &all);
            assert!(spread(&replicas) <= 1, "replicas {replicas:?}");
            assert!(spread(&leaders) <= 1, "leaders {leaders:?}");
        }
    }

    #[test]
    fn placement_is_deterministic_and_start_rotates_it() {
        let brokers = brokers(5, 0);
        let a = place(&brokers, &BTreeMap::new(), 5, 2, 7);
        assert_eq!(a, place(&brokers, &BTreeMap::new(), 5, 2, 7));
        let firsts = |p: &[Vec<BrokerId>]| p[0][0];
        assert_ne!(
            firsts(&a),
            firsts(&place(&brokers, &BTreeMap::new(), 5, 2, 8))
        );
        // Input order and duplicates do not matter.
        let mut shuffled = brokers.clone();
        shuffled.reverse();
        shuffled.push(brokers[0].clone());
        assert_eq!(a, place(&shuffled, &BTreeMap::new(), 5, 2, 7));
    }

    #[test]
    fn invalid_replication_factors_are_rejected() {
        let brokers = brokers(3, 0);
        for rf in [0, 4] {
            let err = place_replicas(&PlacementRequest {
                brokers: &brokers,
                loads: &BTreeMap::new(),
                partitions: 1,
                replication_factor: rf,
                start: 0,
            })
            .unwrap_err();
            assert!(matches!(
                err,
                Error::InvalidReplicationFactor { requested, live_brokers: 3 } if requested == i64::from(rf)
            ));
        }
        assert!(place(&brokers, &BTreeMap::new(), 0, 3, 0).is_empty());
    }

    #[test]
    fn the_largest_topic_is_placed_quickly_and_evenly() {
        let brokers = brokers(50, 5);
        let started = std::time::Instant::now();
        let placement = place(&brokers, &BTreeMap::new(), 10_000, 3, 0);
        let elapsed = started.elapsed();
        check_fresh(&brokers, &placement, 10_000, 3);
        assert!(elapsed.as_secs() < 10, "{elapsed:?}");
    }

    proptest! {
        /// Replica counts stay within one and each topic's leader cap holds as topics
        /// accumulate; total leaderships are balanced only as far as that allows.
        #[test]
        fn successive_topics_on_uniform_brokers_stay_balanced(
            racks in prop_oneof![Just(0i32), Just(3)],
            per_rack in 1i32..=3,
            topics in proptest::collection::vec((1u32..=12, 1u16..=3, 0usize..10), 1..8),
        ) {
            let n = racks.max(1) * per_rack;
            let brokers = brokers(n, racks);
            let mut loads = BTreeMap::new();
            let mut all = Vec::new();
            for (partitions, rf, start) in topics {
                let rf = rf.min(n as u16);
                let placement = place(&brokers, &loads, partitions, rf, start);
                let (_, leaders) = counts(&brokers, &placement);
                let cap = partitions.div_ceil(n as u32);
                prop_assert!(leaders.iter().all(|l| *l <= cap), "leaders {:?}", leaders);
                add_loads(&mut loads, &placement);
                all.extend(placement);
                let (replicas, _) = counts(&brokers, &all);
                prop_assert!(spread(&replicas) <= 1, "replicas {:?}", replicas);
            }
        }

        #[test]
        fn fresh_uniform_clusters_are_balanced(
            racks in 0i32..=3,
            per_rack in 1i32..=3,
            partitions in 1u32..=40,
            rf in 1u16..=4,
            start in 0usize..100,
        ) {
            let n = racks.max(1) * per_rack;
            let rf = rf.min(n as u16);
            let brokers = brokers(n, racks);
            let placement = place(&brokers, &BTreeMap::new(), partitions, rf, start);
            check_fresh(&brokers, &placement, partitions, rf);
        }
    }
}
