//! [`ControllerConfig`]: everything `strom-controller` reads from its config layers.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strom_server_kit::metrics::MetricsConfig;
use strom_server_kit::{EtcdConfig, HumanDuration, LoggingConfig, Membership, Validate};

use crate::TopicDefaults;
use crate::shell::ShellSettings;

/// The controller's configuration: defaults < TOML file < `STROM_CONTROLLER__*` env < `--set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControllerConfig {
    /// This controller's id; unique among controllers, shown in DescribeCluster.
    pub id: i32,
    /// The cluster name: keys live under `/strom/<cluster>/` in etcd.
    pub cluster: String,
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The `host:port` brokers and clients use to reach this controller; defaults to `listen`
    /// when that is a specific address.
    pub advertised_address: Option<String>,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// The election lease TTL: how long a crashed active controller keeps its role.
    pub lease_ttl: HumanDuration,
    /// How often each watch re-lists its prefix as a safety net.
    pub resync_interval: HumanDuration,
    /// How often leadership is moved back to preferred replicas; `0s` disables it.
    pub preferred_leader_interval: HumanDuration,
    /// How long a request waits for the active controller.
    pub request_timeout: HumanDuration,
    /// Partitions of topics created without a count (`num.partitions`).
    pub default_partitions: u32,
    /// Replication factor of topics created without one (`default.replication.factor`).
    pub default_replication_factor: u16,
    /// Producer ids handed to a broker per request.
    pub producer_id_block_size: u32,
    /// Logging.
    pub logging: LoggingConfig,
    /// The Prometheus endpoint (`GET /metrics`), on port 9103 by default.
    pub metrics: MetricsConfig,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            id: 1,
            cluster: "strom".to_owned(),
            listen: SocketAddr::from(([0, 0, 0, 0], 9093)),
            advertised_address: None,
            etcd: EtcdConfig::default(),
            lease_ttl: HumanDuration(Duration::from_secs(5)),
            resync_interval: HumanDuration(Duration::from_secs(30)),
            preferred_leader_interval: HumanDuration(Duration::from_secs(10)),
            request_timeout: HumanDuration(Duration::from_secs(10)),
            default_partitions: 1,
            default_replication_factor: 1,
            producer_id_block_size: 1000,
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::on_port(9103),
        }
    }
}

type KitResult<T> = strom_server_kit::Result<T>;

impl Validate for ControllerConfig {
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
        if self.default_partitions == 0 || self.default_partitions > crate::MAX_PARTITIONS_PER_TOPIC
        {
            return Err(Error::invalid(
                "default-partitions",
                "must be between 1 and 10000",
            ));
        }
        if self.default_replication_factor == 0 {
            return Err(Error::invalid(
                "default-replication-factor",
                "must be at least 1",
            ));
        }
        if self.producer_id_block_size == 0 {
            return Err(Error::invalid(
                "producer-id-block-size",
                "must be at least 1",
            ));
        }
        self.logging.validate().map_err(|e| e.nested("logging"))
    }
}

impl ControllerConfig {
    /// The shell's settings, advertising `advertised` (the resolved address).
    pub fn shell_settings(&self, advertised: String) -> ShellSettings {
        let preferred = self.preferred_leader_interval.0;
        ShellSettings {
            cluster: self.cluster.clone(),
            id: self.id,
            advertised_address: advertised,
            lease_ttl: self.lease_ttl.0,
            resync_interval: self.resync_interval.0,
            preferred_leader_interval: (!preferred.is_zero()).then_some(preferred),
            topic_defaults: TopicDefaults {
                partitions: self.default_partitions,
                replication_factor: self.default_replication_factor,
            },
            producer_id_block_size: i64::from(self.producer_id_block_size),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use strom_server_kit::{LoadOptions, load};

    use super::*;

    fn example() -> PathBuf {
        // Read at run time: test binaries may be shared between checkouts.
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        PathBuf::from(manifest).join("../../config/controller.example.toml")
    }

    #[test]
    fn the_example_file_loads_and_matches_the_defaults() {
        let loaded: ControllerConfig =
            load(&LoadOptions::new("STROM_CONTROLLER").with_file(example())).unwrap();
        assert_eq!(loaded, ControllerConfig::default());
    }

    #[test]
    fn env_and_flags_override_the_file_and_bad_values_are_refused() {
        let options = LoadOptions::new("STROM_CONTROLLER")
            .with_file(example())
            .with_env([("STROM_CONTROLLER__LEASE_TTL".to_owned(), "7s".to_owned())])
            .with_override("id", "9");
        let loaded: ControllerConfig = load(&options).unwrap();
        assert_eq!(loaded.lease_ttl.0, Duration::from_secs(7));
        assert_eq!(loaded.id, 9);
        let short = LoadOptions::new("STROM_CONTROLLER").with_override("lease-ttl", "1s");
        assert!(
            load::<ControllerConfig>(&short).is_err(),
            "a lease shorter than etcd grants is refused"
        );
        let unknown = LoadOptions::new("STROM_CONTROLLER").with_override("no-such-key", "1");
        assert!(load::<ControllerConfig>(&unknown).is_err());
    }
}
