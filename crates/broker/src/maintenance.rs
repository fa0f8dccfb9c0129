//! Log upkeep on every local replica: time-based flushes (`flush.ms`) every second, and
//! retention (`retention.ms`, `retention.bytes`) every `log-retention-check-interval`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::replicas::Replicas;

/// How often logs are checked for a due `flush.ms` flush.
const FLUSH_CHECK: Duration = Duration::from_secs(1);

/// Runs until `shutdown`.
pub async fn run_log_maintenance(
    replicas: Replicas,
    retention_every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(FLUSH_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention_due = Instant::now() + retention_every;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let retain = Instant::now() >= retention_due;
        if retain {
            retention_due = Instant::now() + retention_every;
        }
        for replica in replicas.snapshot().into_values() {
            let log = Arc::clone(&replica.log);
            let partition = replica.partition.clone();
            let work = tokio::task::spawn_blocking(
                move || -> strom_storage::Result<Option<strom_storage::RetentionOutcome>> {
                    log.flush_if_due()?;
                    if retain {
                        log.apply_retention().map(Some)
                    } else {
                        Ok(None)
                    }
                },
            )
            .await;
            match work {
                Ok(Ok(Some(outcome))) if !outcome.deleted_segments.is_empty() => info!(
                    %partition,
                    segments = outcome.deleted_segments.len(),
                    bytes = outcome.deleted_bytes,
                    log_start = outcome.log_start_offset.get(),
                    "retention deleted old segments"
                ),
                Ok(Ok(_)) => {}
                // A deleted log (its replica went away meanwhile) has nothing left to keep up.
                Ok(Err(strom_storage::Error::Deleted { .. })) => {}
                Ok(Err(error)) => warn!(%partition, %error, "log maintenance failed"),
                Err(error) => warn!(%partition, %error, "log maintenance task failed"),
            }
        }
    }
}
