//! The uniform assignor: spreads partitions evenly over the subscribed members and keeps them
//! where they are while that stays balanced (sticky), like KIP-848's `UniformAssignor`.
//!
//! It works in three steps, all deterministic (members are taken in member-id order, topics in
//! topic-id order, partitions in number order):
//! 1. **Retain**: every member keeps the partitions of its `current` assignment that are still
//!    valid (topic subscribed and known, partition in range); a partition claimed by several
//!    members stays with the first of them by member id.
//! 2. **Fill**: every partition nobody kept goes to the least-loaded member subscribed to its
//!    topic; topics with fewer subscribers go first, since they have fewer places to go.
//! 3. **Balance**: while the heaviest member that can do so can hand a partition to a member at
//!    least two partitions lighter, directly (a subscriber of one of its topics) or along a
//!    chain (each member handing one partition on to a subscriber of one of its own topics),
//!    the shortest such chain is shifted by one partition.
//!
//! When no such chain is left, the loads are as even as the subscriptions allow (the maximum
//! as low and the minimum as high as any assignment could make them: the "no cost-reducing
//! path" optimality of semi-matchings, Harvey et al. 2006). With homogeneous subscriptions
//! that means loads differ by at most one, every chain is a direct hand-over from the heaviest
//! to the lightest member, and the assignor moves the fewest partitions any balanced
//! assignment could: a member that receives never gives, and the other way round.
//!
//! Racks are not used.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use strom_types::TopicId;

use super::{AssignmentSpec, Assignor, GroupAssignment, TopicPartitions};

/// Balanced, sticky assignor (`"uniform"`, the default): member partition counts differ by at
/// most one among members with the same subscription, and a membership change moves only the
/// partitions that balance requires.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformAssignor;

impl Assignor for UniformAssignor {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn assign(&self, spec: &AssignmentSpec) -> GroupAssignment {
        let mut state = State::new(spec);
        state.fill(spec);
        state.balance();
        state.into_assignment()
    }
}

/// A member, by its rank in member-id order, so comparing indices compares member ids.
type Member = usize;

/// A set of members ordered by load, lightest first; ties go to the lower member id.
type ByLoad = BTreeSet<(usize, Member)>;

/// The assignment being built, with the indices the fill and balance steps need to find the
/// lightest subscriber of a topic and the heaviest member quickly.
struct State<'a> {
    /// Member ids in sorted order; a `Member` indexes this.
    ids: Vec<&'a str>,
    /// What each member holds so far; never contains an empty partition set.
    owned: Vec<TopicPartitions>,
    /// How many partitions each member holds.
    loads: Vec<usize>,
    /// Every member, heaviest first (ties to the lower member id).
    heaviest: BTreeSet<(Reverse<usize>, Member)>,
    /// The subscribers of each distinct subscriber set ("class") by load. Topics with the same
    /// subscribers share one class, so a load change updates one set per class rather than
    /// one per topic (a homogeneous group has a single class).
    classes: Vec<ByLoad>,
    /// The class of every topic that has partitions and at least one subscriber.
    topic_class: BTreeMap<TopicId, usize>,
    /// The classes each member belongs to.
    member_classes: Vec<Vec<usize>>,
}

impl<'a> State<'a> {
    /// Indexes the spec and performs the retain step.
    fn new(spec: &'a AssignmentSpec) -> Self {
        let ids: Vec<&str> = spec.members.keys().map(String::as_str).collect();
        let (class_members, topic_class) = classify(spec);
        let mut member_classes = vec![Vec::new(); ids.len()];
        for (class, members) in class_members.iter().enumerate() {
            for &member in members {
                member_classes[member].push(class);
            }
        }
        let owned = retained(spec, &topic_class);
        let loads: Vec<usize> = owned.iter().map(load_of).collect();
        let heaviest = loads
            .iter()
            .enumerate()
            .map(|(m, &l)| (Reverse(l), m))
            .collect();
        let classes = class_members
            .iter()
            .map(|members| members.iter().map(|&m| (loads[m], m)).collect())
            .collect();
        Self {
            ids,
            owned,
            loads,
            heaviest,
            classes,
            topic_class,
            member_classes,
        }
    }

