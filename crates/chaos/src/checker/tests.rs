use super::*;
use crate::history::{Fault, History, Op, OpKind, Outcome, Record};

fn op(process: u32, at: u64, outcome: Outcome, kind: OpKind) -> Op {
    Op {
        process,
        invoked_ms: at,
        completed_ms: at + 1,
        outcome,
        kind,
    }
}

fn send(at: u64, value: &str, offset: Option<i64>, outcome: Outcome) -> Op {
    op(
        1,
        at,
        outcome,
        OpKind::Send {
            partition: 0,
            value: value.to_owned(),
            offset,
        },
    )
}

fn records(pairs: &[(i64, &str)]) -> Vec<Record> {
    pairs
        .iter()
        .map(|(offset, value)| Record {
            offset: *offset,
            value: (*value).to_owned(),
        })
        .collect()
}

fn poll(process: u32, at: u64, pairs: &[(i64, &str)]) -> Op {
    op(
        process,
        at,
        Outcome::Ok,
        OpKind::Poll {
            partition: 0,
            records: records(pairs),
        },
    )
}

fn drain(at: u64, pairs: &[(i64, &str)]) -> Op {
    op(
        99,
        at,
        Outcome::Ok,
        OpKind::Drain {
            partition: 0,
            start_offset: 0,
            records: records(pairs),
        },
    )
}

fn assign(process: u32, at: u64, member: &str, epoch: i32, partitions: &[i32]) -> Op {
    op(
        process,
        at,
        Outcome::Ok,
        OpKind::Assign {
            group: "g".into(),
            member: member.into(),
            epoch,
            partitions: partitions.to_vec(),
        },
    )
}

fn commit(at: u64, offset: i64, outcome: Outcome) -> Op {
    op(
        2,
        at,
        outcome,
        OpKind::Commit {
            group: "g".into(),
            partition: 0,
            offset,
        },
    )
}

fn history(ops: Vec<Op>) -> History {
    History {
        ops,
        faults: Vec::new(),
    }
}

#[test]
fn a_clean_history_has_no_violation() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        send(1, "b", Some(1), Outcome::Ok),
        // An unknown send that did land is fine, and so is one that did not.
        send(2, "c", None, Outcome::Unknown),
        send(3, "d", None, Outcome::Fail),
        assign(2, 4, "m1", 1, &[0]),
        poll(2, 5, &[(0, "a"), (1, "b")]),
        poll(2, 6, &[(2, "c")]),
        commit(7, 3, Outcome::Ok),
        drain(10, &[(0, "a"), (1, "b"), (2, "c")]),
    ]);
    let report = check(&h);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!((report.attempted, report.acknowledged), (4, 2));
}

#[test]
fn an_acked_value_never_read_is_lost_and_unseen() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        send(1, "b", Some(1), Outcome::Ok),
        poll(2, 2, &[(0, "a")]),
        drain(3, &[(0, "a")]),
    ]);
    let report = check(&h);
    assert_eq!(report.lost, vec!["b".to_owned()]);
    assert_eq!(report.unseen, vec!["b".to_owned()]);
    assert_eq!(report.violations(), 2);
}

#[test]
fn a_value_read_but_missing_from_the_drain_is_unseen_only() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        poll(2, 1, &[(0, "a")]),
        drain(2, &[]),
    ]);
    let report = check(&h);
    assert!(report.lost.is_empty());
    assert_eq!(report.unseen, vec!["a".to_owned()]);
}

#[test]
fn a_value_at_two_offsets_is_duplicated() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        drain(1, &[(0, "a"), (1, "a")]),
    ]);
    let report = check(&h);
    assert_eq!(report.duplicated.len(), 1, "{report:#?}");
    assert_eq!(report.duplicated[0].offsets, vec![0, 1]);
}

#[test]
fn two_values_at_one_offset_are_inconsistent() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        send(1, "b", Some(1), Outcome::Ok),
        poll(2, 2, &[(0, "a"), (1, "b")]),
        // After an unclean election a new leader rewrote offset 1.
        drain(3, &[(0, "a"), (1, "c")]),
    ]);
    let report = check(&h);
    assert_eq!(
        report.inconsistent,
        vec![Inconsistent {
            partition: 0,
            offset: 1,
            values: vec!["b".into(), "c".into()],
        }]
    );
    assert_eq!(report.unexpected, vec!["c".to_owned()]);
    assert_eq!(report.unseen, vec!["b".to_owned()]);
}

#[test]
fn reads_going_back_without_a_new_assignment_are_non_monotonic() {
    let h = history(vec![
        send(0, "a", Some(0), Outcome::Ok),
        send(1, "b", Some(1), Outcome::Ok),
        assign(2, 2, "m1", 1, &[0]),
        poll(2, 3, &[(0, "a"), (1, "b")]),
        poll(2, 4, &[(1, "b")]),
        // A rebalance rewinds to the committed offset: allowed.
        assign(2, 5, "m1", 2, &[0]),
        poll(2, 6, &[(0, "a")]),
        // Another process reading the same partition does not count either.
        poll(3, 7, &[(0, "a")]),
        drain(8, &[(0, "a"), (1, "b")]),
    ]);
    let report = check(&h);
    assert_eq!(
        report.non_monotonic,
        vec![NonMonotonic {
            process: 2,
            partition: 0,
            previous: 1,
            offset: 1,
        }]
    );
    assert_eq!(report.violations(), 1);
}

