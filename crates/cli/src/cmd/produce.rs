//! `strom produce`: one record per input line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use serde::Serialize;
use strom_client::{Compression, Producer, ProducerConfig, ProducerRecord};

use super::{AcksArg, key_value};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Table, print};

/// `produce` arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  printf 'a\\nb\\n' | strom produce orders\n  \
    strom produce orders --file events.txt --key-separator ':' --header source=import --verbose"
)]
pub(crate) struct ProduceArgs {
    /// The topic.
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Split each line at the first occurrence of this separator into key and value.
    #[arg(long, short = 'k')]
    key_separator: Option<String>,
    /// A header added to every record, repeatable.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key hash, else spread).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgement to wait for.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Print the partition and offset of every record.
    #[arg(long, short = 'v')]
    verbose: bool,
}

impl ProduceArgs {
    fn record(&self, line: &str, number: usize) -> Result<ProducerRecord> {
        let mut record = match &self.key_separator {
            Some(separator) => {
                let (key, value) = line.split_once(separator.as_str()).ok_or_else(|| {
                    Error::usage(format!("line {number} has no key separator {separator:?}"))
                })?;
                ProducerRecord::with_key(&self.topic, key.to_owned(), value.to_owned())
            }
            None => ProducerRecord::new(&self.topic, line.to_owned()),
        };
        for (key, value) in &self.headers {
            record = record.header(key.clone(), Some(Bytes::from(value.clone())));
        }
        if let Some(partition) = self.partition {
            record = record.partition(partition);
        }
        Ok(record)
    }

    fn input(&self) -> Result<Box<dyn BufRead>> {
        Ok(match &self.file {
            Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
                |source| Error::Io {
                    what: format!("opening {}", path.display()),
                    source,
                },
            )?)),
            None => Box::new(std::io::BufReader::new(std::io::stdin())),
        })
    }

    /// Runs the command.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let client = context.client().await?;
        // Fail on an unknown topic before reading any input.
        client.partition_count(&self.topic).await?;
        let config = ProducerConfig {
            acks: self.acks.into(),
            compression: self.compression,
            enable_idempotence: self.acks == AcksArg::All,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client, config)?;
        let mut deliveries = Vec::new();
        let mut failure = None;
        for (index, line) in self.input()?.lines().enumerate() {
            let line = match line {
                Ok(line) => line,
                Err(source) => {
                    failure = Some(Error::Io {
                        what: "reading input".to_owned(),
                        source,
                    });
                    break;
                }
            };
            let record = match self.record(&line, index + 1) {
                Ok(record) => record,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            match producer.send(record).await {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => {
                    failure = Some(error.into());
                    break;
                }
            }
        }
        // Everything sent is waited for, even after a failure, so the summary is exact.
        let mut report = Produced {
            topic: self.topic.clone(),
            records: 0,
            by_partition: BTreeMap::new(),
            offsets: Vec::new(),
            verbose: self.verbose,
        };
        for delivery in deliveries {
            match delivery.await {
                Ok(written) => {
                    report.records += 1;
                    *report.by_partition.entry(written.partition).or_default() += 1;
                    if self.verbose {
                        report.offsets.push((written.partition, written.offset));
                    }
                }
                Err(error) => {
                    failure.get_or_insert(error.into());
                }
            }
        }
        producer.close().await;
        print(context.format, &report)?;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Produced {
    topic: String,
    records: u64,
    by_partition: BTreeMap<i32, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    offsets: Vec<(i32, i64)>,
    #[serde(skip)]
    verbose: bool,
}

impl Render for Produced {
    fn tables(&self) -> Vec<Table> {
        let mut tables = Vec::new();
        if self.verbose {
            let mut table = Table::new(["PARTITION", "OFFSET"]);
            for (partition, offset) in &self.offsets {
                table.row([partition.to_string(), offset.to_string()]);
            }
            tables.push(table);
        }
        let mut summary = Table::new(["TOPIC", "RECORDS", "PARTITIONS"]);
        summary.row([
            self.topic.clone(),
            self.records.to_string(),
            self.by_partition.len().to_string(),
        ]);
        tables.push(summary);
        tables
    }
}
