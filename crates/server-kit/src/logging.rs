//! The one tracing setup every Strom process uses: an env filter plus text or JSON output on
//! stderr (stdout is left to command output such as `--check-config`).

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

use crate::config::Validate;
use crate::error::{Error, Result};

/// The `[logging]` section of a service config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoggingConfig {
    /// An `EnvFilter` directive, e.g. `"info"` or `"info,strom_storage=debug"`. `RUST_LOG`,
    /// when set and non-empty, replaces it.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::default(),
        }
    }
}

impl Validate for LoggingConfig {
    /// Checks that `level` parses, so `--check-config` catches a bad directive.
    fn validate(&self) -> Result<()> {
        EnvFilter::try_new(&self.level)
            .map(drop)
            .map_err(|e| Error::invalid("level", e.to_string()))
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines, coloured when stderr is a terminal. For local runs.
    #[default]
    Text,
    /// One JSON object per line, fields flattened. For clusters and log shippers.
    Json,
}

/// Installs the global tracing subscriber described by `config`.
///
/// `RUST_LOG` overrides `config.level` when set and non-empty. Returns
/// [`Error::LoggingInit`] if a global subscriber is already installed (e.g. on a second call);
/// it never panics.
pub fn init_tracing(config: &LoggingConfig) -> Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = build_filter(&config.level, rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    installed.map_err(|e| Error::LoggingInit {
        message: e.to_string(),
    })
}

/// The filter from `RUST_LOG` if it is set and non-empty, else from `level`.
fn build_filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter> {
    let (directive, source_name) = match rust_log {
        Some(env) if !env.trim().is_empty() => (env, "RUST_LOG"),
        _ => (level, "logging.level"),
    };
    EnvFilter::try_new(directive).map_err(|e| Error::LogFilter {
        directive: directive.to_owned(),
        source_name,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_serde_names() {
        let c = LoggingConfig::default();
        assert_eq!(c.level, "info");
        assert_eq!(c.format, LogFormat::Text);
        let c: LoggingConfig = toml::from_str("format = \"json\"").unwrap();
        assert_eq!(c.format, LogFormat::Json);
        assert_eq!(c.level, "info");
        assert!(toml::from_str::<LoggingConfig>("format = \"xml\"").is_err());
        assert!(toml::from_str::<LoggingConfig>("colour = true").is_err());
    }

    #[test]
    fn rust_log_overrides_level() {
        let f = build_filter("info", Some("debug")).unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = build_filter("warn", None).unwrap();
        assert_eq!(f.to_string(), "warn");
        let f = build_filter("warn", Some("  ")).unwrap();
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn bad_directive_names_its_source() {
        let err = build_filter("info", Some("strom=notalevel")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LogFilter {
                    source_name: "RUST_LOG",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = build_filter("strom=notalevel", None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LogFilter {
                    source_name: "logging.level",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn validate_rejects_bad_level() {
        assert!(LoggingConfig::default().validate().is_ok());
        let bad = LoggingConfig {
            level: "strom=notalevel".into(),
            ..LoggingConfig::default()
        };
        let err = bad.validate().unwrap_err().nested("logging");
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "logging.level"),
            "{err:?}"
        );
    }

    #[test]
    fn second_init_is_an_error_not_a_panic() {
        // The first call may fail too if another test in this binary installed a global
        // subscriber first; what matters is that the second one is refused, not a panic.
        let _ = init_tracing(&LoggingConfig::default());
        let json = LoggingConfig {
            format: LogFormat::Json,
            ..LoggingConfig::default()
        };
        let err = init_tracing(&json).unwrap_err();
        assert!(matches!(err, Error::LoggingInit { .. }), "{err:?}");
    }
}
