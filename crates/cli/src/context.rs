//! What every subcommand shares: where the cluster is, how long to wait, how to print.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use strom_client::{Admin, Client, ClientConfig};

use crate::error::{Error, Result};
use crate::output::Format;

/// The broker dialed when neither a flag, the environment nor a config file names one.
pub(crate) const DEFAULT_BROKER: &str = "127.0.0.1:9092";

/// The optional config file (`--config`, `STROM_CONFIG`, or `~/.config/strom/config.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    brokers: Vec<String>,
}

/// Resolved global options.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Bootstrap broker addresses.
    pub(crate) brokers: Vec<String>,
    /// The output format.
    pub(crate) format: Format,
    /// The limit for each request.
    pub(crate) timeout: Duration,
}

impl Context {
    /// Resolves the brokers: `--brokers` / `STROM_BROKERS` first, then the config file, then
    /// [`DEFAULT_BROKER`].
    pub(crate) fn resolve(
        brokers: Vec<String>,
        config: Option<PathBuf>,
        format: Format,
        timeout: Duration,
    ) -> Result<Self> {
        let brokers: Vec<String> = brokers
            .into_iter()
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        let brokers = if brokers.is_empty() {
            let from_file = match config {
                Some(path) => read_config(&path)?.brokers,
                None => match default_config_path().filter(|p| p.is_file()) {
                    Some(path) => read_config(&path)?.brokers,
                    None => Vec::new(),
                },
            };
            if from_file.is_empty() {
                vec![DEFAULT_BROKER.to_owned()]
            } else {
                from_file
            }
        } else {
            brokers
        };
        Ok(Self {
            brokers,
            format,
            timeout,
        })
    }

    /// The client configuration for these brokers.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.brokers.clone());
        config.request_timeout = self.timeout;
        config.connect_timeout = self.timeout.min(Duration::from_secs(5));
        config
    }

    /// Connects to the cluster.
    pub(crate) async fn client(&self) -> Result<Client> {
        Ok(Client::connect(self.client_config()).await?)
    }

    /// Connects for administration.
    pub(crate) async fn admin(&self) -> Result<Admin> {
        Ok(Admin::new(self.client().await?))
    }
}

fn default_config_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".config/strom/config.toml"))
}

fn read_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::usage(format!("{}: {e}", path.display())))
}

/// Parses `500ms`, `10s`, `2m`, `1h` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "brokers = [\"10.0.0.1:9092\"]\n").unwrap();
        let timeout = Duration::from_secs(1);
        let from_file =
            Context::resolve(Vec::new(), Some(path.clone()), Format::Table, timeout).unwrap();
        assert_eq!(from_file.brokers, vec!["10.0.0.1:9092"]);
        let flagged = Context::resolve(vec!["b:1".into()], Some(path), Format::Table, timeout);
        assert_eq!(flagged.unwrap().brokers, vec!["b:1"]);
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "brokerz = []\n").unwrap();
        assert!(matches!(
            Context::resolve(Vec::new(), Some(bad), Format::Table, timeout),
            Err(Error::Usage(_))
        ));
    }
}
