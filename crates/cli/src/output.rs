//! Printing results as aligned tables for people, or as JSON / YAML for scripts.

use std::fmt;
use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::{Error, Result};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// A result that can be shown as tables as well as serialized.
pub(crate) trait Render: Serialize {
    /// The tables (or lines) a person sees.
    fn tables(&self) -> Vec<Table>;
}

/// A titled table of text cells.
#[derive(Debug, Default)]
pub(crate) struct Table {
    title: Option<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            title: None,
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets a line printed above the table.
    #[must_use]
    pub(crate) fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Appends a row; missing cells print empty.
    pub(crate) fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(title) = &self.title {
            writeln!(f, "{title}")?;
        }
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  "));
                }
            }
            writeln!(f, "{}", text.trim_end())
        };
        line(f, &self.headers)?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// Prints `value` in `format` to stdout.
pub(crate) fn print<R: Render>(format: Format, value: &R) -> Result<()> {
    let text = match format {
        Format::Table => {
            let tables: Vec<String> = value.tables().iter().map(ToString::to_string).collect();
            tables.join("\n")
        }
        Format::Json => {
            let mut text = serde_json::to_string_pretty(value)
                .map_err(|e| Error::usage(format!("cannot encode the result as JSON: {e}")))?;
            text.push('\n');
            text
        }
        Format::Yaml => serde_yaml::to_string(value)
            .map_err(|e| Error::usage(format!("cannot encode the result as YAML: {e}")))?,
    };
    write_stdout(&text)
}

/// Writes `text` to stdout, treating a closed pipe (e.g. `| head`) as success.
pub(crate) fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Io {
            what: "writing to stdout".to_owned(),
            source,
        }),
    }
}

/// An optional number as a cell: empty when unknown.
pub(crate) fn cell<T: ToString>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// A proto enum value's name without its type prefix, in lower case: `GROUP_STATE_STABLE`
/// with prefix `GROUP_STATE_` is `stable`.
pub(crate) fn label(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_lowercase()
}

/// A list of ids as a cell, e.g. `1,2,3`.
pub(crate) fn ids(values: &[i32]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut table = Table::new(["NAME", "PARTITIONS"]).titled("topics");
        table.row(["orders", "12"]);
        table.row(["a", "1"]);
        assert_eq!(
            table.to_string(),
            "topics\nNAME    PARTITIONS\norders  12\na       1\n"
        );
    }

    #[test]
    fn unknown_values_show_a_dash() {
        assert_eq!(cell(None::<i64>), "-");
        assert_eq!(cell(Some(7)), "7");
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
    }
}
