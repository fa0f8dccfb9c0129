//! The polling side of a rebalance: dropping lost partitions and moving the owned partitions
//! to the coordinator's target assignment.
//!
//! Revocation comes first (stop fetching, commit with auto-commit, tell the listener) and is
//! reported at once, so the coordinator can hand the partitions on; then the added partitions
//! start at their committed offsets (or the reset policy) and are reported in turn.

use std::sync::PoisonError;

use super::GroupConsumer;
use super::assignment::{Assignment, TopicPartition};
use super::commit::Attempts;
use super::listener::RebalanceListener;
use crate::{Result, StartOffset};

impl GroupConsumer {
    /// Applies a loss of membership and every pending target assignment.
    pub(crate) async fn reconcile(&mut self) -> Result<()> {
        self.drop_lost();
        while let Some((generation, epoch, target)) = self.shared.take_target() {
            if generation != self.generation {
                // Lost after `drop_lost`: the target belonged to the old membership.
                self.drop_lost();
                continue;
            }
            if let Err(error) = self.apply(generation, &target).await {
                self.shared.restore_target(generation, epoch, target);
                return Err(error);
            }
            self.assignment_epoch = epoch;
            self.drop_lost();
        }
        Ok(())
    }

    /// Drops every owned partition, without committing, if the membership was lost.
    pub(crate) fn drop_lost(&mut self) {
        let generation = self.shared.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let lost: Vec<TopicPartition> = self.owned.partitions().cloned().collect();
        let unsaved = self.positions.uncommitted(|_| true);
        self.lost_uncommitted
            .extend(unsaved.into_iter().map(|(partition, _)| partition));
        self.fetcher.stop_all();
        self.positions.clear();
        self.owned = Assignment::default();
        self.assignment_epoch = 0;
        if !lost.is_empty() {
            tracing::warn!(group_id = %self.config.group_id, partitions = lost.len(),
                "partitions lost");
            if let Some(listener) = self.listener() {
                listener.on_partitions_lost(&lost);
            }
        }
    }

    /// Moves the owned partitions of `generation` to `target`.
    async fn apply(&mut self, generation: u64, target: &Assignment) -> Result<()> {
        let diff = self.owned.diff(target);
        if diff.is_empty() {
            return Ok(());
        }
        if !diff.revoked.is_empty() {
            self.revoke(&diff.revoked, self.config.auto_commit).await;
            if !self.shared.set_owned(generation, &self.owned) {
                return Ok(());
            }
        }
        if diff.added.is_empty() {
            return Ok(());
        }
        let added: Vec<TopicPartition> = diff.added.iter().map(|(key, _)| key.clone()).collect();
        let committed = self.committed_offsets(&added).await?;
        for (partition, topic_id) in diff.added {
            let offset = committed.get(&partition).copied().flatten();
            let start = offset.map_or(self.config.reset.into(), StartOffset::Offset);
            tracing::debug!(group_id = %self.config.group_id, %partition, ?start,
                "partition assigned");
            self.positions.start(partition.clone(), offset);
            self.fetcher.start(partition.clone(), start);
            self.owned.insert(partition, topic_id);
        }
        if let Some(listener) = self.listener() {
            listener.on_partitions_assigned(&added);
        }
        self.shared.set_owned(generation, &self.owned);
        Ok(())
    }

    /// Gives `revoked` up: stops reading them, commits their positions (if `commit`) and
    /// tells the listener. A failed commit is logged: the partitions go regardless.
    pub(crate) async fn revoke(&mut self, revoked: &[TopicPartition], commit: bool) {
        for partition in revoked {
            self.fetcher.stop(partition);
        }
        if commit {
            let offsets = self.positions.uncommitted(|p| revoked.contains(p));
            if let Err(error) = self.commit_positions(offsets, Attempts::UntilTimeout).await {
                tracing::warn!(group_id = %self.config.group_id, %error,
                    "commit of revoked partitions failed");
            }
        }
        if let Some(listener) = self.listener() {
            listener.on_partitions_revoked(revoked);
        }
        for partition in revoked {
            self.positions.remove(partition);
            self.owned.remove(partition);
        }
    }

    /// The listener, if one is set.
    fn listener(&mut self) -> Option<&mut Box<dyn RebalanceListener>> {
        self.listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
    }
}
