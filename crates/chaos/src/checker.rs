//! The history checker, after Jepsen's queue and Kafka analyses.
//!
//! Checked, over every operation of a run:
//!
//! - **lost**: a value acknowledged (send ok) that no read ever returned;
//! - **unseen**: a value acknowledged that the final drain did not return;
//!
//! (values acknowledged below the log start a drain found — deleted by retention — count as
//! neither lost nor unseen);
//! - **duplicated**: a value read at more than one offset of its partition;
//! - **inconsistent offsets**: two values at one partition offset, among all reads and the
//!   offsets sends were acknowledged with;
//! - **unexpected**: a value read that no send ever attempted (ok, fail or unknown);
//! - **non-monotonic reads**: a consumer process reading a partition at or below an offset it
//!   read before, without a new assignment in between;
//! - **commits moving backward**: an accepted commit of a group partition below one accepted
//!   before it was invoked;
//! - **double ownership**: one partition assigned to two members of a group at one epoch.
//!
//! Per fault it also reports the unavailability window: the time from the fault until the
//! first send, read, assignment and commit invoked after it succeeded — of the fault's
//! partition, when it names one.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{Fault, History, Op, OpKind, Outcome, Record};

/// A value read at two offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// The partition.
    pub partition: i32,
    /// The value.
    pub value: String,
    /// Every offset it was read at.
    pub offsets: Vec<i64>,
}

/// Two values at one offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inconsistent {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Every value seen there.
    pub values: Vec<String>,
}

/// A read that went backward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NonMonotonic {
    /// The consumer process.
    pub process: u32,
    /// The partition.
    pub partition: i32,
    /// The highest offset read before.
    pub previous: i64,
    /// The offset read afterwards.
    pub offset: i64,
}

/// A commit below an earlier accepted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackwardCommit {
    /// The group.
    pub group: String,
    /// The partition.
    pub partition: i32,
    /// The earlier committed offset.
    pub previous: i64,
    /// The later, lower one.
    pub offset: i64,
}

/// One partition owned by two members at one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoubleOwner {
    /// The group.
    pub group: String,
    /// The member epoch.
    pub epoch: i32,
    /// The partition.
    pub partition: i32,
    /// The members that owned it.
    pub members: Vec<String>,
}

/// How long after a fault each kind of operation first succeeded again (`None`: never).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailability {
    /// The fault.
    pub fault: String,
    /// Until the next acknowledged send completed.
    pub send_ms: Option<u64>,
    /// Until the next non-empty read completed.
    pub read_ms: Option<u64>,
    /// Until the next assignment arrived.
    pub assign_ms: Option<u64>,
    /// Until the next accepted offset commit.
    pub commit_ms: Option<u64>,
}

/// Everything the checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Distinct values sends attempted.
    pub attempted: usize,
    /// Sends acknowledged.
    pub acknowledged: usize,
    /// Acknowledged values no read returned.
    pub lost: Vec<String>,
    /// Acknowledged values the final drain did not return.
    pub unseen: Vec<String>,
    /// Values read at more than one offset.
    pub duplicated: Vec<Duplicate>,
    /// Offsets holding more than one value.
    pub inconsistent: Vec<Inconsistent>,
    /// Values read that were never sent.
    pub unexpected: Vec<String>,
    /// Reads that went backward within a consumer.
    pub non_monotonic: Vec<NonMonotonic>,
    /// Commits that moved backward.
    pub backward_commits: Vec<BackwardCommit>,
    /// Partitions owned twice at one epoch.
    pub double_owners: Vec<DoubleOwner>,
    /// One entry per fault.
    pub unavailability: Vec<Unavailability>,
}

impl Report {
    /// The number of violations of every kind together.
    pub fn violations(&self) -> usize {
        self.lost.len()
            + self.unseen.len()
            + self.duplicated.len()
            + self.inconsistent.len()
            + self.unexpected.len()
            + self.non_monotonic.len()
            + self.backward_commits.len()
            + self.double_owners.len()
    }

    /// Whether the history shows no violation.
    pub fn is_valid(&self) -> bool {
        self.violations() == 0
    }
}

/// Checks `history`.
pub fn check(history: &History) -> Report {
    let mut ops: Vec<&Op> = history.ops.iter().collect();
    ops.sort_by_key(|op| (op.completed_ms, op.invoked_ms));
    let mut report = Report::default();
    check_values(&ops, &mut report);
    report.non_monotonic = non_monotonic(&ops);
    report.backward_commits = backward_commits(&ops);
    report.double_owners = double_owners(&ops);
    report.unavailability = history
        .faults
        .iter()
        .map(|fault| unavailability(fault, &ops))
        .collect();
    report
}

