//! The coordinator's Prometheus metrics: the groups it owns by state, their members,
//! rebalances (group epoch bumps), and consumer lag per group and partition, in records and in
//! seconds (the age of the first unconsumed record).
//!
//! Rebalances are counted as they happen; groups and lag are sampled every
//! `lag-sample-interval` by [`run_sampler`], because lag needs a call to each partition's
//! leader. A partition that leaves a group, or a group this coordinator no longer owns,
//! disappears at the next sample.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strom_proto::coordinator::v1 as pb;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::runtime::Coordinator;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: i32,
}

/// The coordinator's metric families; cheap to clone (clones share the values).
#[derive(Debug, Clone, Default)]
pub struct CoordinatorMetrics {
    groups: Family<StateLabels, Gauge>,
    members: Gauge,
    rebalances: Family<GroupLabels, Counter>,
    lag_records: Family<LagLabels, Gauge>,
    lag_seconds: Family<LagLabels, Gauge<f64, AtomicU64>>,
}

/// Every state a group can be in, for zero-filled gauges.
const STATES: [pb::GroupState; 4] = [
    pb::GroupState::Empty,
    pb::GroupState::Assigning,
    pb::GroupState::Reconciling,
    pb::GroupState::Stable,
];

fn state_name(state: pb::GroupState) -> &'static str {
    match state {
        pb::GroupState::Empty => "empty",
        pb::GroupState::Assigning => "assigning",
        pb::GroupState::Reconciling => "reconciling",
        pb::GroupState::Stable => "stable",
        _ => "unknown",
    }
}

impl CoordinatorMetrics {
    /// Registers every family on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "strom_coordinator_groups",
            "Consumer groups this coordinator owns, by state",
            self.groups.clone(),
        );
        registry.register(
            "strom_coordinator_group_members",
            "Members of the groups this coordinator owns",
            self.members.clone(),
        );
        registry.register(
            "strom_coordinator_rebalances",
            "Group epoch bumps (a member joined, left, expired or changed its subscription)",
            self.rebalances.clone(),
        );
        registry.register(
            "strom_consumer_group_lag",
            "Records between a group's committed offset and the high watermark",
            self.lag_records.clone(),
        );
        registry.register(
            "strom_consumer_group_lag_seconds",
            "Age of the first record a group has not committed (0 when caught up)",
            self.lag_seconds.clone(),
        );
    }

    /// Counts a rebalance of `group`.
    pub(crate) fn rebalanced(&self, group: &str) {
        self.rebalances
            .get_or_create(&GroupLabels {
                group: group.to_owned(),
            })
            .inc();
    }

    /// Replaces the sampled gauges with `descriptions` (the groups owned right now).
    pub(crate) fn sampled(&self, descriptions: &[pb::GroupDescription]) {
        for state in STATES {
            let count = descriptions.iter().filter(|d| d.state() == state).count();
            self.groups
                .get_or_create(&StateLabels {
                    state: state_name(state),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let members: usize = descriptions.iter().map(|d| d.members.len()).sum();
        self.members.set(i64::try_from(members).unwrap_or(i64::MAX));
        self.lag_records.clear();
        self.lag_seconds.clear();
        for description in descriptions {
            for topic in &description.topics {
                for partition in &topic.partitions {
                    let labels = LagLabels {
                        group: description.group_id.clone(),
                        topic: topic.topic.clone(),
                        partition: partition.partition,
                    };
                    if let Some(records) = partition.lag_records {
                        self.lag_records.get_or_create(&labels).set(records);
                    }
                    if let Some(ms) = partition.lag_ms {
                        #[allow(clippy::cast_precision_loss)]
                        let seconds = ms as f64 / 1000.0;
                        self.lag_seconds.get_or_create(&labels).set(seconds);
                    }
                }
            }
        }
    }
}

/// Samples the owned groups and their lag every `every`, until `shutdown`.
pub async fn run_sampler(coordinator: Coordinator, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let mut descriptions = Vec::new();
        for group in coordinator.owned_groups() {
            let described = tokio::select! {
                () = shutdown.cancelled() => return,
                described = coordinator.describe_group(&group, true) => described,
            };
            match described {
                Ok(description) => descriptions.push(description),
                Err(error) => debug!(group, %error, "group not sampled"),
            }
        }
        coordinator.metrics().sampled(&descriptions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_replace_lag_and_count_states() {
        let metrics = CoordinatorMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let row = |partition, lag, ms| pb::GroupPartitionOffset {
            partition,
            lag_records: Some(lag),
            lag_ms: Some(ms),
            ..Default::default()
        };
        let described = pb::GroupDescription {
            group_id: "billing".into(),
            state: pb::GroupState::Stable.into(),
            topics: vec![pb::GroupTopicOffsets {
                topic: "orders".into(),
                partitions: vec![row(0, 5, 1500), row(1, 0, 0)],
            }],
            ..Default::default()
        };
        metrics.sampled(&[described]);
        metrics.rebalanced("billing");
        let render = || {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        let text = render();
        for line in [
            "strom_coordinator_groups{state=\"stable\"} 1",
            "strom_coordinator_groups{state=\"empty\"} 0",
            "strom_coordinator_rebalances_total{group=\"billing\"} 1",
            "strom_consumer_group_lag{group=\"billing\",topic=\"orders\",partition=\"0\"} 5",
            "strom_consumer_group_lag_seconds{group=\"billing\",topic=\"orders\",partition=\"0\"} 1.5",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        metrics.sampled(&[]);
        let text = render();
        assert!(!text.contains("strom_consumer_group_lag{"), "{text}");
        assert!(text.contains("strom_coordinator_groups{state=\"stable\"} 0"));
    }
}
