//! Command-line flags every Strom service shares, and the `--check-config` flow.
//!
//! ```no_run
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Default, Serialize, Deserialize)]
//! # struct BrokerConfig {}
//! # impl strom_server_kit::Validate for BrokerConfig {}
//! use clap::Parser;
//! use strom_server_kit::{CommonArgs, Startup};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     common: CommonArgs,
//! }
//!
//! fn main() -> Result<std::process::ExitCode, strom_server_kit::Error> {
//!     let cli = Cli::parse();
//!     let config: BrokerConfig = match cli.common.resolve("STROM_BROKER")? {
//!         Startup::Run(config) => config,
//!         Startup::Exit(code) => return Ok(code),
//!     };
//!     // init_tracing, build, run ...
//! #   let _ = config;
//!     Ok(std::process::ExitCode::SUCCESS)
//! }
//! ```

use std::error::Error as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{LoadOptions, Validate, load, render};
use crate::error::Result;
use crate::logging::LogFormat;

/// The exit code of `--check-config` when the config is invalid.
pub const CHECK_CONFIG_FAILED: u8 = 2;

/// Flags shared by every service binary; add to a clap parser with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct CommonArgs {
    /// TOML config file. Without it, defaults, env vars and --set are used.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Validate the config, print the effective config and exit (0 if valid, 2 if not).
    #[arg(long)]
    pub check_config: bool,

    /// Override one config key, e.g. `--set log.segment-bytes=64MiB`. Repeatable; wins over
    /// the file and env vars.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub overrides: Vec<(String, String)>,

    /// Log line format; the same as `--set logging.format=...`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// What `main` should do once the config flags were handled.
#[derive(Debug)]
pub enum Startup<T> {
    /// The config loaded and validated: start the service with it.
    Run(T),
    /// `--check-config` ran and printed its result: exit with this code.
    Exit(ExitCode),
}

impl CommonArgs {
    /// Load options for these flags plus this process's env vars under `env_prefix`.
    pub fn load_options(&self, env_prefix: &str) -> LoadOptions {
        let format = self.log_format.map(|format| {
            let name = match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            ("logging.format".to_owned(), name.to_owned())
        });
        let opts = LoadOptions::new(env_prefix)
            .with_process_env()
            .with_overrides(self.overrides.iter().cloned().chain(format));
        match &self.config {
            Some(path) => opts.with_file(path),
            None => opts,
        }
    }

    /// Loads the config; with `--check-config`, prints the effective config (or the error)
    /// and returns [`Startup::Exit`] with 0 or [`CHECK_CONFIG_FAILED`].
    ///
    /// Without `--check-config`, a load error is returned for `main` to report.
    pub fn resolve<T>(&self, env_prefix: &str) -> Result<Startup<T>>
    where
        T: DeserializeOwned + Serialize + Default + Validate,
    {
        let opts = self.load_options(env_prefix);
        if self.check_config {
            Ok(Startup::Exit(report_check(check_config::<T>(&opts))))
        } else {
            load(&opts).map(Startup::Run)
        }
    }
}

/// Loads and validates `T`, returning the effective config as TOML.
pub fn check_config<T>(opts: &LoadOptions) -> Result<String>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let config: T = load(opts)?;
    render(&config)
}

// `--check-config` is a command whose output *is* the product, and it runs before tracing
// exists (the logging settings are part of what is being checked), so it prints directly.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn report_check(outcome: Result<String>) -> ExitCode {
    match outcome {
        Ok(rendered) => {
            print!("{rendered}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            let mut cause = err.source();
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            ExitCode::from(CHECK_CONFIG_FAILED)
        }
    }
}

