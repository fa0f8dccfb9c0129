//! Deserializing the merged config so that an error names the key and the layer it came from.
//!
//! serde's own errors carry neither: after the layers are merged, `unknown field `x`` could
//! come from the file, an env var or a flag. So the merged tree is written out as a TOML
//! document with one fully dotted leaf per line (`log.segment-bytes = "64MiB"`) and parsed from
//! text; the `toml` deserializer reports the byte span of the failing key or value, the span
//! picks the line, the line gives the key path, and [`Origins`] maps the path to its layer.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::layers::KeyPath;
use crate::error::{Error, Layer, Result};

/// Which layer last set each leaf key path.
#[derive(Debug, Default)]
pub(super) struct Origins {
    by_path: HashMap<KeyPath, Layer>,
}

impl Origins {
    /// Records that `layer` set `path`.
    pub(super) fn record(&mut self, path: KeyPath, layer: Layer) {
        self.by_path.insert(path, layer);
    }

    /// Records every leaf (scalar, array or empty table) of `table` as set by `layer`.
    pub(super) fn record_tree(&mut self, table: &Table, layer: &Layer) {
        let mut prefix = Vec::new();
        self.record_walk(table, layer, &mut prefix);
    }

    fn record_walk(&mut self, table: &Table, layer: &Layer, prefix: &mut KeyPath) {
        for (key, value) in table {
            prefix.push(key.clone());
            match value {
                Value::Table(child) if !child.is_empty() => self.record_walk(child, layer, prefix),
                _ => self.record(prefix.clone(), layer.clone()),
            }
            prefix.pop();
        }
    }

    /// The layer of `path`, or of its longest recorded prefix; keys nobody set are defaults.
    fn layer_of(&self, path: &[String]) -> Layer {
        (1..=path.len())
            .rev()
            .find_map(|len| self.by_path.get(&path[..len]))
            .cloned()
            .unwrap_or(Layer::Default)
    }
}

/// One rendered leaf line of the scratch document.
#[derive(Debug)]
struct Line {
    path: KeyPath,
    /// Byte range of each key segment, in document offsets.
    segments: Vec<Range<usize>>,
    /// Byte range of the whole line, without its newline.
    span: Range<usize>,
}

/// Deserializes `merged` into `T`, turning a failure into [`Error::UnknownKey`] or
/// [`Error::BadValue`] with the key's dotted path and layer where the span allows it.
pub(super) fn deserialize<T: DeserializeOwned>(merged: &Table, origins: &Origins) -> Result<T> {
    let mut doc = String::new();
    let mut lines = Vec::new();
    render_lines(merged, &mut Vec::new(), &mut doc, &mut lines);
    toml::from_str(&doc).map_err(|e| attribute(&e, &lines, origins))
}

fn render_lines(table: &Table, prefix: &mut KeyPath, doc: &mut String, lines: &mut Vec<Line>) {
    for (key, value) in table {
        prefix.push(key.clone());
        match value {
            Value::Table(child) if !child.is_empty() => render_lines(child, prefix, doc, lines),
            _ => {
                let start = doc.len();
                let mut segments = Vec::with_capacity(prefix.len());
                for (i, seg) in prefix.iter().enumerate() {
                    if i > 0 {
                        doc.push('.');
                    }
                    let seg_start = doc.len();
                    doc.push_str(&key_repr(seg));
                    segments.push(seg_start..doc.len());
                }
                doc.push_str(" = ");
                doc.push_str(&value.to_string());
                lines.push(Line {
                    path: prefix.clone(),
                    segments,
                    span: start..doc.len(),
                });
                doc.push('\n');
            }
        }
        prefix.pop();
    }
}

