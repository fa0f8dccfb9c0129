//! The campaign loop: standby until elected, active until the role is lost, and again.

use std::sync::Arc;
use std::time::Duration;

use strom_meta::records::{self, ControllerRecord};
use strom_meta::{ClusterMeta, Election, LeaseKeeper};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::active::{Active, StepDown};
use super::{Command, ShellSettings};
use crate::metrics::ControllerMetrics;

/// Requests queued for the active controller before callers are pushed back.
const COMMAND_QUEUE: usize = 256;

/// The pause before campaigning again after the store failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// This process's current role, published to the gRPC services.
#[derive(Debug, Clone)]
pub enum Role {
    /// Waiting in the election; requests are answered with NOT_CONTROLLER.
    Standby,
    /// The active controller at `epoch`; requests go to `commands`.
    Active {
        /// The controller epoch.
        epoch: i64,
        /// The active controller's request queue.
        commands: mpsc::Sender<Command>,
    },
}

/// Runs one controller process's part in the election.
#[derive(Debug)]
pub struct ControllerRuntime {
    settings: Arc<ShellSettings>,
    meta: ClusterMeta,
    election: Election,
    role: watch::Sender<Role>,
    metrics: ControllerMetrics,
}

impl ControllerRuntime {
    /// A runtime for `settings` over `meta`; starts as a standby.
    pub fn new(settings: ShellSettings, meta: ClusterMeta) -> Self {
        let election = Election::new(meta.store().clone(), meta.keys().controller());
        let (role, _) = watch::channel(Role::Standby);
        Self {
            settings: Arc::new(settings),
            meta,
            election,
            role,
            metrics: ControllerMetrics::default(),
        }
    }

    /// This controller's metrics, to register on the process's registry.
    pub fn metrics(&self) -> &ControllerMetrics {
        &self.metrics
    }

    /// The role as it changes, for the gRPC services.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// The controller election, for finding the active controller.
    pub fn election(&self) -> Election {
        self.election.clone()
    }

    /// Campaigns, serves while active, and campaigns again after losing the role, until
    /// `shutdown`. On shutdown an active controller resigns so a standby takes over at once.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let keeper = match LeaseKeeper::grant(
                self.meta.store().clone(),
                self.settings.lease_ttl,
            )
            .await
            {
                Ok(keeper) => keeper,
                Err(error) => {
                    warn!(%error, "cannot get a controller lease; retrying");
                    pause(&shutdown).await;
                    continue;
                }
            };
            if self.serve_term(&keeper, &shutdown).await == StepDown::Shutdown {
                if let Err(error) = keeper.revoke().await {
                    warn!(%error, "could not revoke the controller lease on shutdown");
                }
                return;
            }
            // Superseded or failed: drop the lease (a superseded holder must not keep it) and
            // campaign again with a fresh one.
            if let Err(error) = keeper.revoke().await {
                warn!(%error, "could not revoke the old controller lease");
            }
        }
    }

    /// One term under one lease: campaign, then serve while active.
    async fn serve_term(&self, keeper: &LeaseKeeper, shutdown: &CancellationToken) -> StepDown {
        let record = ControllerRecord {
            id: self.settings.id,
            address: self.settings.advertised_address.clone(),
        };
        let value = match records::encode(&record) {
            Ok(value) => value,
            Err(error) => {
                warn!(%error, "cannot encode the controller record");
                return StepDown::Shutdown;
            }
        };
        let lost = keeper.lost();
        let campaign = tokio::select! {
            () = lost.cancelled() => return StepDown::Superseded,
            campaign = self.election.campaign(value, keeper.id(), shutdown) => campaign,
        };
        let leadership = match campaign {
            Ok(leadership) => leadership,
            Err(strom_meta::Error::Cancelled) => return StepDown::Shutdown,
            Err(error) => {
                warn!(%error, "campaign failed");
                pause(shutdown).await;
                return StepDown::Superseded;
            }
        };
        let loaded = Active::load(
            self.settings.clone(),
            self.meta.clone(),
            self.election.clone(),
            leadership.clone(),
            self.metrics.clone(),
        )
        .await;
        let active = match loaded {
            Ok(active) => active,
            Err(error) => {
                warn!(%error, "cannot load cluster state; resigning");
                let _ = self.election.resign(&leadership).await;
                pause(shutdown).await;
                return StepDown::Superseded;
            }
        };
        let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
        self.role.send_replace(Role::Active {
            epoch: leadership.epoch(),
            commands,
        });
        self.metrics.became_active(leadership.epoch());
        let outcome = active.run(queue, lost, shutdown.clone()).await;
        self.role.send_replace(Role::Standby);
        self.metrics.became_standby();
        match outcome {
            StepDown::Shutdown => {
                info!(
                    epoch = leadership.epoch(),
                    "resigning as controller on shutdown"
                );
                if let Err(error) = self.election.resign(&leadership).await {
                    warn!(%error, "could not resign; the lease expiry will free the role");
                }
            }
            StepDown::Superseded => {
                warn!(
                    epoch = leadership.epoch(),
                    "lost the controller role; back to standby"
                );
            }
        }
        outcome
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(RETRY_PAUSE) => {}
    }
}
