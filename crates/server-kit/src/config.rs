//! Layered config loading: defaults < TOML file < environment < `--set` flags.
//!
//! Each layer becomes a `toml::Table`; tables merge key by key and anything else is replaced by
//! the later layer. The merged tree is deserialized once, so `deny_unknown_fields` on the
//! config structs catches a typo in any layer, and the error names the key and its layer.
//! Then [`Validate::validate`] runs. Config structs are expected to use
//! `#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]`.
//!
//! Loading reads the file with blocking I/O: call it at startup, before the runtime is busy.

mod attribute;
mod layers;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::error::{Error, Layer, Result};
use attribute::Origins;
use layers::KeyPath;

/// Checks a deserialized config before anything starts. [`load`] calls it.
///
/// The default method accepts everything, so `impl Validate for MyConfig {}` is enough when
/// the types already enforce the invariants. Nested configs report their own field names and
/// the parent prefixes them with [`Error::nested`].
pub trait Validate {
    /// Returns [`Error::Invalid`] naming the first offending field.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Where [`load`] finds each layer.
///
/// Starts with no file, no env vars and no overrides, so tests are hermetic by default; a
/// binary adds [`with_process_env`](Self::with_process_env) (or uses
/// [`CommonArgs::load_options`](crate::CommonArgs::load_options), which does).
#[derive(Clone)]
pub struct LoadOptions {
    env_prefix: String,
    file: Option<PathBuf>,
    env: Vec<(String, String)>,
    overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Options for configs whose env vars start with `{env_prefix}__`, e.g. `STROM_BROKER`.
    pub fn new(env_prefix: impl Into<String>) -> Self {
        Self {
            env_prefix: env_prefix.into(),
            file: None,
            env: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// Reads this TOML file as the second layer. A missing file is an error.
    #[must_use]
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Adds environment variables, as `(name, value)` pairs; only `{prefix}__*` ones are used.
    #[must_use]
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    /// Adds this process's environment. Variables whose name or value is not UTF-8 are skipped.
    #[must_use]
    pub fn with_process_env(self) -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        self.with_env(vars)
    }

    /// Adds one `--set`-style override: a dotted key and a raw value.
    #[must_use]
    pub fn with_override(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    /// Adds several overrides; later ones win over earlier ones for the same key.
    #[must_use]
    pub fn with_overrides(mut self, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        self.overrides.extend(pairs);
        self
    }

    /// The env var prefix, without the trailing `__`.
    pub fn env_prefix(&self) -> &str {
        &self.env_prefix
    }

    /// The config file, if one was given.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

impl fmt::Debug for LoadOptions {
    /// Shows env var names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = format!("{}__", self.env_prefix);
        let env_names: Vec<&str> = self
            .env
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| k.starts_with(&head))
            .collect();
        f.debug_struct("LoadOptions")
            .field("env_prefix", &self.env_prefix)
            .field("file", &self.file)
            .field("env", &env_names)
            .field("overrides", &self.overrides)
            .finish()
    }
}

/// Loads `T` from its layers (defaults < file < env < overrides) and validates it.
///
/// Env var `{prefix}__LOG__SEGMENT_BYTES=64MiB` sets `log.segment-bytes`; env and override
/// values are read as TOML integers, floats, booleans or quoted strings when they parse as
/// one, otherwise as plain strings.
pub fn load<T>(opts: &LoadOptions) -> Result<T>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let mut merged = to_table(&T::default())?;
    let mut origins = Origins::default();

    if let Some(path) = &opts.file {
        let file = read_file(path)?;
        origins.record_tree(&file, &Layer::File(path.clone()));
        layers::merge(&mut merged, file);
    }
    let env = layers::env_assignments(&opts.env_prefix, &opts.env)?;
    let flags = layers::flag_assignments(&opts.overrides)?;
    // Raw text of env/flag values that were read as numbers or booleans, in case the field
    // turns out to be a string (`STROM_BROKER__NAME=123`).
    let mut retypable: Vec<(KeyPath, String)> = Vec::new();
    for a in env.into_iter().chain(flags) {
        // A later value at, above or below an earlier path replaces it.
        retypable.retain(|(path, _)| !path.starts_with(&a.path) && !a.path.starts_with(path));
        if !a.value.is_str() {
            retypable.push((a.path.clone(), a.raw.clone()));
        }
        layers::set_path(&mut merged, &a.path, a.value);
        origins.record(a.path, a.layer);
    }