    /// The fill step: gives every partition nobody kept to the lightest subscriber of its
    /// topic.
    fn fill(&mut self, spec: &AssignmentSpec) {
        let taken: BTreeSet<(TopicId, u32)> = self
            .owned
            .iter()
            .flat_map(|topics| topics.iter())
            .flat_map(|(&topic, partitions)| partitions.iter().map(move |&p| (topic, p)))
            .collect();
        // The most constrained topics first: once the flexible ones are placed, a topic with
        // few subscribers could only pile onto members that are already loaded.
        let mut topics: Vec<(usize, TopicId, usize)> = self
            .topic_class
            .iter()
            .map(|(&topic, &class)| (self.classes[class].len(), topic, class))
            .collect();
        topics.sort_unstable();
        for (_, topic, class) in topics {
            let count = spec.topics.get(&topic).copied().unwrap_or(0);
            for partition in (0..count).filter(|&p| !taken.contains(&(topic, p))) {
                if let Some(&(_, member)) = self.classes[class].first() {
                    self.give(member, topic, partition);
                }
            }
        }
    }

    /// The balance step: while some member can hand a partition, directly or along a chain
    /// of members each handing one on to the next, to a member at least two partitions
    /// lighter, does so. Every shift lowers the sum of squared loads, so this terminates.
    fn balance(&mut self) {
        while let Some(path) = self.next_path() {
            if !self.shift(&path) {
                // Unreachable while `owned` has no empty sets; stop rather than spin.
                return;
            }
        }
    }

    /// The next shift: from the heaviest member that has one, the shortest chain to a member
    /// at least two partitions lighter (the lightest such member where several are as close).
    fn next_path(&self) -> Option<Path> {
        // Only subscribers can ever take anything, so the lightest of them bounds the search.
        let floor = self
            .classes
            .iter()
            .filter_map(BTreeSet::first)
            .map(|&(l, _)| l)
            .min()?;
        let mut search = Search::new(self.ids.len(), self.classes.len());
        for &(Reverse(load), donor) in &self.heaviest {
            if load < floor + 2 {
                return None;
            }
            if let Some(path) = search.from(self, donor, load) {
                return Some(path);
            }
        }
        None
    }

    /// Moves one partition along every hop of `path`; false if a hop had nothing to give.
    fn shift(&mut self, path: &Path) -> bool {
        let takers = path
            .hops
            .iter()
            .skip(1)
            .map(|&(m, _)| m)
            .chain([path.receiver]);
        let moves: Vec<(Member, TopicId, Member)> = path
            .hops
            .iter()
            .zip(takers)
            .map(|(&(giver, topic), taker)| (giver, topic, taker))
            .collect();
        moves.into_iter().all(|(giver, topic, taker)| {
            let Some(partition) = self.take(giver, topic) else {
                return false;
            };
            self.give(taker, topic, partition);
            true
        })
    }

    /// Hands `partition` of `topic` to `member`.
    fn give(&mut self, member: Member, topic: TopicId, partition: u32) {
        self.owned[member]
            .entry(topic)
            .or_default()
            .insert(partition);
        self.set_load(member, self.loads[member] + 1);
    }

    /// Takes `member`'s highest partition of `topic` away from it, if it has one.
    fn take(&mut self, member: Member, topic: TopicId) -> Option<u32> {
        let partitions = self.owned[member].get_mut(&topic)?;
        let partition = partitions.pop_last()?;
        if partitions.is_empty() {
            self.owned[member].remove(&topic);
        }
        self.set_load(member, self.loads[member].saturating_sub(1));
        Some(partition)
    }

    /// Records a new load for `member` in every index that orders members by load.
    fn set_load(&mut self, member: Member, load: usize) {
        let old = self.loads[member];
        self.heaviest.remove(&(Reverse(old), member));
        self.heaviest.insert((Reverse(load), member));
        for &class in &self.member_classes[member] {
            self.classes[class].remove(&(old, member));
            self.classes[class].insert((load, member));
        }
        self.loads[member] = load;
    }

    /// The finished assignment, with an entry for every member.
    fn into_assignment(self) -> GroupAssignment {
        self.ids
            .into_iter()
            .map(str::to_owned)
            .zip(self.owned)
            .collect()
    }
}