/// The records of a read (poll or drain) that returned.
fn records_of(op: &Op) -> Option<(i32, &[Record])> {
    match &op.kind {
        OpKind::Poll { partition, records }
        | OpKind::Drain {
            partition, records, ..
        } if op.outcome == Outcome::Ok => Some((*partition, records)),
        _ => None,
    }
}

/// Lost, unseen, duplicated, inconsistent and unexpected values.
fn check_values(ops: &[&Op], report: &mut Report) {
    let mut attempted: BTreeSet<&str> = BTreeSet::new();
    let mut acked: BTreeMap<&str, (i32, Option<i64>)> = BTreeMap::new();
    let mut log_start: BTreeMap<i32, i64> = BTreeMap::new();
    // (partition, offset) -> values; (partition, value) -> offsets.
    let mut at_offset: BTreeMap<(i32, i64), BTreeSet<&str>> = BTreeMap::new();
    let mut offsets_of: BTreeMap<(i32, &str), BTreeSet<i64>> = BTreeMap::new();
    let mut read: BTreeSet<&str> = BTreeSet::new();
    let mut drained: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        if let OpKind::Send {
            partition,
            value,
            offset,
        } = &op.kind
        {
            attempted.insert(value);
            if op.outcome == Outcome::Ok {
                acked.insert(value, (*partition, *offset));
                if let Some(offset) = offset {
                    at_offset
                        .entry((*partition, *offset))
                        .or_default()
                        .insert(value);
                    // A read at another offset than the acknowledged one is a duplicate.
                    offsets_of
                        .entry((*partition, value))
                        .or_default()
                        .insert(*offset);
                }
            }
        }
        if let OpKind::Drain {
            partition,
            start_offset,
            ..
        } = &op.kind
        {
            let start = log_start.entry(*partition).or_default();
            *start = (*start).max(*start_offset);
        }
        if let Some((partition, records)) = records_of(op) {
            for record in records {
                read.insert(&record.value);
                if matches!(op.kind, OpKind::Drain { .. }) {
                    drained.insert(&record.value);
                }
                at_offset
                    .entry((partition, record.offset))
                    .or_default()
                    .insert(&record.value);
                offsets_of
                    .entry((partition, &record.value))
                    .or_default()
                    .insert(record.offset);
            }
        }
    }
    report.attempted = attempted.len();
    report.acknowledged = acked.len();
    // Values retention deleted before the drain are not expected anywhere.
    let retained = |(_, (partition, offset)): &(&&str, &(i32, Option<i64>))| {
        offset.is_none_or(|offset| offset >= log_start.get(partition).copied().unwrap_or(0))
    };
    report.lost = acked
        .iter()
        .filter(retained)
        .filter(|(v, _)| !read.contains(*v))
        .map(|(v, _)| (*v).to_owned())
        .collect();
    report.unseen = acked
        .iter()
        .filter(retained)
        .filter(|(v, _)| !drained.contains(*v))
        .map(|(v, _)| (*v).to_owned())
        .collect();
    report.unexpected = read
        .iter()
        .filter(|v| !attempted.contains(*v))
        .map(|v| (*v).to_owned())
        .collect();
    report.duplicated = offsets_of
        .into_iter()
        .filter(|(_, offsets)| offsets.len() > 1)
        .map(|((partition, value), offsets)| Duplicate {
            partition,
            value: value.to_owned(),
            offsets: offsets.into_iter().collect(),
        })
        .collect();
    report.inconsistent = at_offset
        .into_iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|((partition, offset), values)| Inconsistent {
            partition,
            offset,
            values: values.into_iter().map(str::to_owned).collect(),
        })
        .collect();
}

/// Reads at or below an offset the same process read before, with no assignment between.
fn non_monotonic(ops: &[&Op]) -> Vec<NonMonotonic> {
    let mut last: BTreeMap<(u32, i32), i64> = BTreeMap::new();
    let mut found = Vec::new();
    for op in ops {
        if let OpKind::Assign { .. } = op.kind {
            // A new assignment may legitimately rewind to the committed offset.
            last.retain(|(process, _), _| *process != op.process);
            continue;
        }
        let (OpKind::Poll { partition, records }, Outcome::Ok) = (&op.kind, op.outcome) else {
            continue;
        };
        for record in records {
            let key = (op.process, *partition);
            if let Some(previous) = last.get(&key)
                && record.offset <= *previous
            {
                found.push(NonMonotonic {
                    process: op.process,
                    partition: *partition,
                    previous: *previous,
                    offset: record.offset,
                });
            }
            last.insert(key, record.offset);
        }
    }
    found
}

