//! Shrinking the ISR of led partitions when followers fall behind for longer than
//! `replica-lag-time-max` (Kafka's `replica.lag.time.max.ms`), and giving up leadership of
//! partitions whose local log a read found damaged.

use std::time::Duration;

use strom_types::BrokerId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::isr::IsrProposals;
use crate::replicas::{Replicas, Role};
use strom_meta::MetadataCache;

/// Checks every led partition every `max_lag / 2` until `shutdown`.
pub async fn run_lag_checker(
    me: BrokerId,
    replicas: Replicas,
    cache: MetadataCache,
    proposals: IsrProposals,
    max_lag: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(max_lag / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let state = cache.snapshot();
        for replica in replicas.snapshot().into_values() {
            if !matches!(replica.role, Role::Leader(_)) {
                continue;
            }
            if let Ok(Some(damaged)) = replica.log.damaged_from() {
                // Nothing is served from the damage on; an in-sync follower takes over, and
                // this replica fetches the damaged batches again as its follower.
                warn!(
                    partition = %replica.partition,
                    offset = damaged.get(),
                    "the local log is damaged; giving up leadership"
                );
                proposals.propose_resignation(&replica, me, &state);
                continue;
            }
            let laggards =
                replica.with_progress(|p| p.laggards(me, &replica.record.isr, now, max_lag));
            if !laggards.is_empty() {
                info!(
                    partition = %replica.partition,
                    laggards = ?laggards.iter().map(|b| b.get()).collect::<Vec<_>>(),
                    "followers fell behind; proposing a smaller ISR"
                );
                proposals.propose_shrink(&replica, &laggards, &state);
            }
        }
    }
}
