//! The history a workload records: every operation with its outcome, and every fault.
//!
//! Times are milliseconds since the run started. Values are unique per run (a producer writes
//! each value once, retries included), which is what lets the checker tell a lost write from a
//! duplicate.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How an operation ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect (a produce was acknowledged, a commit accepted).
    Ok,
    /// It definitely did not take effect (the server refused it).
    Fail,
    /// It may or may not have taken effect (a timeout, a lost connection).
    Unknown,
}

/// One record as a consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its value.
    pub value: String,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OpKind {
    /// A produce of one unique value; `offset` is the acknowledged offset when ok.
    Send {
        /// The partition written to.
        partition: i32,
        /// The value.
        value: String,
        /// The offset the leader acknowledged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
    },
    /// One poll of a group consumer (or partition consumer) for one partition.
    Poll {
        /// The partition read.
        partition: i32,
        /// The records returned, in order.
        records: Vec<Record>,
    },
    /// An offset commit of a group member.
    Commit {
        /// The group.
        group: String,
        /// The partition.
        partition: i32,
        /// The committed offset (the next record to read).
        offset: i64,
    },
    /// The partitions a group member owned from this point on, at a member epoch.
    Assign {
        /// The group.
        group: String,
        /// The member id.
        member: String,
        /// The member epoch the assignment came with.
        epoch: i32,
        /// The partitions owned.
        partitions: Vec<i32>,
    },
    /// The final read of one partition from its start by a fresh consumer, after healing.
    Drain {
        /// The partition read.
        partition: i32,
        /// The partition's log start when the drain began: retention deleted everything
        /// below it, so values acknowledged there are not expected in the drain.
        #[serde(default)]
        start_offset: i64,
        /// Every record in the partition, in order.
        records: Vec<Record>,
    },
}

/// One completed operation of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client process (producer or consumer) that ran it.
    pub process: u32,
    /// When it was invoked.
    pub invoked_ms: u64,
    /// When it completed (or was given up on).
    pub completed_ms: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// What it did.
    #[serde(flatten)]
    pub kind: OpKind,
}

/// A fault injected into the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What was done, e.g. `kill -9 leader of p0 (broker 2)`.
    pub name: String,
    /// The partition the fault is aimed at: its unavailability counts only operations on
    /// it. `None` for faults of the whole cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// When it was injected.
    pub at_ms: u64,
    /// When it was healed, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed_ms: Option<u64>,
}

/// One line of a history file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// An operation.
    Op(Op),
    /// A fault.
    Fault(Fault),
}

/// A whole run: operations and faults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Every operation, in completion order.
    pub ops: Vec<Op>,
    /// Every fault, in injection order.
    pub faults: Vec<Fault>,
}

impl History {
    /// Adds an entry.
    pub fn push(&mut self, entry: Entry) {
        match entry {
            Entry::Op(op) => self.ops.push(op),
            Entry::Fault(fault) => self.faults.push(fault),
        }
    }

    /// Parses one JSON entry per line; blank lines are skipped.
    pub fn parse(text: &str) -> Result<Self> {
        let mut history = Self::default();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(line).map_err(|e| Error::Parse {
                line: index + 1,
                message: e.to_string(),
            })?;
            history.push(entry);
        }
        Ok(history)
    }

    /// Renders the history as one JSON entry per line: faults first, then operations.
    pub fn to_json_lines(&self) -> Result<String> {
        let mut out = String::new();
        let entries = self
            .faults
            .iter()
            .cloned()
            .map(Entry::Fault)
            .chain(self.ops.iter().cloned().map(Entry::Op));
        for entry in entries {
            let line = serde_json::to_string(&entry).map_err(|e| Error::Encode {
                message: e.to_string(),
            })?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_round_trip() {
        let mut history = History::default();
        history.push(Entry::Fault(Fault {
            name: "kill -9 broker 2".into(),
            partition: Some(0),
            at_ms: 1000,
            healed_ms: Some(4000),
        }));
        history.push(Entry::Op(Op {
            process: 1,
            invoked_ms: 10,
            completed_ms: 12,
            outcome: Outcome::Ok,
            kind: OpKind::Send {
                partition: 0,
                value: "v-1".into(),
                offset: Some(0),
            },
        }));
        let text = history.to_json_lines().unwrap();
        assert!(text.contains(r#""entry":"op""#), "{text}");
        assert!(text.contains(r#""type":"send""#), "{text}");
        assert_eq!(History::parse(&text).unwrap(), history);
    }

    #[test]
    fn a_bad_line_names_its_number() {
        let err = History::parse("\n{\"entry\":\"nope\"}\n").unwrap_err();
        assert!(matches!(err, Error::Parse { line: 2, .. }), "{err:?}");
    }
}