#[test]
fn accepted_commits_must_not_move_backward() {
    let h = history(vec![
        commit(0, 5, Outcome::Ok),
        // A refused lower commit is no violation.
        commit(1, 2, Outcome::Fail),
        commit(2, 4, Outcome::Ok),
        commit(3, 6, Outcome::Ok),
    ]);
    let report = check(&h);
    assert_eq!(
        report.backward_commits,
        vec![BackwardCommit {
            group: "g".into(),
            partition: 0,
            previous: 5,
            offset: 4,
        }]
    );
}

#[test]
fn overlapping_commits_may_land_in_either_order() {
    let mut slow = commit(0, 3, Outcome::Ok);
    slow.completed_ms = 100;
    let h = history(vec![slow, commit(10, 8, Outcome::Ok)]);
    assert!(check(&h).backward_commits.is_empty());
    // Invoked after the higher commit completed, it is backward.
    let h = history(vec![commit(10, 8, Outcome::Ok), commit(50, 3, Outcome::Ok)]);
    assert_eq!(check(&h).backward_commits.len(), 1);
}

#[test]
fn two_owners_at_one_epoch_are_reported() {
    let h = history(vec![
        assign(2, 0, "m1", 3, &[0, 1]),
        assign(3, 1, "m2", 3, &[1]),
        // A handover at a later epoch is fine.
        assign(3, 2, "m2", 4, &[0]),
    ]);
    let report = check(&h);
    assert_eq!(
        report.double_owners,
        vec![DoubleOwner {
            group: "g".into(),
            epoch: 3,
            partition: 1,
            members: vec!["m1".into(), "m2".into()],
        }]
    );
}

#[test]
fn unavailability_runs_from_the_fault_to_the_next_success() {
    let mut h = history(vec![
        send(100, "a", Some(0), Outcome::Ok),
        send(1000, "b", None, Outcome::Unknown),
        send(2500, "c", Some(1), Outcome::Ok),
        poll(2, 3000, &[]),
        poll(2, 3200, &[(1, "c")]),
        drain(4000, &[(0, "a"), (1, "c")]),
    ]);
    h.faults.push(Fault {
        name: "kill -9 leader".into(),
        partition: None,
        at_ms: 900,
        healed_ms: Some(2000),
    });
    let report = check(&h);
    assert_eq!(
        report.unavailability,
        vec![Unavailability {
            fault: "kill -9 leader".into(),
            send_ms: Some(1601),
            read_ms: Some(2301),
            assign_ms: None,
            commit_ms: None,
        }]
    );
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn a_partition_fault_counts_only_operations_on_that_partition() {
    let other = |at, value: &str, offset| {
        op(
            1,
            at,
            Outcome::Ok,
            OpKind::Send {
                partition: 1,
                value: value.into(),
                offset: Some(offset),
            },
        )
    };
    let commit = |at, partition, offset| {
        op(
            3,
            at,
            Outcome::Ok,
            OpKind::Commit {
                group: "g".into(),
                partition,
                offset,
            },
        )
    };
    let mut h = history(vec![
        other(1000, "x", 0),
        commit(1100, 1, 1),
        send(3000, "a", Some(0), Outcome::Ok),
        commit(3500, 0, 1),
        drain(4000, &[(0, "a")]),
        op(
            99,
            4000,
            Outcome::Ok,
            OpKind::Drain {
                partition: 1,
                start_offset: 0,
                records: records(&[(0, "x")]),
            },
        ),
    ]);
    h.faults.push(Fault {
        name: "kill -9 the leader of partition 0".into(),
        partition: Some(0),
        at_ms: 900,
        healed_ms: None,
    });
    let window = &check(&h).unavailability[0];
    assert_eq!(window.send_ms, Some(2101));
    assert_eq!(window.commit_ms, Some(2601));
}

#[test]
fn values_below_the_drained_log_start_were_deleted_by_retention() {
    let h = history(vec![
        send(100, "a", Some(0), Outcome::Ok),
        send(110, "b", Some(1), Outcome::Ok),
        send(120, "c", Some(2), Outcome::Ok),
        op(
            99,
            4000,
            Outcome::Ok,
            OpKind::Drain {
                partition: 0,
                start_offset: 2,
                records: records(&[(2, "c")]),
            },
        ),
    ]);
    let report = check(&h);
    assert!(report.is_valid(), "{report:#?}");
    // The same drain from offset 1 misses "b".
    let mut h = h;
    if let OpKind::Drain { start_offset, .. } = &mut h.ops[3].kind {
        *start_offset = 1;
    }
    assert_eq!(check(&h).unseen, vec!["b".to_owned()]);
}
