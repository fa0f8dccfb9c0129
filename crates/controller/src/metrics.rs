//! The controller's Prometheus metrics: whether this process is the active controller and at
//! which epoch, leader elections by kind, and — on the active controller only, from its view
//! of the cluster — live brokers, topics, partitions, offline and under-replicated
//! partitions. A standby reports zeros for the cluster gauges, so summing them over all
//! controllers gives the cluster's value.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::UpdateReason;
use crate::view::ClusterView;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The controller's metric families; cheap to clone (clones share the values).
#[derive(Debug, Clone, Default)]
pub struct ControllerMetrics {
    active: Gauge,
    epoch: Gauge,
    elections: Family<KindLabels, Counter>,
    isr_shrinks: Counter,
    brokers: Gauge,
    topics: Gauge,
    partitions: Gauge,
    offline: Gauge,
    under_replicated: Gauge,
}

impl ControllerMetrics {
    /// Registers every family on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "strom_controller_active",
            "1 while this process is the active controller, else 0",
            self.active.clone(),
        );
        registry.register(
            "strom_controller_epoch",
            "The controller epoch this process holds (0 while standby)",
            self.epoch.clone(),
        );
        registry.register(
            "strom_controller_leader_elections",
            "Partition leader changes written, by kind (clean, unclean, preferred, drain, offline)",
            self.elections.clone(),
        );
        registry.register(
            "strom_controller_isr_shrinks",
            "ISR shrinks written because a member's broker is not live",
            self.isr_shrinks.clone(),
        );
        registry.register(
            "strom_controller_live_brokers",
            "Brokers with a live registration",
            self.brokers.clone(),
        );
        registry.register("strom_controller_topics", "Topics", self.topics.clone());
        registry.register(
            "strom_controller_partitions",
            "Partitions of all topics",
            self.partitions.clone(),
        );
        registry.register(
            "strom_controller_offline_partitions",
            "Partitions without a leader",
            self.offline.clone(),
        );
        registry.register(
            "strom_controller_under_replicated_partitions",
            "Partitions whose ISR is smaller than their replica set",
            self.under_replicated.clone(),
        );
    }

    /// This process became the active controller at `epoch`.
    pub(crate) fn became_active(&self, epoch: i64) {
        self.active.set(1);
        self.epoch.set(epoch);
    }

    /// This process is a standby again.
    pub(crate) fn became_standby(&self) {
        self.active.set(0);
        self.epoch.set(0);
        for gauge in [
            &self.brokers,
            &self.topics,
            &self.partitions,
            &self.offline,
            &self.under_replicated,
        ] {
            gauge.set(0);
        }
    }

    /// A partition record was written for `reason`.
    pub(crate) fn partition_updated(&self, reason: UpdateReason) {
        let kind = match reason {
            UpdateReason::LeaderElection => "clean",
            UpdateReason::UncleanLeaderElection => "unclean",
            UpdateReason::PreferredLeaderElection => "preferred",
            UpdateReason::LeaderOffline => "offline",
            UpdateReason::Drain => "drain",
            UpdateReason::IsrShrink => {
                self.isr_shrinks.inc();
                return;
            }
        };
        self.elections.get_or_create(&KindLabels { kind }).inc();
    }

    /// Refreshes the cluster gauges from the active controller's view.
    pub(crate) fn observe(&self, view: &ClusterView) {
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let offline = view
            .partitions
            .values()
            .filter(|p| p.record.leader.is_none_or(|leader| !view.is_live(leader)))
            .count();
        let under = view
            .partitions
            .values()
            .filter(|p| p.record.isr.len() < p.record.replicas.len())
            .count();
        self.brokers.set(as_gauge(view.brokers.len()));
        self.topics.set(as_gauge(view.topics.len()));
        self.partitions.set(as_gauge(view.partitions.len()));
        self.offline.set(as_gauge(offline));
        self.under_replicated.set(as_gauge(under));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_elections_render() {
        let metrics = ControllerMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.became_active(7);
        metrics.partition_updated(UpdateReason::LeaderElection);
        metrics.partition_updated(UpdateReason::IsrShrink);
        metrics.observe(&ClusterView::default());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "strom_controller_active 1",
            "strom_controller_epoch 7",
            "strom_controller_leader_elections_total{kind=\"clean\"} 1",
            "strom_controller_isr_shrinks_total 1",
            "strom_controller_offline_partitions 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        metrics.became_standby();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("strom_controller_active 0"), "{text}");
    }
}
