//! Registration: the coordinator holds a lease, registers under `coordinators/<id>` with it,
//! and claims groups under it. When the lease is lost (etcd unreachable or this process paused
//! past the TTL), every group is forgotten, since another coordinator may already own it, and
//! a new lease is taken.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use strom_meta::records;
use strom_meta::{LeaseKeeper, Op, Txn};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Coordinator;

/// Pause between failed registration attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

impl Coordinator {
    /// Keeps this coordinator registered until `shutdown`; then revokes the lease so its
    /// groups move to other coordinators at once.
    pub(super) async fn keep_registered(self, shutdown: CancellationToken) {
        loop {
            let keeper = tokio::select! {
                () = shutdown.cancelled() => return,
                keeper = self.register() => keeper,
            };
            let keeper = match keeper {
                Ok(keeper) => keeper,
                Err(error) => {
                    warn!(%error, "coordinator registration failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY_PAUSE) => continue,
                    }
                }
            };
            let lost = keeper.lost();
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.forget_all();
                    if let Err(error) = keeper.revoke().await {
                        warn!(%error, "could not revoke the coordinator lease on shutdown");
                    }
                    return;
                }
                () = lost.cancelled() => {
                    warn!("coordinator lease lost; dropping every group and re-registering");
                    self.forget_all();
                }
            }
        }
    }

    /// Takes a lease and writes the registration under it.
    async fn register(&self) -> strom_meta::Result<LeaseKeeper> {
        let inner = &self.inner;
        let keeper = LeaseKeeper::grant(Arc::clone(&inner.store), inner.settings.lease_ttl).await?;
        let me = &inner.settings.me;
        let txn = Txn::new().then([Op::put_with_lease(
            inner.keys.coordinator(me.id),
            records::encode(me)?,
            keeper.id(),
        )]);
        inner.store.txn(txn).await?;
        *inner.lease.write().unwrap_or_else(PoisonError::into_inner) = Some(keeper.id());
        info!(id = me.id, address = %me.address, lease = %keeper.id(), "coordinator registered");
        Ok(keeper)
    }

    /// Forgets every group and the lease.
    fn forget_all(&self) {
        *self
            .inner
            .lease
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        let slots: Vec<_> = self.groups().drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            slot.mark_dropped();
        }
    }
}
