//! The broker's Prometheus metrics: traffic per topic, produce and fetch requests (count,
//! errors by code, latency), replication traffic, ISR changes, and per-partition log state.
//!
//! Counters and histograms are updated on the request paths; the partition gauges are
//! computed from the local replicas when scraped, so a deleted partition disappears from the
//! next scrape.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_server_kit::metrics::{MetricsRegistry, latency_buckets};

use crate::replicas::{Replicas, Role};

/// The data-plane APIs timed per request (unary calls and each message of a stream alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Produce and each ProduceStream request.
    Produce,
    /// Fetch and each FetchStream response.
    Fetch,
    /// FollowerFetch.
    FollowerFetch,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Fetch => "fetch",
            Self::FollowerFetch => "follower_fetch",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiErrorLabels {
    api: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The broker's metric families; cheap to clone (clones share the values).
#[derive(Debug, Clone)]
pub struct BrokerMetrics {
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    replication_bytes_out: Counter,
    requests: Family<ApiLabels, Counter>,
    errors: Family<ApiErrorLabels, Counter>,
    request_seconds: Family<ApiLabels, Histogram, fn() -> Histogram>,
    isr_shrinks: Counter,
    isr_expands: Counter,
    partitions: Gauge,
    leader_partitions: Gauge,
    under_replicated: Gauge,
    log_size: Family<PartitionLabels, Gauge>,
    log_segments: Family<PartitionLabels, Gauge>,
    log_start: Family<PartitionLabels, Gauge>,
    log_end: Family<PartitionLabels, Gauge>,
    high_watermark: Family<PartitionLabels, Gauge>,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self {
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            replication_bytes_out: Counter::default(),
            requests: Family::default(),
            errors: Family::default(),
            request_seconds: Family::new_with_constructor(histogram),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            partitions: Gauge::default(),
            leader_partitions: Gauge::default(),
            under_replicated: Gauge::default(),
            log_size: Family::default(),
            log_segments: Family::default(),
            log_start: Family::default(),
            log_end: Family::default(),
            high_watermark: Family::default(),
        }
    }
}

impl BrokerMetrics {
    /// Registers every family, and the hook that fills the partition gauges from `replicas`.
    pub fn register(&self, metrics: &mut MetricsRegistry, replicas: Replicas) {
        let r = metrics.registry();
        r.register(
            "strom_broker_bytes_in",
            "Record bytes appended by producers, per topic",
            self.bytes_in.clone(),
        );
        r.register(
            "strom_broker_records_in",
            "Records appended by producers, per topic",
            self.records_in.clone(),
        );
        r.register(
            "strom_broker_bytes_out",
            "Record bytes sent to consumers, per topic",
            self.bytes_out.clone(),
        );
        r.register(
            "strom_broker_replication_bytes_out",
            "Record bytes sent to followers",
            self.replication_bytes_out.clone(),
        );
        r.register(
            "strom_broker_requests",
            "Data-plane requests served (each message of a stream counts)",
            self.requests.clone(),
        );
        r.register(
            "strom_broker_request_errors",
            "Partition or request errors answered, by error code",
            self.errors.clone(),
        );
        r.register(
            "strom_broker_request_duration_seconds",
            "Data-plane request latency, from arrival to answer (acks=all and long polls included)",
            self.request_seconds.clone(),
        );
        r.register(
            "strom_broker_isr_shrinks",
            "ISR shrinks this broker proposed as leader and the controller applied",
            self.isr_shrinks.clone(),
        );
        r.register(
            "strom_broker_isr_expands",
            "ISR expansions this broker proposed as leader and the controller applied",
            self.isr_expands.clone(),
        );
        r.register(
            "strom_broker_partitions",
            "Partition replicas held by this broker",
            self.partitions.clone(),
        );
        r.register(
            "strom_broker_leader_partitions",
            "Partitions this broker leads",
            self.leader_partitions.clone(),
        );
        r.register(
            "strom_broker_under_replicated_partitions",
            "Partitions this broker leads whose ISR is smaller than their replica set",
            self.under_replicated.clone(),
        );
        r.register(
            "strom_broker_log_size_bytes",
            "Bytes of log segments on disk, per partition",
            self.log_size.clone(),
        );
        r.register(
            "strom_broker_log_segments",
            "Log segments on disk, per partition",
            self.log_segments.clone(),
        );
        r.register(
            "strom_broker_log_start_offset",
            "First offset in the log, per partition",
            self.log_start.clone(),
        );
        r.register(
            "strom_broker_log_end_offset",
            "Offset the next appended record gets, per partition",
            self.log_end.clone(),
        );
        r.register(
            "strom_broker_high_watermark",
            "Offset up to which records are replicated to the ISR, per partition",
            self.high_watermark.clone(),
        );
        let me = self.clone();
        metrics.on_scrape(move || me.refresh_partitions(&replicas));
    }

