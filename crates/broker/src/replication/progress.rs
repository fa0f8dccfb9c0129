//! What a leader knows about its followers: their log end offsets, from which it computes the
//! high watermark and decides when a follower has caught up enough to join the ISR.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_types::{BrokerId, Offset};
use tokio::time::Instant;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follower {
    /// Its log end offset: the offset of its last fetch.
    leo: Offset,
    /// The broker epoch it fetched under.
    broker_epoch: i64,
    /// When it last fetched.
    fetched_at: Instant,
    /// The leader's log end offset at that fetch.
    leader_leo_then: Offset,
    /// The last time its log reached the leader's log end (Kafka's `lastCaughtUpTime`).
    caught_up_at: Option<Instant>,
}

/// A leader's view of one partition's followers. Not thread-safe on its own; the replica
/// keeps it behind a mutex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderProgress {
    /// When this leadership began; followers that never fetched count as caught up then.
    started_at: Instant,
    followers: BTreeMap<BrokerId, Follower>,
}

impl Default for LeaderProgress {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl LeaderProgress {
    /// Progress for a leadership that began at `started_at`.
    pub fn new(started_at: Instant) -> Self {
        Self {
            started_at,
            followers: BTreeMap::new(),
        }
    }

    /// Records a follower's fetch at `now`: everything below `fetch_offset` is in its log, and
    /// the leader's log ended at `leader_leo`.
    ///
    /// A follower is caught up when it has fetched up to the leader's log end — now, or as of
    /// its previous fetch (then it was caught up at that earlier time), as in Kafka.
    pub fn record_fetch(
        &mut self,
        follower: BrokerId,
        broker_epoch: i64,
        fetch_offset: Offset,
        leader_leo: Offset,
        now: Instant,
    ) {
        let previous = self.followers.get(&follower).copied();
        let caught_up_at = if fetch_offset >= leader_leo {
            Some(now)
        } else {
            match previous {
                Some(p) if fetch_offset >= p.leader_leo_then => Some(p.fetched_at),
                Some(p) => p.caught_up_at,
                None => None,
            }
        };
        let follower_state = Follower {
            leo: fetch_offset,
            broker_epoch,
            fetched_at: now,
            leader_leo_then: leader_leo,
            caught_up_at,
        };
        self.followers.insert(follower, follower_state);
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
                Some(f) => hw = hw.min(f.leo),
                None => hw = hw.min(current),
            }
        }
        hw.max(current.min(leader_leo))
    }

    /// Whether `follower` (outside the ISR) has caught up enough to join it: its log reaches
    /// the high watermark and the start of the current leader epoch, so it holds every
    /// acknowledged record and nothing from an older leader that this one overwrote. Returns
    /// the broker epoch it fetched under.
    pub fn eligible_for_isr(
        &self,
        follower: BrokerId,
        high_watermark: Offset,
        epoch_start: Offset,
    ) -> Option<i64> {
        let f = self.followers.get(&follower)?;
        (f.leo >= high_watermark && f.leo >= epoch_start).then_some(f.broker_epoch)
    }

    /// ISR members (other than the leader) that have not been caught up for longer than
    /// `max_lag` at `now` (Kafka's `replica.lag.time.max.ms`).
    pub fn laggards(
        &self,
        leader: BrokerId,
        isr: &[BrokerId],
        now: Instant,
        max_lag: Duration,
    ) -> Vec<BrokerId> {
        isr.iter()
            .copied()
            .filter(|member| *member != leader)
            .filter(|member| {
                let caught = self
                    .followers
                    .get(member)
                    .and_then(|f| f.caught_up_at)
                    .unwrap_or(self.started_at);
                now.saturating_duration_since(caught) > max_lag
            })
            .collect()
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

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn the_high_watermark_is_the_slowest_isr_member() {
        let t0 = Instant::now();
        let mut progress = LeaderProgress::new(t0);
        let isr = [b(1), b(2), b(3)];
        // Nobody fetched yet: the high watermark stays put.
        assert_eq!(progress.high_watermark(b(1), o(10), &isr, o(4)), o(4));
        progress.record_fetch(b(2), 7, o(8), o(10), t0);
        progress.record_fetch(b(3), 7, o(6), o(10), t0);
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
        let t0 = Instant::now();
        let mut progress = LeaderProgress::new(t0);
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(0)),
            None,
            "never fetched"
        );
        progress.record_fetch(b(2), 42, o(4), o(5), t0);
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(0)),
            None,
            "behind the high watermark"
        );
        progress.record_fetch(b(2), 42, o(5), o(5), t0);
        assert_eq!(progress.eligible_for_isr(b(2), o(5), o(0)), Some(42));
        assert_eq!(
            progress.eligible_for_isr(b(2), o(5), o(9)),
            None,
            "before this leader's epoch"
        );
    }

    #[test]
    fn followers_that_stop_catching_up_become_laggards() {
        let t0 = Instant::now();
        let lag = Duration::from_millis(1000);
        let mut progress = LeaderProgress::new(t0);
        let isr = [b(1), b(2), b(3)];
        // Nobody fetched: members count as caught up when the leadership began.
        assert!(progress.laggards(b(1), &isr, at(t0, 900), lag).is_empty());
        assert_eq!(
            progress.laggards(b(1), &isr, at(t0, 1100), lag),
            [b(2), b(3)]
        );
        // Broker 2 keeps reaching the log end; broker 3 fetches but stays behind.
        progress.record_fetch(b(2), 1, o(10), o(10), at(t0, 1000));
        progress.record_fetch(b(3), 1, o(2), o(10), at(t0, 1000));
        progress.record_fetch(b(3), 1, o(5), o(20), at(t0, 1500));
        assert_eq!(progress.laggards(b(1), &isr, at(t0, 1600), lag), [b(3)]);
        // Reaching where the leader was at its previous fetch counts as caught up back then.
        progress.record_fetch(b(3), 1, o(20), o(30), at(t0, 1700));
        assert_eq!(progress.laggards(b(1), &isr, at(t0, 2400), lag), [b(2)]);
        assert_eq!(
            progress.laggards(b(1), &isr, at(t0, 2600), lag),
            [b(2), b(3)]
        );
    }
}
