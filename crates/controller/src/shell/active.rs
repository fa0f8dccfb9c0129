//! The active controller: one task that owns the view, applies watch updates, answers
//! requests and performs the reducer's actions as fenced writes, until it loses its role.

use std::sync::Arc;
use std::time::Duration;

use strom_meta::{ClusterMeta, Election, Leadership, PrefixWatcher, Written};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::view_sync::MirroredView;
use super::{Command, ShellSettings};
use crate::metrics::ControllerMetrics;
use crate::{Action, ReconcileOptions, reconcile};

/// How soon a reconcile pass that could not write is retried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why the active controller stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepDown {
    /// The process is shutting down.
    Shutdown,
    /// The lease is lost or another controller holds the election key.
    Superseded,
}

/// The state of the active controller.
pub(crate) struct Active {
    pub(super) settings: Arc<ShellSettings>,
    pub(super) meta: ClusterMeta,
    pub(super) election: Election,
    pub(super) leadership: Leadership,
    pub(super) mirror: MirroredView,
    brokers: PrefixWatcher,
    topics: PrefixWatcher,
    partitions: PrefixWatcher,
    /// Set when a write was rejected because this controller no longer holds its role.
    pub(super) superseded: bool,
    metrics: ControllerMetrics,
}

impl Active {
    /// Lists the cluster state and prepares to run.
    pub(crate) async fn load(
        settings: Arc<ShellSettings>,
        meta: ClusterMeta,
        election: Election,
        leadership: Leadership,
        metrics: ControllerMetrics,
    ) -> strom_meta::Result<Self> {
        let keys = meta.keys().clone();
        let store = meta.store().clone();
        let every = settings.resync_interval;
        let brokers = PrefixWatcher::start(store.clone(), keys.brokers(), every).await?;
        let topics = PrefixWatcher::start(store.clone(), keys.topics(), every).await?;
        let partitions = PrefixWatcher::start(store, keys.all_partitions(), every).await?;
        let mut mirror = MirroredView::default();
        let initial = |w: &PrefixWatcher| -> Vec<strom_meta::Change> {
            w.snapshot()
                .values()
                .cloned()
                .map(strom_meta::Change::Put)
                .collect()
        };
        let _ = mirror.apply_brokers(&keys, &initial(&brokers));
        mirror.apply_topics(&initial(&topics));
        mirror.apply_partitions(&keys, &initial(&partitions));
        Ok(Self {
            settings,
            meta,
            election,
            leadership,
            mirror,
            brokers,
            topics,
            partitions,
            superseded: false,
            metrics,
        })
    }

