//! Turning each config layer into `toml::Table` edits: env var names and `--set` keys to
//! key paths, raw strings to TOML values, and the deep merge that stacks the layers.

use toml::{Table, Value};

use crate::error::{Error, Layer, Result};

/// A key path into the config tree, one segment per table level.
pub(super) type KeyPath = Vec<String>;

/// One value set by an env var or a `--set` flag.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Assignment {
    pub(super) path: KeyPath,
    pub(super) value: Value,
    /// The text as given, before [`parse_scalar`].
    pub(super) raw: String,
    pub(super) layer: Layer,
}

/// Picks the env vars under `prefix` and maps them to assignments, sorted by var name so the
/// outcome does not depend on the environment's iteration order.
///
/// `STROM_BROKER__LOG__SEGMENT_BYTES` with prefix `STROM_BROKER` becomes `log.segment-bytes`:
/// `__` separates levels, `_` becomes `-`, letters are lowercased. Vars that do not start with
/// `{prefix}__` are ignored.
pub(super) fn env_assignments<'a>(
    prefix: &str,
    vars: impl IntoIterator<Item = &'a (String, String)>,
) -> Result<Vec<Assignment>> {
    let head = format!("{prefix}__");
    let mut matching: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(&head))
        .collect();
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    matching
        .into_iter()
        .map(|(name, raw)| {
            let layer = Layer::Env(name.clone());
            let path = env_path(&name[head.len()..]).ok_or_else(|| Error::MalformedKey {
                key: name.clone(),
                layer: layer.clone(),
            })?;
            Ok(Assignment {
                path,
                value: parse_scalar(raw),
                raw: raw.clone(),
                layer,
            })
        })
        .collect()
}

/// `LOG__SEGMENT_BYTES` → `["log", "segment-bytes"]`; `None` if any level is empty.
fn env_path(rest: &str) -> Option<KeyPath> {
    rest.split("__")
        .map(|seg| (!seg.is_empty()).then(|| seg.to_ascii_lowercase().replace('_', "-")))
        .collect()
}

/// Maps `--set` pairs to assignments. Keys are dotted paths used verbatim (`log.segment-bytes`).
pub(super) fn flag_assignments(overrides: &[(String, String)]) -> Result<Vec<Assignment>> {
    overrides
        .iter()
        .map(|(key, raw)| {
            let layer = Layer::Flag(key.clone());
            let path = key
                .split('.')
                .map(|seg| (!seg.is_empty()).then(|| seg.to_owned()))
                .collect::<Option<KeyPath>>()
                .ok_or_else(|| Error::MalformedKey {
                    key: key.clone(),
                    layer: layer.clone(),
                })?;
            Ok(Assignment {
                path,
                value: parse_scalar(raw),
                raw: raw.clone(),
                layer,
            })
        })
        .collect()
}

/// Reads a raw env/flag value: an integer, float, boolean or quoted string if it is one in
/// TOML syntax, or an array of those (`["http://etcd-0:2379", "http://etcd-1:2379"]`),
/// otherwise the text itself as a string. So `64MiB` is the string `"64MiB"`, `8` is an
/// integer, and `"8"` (with quotes) forces the string `8`. (A key that wants a string still
/// gets one: the loader retries a non-string value as its text.)
pub(super) fn parse_scalar(raw: &str) -> Value {
    // A newline would let the text define further keys in the scratch document.
    if raw.contains(['\n', '\r']) {
        return Value::String(raw.to_owned());
    }
    let parsed = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(v) if is_scalar(&v) => v,
        Some(Value::Array(items)) if items.iter().all(is_scalar) => Value::Array(items),
        _ => Value::String(raw.to_owned()),
    }
}

fn is_scalar(value: &Value) -> bool {
    matches!(
        value,
        Value::Integer(_) | Value::Float(_) | Value::Boolean(_) | Value::String(_)
    )
}

/// Sets `path` in `table` to `value`, creating tables on the way and replacing any non-table
/// value that is in the way (a later layer wins).
pub(super) fn set_path(table: &mut Table, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(child) = entry {
                set_path(child, rest, value);
            } else {
                let mut child = Table::new();
                set_path(&mut child, rest, value);
                *entry = Value::Table(child);
            }
        }
    }
}

