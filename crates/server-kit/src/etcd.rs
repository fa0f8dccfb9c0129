//! [`EtcdConfig`]: how a service reaches the metadata store, as written in config files.

use serde::{Deserialize, Serialize};

use crate::config::Validate;
use crate::error::{Error, Result};
use crate::units::HumanDuration;

/// The `[etcd]` section shared by every service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EtcdConfig {
    /// Client URLs of the etcd cluster.
    pub endpoints: Vec<String>,
    /// How long to wait for a connection.
    pub connect_timeout: HumanDuration,
    /// How long to wait for any single request.
    pub request_timeout: HumanDuration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            connect_timeout: HumanDuration(std::time::Duration::from_secs(3)),
            request_timeout: HumanDuration(std::time::Duration::from_secs(5)),
        }
    }
}

impl Validate for EtcdConfig {
    fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid(
                "endpoints",
                "at least one etcd endpoint is needed",
            ));
        }
        if let Some(bad) = self
            .endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(Error::invalid(
                "endpoints",
                format!("{bad:?} is not an http(s) URL"),
            ));
        }
        if self.connect_timeout.0.is_zero() {
            return Err(Error::invalid("connect-timeout", "must be positive"));
        }
        if self.request_timeout.0.is_zero() {
            return Err(Error::invalid("request-timeout", "must be positive"));
        }
        Ok(())
    }
}

/// The settings every service in a cluster has beside its `[etcd]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership<'a> {
    /// The service's id within its kind.
    pub id: i32,
    /// The cluster name (a key prefix in etcd).
    pub cluster: &'a str,
    /// The lease TTL the service registers or campaigns with.
    pub lease_ttl: std::time::Duration,
    /// How often watches re-list as a safety net.
    pub resync_interval: std::time::Duration,
    /// How long a request to another service may take.
    pub request_timeout: std::time::Duration,
}

impl Validate for Membership<'_> {
    fn validate(&self) -> Result<()> {
        use std::time::Duration;
        if self.id < 0 {
            return Err(Error::invalid("id", "must not be negative"));
        }
        let valid_cluster = !self.cluster.is_empty()
            && self
                .cluster
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_cluster {
            return Err(Error::invalid(
                "cluster",
                "use letters, digits, '-' and '_'",
            ));
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err(Error::invalid(
                "lease-ttl",
                "etcd grants leases of at least 2s",
            ));
        }
        if self.resync_interval < Duration::from_secs(1) {
            return Err(Error::invalid("resync-interval", "must be at least 1s"));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::invalid("request-timeout", "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_field(config: &EtcdConfig) -> Option<String> {
        match config.validate() {
            Err(Error::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn membership_checks_name_their_field() {
        let ok = Membership {
            id: 1,
            cluster: "prod-1",
            lease_ttl: std::time::Duration::from_secs(5),
            resync_interval: std::time::Duration::from_secs(30),
            request_timeout: std::time::Duration::from_secs(10),
        };
        let field = |m: Membership<'_>| match m.validate() {
            Err(Error::Invalid { field, .. }) => Some(field),
            _ => None,
        };
        assert_eq!(field(ok), None);
        assert_eq!(field(Membership { id: -1, ..ok }).as_deref(), Some("id"));
        assert_eq!(
            field(Membership {
                cluster: "a/b",
                ..ok
            })
            .as_deref(),
            Some("cluster")
        );
        assert_eq!(
            field(Membership { cluster: "", ..ok }).as_deref(),
            Some("cluster")
        );
        let short = std::time::Duration::from_secs(1);
        assert_eq!(
            field(Membership {
                lease_ttl: short,
                ..ok
            })
            .as_deref(),
            Some("lease-ttl")
        );
        let zero = std::time::Duration::ZERO;
        assert_eq!(
            field(Membership {
                resync_interval: zero,
                ..ok
            })
            .as_deref(),
            Some("resync-interval")
        );
        assert_eq!(
            field(Membership {
                request_timeout: zero,
                ..ok
            })
            .as_deref(),
            Some("request-timeout")
        );
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert_eq!(invalid_field(&EtcdConfig::default()), None);
        let none = EtcdConfig {
            endpoints: Vec::new(),
            ..EtcdConfig::default()
        };
        assert_eq!(invalid_field(&none).as_deref(), Some("endpoints"));
        let bare = EtcdConfig {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            ..EtcdConfig::default()
        };
        assert_eq!(invalid_field(&bare).as_deref(), Some("endpoints"));
        let zero = HumanDuration(std::time::Duration::ZERO);
        let connect = EtcdConfig {
            connect_timeout: zero,
            ..EtcdConfig::default()
        };
        assert_eq!(invalid_field(&connect).as_deref(), Some("connect-timeout"));
        let request = EtcdConfig {
            request_timeout: zero,
            ..EtcdConfig::default()
        };
        assert_eq!(invalid_field(&request).as_deref(), Some("request-timeout"));
    }
}

#[cfg(test)]
mod env_tests {
    use serde::{Deserialize, Serialize};

    use super::EtcdConfig;
    use crate::{LoadOptions, Validate, load};

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, rename_all = "kebab-case")]
    struct WithEtcd {
        etcd: EtcdConfig,
    }

    impl Validate for WithEtcd {
        fn validate(&self) -> crate::Result<()> {
            self.etcd.validate()
        }
    }

    #[test]
    fn endpoints_can_be_listed_in_an_env_var() {
        let options = LoadOptions::new("STROM_TEST").with_env([(
            "STROM_TEST__ETCD__ENDPOINTS".to_owned(),
            r#"["http://etcd-0:2379", "http://etcd-1:2379"]"#.to_owned(),
        )]);
        let loaded: WithEtcd = load(&options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded.etcd.endpoints,
            ["http://etcd-0:2379", "http://etcd-1:2379"]
        );
    }
}
