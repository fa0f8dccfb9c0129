//! [`LeaseKeeper`]: keeps a lease alive and says, clearly and early, when it is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::store::{LeaseId, MetaStore};
use crate::{Error, Result};

/// The shortest pause between failed keep-alive attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Keeps one lease alive in the background.
///
/// The lease counts as **lost** as soon as the store says it is gone, or when no keep-alive has
/// succeeded for the lease's TTL minus a safety margin, measured from when the last successful
/// keep-alive was *sent*. The store can only expire the lease later than that, so a holder that
/// stops acting on [`LeaseKeeper::lost`] has stopped before anyone else can take over its role.
#[derive(Debug)]
pub struct LeaseKeeper {
    store: Arc<dyn MetaStore>,
    id: LeaseId,
    ttl: Duration,
    lost: CancellationToken,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Grants a lease of `ttl` and starts keeping it alive.
    pub async fn grant(store: Arc<dyn MetaStore>, ttl: Duration) -> Result<Self> {
        let sent = Instant::now();
        let grant = store.grant_lease(ttl).await?;
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_alive(
            store.clone(),
            grant.id,
            grant.ttl,
            sent + usable(grant.ttl),
            lost.clone(),
            stop.clone(),
        ));
        debug!(lease = %grant.id, ttl_ms = grant.ttl.as_millis() as u64, "lease granted");
        Ok(Self {
            store,
            id: grant.id,
            ttl: grant.ttl,
            lost,
            stop,
            task,
        })
    }

    /// The lease id, to attach keys to.
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// The TTL the store granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token cancelled once the lease is lost (or may have been).
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Whether the lease is lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Stops keeping the lease alive and revokes it, deleting the keys attached to it.
    pub async fn revoke(self) -> Result<()> {
        self.stop.cancel();
        self.lost.cancel();
        self.store.revoke_lease(self.id).await
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// The part of a TTL the holder may count on: the TTL less a margin for scheduling delays.
fn usable(ttl: Duration) -> Duration {
    ttl.saturating_sub((ttl / 10).min(Duration::from_secs(1)))
}

async fn keep_alive(
    store: Arc<dyn MetaStore>,
    id: LeaseId,
    ttl: Duration,
    mut deadline: Instant,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let interval = ttl / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        loop {
            let sent = Instant::now();
            if sent >= deadline {
                warn!(lease = %id, "no keep-alive succeeded within the lease TTL; lease lost");
                lost.cancel();
                return;
            }
            let attempt = tokio::select! {
                () = stop.cancelled() => return,
                attempt = tokio::time::timeout(deadline - sent, store.keep_alive(id)) => attempt,
            };
            match attempt {
                Ok(Ok(granted)) => {
                    deadline = sent + usable(granted);
                    break;
                }
                Ok(Err(Error::LeaseExpired { .. })) => {
                    warn!(lease = %id, "the metadata store reports the lease expired; lease lost");
                    lost.cancel();
                    return;
                }
                Ok(Err(error)) => {
                    warn!(lease = %id, %error, "keep-alive failed; retrying");
                    let pause = RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                Err(_elapsed) => {}
            }
        }
    }
}
