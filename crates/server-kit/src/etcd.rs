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