/// Deep-merges `overlay` into `base`: tables merge key by key, anything else is replaced.
pub(super) fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn path(p: &str) -> KeyPath {
        p.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn env_names_map_to_paths() {
        let env = vars(&[
            ("STROM_BROKER__LOG__SEGMENT_BYTES", "64MiB"),
            ("STROM_BROKER__NODE_ID", "3"),
            ("STROM_BROKER__A__B__C_D_E", "x"),
            (
                "STROM_BROKER_NODE_ID",
                "ignored: single underscore after prefix",
            ),
            ("STROM_CONTROLLER__NODE_ID", "ignored: other prefix"),
            ("PATH", "/usr/bin"),
        ]);
        let got = env_assignments("STROM_BROKER", &env).unwrap();
        let got: Vec<_> = got.iter().map(|a| (a.path.join("."), &a.layer)).collect();
        assert_eq!(
            got,
            vec![
                (
                    "a.b.c-d-e".to_owned(),
                    &Layer::Env("STROM_BROKER__A__B__C_D_E".into())
                ),
                (
                    "log.segment-bytes".to_owned(),
                    &Layer::Env("STROM_BROKER__LOG__SEGMENT_BYTES".into())
                ),
                (
                    "node-id".to_owned(),
                    &Layer::Env("STROM_BROKER__NODE_ID".into())
                ),
            ]
        );
    }

    #[test]
    fn env_empty_segments_are_malformed() {
        for name in [
            "STROM_BROKER__",
            "STROM_BROKER__LOG____X",
            "STROM_BROKER__LOG__",
        ] {
            let env = vars(&[(name, "1")]);
            let err = env_assignments("STROM_BROKER", &env).unwrap_err();
            assert!(
                matches!(err, Error::MalformedKey { ref key, layer: Layer::Env(ref v) } if key == name && v == name),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn flag_keys_are_dotted_and_verbatim() {
        let got = flag_assignments(&[("log.segment-bytes".into(), "1KiB".into())]).unwrap();
        assert_eq!(got[0].path, path("log.segment-bytes"));
        assert_eq!(got[0].value, Value::String("1KiB".into()));
        assert_eq!(got[0].layer, Layer::Flag("log.segment-bytes".into()));
        for bad in ["", ".a", "a.", "a..b"] {
            let err = flag_assignments(&[(bad.into(), "1".into())]).unwrap_err();
            assert!(
                matches!(err, Error::MalformedKey { .. }),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn scalars_parse_as_toml_when_they_can() {
        let cases: &[(&str, Value)] = &[
            ("8", Value::Integer(8)),
            ("-3", Value::Integer(-3)),
            ("1_000", Value::Integer(1000)),
            ("2.5", Value::Float(2.5)),
            ("true", Value::Boolean(true)),
            ("false", Value::Boolean(false)),
            ("64MiB", Value::String("64MiB".into())),
            ("30s", Value::String("30s".into())),
            ("info,strom=debug", Value::String("info,strom=debug".into())),
            ("\"8\"", Value::String("8".into())),
            ("'quoted'", Value::String("quoted".into())),
            ("", Value::String(String::new())),
            (
                "[1, 2]",
                Value::Array(vec![Value::Integer(1), Value::Integer(2)]),
            ),
            (
                "[\"http://a:2379\", \"http://b:2379\"]",
                Value::Array(vec![
                    Value::String("http://a:2379".into()),
                    Value::String("http://b:2379".into()),
                ]),
            ),
            ("[{ a = 1 }]", Value::String("[{ a = 1 }]".into())),
            ("1\nx = 2", Value::String("1\nx = 2".into())),
            ("1979-05-27", Value::String("1979-05-27".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(&parse_scalar(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn merge_is_deep_and_later_wins() {
        let mut base: Table = toml::from_str(
            "a = 1\n[log]\nsegment-bytes = 1\nretention = \"1d\"\n[log.index]\ninterval = 4\n",
        )
        .unwrap();
        let overlay: Table =
            toml::from_str("a = 2\n[log]\nsegment-bytes = 2\n[log.index]\nmax = 9\n").unwrap();
        merge(&mut base, overlay);
        let want: Table = toml::from_str(
            "a = 2\n[log]\nsegment-bytes = 2\nretention = \"1d\"\n[log.index]\ninterval = 4\nmax = 9\n",
        )
        .unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn merge_replaces_across_kinds() {
        let mut base: Table = toml::from_str("a = [1, 2]\n[b]\nc = 1\n").unwrap();
        merge(&mut base, toml::from_str("a = [3]\nb = 5\n").unwrap());
        assert_eq!(base, toml::from_str::<Table>("a = [3]\nb = 5\n").unwrap());
    }

    #[test]
    fn set_path_creates_and_replaces_tables() {
        let mut t = Table::new();
        set_path(&mut t, &path("log.index.interval"), Value::Integer(4));
        set_path(&mut t, &path("log.segment-bytes"), Value::Integer(1));
        assert_eq!(
            t,
            toml::from_str::<Table>("[log]\nsegment-bytes = 1\n[log.index]\ninterval = 4\n")
                .unwrap()
        );
        set_path(&mut t, &path("log.segment-bytes.x"), Value::Integer(2));
        assert_eq!(t["log"]["segment-bytes"]["x"].as_integer(), Some(2));
    }
}