    let mut result = attribute::deserialize::<T>(&merged, &origins);
    while let Err(err) = &result {
        let Some((path, raw)) = take_retypable(err, &mut retypable) else {
            break;
        };
        layers::set_path(&mut merged, &path, Value::String(raw));
        let retried = attribute::deserialize::<T>(&merged, &origins);
        // Still wrong as a string: the first error ("expected u32, got 1.5") says more.
        if matches!(&retried, Err(Error::BadValue { key, .. }) if *key == path.join(".")) {
            break;
        }
        result = retried;
    }
    let config = result?;
    config.validate()?;
    Ok(config)
}

/// If `err` is a bad value at a key whose env/flag text was read as a non-string, removes and
/// returns that key so the caller can retry with the text as a string. Each key is retried at
/// most once, so the retry loop ends.
fn take_retypable(
    err: &Error,
    retypable: &mut Vec<(KeyPath, String)>,
) -> Option<(KeyPath, String)> {
    let Error::BadValue { key, .. } = err else {
        return None;
    };
    let pos = retypable
        .iter()
        .position(|(path, _)| path.join(".") == *key)?;
    Some(retypable.swap_remove(pos))
}

/// The effective config as a TOML document, e.g. for `--check-config`. Loading the output as a
/// file gives back an equal config.
pub fn render<T: Serialize>(config: &T) -> Result<String> {
    // Serializing the struct itself (not a `toml::Table`, which sorts keys) keeps the field
    // order of the config type, which is the order its docs and example files use.
    toml::to_string_pretty(config).map_err(|e| Error::Serialize {
        message: e.to_string(),
    })
}

fn to_table<T: Serialize>(config: &T) -> Result<Table> {
    match Value::try_from(config) {
        Ok(Value::Table(t)) => Ok(t),
        Ok(other) => Err(Error::Serialize {
            message: format!("config root must be a table, got {}", other.type_str()),
        }),
        Err(e) => Err(Error::Serialize {
            message: e.to_string(),
        }),
    }
}

fn read_file(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::FileUnreadable {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::TomlParse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use serde::Deserialize;

    use super::*;
    use crate::logging::{LogFormat, LoggingConfig};
    use crate::units::{ByteSize, HumanDuration};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct TestConfig {
        node_id: u32,
        name: String,
        debug: bool,
        ratio: f64,
        peers: Vec<String>,
        log: LogSection,
        logging: LoggingConfig,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct LogSection {
        segment_bytes: ByteSize,
        retention: HumanDuration,
        index: IndexSection,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct IndexSection {
        interval_bytes: ByteSize,
    }

    impl Default for TestConfig {
        fn default() -> Self {
            Self {
                node_id: 1,
                name: "broker".into(),
                debug: false,
                ratio: 0.5,
                peers: vec!["a:1".into()],
                log: LogSection::default(),
                logging: LoggingConfig::default(),
            }
        }
    }

    impl Default for LogSection {
        fn default() -> Self {
            Self {
                segment_bytes: ByteSize::mib(64),
                retention: HumanDuration::from_secs(7 * 86_400),
                index: IndexSection::default(),
            }
        }
    }

    impl Default for IndexSection {
        fn default() -> Self {
            Self {
                interval_bytes: ByteSize::kib(4),
            }
        }
    }

    impl Validate for TestConfig {
        fn validate(&self) -> Result<()> {
            if !(0.0..=1.0).contains(&self.ratio) {
                return Err(Error::invalid("ratio", "must be within 0..=1"));
            }
            self.logging.validate().map_err(|e| e.nested("logging"))
        }
    }

    const PREFIX: &str = "STROM_TEST";

    /// A temp file holding `text`; kept alive by the returned handle.
    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn load_test(opts: &LoadOptions) -> Result<TestConfig> {
        load(opts)
    }

    #[test]
    fn defaults_only() {
        let cfg = load_test(&LoadOptions::new(PREFIX)).unwrap();
        assert_eq!(cfg, TestConfig::default());
    }

    /// Every combination of layers setting `log.segment-bytes`: the latest present one wins.
    #[test]
    fn every_layer_order() {
        const FILE: u64 = 1;
        const ENV: u64 = 2;
        const FLAG: u64 = 3;
        let f = file("[log]\nsegment-bytes = \"1KiB\"\n");
        for mask in 0..8u8 {
            let (use_file, use_env, use_flag) = (mask & 1 != 0, mask & 2 != 0, mask & 4 != 0);
            let mut opts = LoadOptions::new(PREFIX);
            if use_file {
                opts = opts.with_file(f.path());
            }
            if use_env {
                opts = opts.with_env(env(&[("STROM_TEST__LOG__SEGMENT_BYTES", "2KiB")]));
            }
            if use_flag {
                opts = opts.with_override("log.segment-bytes", "3KiB");
            }
            let want = match (use_file, use_env, use_flag) {
                (_, _, true) => ByteSize::kib(FLAG),
                (_, true, false) => ByteSize::kib(ENV),
                (true, false, false) => ByteSize::kib(FILE),
                (false, false, false) => ByteSize::mib(64),
            };
            let cfg = load_test(&opts).unwrap();
            assert_eq!(
                cfg.log.segment_bytes, want,
                "file={use_file} env={use_env} flag={use_flag}"
            );
        }
    }

    #[test]
    fn layers_merge_per_key_not_per_table() {
        let f = file(
            "name = \"from-file\"\n[log]\nretention = \"1d\"\n[log.index]\ninterval-bytes = 512\n",
        );
        let opts = LoadOptions::new(PREFIX)
            .with_file(f.path())
            .with_env(env(&[("STROM_TEST__LOG__SEGMENT_BYTES", "1GiB")]))
            .with_override("log.index.interval-bytes", "8KiB")
            .with_override("debug", "true");
        let cfg = load_test(&opts).unwrap();
        let want = TestConfig {
            name: "from-file".into(),
            debug: true,
            log: LogSection {
                segment_bytes: ByteSize::gib(1),
                retention: HumanDuration::from_secs(86_400),
                index: IndexSection {
                    interval_bytes: ByteSize::kib(8),
                },
            },
            ..TestConfig::default()
        };
        assert_eq!(cfg, want);
    }

    #[test]
    fn later_override_flag_wins() {
        let opts = LoadOptions::new(PREFIX)
            .with_override("node-id", "2")
            .with_override("node-id", "3");
        assert_eq!(load_test(&opts).unwrap().node_id, 3);
    }

    #[test]
    fn env_values_are_typed() {
        let opts = LoadOptions::new(PREFIX).with_env(env(&[
            ("STROM_TEST__NODE_ID", "7"),
            ("STROM_TEST__DEBUG", "true"),
            ("STROM_TEST__RATIO", "0.25"),
            ("STROM_TEST__LOG__RETENTION", "90000"),
            ("STROM_TEST__LOGGING__FORMAT", "json"),
            ("STROM_TEST__LOGGING__LEVEL", "info,strom=debug"),
        ]));
        let cfg = load_test(&opts).unwrap();
        assert_eq!(cfg.node_id, 7);
        assert!(cfg.debug);
        assert!((cfg.ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(cfg.log.retention, HumanDuration::from_millis(90_000));
        assert_eq!(cfg.logging.format, LogFormat::Json);
        assert_eq!(cfg.logging.level, "info,strom=debug");
    }

    #[test]
    fn numeric_text_for_a_string_field_stays_text() {
        let opts = LoadOptions::new(PREFIX)
            .with_env(env(&[("STROM_TEST__NAME", "123")]))
            .with_override("logging.level", "true");
        // `123` and `true` first read as an integer and a boolean; both fields are strings, so
        // the loader retries them as the text that was given.
        let cfg = load_test(&opts).unwrap();
        assert_eq!(cfg.name, "123");
        assert_eq!(cfg.logging.level, "true");
        let quoted = LoadOptions::new(PREFIX).with_override("name", "\"007\"");
        assert_eq!(load_test(&quoted).unwrap().name, "007");
    }

    #[test]
    fn wrong_typed_scalar_keeps_the_first_error() {
        let opts = LoadOptions::new(PREFIX).with_override("node-id", "1.5");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::Flag(_), ref reason }
                if key == "node-id" && reason.contains("float")),
            "{err:?}"
        );
    }

    #[test]
    fn unrelated_env_vars_are_ignored() {
        let opts = LoadOptions::new(PREFIX).with_env(env(&[
            ("STROM_OTHER__NODE_ID", "9"),
            ("STROM_TEST_NODE_ID", "9"),
            ("STROM_TESTX__NODE_ID", "9"),
            ("HOME", "/root"),
        ]));
        assert_eq!(load_test(&opts).unwrap(), TestConfig::default());
    }

    #[test]
    fn unknown_key_in_file() {
        let f = file("[log]\nsegment-bytes = \"1MiB\"\nsegment-byte = \"2MiB\"\n");
        let err = load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap_err();
        match err {
            Error::UnknownKey { key, layer } => {
                assert_eq!(key, "log.segment-byte");
                assert_eq!(layer, Layer::File(f.path().to_owned()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_section_in_file() {
        let f = file("[storage]\ndir = \"/data\"\n");
        let err = load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::File(_) } if key == "storage"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&f.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_in_env() {
        let opts =
            LoadOptions::new(PREFIX).with_env(env(&[("STROM_TEST__LOG__SEGMENT_SIZE", "1MiB")]));
        let err = load_test(&opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown config key `log.segment-size` (from env var STROM_TEST__LOG__SEGMENT_SIZE)"
        );
    }

    #[test]
    fn unknown_key_in_flag() {
        let opts = LoadOptions::new(PREFIX).with_override("logging.colour", "true");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::Flag(ref k) }
                if key == "logging.colour" && k == "logging.colour"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_key_is_attributed_to_its_own_layer() {
        // File has a good value at the same level; only the env var is wrong.
        let f = file("[log]\nretention = \"1h\"\n");
        let opts = LoadOptions::new(PREFIX)
            .with_file(f.path())
            .with_env(env(&[("STROM_TEST__LOG__BOGUS", "1")]));
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { layer: Layer::Env(ref v), .. } if v == "STROM_TEST__LOG__BOGUS"),
            "{err:?}"
        );
    }

    #[test]
    fn bad_values_per_layer() {
        let f = file("[log]\nretention = \"5 fortnights\"\n");
        let err = load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap_err();
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::File(_), ref reason }
                if key == "log.retention" && reason.contains("unknown unit `fortnights`")),
            "{err:?}"
        );
        let opts =
            LoadOptions::new(PREFIX).with_env(env(&[("STROM_TEST__LOG__SEGMENT_BYTES", "-5")]));
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::Env(_), ref reason }
                if key == "log.segment-bytes" && reason.contains("negative")),
            "{err:?}"
        );
        let opts = LoadOptions::new(PREFIX).with_override("logging.format", "xml");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::Flag(_), .. } if key == "logging.format"),
            "{err:?}"
        );
        // A scalar where a table belongs.
        let opts = LoadOptions::new(PREFIX).with_override("log", "5");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::Flag(_), .. } if key == "log"),
            "{err:?}"
        );
    }

    #[test]
    fn missing_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.toml");
        let err = load_test(&LoadOptions::new(PREFIX).with_file(&missing)).unwrap_err();
        assert!(
            matches!(err, Error::FileUnreadable { ref path, ref source }
                if *path == missing && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        let f = file("[log\nsegment-bytes = 1\n");
        let err = load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap_err();
        assert!(
            matches!(err, Error::TomlParse { ref path, ref message }
                if path == f.path() && message.contains("line 1")),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_env_and_flag_keys() {
        let opts = LoadOptions::new(PREFIX).with_env(env(&[("STROM_TEST__LOG____X", "1")]));
        assert!(matches!(
            load_test(&opts).unwrap_err(),
            Error::MalformedKey {
                layer: Layer::Env(_),
                ..
            }
        ));
        let opts = LoadOptions::new(PREFIX).with_override("log..x", "1");
        assert!(matches!(
            load_test(&opts).unwrap_err(),
            Error::MalformedKey {
                layer: Layer::Flag(_),
                ..
            }
        ));
    }

    #[test]
    fn validation_runs_after_merge() {
        let opts = LoadOptions::new(PREFIX).with_override("ratio", "2.0");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "ratio"),
            "{err:?}"
        );
        let opts = LoadOptions::new(PREFIX).with_override("logging.level", "strom=loud");
        let err = load_test(&opts).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "logging.level"),
            "{err:?}"
        );
    }

    #[test]
    fn render_then_load_round_trips() {
        let cfg = TestConfig {
            node_id: 42,
            name: "b-42".into(),
            debug: true,
            ratio: 0.75,
            peers: vec!["x:1".into(), "y:2".into()],
            log: LogSection {
                segment_bytes: ByteSize(1_536),
                retention: HumanDuration::from_millis(90_500),
                index: IndexSection {
                    interval_bytes: ByteSize::kib(8),
                },
            },
            logging: LoggingConfig {
                level: "warn,strom=debug".into(),
                format: LogFormat::Json,
            },
        };
        let text = render(&cfg).unwrap();
        assert!(text.contains("segment-bytes = \"1536B\""), "{text}");
        assert!(text.contains("retention = \"90500ms\""), "{text}");
        let f = file(&text);
        assert_eq!(
            load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap(),
            cfg
        );
    }

    #[test]
    fn render_of_defaults_reloads_to_defaults() {
        let text = render(&TestConfig::default()).unwrap();
        let f = file(&text);
        let cfg = load_test(&LoadOptions::new(PREFIX).with_file(f.path())).unwrap();
        assert_eq!(cfg, TestConfig::default());
    }

    #[test]
    fn render_keeps_field_order() {
        let text = render(&TestConfig::default()).unwrap();
        let pos = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle}: {text}"))
        };
        assert!(pos("node-id") < pos("name = "), "{text}");
        assert!(pos("peers") < pos("[log]"), "{text}");
        assert!(pos("[log]") < pos("[log.index]"), "{text}");
        assert!(pos("[log.index]") < pos("[logging]"), "{text}");
    }

    #[test]
    fn render_rejects_non_tables() {
        assert!(matches!(render(&5u32), Err(Error::Serialize { .. })));
        #[derive(Serialize)]
        struct Big {
            n: u64,
        }
        let err = render(&Big { n: u64::MAX }).unwrap_err();
        assert!(matches!(err, Error::Serialize { .. }), "{err:?}");
        let err = load::<BigDefault>(&LoadOptions::new(PREFIX)).unwrap_err();
        assert!(matches!(err, Error::Serialize { .. }), "{err:?}");
    }

    /// A config whose default cannot be expressed in TOML (integers stop at `i64::MAX`).
    #[derive(Debug, Serialize, Deserialize)]
    struct BigDefault {
        n: u64,
    }

    impl Default for BigDefault {
        fn default() -> Self {
            Self { n: u64::MAX }
        }
    }

    impl Validate for BigDefault {}

    #[test]
    fn debug_hides_env_values() {
        let opts = LoadOptions::new(PREFIX)
            .with_env(env(&[("STROM_TEST__PASSWORD", "hunter2"), ("OTHER", "x")]));
        let shown = format!("{opts:?}");
        assert!(shown.contains("STROM_TEST__PASSWORD"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("OTHER"), "{shown}");
    }
}
