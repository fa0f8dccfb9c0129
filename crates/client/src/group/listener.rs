//! Callbacks on partition ownership changes (Kafka's `ConsumerRebalanceListener`).

use super::assignment::TopicPartition;

/// Told when a [`GroupConsumer`](crate::GroupConsumer) gains or loses partitions.
///
/// The callbacks run inside [`poll`](crate::GroupConsumer::poll) (and
/// [`close`](crate::GroupConsumer::close)) on the caller's task, so they see a consistent
/// view: no record of a revoked partition is returned after `on_partitions_revoked`, and no
/// record of an added one before `on_partitions_assigned`. They should be quick: the
/// coordinator waits for revoked partitions to be released, at most the rebalance timeout.
pub trait RebalanceListener: Send {
    /// The member now owns `partitions` in addition to what it owned; reading starts at
    /// their committed offsets (or the reset policy). Not called with an empty set.
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The member gives `partitions` up in an orderly rebalance or on close. With
    /// auto-commit, their positions were committed just before. Not called with an empty set.
    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let _ = partitions;
    }

    /// The member lost `partitions` without an orderly revocation (it was fenced or expired
    /// from the group); other members may already own them, so nothing was committed.
    /// Defaults to [`on_partitions_revoked`](Self::on_partitions_revoked).
    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions);
    }
}
