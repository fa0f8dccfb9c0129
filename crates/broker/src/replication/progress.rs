//! What a leader knows about its followers: their log end offsets, from which it computes the
//! high watermark and decides when a follower has caught up enough to join the ISR.

use std::collections::BTreeMap;

use strom_types::{BrokerId, Offset};

/// A leader's view of one partition's followers. Not thread-safe on its own; the replica
/// keeps it behind a mutex.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderProgress {
    /// Each follower's last reported log end offset (its fetch offset) and broker epoch.
    followers: BTreeMap<BrokerId, (Offset, i64)>,
}

impl LeaderProgress {
    /// Records a follower's fetch: everything below `fetch_offset` is in its log.
    pub fn record_fetch(&mut self, follower: BrokerId, broker_epoch: i64, fetch_offset: Offset) {
        self.followers
            .insert(follower, (fetch_offset, broker_epoch));
    }

    /// The high watermark the ISR allows: the smallest log end offset over the ISR, the
    /// leader's own included. A member that has not fetched yet holds it where it is
    /// (`current`), since nothing is known to be in its log.
    pub fn high_watermark(
        &self,
        leader: BrokerId,
        leader_leo: Offset,
        isr: &[BrokerId],
        current: Offset,
    ) -> Offset {
        let mut hw = leader_leo;
        for member in isr.iter().filter(|m| **m != leader) {
            match self.followers.get(member) {
                Some((leo, _)) => hw = hw.min(*leo),
                None => hw = hw.min(current),
            }
        }
        hw.max(current.min(leader_leo))
    }

    /// Whether `follower` (outside the ISR) has caught up enough to join it: its log reaches
    /// the high watermark and the start of the current leader epoch, so it holds every
    /// acknowledged record and nothing from an older leader that this one overwrote.
    pub fn eligible_for_isr(
        &self,
        follower: BrokerId,
        high_watermark: Offset,
        epoch_start: Offset,
    ) -> Option<i64> {
        let (leo, epoch) = self.followers.get(&follower)?;
        (*leo >= high_watermark && *leo >= epoch_start).then_some(*epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(id: i32) -> BrokerId {
        BrokerId::new(id)
    }

    fn o(offset: i64) -> Offset {
        Offset::new(offset)
    }

    #[test]
    fn the_high_watermark_is_the_slowest_isr_member() {
        let mut progress = LeaderProgress::default();
        let isr = [b(1), b(2), b(3)];
        // Nobody fetched yet: the high watermark stays put.
        assert_eq!(progress.high_watermark(b(1), o(10), &isr, o(4)), o(4));
        progress.record_fetch(b(2), 7, o(8));
        progress.record_fetch(b(3), 7, o(6));
        assert_eq!(progress.high_watermark(b(1), o(10), &isr, o(4)), o(6));
        // Members outside the ISR do not hold it back.
        assert_eq!(
            progress.high_watermark(b(1), o(10), &[b(1), b(2)], o(4)),
            o(8)
        );
        // It never moves backwards, and never past the leader's log end.
        assert_eq!(progress.high_watermark(b(1), o(10), &isr, o(7)), o(7));
        assert_eq!(progress.high_watermark(b(1), o(3), &[b(1)], o(3)), o(3));
    }

    #[test]
    fn a_follower_joins_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut progress = LeaderProgress::default();
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(0)),
            None,
            "never fetched"
        );
        progress.record_fetch(b(2), 42, o(4));
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(0)),
            None,
            "behind the high watermark"
        );
        progress.record_fetch(b(2), 42, o(5));
        assert_eq!(progress.eligible_for_isr(b(2), o(5), o(0)), Some(42));
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(9)),
            None,
            "before this leader's epoch"
        );
    }
}