    /// Counts a successful leader append.
    pub fn appended(&self, topic: &str, bytes: usize, records: u64) {
        let labels = TopicLabels {
            topic: topic.to_owned(),
        };
        self.bytes_in
            .get_or_create(&labels)
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.records_in.get_or_create(&labels).inc_by(records);
    }

    /// Counts record bytes sent to a consumer.
    pub fn sent(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.bytes_out
                .get_or_create(&TopicLabels {
                    topic: topic.to_owned(),
                })
                .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
        }
    }

    /// Counts record bytes sent to a follower.
    pub fn replicated_out(&self, bytes: usize) {
        self.replication_bytes_out
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    /// Records one answered request of `api`, started at `started`, with its errors.
    pub fn answered<'a>(
        &self,
        api: Api,
        started: Instant,
        errors: impl IntoIterator<Item = &'a PbError>,
    ) {
        let labels = ApiLabels { api: api.name() };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        for error in errors {
            let code = ErrorCode::try_from(error.code).map_or("UNKNOWN", |c| {
                c.as_str_name().trim_start_matches("ERROR_CODE_")
            });
            self.errors
                .get_or_create(&ApiErrorLabels {
                    api: api.name(),
                    code,
                })
                .inc();
        }
    }

    /// Counts an applied ISR change, a shrink or an expansion.
    pub fn isr_changed(&self, shrink: bool) {
        if shrink {
            self.isr_shrinks.inc();
        } else {
            self.isr_expands.inc();
        }
    }

    fn refresh_partitions(&self, replicas: &Replicas) {
        for family in [
            &self.log_size,
            &self.log_segments,
            &self.log_start,
            &self.log_end,
            &self.high_watermark,
        ] {
            family.clear();
        }
        let (mut held, mut leading, mut under) = (0, 0, 0);
        for replica in replicas.snapshot().into_values() {
            held += 1;
            if matches!(replica.role, Role::Leader(_)) {
                leading += 1;
                if replica.record.isr.len() < replica.record.replicas.len() {
                    under += 1;
                }
            }
            let labels = PartitionLabels {
                topic: replica.partition.topic.to_string(),
                partition: replica.partition.partition.get(),
            };
            let log = &replica.log;
            let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            if let Ok(size) = log.size_bytes() {
                self.log_size.get_or_create(&labels).set(as_gauge(size));
            }
            if let Ok(count) = log.segment_count() {
                let count = u64::try_from(count).unwrap_or(u64::MAX);
                self.log_segments
                    .get_or_create(&labels)
                    .set(as_gauge(count));
            }
            if let Ok(offset) = log.log_start_offset() {
                self.log_start.get_or_create(&labels).set(offset.get());
            }
            if let Ok(offset) = log.log_end_offset() {
                self.log_end.get_or_create(&labels).set(offset.get());
            }
            if let Ok(offset) = log.high_watermark() {
                self.high_watermark.get_or_create(&labels).set(offset.get());
            }
        }
        self.partitions.set(held);
        self.leader_partitions.set(leading);
        self.under_replicated.set(under);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_server_kit::metrics::RpcMetrics;

    #[test]
    fn request_and_traffic_counters_render() {
        let metrics = BrokerMetrics::default();
        let mut registry = MetricsRegistry::new("broker", &RpcMetrics::default());
        metrics.register(&mut registry, Replicas::default());
        metrics.appended("orders", 100, 3);
        metrics.sent("orders", 40);
        metrics.sent("orders", 0);
        let error = PbError::new(ErrorCode::NotLeaderOrFollower, "moved");
        metrics.answered(Api::Produce, Instant::now(), [&error]);
        metrics.isr_changed(true);
        let text = registry.render();
        for line in [
            "strom_broker_bytes_in_total{topic=\"orders\"} 100",
            "strom_broker_records_in_total{topic=\"orders\"} 3",
            "strom_broker_bytes_out_total{topic=\"orders\"} 40",
            "strom_broker_requests_total{api=\"produce\"} 1",
            "strom_broker_request_errors_total{api=\"produce\",code=\"NOT_LEADER_OR_FOLLOWER\"} 1",
            "strom_broker_request_duration_seconds_count{api=\"produce\"} 1",
            "strom_broker_isr_shrinks_total 1",
            "strom_broker_isr_expands_total 0",
            "strom_broker_under_replicated_partitions 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