/// A key as TOML source: bare when it can be, otherwise a quoted basic string.
fn key_repr(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

fn attribute(err: &toml::de::Error, lines: &[Line], origins: &Origins) -> Error {
    let message = err.message().trim_end();
    let unattributed = || Error::Deserialize {
        message: message.to_owned(),
    };
    let Some(span) = err.span() else {
        return unattributed();
    };
    // A span reaching past one line (e.g. the whole document) cannot name a key.
    let Some(line) = lines
        .iter()
        .find(|l| l.span.start <= span.start && span.end <= l.span.end)
    else {
        return unattributed();
    };
    let layer = origins.layer_of(&line.path);
    // The span is either on one of the key's segments (an unknown table or key) or in the
    // value (a bad value, or an unknown key inside an inline table in an array).
    let in_key = line.segments.iter().position(|seg| span.start < seg.end);
    let key_path = match in_key {
        Some(i) => line.path[..=i].join("."),
        None => line.path.join("."),
    };
    match unknown_field_name(message) {
        Some(field) if in_key.is_none() => Error::UnknownKey {
            key: format!("{key_path}.{field}"),
            layer,
        },
        Some(_) => Error::UnknownKey {
            key: key_path,
            layer,
        },
        None => Error::BadValue {
            key: key_path,
            layer,
            reason: message.to_owned(),
        },
    }
}

/// `"unknown field `x`, expected ..."` (serde's wording) → `x`.
fn unknown_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)] // fields exist to be deserialized, never read
    struct Cfg {
        name: String,
        log: Log,
        #[serde(default)]
        listeners: Vec<Listener>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    #[allow(dead_code)]
    struct Log {
        segment_bytes: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Listener {
        port: u16,
    }

    fn path(p: &str) -> KeyPath {
        p.split('.').map(str::to_owned).collect()
    }

    fn run(doc: &str, origins: &Origins) -> Error {
        let table: Table = toml::from_str(doc).unwrap();
        deserialize::<Cfg>(&table, origins).unwrap_err()
    }

    #[test]
    fn unknown_leaf_is_named_with_its_layer() {
        let mut origins = Origins::default();
        origins.record(path("log.bogus"), Layer::Env("X__LOG__BOGUS".into()));
        let err = run(
            "name = \"a\"\n[log]\nsegment-bytes = 1\nbogus = 2\n",
            &origins,
        );
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::Env(ref v) }
                if key == "log.bogus" && v == "X__LOG__BOGUS"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_table_is_named_by_its_own_path() {
        let mut origins = Origins::default();
        origins.record(path("nope.deep.x"), Layer::Flag("nope.deep.x".into()));
        let err = run(
            "name = \"a\"\nnope.deep.x = 1\n[log]\nsegment-bytes = 1\n",
            &origins,
        );
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::Flag(_) } if key == "nope"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_key_inside_array_of_tables() {
        let mut origins = Origins::default();
        origins.record(path("listeners"), Layer::File("/x.toml".into()));
        let doc = "name = \"a\"\nlog.segment-bytes = 1\n[[listeners]]\nport = 1\nhost = \"h\"\n";
        let err = run(doc, &origins);
        assert!(
            matches!(err, Error::UnknownKey { ref key, layer: Layer::File(_) }
                if key == "listeners.host"),
            "{err:?}"
        );
    }

    #[test]
    fn bad_value_names_key_and_reason() {
        let err = run(
            "name = \"a\"\nlog.segment-bytes = \"lots\"\n",
            &Origins::default(),
        );
        assert!(
            matches!(err, Error::BadValue { ref key, layer: Layer::Default, ref reason }
                if key == "log.segment-bytes" && reason.contains("u64")),
            "{err:?}"
        );
    }

    #[test]
    fn odd_keys_are_quoted() {
        assert_eq!(key_repr("segment-bytes"), "segment-bytes");
        assert_eq!(key_repr("a.b"), "\"a.b\"");
        assert_eq!(key_repr(""), "\"\"");
        let mut origins = Origins::default();
        origins.record(path("log"), Layer::Flag("log".into()));
        let mut table: Table = toml::from_str("name = \"a\"\n[log]\nsegment-bytes = 1\n").unwrap();
        table["log"]
            .as_table_mut()
            .unwrap()
            .insert("we ird.key".into(), Value::Integer(1));
        let err = deserialize::<Cfg>(&table, &origins).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey { ref key, .. } if key == "log.we ird.key"),
            "{err:?}"
        );
    }

    #[test]
    fn longest_prefix_wins_for_layer_lookup() {
        let mut origins = Origins::default();
        origins.record(path("a"), Layer::Flag("a".into()));
        origins.record(path("a.b.c"), Layer::Env("E".into()));
        assert_eq!(origins.layer_of(&path("a.b.c")), Layer::Env("E".into()));
        assert_eq!(origins.layer_of(&path("a.b.d")), Layer::Flag("a".into()));
        assert_eq!(origins.layer_of(&path("z")), Layer::Default);
    }
}