/// Parses `key=value` (split at the first `=`; the value may contain more).
fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{arg}`"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("empty key in `{arg}`"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde::Deserialize;

    use super::*;
    use crate::error::{Error, Layer};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Cfg {
        node_id: u32,
        name: String,
    }

    impl Validate for Cfg {
        fn validate(&self) -> Result<()> {
            if self.node_id == 0 {
                return Err(Error::invalid("node-id", "must be positive"));
            }
            Ok(())
        }
    }

    #[test]
    fn parses_all_flags() {
        let cli = Cli::try_parse_from([
            "strom-broker",
            "--config",
            "/etc/strom/broker.toml",
            "--set",
            "log.segment-bytes=64MiB",
            "--set=name=a=b",
            "--check-config",
        ])
        .unwrap();
        assert_eq!(
            cli.common,
            CommonArgs {
                config: Some("/etc/strom/broker.toml".into()),
                check_config: true,
                overrides: vec![
                    ("log.segment-bytes".into(), "64MiB".into()),
                    ("name".into(), "a=b".into()),
                ],
                log_format: None,
            }
        );
    }

    #[test]
    fn no_flags_is_empty() {
        let cli = Cli::try_parse_from(["strom-broker"]).unwrap();
        assert_eq!(cli.common, CommonArgs::default());
    }

    #[test]
    fn malformed_set_is_rejected() {
        for bad in ["novalue", "=x"] {
            let err = Cli::try_parse_from(["strom-broker", "--set", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
    }

    #[test]
    fn load_options_carry_file_and_overrides() {
        let args = CommonArgs {
            config: Some("/tmp/x.toml".into()),
            check_config: false,
            overrides: vec![("node-id".into(), "4".into())],
            log_format: None,
        };
        let opts = args.load_options("STROM_TEST_CLI");
        assert_eq!(opts.env_prefix(), "STROM_TEST_CLI");
        assert_eq!(opts.file(), Some(std::path::Path::new("/tmp/x.toml")));
        assert!(format!("{opts:?}").contains("node-id"));
    }

    #[test]
    fn resolve_without_check_runs() {
        let args = CommonArgs {
            overrides: vec![("node-id".into(), "4".into()), ("name".into(), "b1".into())],
            ..CommonArgs::default()
        };
        // A prefix no real environment sets, so the process env does not leak in.
        match args.resolve::<Cfg>("STROM_TEST_CLI_UNSET").unwrap() {
            Startup::Run(cfg) => assert_eq!(
                cfg,
                Cfg {
                    node_id: 4,
                    name: "b1".into()
                }
            ),
            Startup::Exit(code) => panic!("unexpected exit {code:?}"),
        }
    }

    #[test]
    fn resolve_without_check_returns_errors() {
        let args = CommonArgs::default();
        let err = args.resolve::<Cfg>("STROM_TEST_CLI_UNSET").unwrap_err();
        assert!(matches!(err, Error::Invalid { ref field, .. } if field == "node-id"));
    }

    #[test]
    fn check_config_renders_or_fails() {
        let opts = LoadOptions::new("T").with_override("node-id", "7");
        assert_eq!(
            check_config::<Cfg>(&opts).unwrap(),
            "node-id = 7\nname = \"\"\n"
        );
        let opts = LoadOptions::new("T").with_override("nope", "7");
        let err = check_config::<Cfg>(&opts).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::Flag(_) } if key == "nope"),
            "{err:?}"
        );
    }

    #[test]
    fn log_format_flag_sets_logging_format() {
        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct WithLogging {
            logging: crate::LoggingConfig,
        }
        impl Validate for WithLogging {}
        let cli = Cli::try_parse_from(["strom-broker", "--log-format", "json"]).unwrap();
        assert_eq!(cli.common.log_format, Some(LogFormat::Json));
        let loaded: WithLogging =
            crate::load(&cli.common.load_options("STROM_TEST_CLI_UNSET")).unwrap();
        assert_eq!(loaded.logging.format, LogFormat::Json);
        assert!(Cli::try_parse_from(["strom-broker", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn report_check_exit_codes() {
        assert_eq!(report_check(Ok(String::new())), ExitCode::SUCCESS);
        let failed = report_check(Err(Error::invalid("x", "y")));
        assert_eq!(failed, ExitCode::from(CHECK_CONFIG_FAILED));
    }
}
