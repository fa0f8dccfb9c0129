//! [`CoordinatorConfig`]: everything `strom-coordinator` reads from its config layers.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strom_server_kit::metrics::MetricsConfig;
use strom_server_kit::{EtcdConfig, HumanDuration, LoggingConfig, Membership, Validate};

use crate::assignor::{ASSIGNOR_NAMES, DEFAULT_ASSIGNOR};
use crate::group::GroupLimits;

/// The coordinator's configuration: defaults < TOML file < `STROM_COORDINATOR__*` env < `--set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CoordinatorConfig {
    /// This coordinator's id; unique among coordinators.
    pub id: i32,
    /// The cluster name: keys live under `/strom/<cluster>/` in etcd.
    pub cluster: String,
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The `host:port` clients use to reach this coordinator; defaults to `listen` when that is
    /// a specific address.
    pub advertised_address: Option<String>,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// The registration lease TTL: how long the groups of a crashed coordinator stay with it
    /// before another takes them over.
    pub lease_ttl: HumanDuration,
    /// How often each watch re-lists its prefix as a safety net.
    pub resync_interval: HumanDuration,
    /// How long a request may take.
    pub request_timeout: HumanDuration,
    /// Session timeout of members that ask for none.
    pub session_timeout: HumanDuration,
    /// Smallest session timeout a member may ask for.
    pub min_session_timeout: HumanDuration,
    /// Largest session timeout a member may ask for.
    pub max_session_timeout: HumanDuration,
    /// Heartbeat interval of members that own their target. A member learns about a rebalance
    /// at its next heartbeat, so this bounds how fast a group reacts to a join.
    pub heartbeat_interval: HumanDuration,
    /// Heartbeat interval of members moving towards their target.
    pub reconcile_heartbeat_interval: HumanDuration,
    /// The assignor of groups whose members name none: `uniform` or `range`.
    pub default_assignor: String,
    /// Most members in one group.
    pub max_group_size: u32,
    /// Largest metadata string stored with a committed offset, in bytes.
    pub max_offset_metadata: u32,
    /// Most offset-commit transactions in flight to etcd at once; commits arriving meanwhile
    /// are merged into the next transactions.
    pub commit_concurrency: u32,
    /// How often the groups and their lag are sampled for the metrics endpoint.
    pub lag_sample_interval: HumanDuration,
    /// Logging.
    pub logging: LoggingConfig,
    /// The Prometheus endpoint (`GET /metrics`), on port 9104 by default.
    pub metrics: MetricsConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            id: 1,
            cluster: "strom".to_owned(),
            listen: SocketAddr::from(([0, 0, 0, 0], 9094)),
            advertised_address: None,
            etcd: EtcdConfig::default(),
            lease_ttl: HumanDuration(Duration::from_secs(5)),
            resync_interval: HumanDuration(Duration::from_secs(30)),
            request_timeout: HumanDuration(Duration::from_secs(10)),
            session_timeout: HumanDuration(Duration::from_secs(45)),
            min_session_timeout: HumanDuration(Duration::from_secs(6)),
            max_session_timeout: HumanDuration(Duration::from_secs(1800)),
            heartbeat_interval: HumanDuration(Duration::from_secs(1)),
            reconcile_heartbeat_interval: HumanDuration(Duration::from_millis(100)),
            default_assignor: DEFAULT_ASSIGNOR.to_owned(),
            max_group_size: 1000,
            max_offset_metadata: 4096,
            commit_concurrency: 4,
            lag_sample_interval: HumanDuration(Duration::from_secs(15)),
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::on_port(9104),
        }
    }
}

type KitResult<T> = strom_server_kit::Result<T>;

