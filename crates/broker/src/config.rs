//! [`BrokerConfig`]: everything `strom-broker` reads from its config layers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strom_server_kit::metrics::MetricsConfig;
use strom_server_kit::{ByteSize, EtcdConfig, HumanDuration, LoggingConfig, Membership, Validate};

/// The broker's configuration: defaults < TOML file < `STROM_BROKER__*` env < `--set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BrokerConfig {
    /// This broker's id, unique in the cluster and stable across restarts.
    pub id: i32,
    /// The rack (or zone) this broker runs in; replicas of a partition spread over racks.
    pub rack: Option<String>,
    /// The cluster name: keys live under `/strom/<cluster>/` in etcd.
    pub cluster: String,
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The `host:port` clients and other brokers use; defaults to `listen` when that is a
    /// specific address, else `127.0.0.1:<port>`.
    pub advertised_address: Option<String>,
    /// Where partition logs (`logs/`) and local state (`state/`) live.
    pub data_dir: PathBuf,
    /// How to reach etcd.
    pub etcd: EtcdConfig,
    /// The registration lease TTL: how long a crashed broker keeps its leaderships.
    pub lease_ttl: HumanDuration,
    /// How often each watch re-lists its prefix as a safety net.
    pub resync_interval: HumanDuration,
    /// How long a forwarded admin call waits for the controller.
    pub request_timeout: HumanDuration,
    /// A follower that has not caught up with the leader for this long leaves the ISR.
    pub replica_lag_time_max: HumanDuration,
    /// How often each log's retention (`retention.ms`, `retention.bytes`) is applied.
    pub log_retention_check_interval: HumanDuration,
    /// The largest gRPC request the broker accepts; bigger ones are refused with the gRPC
    /// status RESOURCE_EXHAUSTED before they are read. Must exceed every topic's
    /// `max.message.bytes` with room for the request's other fields.
    pub max_request_size: ByteSize,
    /// Logging.
    pub logging: LoggingConfig,
    /// The Prometheus endpoint (`GET /metrics`), on port 9102 by default.
    pub metrics: MetricsConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            id: 1,
            rack: None,
            cluster: "strom".to_owned(),
            listen: SocketAddr::from(([0, 0, 0, 0], 9092)),
            advertised_address: None,
            data_dir: PathBuf::from("/var/lib/strom"),
            etcd: EtcdConfig::default(),
            lease_ttl: HumanDuration(Duration::from_secs(5)),
            resync_interval: HumanDuration(Duration::from_secs(30)),
            request_timeout: HumanDuration(Duration::from_secs(30)),
            replica_lag_time_max: HumanDuration(Duration::from_secs(10)),
            log_retention_check_interval: HumanDuration(Duration::from_secs(30)),
            max_request_size: ByteSize(64 * 1024 * 1024),
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::on_port(9102),
        }
    }
}

impl Validate for BrokerConfig {
    fn validate(&self) -> strom_server_kit::Result<()> {
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
        if self.rack.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid(
                "rack",
                "leave it out instead of setting it empty",
            ));
        }
        if self.replica_lag_time_max.0 < Duration::from_millis(100) {
            return Err(Error::invalid(
                "replica-lag-time-max",
                "must be at least 100ms",
            ));
        }
        if self.log_retention_check_interval.0 < Duration::from_secs(1) {
            return Err(Error::invalid(
                "log-retention-check-interval",
                "must be at least 1s",
            ));
        }
        if !(1024 * 1024..=1024 * 1024 * 1024).contains(&self.max_request_size.0) {
            return Err(Error::invalid(
                "max-request-size",
                "must be between 1MiB and 1GiB",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::invalid("data-dir", "must name a directory"));
        }
        self.logging.validate().map_err(|e| e.nested("logging"))
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
        PathBuf::from(manifest).join("../../config/broker.example.toml")
    }

    #[test]
    fn the_example_file_loads_and_matches_the_defaults() {
        let loaded: BrokerConfig =
            load(&LoadOptions::new("STROM_BROKER").with_file(example())).unwrap();
        assert_eq!(loaded, BrokerConfig::default());
    }

    #[test]
    fn env_and_flags_override_the_file_and_bad_values_are_refused() {
        let options = LoadOptions::new("STROM_BROKER")
            .with_file(example())
            .with_env([("STROM_BROKER__LEASE_TTL".to_owned(), "7s".to_owned())])
            .with_override("id", "9");
        let loaded: BrokerConfig = load(&options).unwrap();
        assert_eq!(loaded.lease_ttl.0, Duration::from_secs(7));
        assert_eq!(loaded.id, 9);
        let short = LoadOptions::new("STROM_BROKER").with_override("lease-ttl", "1s");
        assert!(
            load::<BrokerConfig>(&short).is_err(),
            "a lease shorter than etcd grants is refused"
        );
        let unknown = LoadOptions::new("STROM_BROKER").with_override("no-such-key", "1");
        assert!(load::<BrokerConfig>(&unknown).is_err());
    }
}
