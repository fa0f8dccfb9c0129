//! The periodic sweep over owned groups: expels members whose session or revocation deadline
//! passed, and picks up topic changes (new partitions, newly matching topics) for groups whose
//! members are all idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Coordinator, GroupSlot};

/// How often the sweep runs.
const TICK: Duration = Duration::from_millis(200);

impl Coordinator {
    /// Runs the sweep until `shutdown`.
    pub(super) async fn expire_sessions(self, shutdown: CancellationToken) {
        let mut last = Instant::now();
        let mut topics_seen = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            let now = Instant::now();
            // A sweep far later than scheduled means this process was stalled: members were
            // not silent, the coordinator was, so their deadlines move by the stall.
            let stall = now.duration_since(last).saturating_sub(TICK * 5);
            last = now;
            let version = *self.inner.cache.changes().borrow();
            let topics_changed = topics_seen != Some(version);
            topics_seen = Some(version);
            let slots: Vec<Arc<GroupSlot>> = self.groups().values().cloned().collect();
            for slot in slots {
                if let Err(error) = self.sweep(&slot, now, stall, topics_changed).await {
                    warn!(group = slot.name(), %error, "group sweep failed");
                }
            }
        }
    }

    async fn sweep(
        &self,
        slot: &Arc<GroupSlot>,
        now: Instant,
        stall: Duration,
        topics_changed: bool,
    ) -> crate::Result<()> {
        let mut runtime = slot.runtime.lock().await;
        if !stall.is_zero() {
            runtime.extend(stall);
        }
        let expired = runtime.expired(now);
        if expired.is_empty() && !topics_changed {
            return Ok(());
        }
        let view = self.topics();
        let mut next = runtime.group.clone();
        for member in &expired {
            info!(
                group = slot.name(),
                member, "member expelled: session or rebalance timeout"
            );
            next.remove_member(member);
        }
        next.refresh(&view, &self.inner.settings.limits);
        if next == runtime.group {
            return Ok(());
        }
        self.persist(slot, &next).await?;
        if next.epoch != runtime.group.epoch {
            self.inner.metrics.rebalanced(slot.name());
        }
        runtime.group = next;
        runtime.stored = true;
        runtime.track(now);
        Ok(())
    }
}