/// Accepted commits lower than one accepted before them, per group partition.
///
/// "Before" is real time: a commit is backward only when it was invoked after a higher
/// commit had completed. Commits whose calls overlap may land in either order (a member
/// paused with its request in flight reports it only when it resumes).
fn backward_commits(ops: &[&Op]) -> Vec<BackwardCommit> {
    let mut commits: Vec<(&Op, (&str, i32), i64)> = ops
        .iter()
        .filter_map(|op| match (&op.kind, op.outcome) {
            (
                OpKind::Commit {
                    group,
                    partition,
                    offset,
                },
                Outcome::Ok,
            ) => Some((*op, (group.as_str(), *partition), *offset)),
            _ => None,
        })
        .collect();
    let mut by_completion = commits.clone();
    by_completion.sort_by_key(|(op, _, _)| op.completed_ms);
    commits.sort_by_key(|(op, _, _)| op.invoked_ms);
    // The highest offset per group partition among commits completed so far.
    let mut done: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    let mut next = 0;
    let mut found = Vec::new();
    for (op, key, offset) in &commits {
        while let Some((earlier, earlier_key, earlier_offset)) = by_completion.get(next)
            && earlier.completed_ms < op.invoked_ms
        {
            let highest = done.entry(*earlier_key).or_insert(*earlier_offset);
            *highest = (*highest).max(*earlier_offset);
            next += 1;
        }
        if let Some(previous) = done.get(key)
            && offset < previous
        {
            found.push(BackwardCommit {
                group: key.0.to_owned(),
                partition: key.1,
                previous: *previous,
                offset: *offset,
            });
        }
    }
    found
}

/// Partitions assigned to two members of one group at one epoch.
fn double_owners(ops: &[&Op]) -> Vec<DoubleOwner> {
    let mut owners: BTreeMap<(&str, i32, i32), BTreeSet<&str>> = BTreeMap::new();
    for op in ops {
        if let OpKind::Assign {
            group,
            member,
            epoch,
            partitions,
        } = &op.kind
        {
            for partition in partitions {
                owners
                    .entry((group.as_str(), *epoch, *partition))
                    .or_default()
                    .insert(member);
            }
        }
    }
    owners
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|((group, epoch, partition), members)| DoubleOwner {
            group: group.to_owned(),
            epoch,
            partition,
            members: members.into_iter().map(str::to_owned).collect(),
        })
        .collect()
}

/// The partition an operation touched, if it touched one.
fn partition_of(op: &Op) -> Option<i32> {
    match &op.kind {
        OpKind::Send { partition, .. }
        | OpKind::Poll { partition, .. }
        | OpKind::Commit { partition, .. }
        | OpKind::Drain { partition, .. } => Some(*partition),
        OpKind::Assign { .. } => None,
    }
}

/// The time from `fault` to the first send, read, assignment and commit invoked after it that
/// succeeded (on the fault's partition, when it names one). Operations already in flight at
/// the fault do not count: a send the dying leader acknowledged just before says nothing
/// about when the partition was writable again.
fn unavailability(fault: &Fault, ops: &[&Op]) -> Unavailability {
    let first_after = |matches: &dyn Fn(&Op) -> bool| {
        ops.iter()
            .filter(|op| op.invoked_ms >= fault.at_ms && matches(op))
            .filter(|op| {
                fault.partition.is_none()
                    || partition_of(op).is_none()
                    || partition_of(op) == fault.partition
            })
            .map(|op| op.completed_ms - fault.at_ms)
            .min()
    };
    Unavailability {
        fault: fault.name.clone(),
        send_ms: first_after(&|op| {
            op.outcome == Outcome::Ok && matches!(op.kind, OpKind::Send { .. })
        }),
        read_ms: first_after(&|op| {
            op.outcome == Outcome::Ok
                && matches!(&op.kind, OpKind::Poll { records, .. } if !records.is_empty())
        }),
        assign_ms: first_after(&|op| matches!(op.kind, OpKind::Assign { .. })),
        commit_ms: first_after(&|op| {
            op.outcome == Outcome::Ok && matches!(op.kind, OpKind::Commit { .. })
        }),
    }
}
