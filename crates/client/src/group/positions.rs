//! Consumed and committed positions, and when the next automatic commit is due.
//!
//! A partition's consumed position is the offset after the last record `poll` handed to the
//! user (or where reading starts, before any record was returned); records fetched but not
//! yet returned never move it. Commits send consumed positions that differ from the last
//! committed ones.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::assignment::TopicPartition;

/// Positions of the owned partitions.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    consumed: HashMap<TopicPartition, i64>,
    committed: HashMap<TopicPartition, i64>,
}

impl Positions {
    /// Starts tracking `partition`, whose committed offset is `committed` (if any).
    pub(crate) fn start(&mut self, partition: TopicPartition, committed: Option<i64>) {
        self.consumed.remove(&partition);
        match committed {
            Some(offset) => {
                self.committed.insert(partition.clone(), offset);
                self.consumed.insert(partition, offset);
            }
            None => {
                self.committed.remove(&partition);
            }
        }
    }

    /// Moves the consumed position of a tracked `partition` forward to `position`.
    pub(crate) fn advance(&mut self, partition: &TopicPartition, position: i64) {
        match self.consumed.get_mut(partition) {
            Some(current) => *current = (*current).max(position),
            None => {
                self.consumed.insert(partition.clone(), position);
            }
        }
    }

    /// The consumed position of `partition`, once known.
    pub(crate) fn consumed(&self, partition: &TopicPartition) -> Option<i64> {
        self.consumed.get(partition).copied()
    }

    /// Stops tracking `partition`.
    pub(crate) fn remove(&mut self, partition: &TopicPartition) {
        self.consumed.remove(partition);
        self.committed.remove(partition);
    }

    /// Stops tracking every partition.
    pub(crate) fn clear(&mut self) {
        self.consumed.clear();
        self.committed.clear();
    }

    /// Consumed positions not committed yet, of the partitions `include` accepts, sorted.
    pub(crate) fn uncommitted(
        &self,
        include: impl Fn(&TopicPartition) -> bool,
    ) -> Vec<(TopicPartition, i64)> {
        let mut pending: Vec<(TopicPartition, i64)> = self
            .consumed
            .iter()
            .filter(|(partition, position)| {
                include(partition) && self.committed.get(*partition) != Some(*position)
            })
            .map(|(partition, position)| (partition.clone(), *position))
            .collect();
        pending.sort();
        pending
    }

    /// Notes that `position` was committed for `partition`, if the partition is tracked.
    pub(crate) fn committed(&mut self, partition: &TopicPartition, position: i64) {
        if self.consumed.contains_key(partition) {
            self.committed.insert(partition.clone(), position);
        }
    }
}

/// When the next automatic commit is due.
#[derive(Debug)]
pub(crate) struct AutoCommit {
    interval: Duration,
    due: Instant,
}

impl AutoCommit {
    /// Commits every `interval`, the first one `interval` after `now`.
    pub(crate) fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            due: now + interval,
        }
    }

    /// Whether a commit is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        now >= self.due
    }

    /// Schedules the next commit `interval` after `now`.
    pub(crate) fn schedule(&mut self, now: Instant) {
        self.due = now + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    #[test]
    fn only_changed_positions_are_committed() {
        let mut positions = Positions::default();
        positions.start(tp(0), Some(10));
        positions.start(tp(1), None);
        assert!(positions.uncommitted(|_| true).is_empty());
        positions.advance(&tp(1), 42);
        positions.advance(&tp(0), 12);
        assert_eq!(positions.uncommitted(|_| true), [(tp(0), 12), (tp(1), 42)]);
        assert_eq!(positions.uncommitted(|p| p.partition == 1), [(tp(1), 42)]);
        positions.committed(&tp(0), 12);
        assert_eq!(positions.uncommitted(|_| true), [(tp(1), 42)]);
        positions.committed(&tp(1), 42);
        assert!(positions.uncommitted(|_| true).is_empty());
    }

    #[test]
    fn positions_never_move_backward_and_removed_partitions_are_forgotten() {
        let mut positions = Positions::default();
        positions.start(tp(0), Some(10));
        positions.advance(&tp(0), 20);
        positions.advance(&tp(0), 15);
        assert_eq!(positions.consumed(&tp(0)), Some(20));
        positions.remove(&tp(0));
        assert_eq!(positions.consumed(&tp(0)), None);
        positions.committed(&tp(0), 20);
        assert!(positions.uncommitted(|_| true).is_empty());
        positions.start(tp(0), None);
        positions.advance(&tp(0), 5);
        assert_eq!(positions.uncommitted(|_| true), [(tp(0), 5)]);
        positions.clear();
        assert!(positions.uncommitted(|_| true).is_empty());
    }

    #[test]
    fn auto_commit_is_due_once_per_interval() {
        let start = Instant::now();
        let mut timer = AutoCommit::new(Duration::from_secs(5), start);
        assert!(!timer.is_due(start + Duration::from_secs(4)));
        assert!(timer.is_due(start + Duration::from_secs(5)));
        timer.schedule(start + Duration::from_secs(6));
        assert!(!timer.is_due(start + Duration::from_secs(10)));
        assert!(timer.is_due(start + Duration::from_secs(11)));
    }
}