/// Milliseconds of `d` as the i32 the wire uses (validated to fit).
fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Validate for CoordinatorConfig {
    fn validate(&self) -> KitResult<()> {
        use strom_server_kit::Error;
        let membership = Membership {
            id: self.id,
            cluster: &self.cluster,
            lease_ttl: self.lease_ttl.0,
            resync_interval: self.resync_interval.0,
            request_timeout: self.request_timeout.0,
        };
        membership.validate()?;
        self.etcd.validate().map_err(|e| e.nested("etcd"))?;
        let (min, default, max) = (
            self.min_session_timeout.0,
            self.session_timeout.0,
            self.max_session_timeout.0,
        );
        if self.lag_sample_interval.0 < Duration::from_millis(100) {
            return Err(Error::invalid(
                "lag-sample-interval",
                "must be at least 100ms",
            ));
        }
        if min < Duration::from_secs(1) {
            return Err(Error::invalid("min-session-timeout", "must be at least 1s"));
        }
        if !(min <= default && default <= max) {
            return Err(Error::invalid(
                "session-timeout",
                "must lie between min-session-timeout and max-session-timeout",
            ));
        }
        if max > Duration::from_secs(24 * 3600) {
            return Err(Error::invalid("max-session-timeout", "must be at most 24h"));
        }
        let beat = self.heartbeat_interval.0;
        if beat.is_zero() || beat >= min {
            return Err(Error::invalid(
                "heartbeat-interval",
                "must be above 0 and below min-session-timeout",
            ));
        }
        let fast = self.reconcile_heartbeat_interval.0;
        if fast.is_zero() || fast > beat {
            return Err(Error::invalid(
                "reconcile-heartbeat-interval",
                "must be above 0 and at most heartbeat-interval",
            ));
        }
        if !ASSIGNOR_NAMES.contains(&self.default_assignor.as_str()) {
            return Err(Error::invalid(
                "default-assignor",
                "must be uniform or range",
            ));
        }
        if self.max_group_size == 0 {
            return Err(Error::invalid("max-group-size", "must be at least 1"));
        }
        if self.commit_concurrency == 0 || self.commit_concurrency > 64 {
            return Err(Error::invalid(
                "commit-concurrency",
                "must be between 1 and 64",
            ));
        }
        self.logging.validate().map_err(|e| e.nested("logging"))
    }
}

impl CoordinatorConfig {
    /// The limits every group gets.
    pub fn group_limits(&self) -> GroupLimits {
        GroupLimits {
            default_session_timeout_ms: ms(self.session_timeout.0),
            min_session_timeout_ms: ms(self.min_session_timeout.0),
            max_session_timeout_ms: ms(self.max_session_timeout.0),
            heartbeat_interval_ms: ms(self.heartbeat_interval.0),
            reconcile_interval_ms: ms(self.reconcile_heartbeat_interval.0),
            default_assignor: self.default_assignor.clone(),
            max_group_size: usize::try_from(self.max_group_size).unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use strom_server_kit::{LoadOptions, load};

    use super::*;

    fn example() -> PathBuf {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        PathBuf::from(manifest).join("../../config/coordinator.example.toml")
    }

    #[test]
    fn the_example_file_loads_and_matches_the_defaults() {
        let loaded: CoordinatorConfig =
            load(&LoadOptions::new("STROM_COORDINATOR").with_file(example())).unwrap();
        assert_eq!(loaded, CoordinatorConfig::default());
    }

    #[test]
    fn bad_session_bounds_are_refused() {
        let inverted = LoadOptions::new("STROM_COORDINATOR")
            .with_override("session-timeout", "2s")
            .with_override("min-session-timeout", "3s");
        assert!(load::<CoordinatorConfig>(&inverted).is_err());
        let slow_beat =
            LoadOptions::new("STROM_COORDINATOR").with_override("heartbeat-interval", "10s");
        assert!(load::<CoordinatorConfig>(&slow_beat).is_err());
        let unknown =
            LoadOptions::new("STROM_COORDINATOR").with_override("default-assignor", "magic");
        assert!(load::<CoordinatorConfig>(&unknown).is_err());
    }
}
