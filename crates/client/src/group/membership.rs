//! The membership state the heartbeat task and the polling side share.
//!
//! The heartbeat task owns the member epoch and hands new target assignments over; the
//! polling side owns the partition consumers, applies targets and reports what it owns now.
//! A loss of membership (fencing) bumps the generation: the polling side then drops whatever
//! it owned under the old generation, and a report made under an old generation is ignored.
//! Locks are held only to copy or swap fields, never across an await.

use std::sync::Mutex;

use tokio::sync::Notify;

use super::assignment::Assignment;
use crate::{Error, lock};

/// State shared by a [`GroupConsumer`](crate::GroupConsumer) and its heartbeat task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes a waiting `poll`: a new target, a loss or a fatal error.
    pub(crate) wake_poll: Notify,
    /// Wakes the heartbeat task to report a changed owned set at once.
    pub(crate) wake_heartbeat: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The member epoch: 0 until joined (and after a loss), then what the coordinator says.
    epoch: i32,
    /// Bumped on every loss of membership.
    generation: u64,
    /// The partitions the polling side owns, as reported in heartbeats.
    owned: Assignment,
    /// A target assignment the polling side has not taken yet, with the epoch it came with.
    target: Option<(i32, Assignment)>,
    /// A non-retriable failure that stopped the heartbeat.
    fatal: Option<Error>,
}

/// A snapshot of what a heartbeat reports.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) epoch: i32,
    pub(crate) owned: Assignment,
}

impl Shared {
    /// The current member epoch.
    pub(crate) fn epoch(&self) -> i32 {
        lock(&self.state).epoch
    }

    /// The current epoch and generation, read together.
    pub(crate) fn epoch_and_generation(&self) -> (i32, u64) {
        let state = lock(&self.state);
        (state.epoch, state.generation)
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.state).generation
    }

    /// The failure that stopped the member, if any.
    pub(crate) fn fatal(&self) -> Option<Error> {
        lock(&self.state).fatal.clone()
    }

    /// What the next heartbeat reports.
    pub(crate) fn report(&self) -> Report {
        let state = lock(&self.state);
        Report {
            epoch: state.epoch,
            owned: state.owned.clone(),
        }
    }

    /// Takes in a heartbeat answer: the new epoch and, when present, a new target that
    /// replaces any target not taken yet.
    pub(crate) fn accepted(&self, epoch: i32, target: Option<Assignment>) {
        let has_target = target.is_some();
        {
            let mut state = lock(&self.state);
            state.epoch = epoch;
            if let Some(target) = target {
                state.target = Some((epoch, target));
            }
        }
        if has_target {
            self.wake_poll.notify_one();
        }
    }

    /// The member was fenced or expired: its partitions are lost and it rejoins with epoch 0.
    pub(crate) fn lost(&self) {
        {
            let mut state = lock(&self.state);
            state.epoch = 0;
            state.generation += 1;
            state.owned = Assignment::default();
            state.target = None;
        }
        self.wake_poll.notify_one();
    }

    /// Stops the member with `error`.
    pub(crate) fn fail(&self, error: Error) {
        lock(&self.state).fatal = Some(error);
        self.wake_poll.notify_one();
    }

    /// Takes the pending target, with the generation it belongs to and its epoch.
    pub(crate) fn take_target(&self) -> Option<(u64, i32, Assignment)> {
        let mut state = lock(&self.state);
        let generation = state.generation;
        state
            .target
            .take()
            .map(|(epoch, target)| (generation, epoch, target))
    }

    /// Puts back a target the polling side could not apply, unless a newer one arrived or
    /// the generation changed.
    pub(crate) fn restore_target(&self, generation: u64, epoch: i32, target: Assignment) {
        let mut state = lock(&self.state);
        if state.generation == generation && state.target.is_none() {
            state.target = Some((epoch, target));
        }
    }

    /// Reports `owned` as the polling side's partitions under `generation` and wakes the
    /// heartbeat task to send it. Returns false (and changes nothing) when the generation
    /// moved on, i.e. the partitions were lost meanwhile.
    pub(crate) fn set_owned(&self, generation: u64, owned: &Assignment) -> bool {
        {
            let mut state = lock(&self.state);
            if state.generation != generation {
                return false;
            }
            state.owned = owned.clone();
        }
        self.wake_heartbeat.notify_one();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::assignment::TopicPartition;

    fn owned(partitions: &[i32]) -> Assignment {
        let mut owned = Assignment::default();
        for &partition in partitions {
            owned.insert(TopicPartition::new("t", partition), "id".into());
        }
        owned
    }

    #[test]
    fn the_newest_target_wins_and_a_loss_discards_it() {
        let shared = Shared::default();
        shared.accepted(3, Some(owned(&[0])));
        shared.accepted(4, Some(owned(&[0, 1])));
        shared.accepted(4, None);
        let (generation, epoch, target) = shared.take_target().unwrap();
        assert_eq!((generation, epoch, target), (0, 4, owned(&[0, 1])));
        assert!(shared.take_target().is_none());
        shared.restore_target(generation, epoch, owned(&[0, 1]));
        assert_eq!(shared.take_target().unwrap().1, 4);
        shared.restore_target(generation, epoch, owned(&[0, 1]));
        shared.lost();
        assert!(shared.take_target().is_none());
        assert_eq!(shared.epoch_and_generation(), (0, 1));
    }

    #[test]
    fn reports_under_an_old_generation_are_ignored() {
        let shared = Shared::default();
        shared.accepted(5, None);
        assert!(shared.set_owned(0, &owned(&[2])));
        assert_eq!(shared.report().owned, owned(&[2]));
        assert_eq!(shared.report().epoch, 5);
        shared.lost();
        assert_eq!(shared.report().owned, Assignment::default());
        assert!(!shared.set_owned(0, &owned(&[2])));
        assert_eq!(shared.report().owned, Assignment::default());
        shared.restore_target(0, 5, owned(&[1]));
        assert!(shared.take_target().is_none());
        shared.fail(Error::Closed);
        assert!(matches!(shared.fatal(), Some(Error::Closed)));
    }
}
