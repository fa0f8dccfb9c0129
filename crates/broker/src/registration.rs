//! Keeps this broker registered under a lease and publishes its broker epoch.

use std::time::Duration;

use strom_meta::records::BrokerRegistration;
use strom_meta::{ClusterMeta, LeaseKeeper};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The pause between registration attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Registers the broker, re-registers with a new lease whenever the old one is lost, and
/// publishes the current broker epoch (`None` while unregistered). While it is `None` the
/// broker must not act as a leader: its lease may have lapsed and a successor may be elected.
pub async fn run(
    meta: ClusterMeta,
    registration: BrokerRegistration,
    ttl: Duration,
    epoch: watch::Sender<Option<i64>>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let keeper = match LeaseKeeper::grant(meta.store().clone(), ttl).await {
            Ok(keeper) => keeper,
            Err(error) => {
                warn!(%error, "cannot get a registration lease; retrying");
                pause(&shutdown).await;
                continue;
            }
        };
        let Some(registered) = register(&meta, &registration, &keeper, &shutdown).await else {
            if shutdown.is_cancelled() {
                let _ = keeper.revoke().await;
            }
            continue;
        };
        info!(
            broker = registration.id.get(),
            broker_epoch = registered,
            "registered"
        );
        epoch.send_replace(Some(registered));
        let lost = keeper.lost();
        tokio::select! {
            () = shutdown.cancelled() => {
                epoch.send_replace(None);
                if let Err(error) = keeper.revoke().await {
                    warn!(%error, "could not revoke the registration lease on shutdown");
                }
                return;
            }
            () = lost.cancelled() => {
                warn!(broker = registration.id.get(), "registration lease lost; no longer acting as leader");
                epoch.send_replace(None);
            }
        }
    }
}

/// Registers under `keeper`'s lease, waiting while a previous registration of this id (e.g.
/// of a process that was killed) has not expired. `None` when the lease was lost or on
/// shutdown.
async fn register(
    meta: &ClusterMeta,
    registration: &BrokerRegistration,
    keeper: &LeaseKeeper,
    shutdown: &CancellationToken,
) -> Option<i64> {
    let mut waiting_logged = false;
    loop {
        if shutdown.is_cancelled() || keeper.is_lost() {
            return None;
        }
        match meta.register_broker(registration, keeper.id()).await {
            Ok(Some(epoch)) => return Some(epoch),
            Ok(None) => {
                if !waiting_logged {
                    info!(
                        broker = registration.id.get(),
                        "broker id still registered by an earlier process; waiting for its lease to expire"
                    );
                    waiting_logged = true;
                }
            }
            Err(error) => warn!(%error, "registration failed; retrying"),
        }
        pause(shutdown).await;
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(RETRY_PAUSE) => {}
    }
}