    /// Runs until the lease is lost, a write shows another controller took over, or shutdown.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        lease_lost: CancellationToken,
        shutdown: CancellationToken,
    ) -> StepDown {
        info!(
            epoch = self.leadership.epoch(),
            "active controller is serving"
        );
        let keys = self.meta.keys().clone();
        let mut preferred_at = self
            .settings
            .preferred_leader_interval
            .map(|i| Instant::now() + i);
        let mut retry_at: Option<Instant> = Some(Instant::now());
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            let mut restore_preferred = false;
            tokio::select! {
                () = shutdown.cancelled() => return StepDown::Shutdown,
                () = lease_lost.cancelled() => return StepDown::Superseded,
                update = self.brokers.next() => {
                    let restarted = self.mirror.apply_brokers(&keys, &update.changes);
                    if !restarted.is_empty() {
                        self.fence_restarted(&restarted).await;
                    }
                }
                update = self.topics.next() => self.mirror.apply_topics(&update.changes),
                update = self.partitions.next() => {
                    self.mirror.apply_partitions(&keys, &update.changes);
                }
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return StepDown::Shutdown,
                },
                () = tokio::time::sleep_until(preferred_at.unwrap_or(far)) => {
                    restore_preferred = true;
                    preferred_at = self.settings.preferred_leader_interval.map(|i| Instant::now() + i);
                }
                () = tokio::time::sleep_until(retry_at.unwrap_or(far)) => {}
            }
            retry_at = match self.reconcile(restore_preferred).await {
                Ok(()) => None,
                Err(()) => Some(Instant::now() + RETRY_AFTER),
            };
            self.metrics.observe(&self.mirror.view);
            if self.superseded {
                return StepDown::Superseded;
            }
        }
    }

    /// Handles brokers that restarted between two looks: one reconcile pass as if they were
    /// gone (leaderships move, they leave ISRs), then they count as live again and rejoin as
    /// followers.
    async fn fence_restarted(&mut self, restarted: &[strom_types::BrokerId]) {
        let mut held = Vec::new();
        for id in restarted {
            if let Some(broker) = self.mirror.view.brokers.remove(id) {
                info!(
                    broker = id.get(),
                    "broker restarted; treating its old incarnation as failed"
                );
                held.push((*id, broker));
            }
        }
        let _ = self.reconcile(false).await;
        self.mirror.view.brokers.extend(held);
    }

    /// Runs the reducer and performs its actions; `Err` when some write must be retried.
    pub(super) async fn reconcile(&mut self, restore_preferred_leaders: bool) -> Result<(), ()> {
        let options = ReconcileOptions {
            restore_preferred_leaders,
        };
        let actions = reconcile(&self.mirror.view, &options);
        let mut outcome = Ok(());
        for action in actions {
            if self.perform(action).await.is_err() {
                outcome = Err(());
            }
            if self.superseded {
                return Err(());
            }
        }
        outcome
    }

    async fn perform(&mut self, action: Action) -> Result<(), ()> {
        let written = match &action {
            Action::UpdatePartition {
                topic,
                partition,
                expected_mod_revision,
                record,
                reason,
            } => {
                info!(
                    topic_id = %topic, partition = partition.get(), ?reason,
                    leader = ?record.leader.map(|b| b.get()), leader_epoch = record.leader_epoch.get(),
                    isr = ?record.isr.iter().map(|b| b.get()).collect::<Vec<_>>(),
                    "updating partition"
                );
                self.meta
                    .update_partition(
                        &self.leadership,
                        *topic,
                        *partition,
                        *expected_mod_revision,
                        record,
                    )
                    .await
            }
            Action::DeleteOrphanPartitions { topic } => {
                // Only delete once the topics watch has caught up past every orphan's write, so a
                // topic whose record is merely not seen yet is never mistaken for an orphan.
                let caught_up = self
                    .mirror
                    .view
                    .partitions
                    .range((*topic, strom_types::PartitionId::new(0))..)
                    .take_while(|((t, _), _)| t == topic)
                    .all(|(_, state)| state.mod_revision < self.topics.revision());
                if !caught_up {
                    return Err(());
                }
                info!(topic_id = %topic, "deleting partitions of a topic that does not exist");
                self.meta.delete_partitions(&self.leadership, *topic).await
            }
        };
        match written {
            Ok(Written::Applied { revision }) => {
                if let Action::UpdatePartition { reason, .. } = &action {
                    self.metrics.partition_updated(*reason);
                }
                self.apply_locally(action, revision);
                Ok(())
            }
            Ok(Written::Rejected) => {
                self.check_still_active().await;
                Err(())
            }
            Err(error) => {
                warn!(%error, "controller write failed; will retry");
                Err(())
            }
        }
    }

    /// Applies a write to the view at once, so the next pass does not repeat it while the
    /// watch catches up (the watch then delivers the same revision, which changes nothing).
    fn apply_locally(&mut self, action: Action, revision: i64) {
        match action {
            Action::UpdatePartition {
                topic,
                partition,
                record,
                ..
            } => {
                self.mirror
                    .set_partition((topic, partition), record, revision);
            }
            Action::DeleteOrphanPartitions { topic } => {
                self.mirror.view.partitions.retain(|(t, _), _| *t != topic);
            }
        }
    }

    /// After a rejected write: the NOT_CONTROLLER error to answer with when another controller
    /// has taken over, `None` when the view was merely stale.
    pub(super) async fn superseded_error(&mut self) -> Option<crate::Error> {
        self.check_still_active().await;
        self.superseded.then_some(crate::Error::NotController {
            active_id: None,
            active_address: None,
        })
    }

    /// After a rejected write: is it a stale view, or has another controller taken over?
    pub(super) async fn check_still_active(&mut self) {
        match self.election.is_current(&self.leadership).await {
            Ok(true) => {}
            Ok(false) => {
                warn!(
                    epoch = self.leadership.epoch(),
                    "another controller took over; stepping down"
                );
                self.superseded = true;
            }
            Err(error) => warn!(%error, "cannot check the controller election"),
        }
    }
}
