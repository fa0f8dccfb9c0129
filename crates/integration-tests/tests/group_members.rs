//! Consumer-group members as real processes (`GroupConsumer` in `group-member`) against a real
//! etcd, a broker and two coordinators: a member killed with -9, a member paused past its
//! session, and a static member restarted.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::groups::{GroupCluster, committed};
use common::members::{MemberProc, assert_all_consumed};
use tokio::time::Instant;

/// The session timeout members ask for.
const SESSION: Duration = Duration::from_secs(3);
/// The slack the acceptance allows on top of the session timeout.
const SLACK: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(30);

fn union(members: &[&MemberProc]) -> BTreeSet<i32> {
    members.iter().flat_map(|m| m.owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_members_partitions_resume_elsewhere_from_committed_offsets() {
    let Some(cluster) = GroupCluster::start("members-kill", 6, 200).await else {
        return;
    };
    let broker = cluster.broker.address.clone();
    // Slow consumers committing after every poll, so the kill lands mid-stream.
    let flags = [
        "--commit",
        "poll",
        "--max-poll-records",
        "10",
        "--process-ms",
        "100",
    ];
    let mut victim = MemberProc::spawn("victim", &broker, "kill", &flags);
    let a = MemberProc::spawn("a", &broker, "kill", &flags);
    let b = MemberProc::spawn("b", &broker, "kill", &flags);
    let lost = victim.wait_owned(2, WAIT).await;
    a.wait_owned(2, WAIT).await;
    b.wait_owned(2, WAIT).await;
    for &p in &lost {
        victim.wait_consumed(p, 20, WAIT).await;
    }

    victim.kill9().await;
    let killed = Instant::now();
    // Nobody owns the partitions until the session expires, so the stored offsets are final.
    let (_, mut coordinator) = cluster.coordinator_for("kill").await;
    let stored = committed(&mut coordinator, "kill").await;
    let resume: BTreeMap<i32, i64> = lost.iter().map(|p| (*p, stored[p])).collect();
    for (p, offset) in &resume {
        assert!(*offset > 0, "the victim committed partition {p}");
        let last = victim.last_consumed(*p).unwrap();
        assert!(
            *offset <= last + 1,
            "partition {p}: committed {offset} > consumed {last}"
        );
    }
    cluster.produce(6, 200..250).await;

    common::wait_for(WAIT, "the survivors own all 6 partitions", || async {
        (union(&[&a, &b]).len() == 6).then_some(())
    })
    .await;
    for p in &lost {
        let owner = if a.owned().contains(p) { &a } else { &b };
        let took = owner.assigned_at(*p).unwrap() - killed;
        assert!(
            took <= SESSION + SLACK,
            "partition {p} reassigned after {took:?}"
        );
        owner.wait_consumed(*p, 249, WAIT).await;
        let since = owner.assigned_at(*p).unwrap();
        let first = owner.consumed_since(*p, since)[0];
        assert_eq!(
            first, resume[p],
            "partition {p} resumed from the committed offset"
        );
    }
    for p in 0..6 {
        let owner = if a.owned().contains(&p) { &a } else { &b };
        owner.wait_consumed(p, 249, WAIT).await;
    }
    assert_all_consumed(&[&victim, &a, &b], 6, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_paused_past_its_session_cannot_commit_afterwards() {
    let Some(cluster) = GroupCluster::start("members-pause", 4, 50).await else {
        return;
    };
    let broker = cluster.broker.address.clone();
    let flags = ["--commit", "manual"];
    let mut paused = MemberProc::spawn("paused", &broker, "pause", &flags);
    let other = MemberProc::spawn("other", &broker, "pause", &flags);
    let mine = paused.wait_owned(2, WAIT).await;
    other.wait_owned(2, WAIT).await;
    for &p in &mine {
        paused.wait_consumed(p, 49, WAIT).await;
    }
    let start = Instant::now();
    paused.send("commit").await;
    paused.wait_event("committed", start, WAIT).await;
    let (_, mut coordinator) = cluster.coordinator_for("pause").await;
    let before = committed(&mut coordinator, "pause").await;
    for p in &mine {
        assert_eq!(before.get(p), Some(&50), "partition {p} committed at 50");
    }

    // Read past the committed offsets, then freeze before committing them.
    cluster.produce(4, 50..100).await;
    for &p in &mine {
        paused.wait_consumed(p, 99, WAIT).await;
    }
    paused.signal("STOP");
    let stopped = Instant::now();
    other.wait_owned(4, WAIT).await;
    for p in &mine {
        let took = other.assigned_at(*p).unwrap() - stopped;
        assert!(
            took <= SESSION + SLACK,
            "partition {p} reassigned after {took:?}"
        );
        other.wait_consumed(*p, 99, WAIT).await;
        let first = other.consumed_since(*p, other.assigned_at(*p).unwrap())[0];
        assert_eq!(first, 50, "partition {p} resumed from the committed offset");
    }

    paused.signal("CONT");
    let resumed = Instant::now();
    paused.send("commit").await;
    let failed = paused.wait_event("commit_failed", resumed, WAIT).await;
    let code = failed.value["code"].as_str().unwrap_or_default().to_owned();
    assert!(
        [
            "FENCED_MEMBER_EPOCH",
            "UNKNOWN_MEMBER_ID",
            "STALE_MEMBER_EPOCH"
        ]
        .iter()
        .any(|c| code.ends_with(c)),
        "{failed:?}"
    );
    assert!(
        paused.events_since("committed", resumed).is_empty(),
        "the paused member's commit went through"
    );
    // Let any stray commit land before looking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = committed(&mut coordinator, "pause").await;
    for p in &mine {
        assert_eq!(
            after.get(p),
            Some(&50),
            "partition {p}: stored offset moved"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarted_within_its_session_gets_its_partitions_back() {
    let Some(cluster) = GroupCluster::start("members-static", 6, 20).await else {
        return;
    };
    let broker = cluster.broker.address.clone();
    let flags = |id: &'static str| -> Vec<&'static str> {
        vec![
            "--instance-id",
            id,
            "--session-timeout-ms",
            "6000",
            "--commit",
            "auto",
        ]
    };
    let mut first = MemberProc::spawn("first", &broker, "static", &flags("i-1"));
    let second = MemberProc::spawn("second", &broker, "static", &flags("i-2"));
    let third = MemberProc::spawn("third", &broker, "static", &flags("i-3"));
    let mine = first.wait_owned(2, WAIT).await;
    second.wait_owned(2, WAIT).await;
    third.wait_owned(2, WAIT).await;
    // A partition that moved while the group formed was read partly by its first owner, and
    // its new owner starts at the committed offset: wait for the group as a whole.
    common::wait_for(WAIT, "the group to consume every partition", || async {
        let members = [&first, &second, &third];
        (0..6)
            .all(|p| members.iter().any(|m| m.last_consumed(p) >= Some(19)))
            .then_some(())
    })
    .await;
    let stable = Instant::now();

    // A crash: the new process has a new member id and the same instance id.
    first.kill9().await;
    let restarted = MemberProc::spawn("restarted", &broker, "static", &flags("i-1"));
    assert_eq!(restarted.wait_owned(2, WAIT).await, mine);

    // An orderly restart: close leaves with epoch -2, which keeps the partitions reserved.
    let mut restarted = restarted;
    restarted.send("close").await;
    restarted.wait_exit().await;
    let again = MemberProc::spawn("again", &broker, "static", &flags("i-1"));
    assert_eq!(again.wait_owned(2, WAIT).await, mine);

    // Past the time a rebalance would take, the others never saw a change.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for member in [&second, &third] {
        for kind in ["assigned", "revoked", "lost"] {
            let seen = member.events_since(kind, stable);
            assert!(seen.is_empty(), "{} saw {kind}: {seen:?}", member.name);
        }
    }
    assert_all_consumed(&[&first, &second, &third, &again], 6, 20);
}