/// Groups the assignable topics (known, with partitions, subscribed to by someone) by their
/// set of subscribers: returns each class's members and each topic's class.
fn classify(spec: &AssignmentSpec) -> (Vec<Vec<Member>>, BTreeMap<TopicId, usize>) {
    let mut class_of_members: BTreeMap<Vec<Member>, usize> = BTreeMap::new();
    let mut class_members = Vec::new();
    let mut topic_class = BTreeMap::new();
    for (&topic, &count) in &spec.topics {
        let subscribers: Vec<Member> = spec
            .members
            .values()
            .enumerate()
            .filter(|(_, member)| member.subscribed.contains(&topic))
            .map(|(index, _)| index)
            .collect();
        if count == 0 || subscribers.is_empty() {
            continue;
        }
        let class = *class_of_members
            .entry(subscribers.clone())
            .or_insert_with(|| {
                class_members.push(subscribers);
                class_members.len() - 1
            });
        topic_class.insert(topic, class);
    }
    (class_members, topic_class)
}

/// The retain step: each member's still-valid current partitions, every partition kept by at
/// most one member (the first claimant in member-id order).
fn retained(spec: &AssignmentSpec, topic_class: &BTreeMap<TopicId, usize>) -> Vec<TopicPartitions> {
    let mut claimed: BTreeSet<(TopicId, u32)> = BTreeSet::new();
    spec.members
        .values()
        .map(|member| {
            let mut kept = TopicPartitions::new();
            for (topic, partitions) in &member.current {
                // `topic_class` holds exactly the known topics with partitions and subscribers.
                if !member.subscribed.contains(topic) || !topic_class.contains_key(topic) {
                    continue;
                }
                let count = spec.topics.get(topic).copied().unwrap_or(0);
                let valid: BTreeSet<u32> = partitions
                    .range(..count)
                    .copied()
                    .filter(|&p| claimed.insert((*topic, p)))
                    .collect();
                if !valid.is_empty() {
                    kept.insert(*topic, valid);
                }
            }
            kept
        })
        .collect()
}

/// A chain of hand-overs: each hop's member gives a partition of the hop's topic to the next
/// hop's member, the last one to `receiver`.
struct Path {
    hops: Vec<(Member, TopicId)>,
    receiver: Member,
}

/// Breadth-first search for a [`Path`] over the "can hand a partition to" graph: a member
/// points at every subscriber of every topic it holds partitions of.
///
/// One search serves a whole scan of donors, heaviest first, without forgetting what it saw:
/// a failed search from a member of load `l` proves everything it reached has load `l - 1` or
/// more, which no later (lighter or equal) donor could use either, so nothing is explored twice.
struct Search {
    /// Whether a member was reached, by this or an earlier failed search of the scan.
    seen: Vec<bool>,
    /// Whether a class's members were all reached already.
    expanded: Vec<bool>,
    /// The hop that reached each member: who gave it what.
    parent: Vec<Option<(Member, TopicId)>>,
}

impl Search {
    /// A fresh search over `members` members and `classes` classes.
    fn new(members: usize, classes: usize) -> Self {
        Self {
            seen: vec![false; members],
            expanded: vec![false; classes],
            parent: vec![None; members],
        }
    }

    /// The shortest path from `donor` (of `load` partitions) to a member with at most
    /// `load - 2`, if any.
    fn from(&mut self, state: &State<'_>, donor: Member, load: usize) -> Option<Path> {
        if std::mem::replace(&mut self.seen[donor], true) {
            return None;
        }
        let mut queue = VecDeque::from([donor]);
        while let Some(giver) = queue.pop_front() {
            for topic in state.owned[giver].keys() {
                let Some(&class) = state.topic_class.get(topic) else {
                    continue;
                };
                if std::mem::replace(&mut self.expanded[class], true) {
                    continue;
                }
                // Lightest first, so the first taker light enough is the lightest one here.
                for &(taker_load, taker) in &state.classes[class] {
                    if std::mem::replace(&mut self.seen[taker], true) {
                        continue;
                    }
                    self.parent[taker] = Some((giver, *topic));
                    if taker_load + 2 <= load {
                        return Some(self.path_to(taker));
                    }
                    queue.push_back(taker);
                }
            }
        }
        None
    }

    /// Follows the parents back from `receiver` to the donor (the member without one).
    fn path_to(&self, receiver: Member) -> Path {
        let mut hops = Vec::new();
        let mut at = receiver;
        while let Some(hop) = self.parent[at] {
            hops.push(hop);
            at = hop.0;
        }
        hops.reverse();
        Path { hops, receiver }
    }
}

/// How many partitions an assignment holds.
fn load_of(partitions: &TopicPartitions) -> usize {
    partitions.values().map(BTreeSet::len).sum()
}

#[cfg(test)]
#[path = "test_support.rs"]
pub(super) mod test_support;

#[cfg(test)]
#[path = "uniform_tests.rs"]
mod tests;
