//! How long a stable group takes to absorb a new member.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_client::{
    Client, ClientConfig, GroupConsumer, GroupConsumerConfig, OffsetReset, RebalanceListener,
    Subscription, TopicPartition,
};
use strom_proto::coordinator::v1 as pb;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::common::groups::{GROUP_TOPIC, GroupCluster};
use crate::{median, trials};

const MEMBERS: usize = 10;
const PARTITIONS: i32 = 100;
const RECORDS: usize = 20;

/// What one consumer owns and has read, as its listener and poll loop see it.
#[derive(Default)]
struct Seen {
    owned: BTreeSet<i32>,
    assigned_at: BTreeMap<i32, Instant>,
    delivered: BTreeSet<i32>,
}

struct Listener(Arc<Mutex<Seen>>);

impl RebalanceListener for Listener {
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let mut seen = self.0.lock().unwrap();
        let now = Instant::now();
        for p in partitions {
            seen.owned.insert(p.partition);
            seen.assigned_at.insert(p.partition, now);
            seen.delivered.remove(&p.partition);
        }
    }

    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        let mut seen = self.0.lock().unwrap();
        for p in partitions {
            seen.owned.remove(&p.partition);
        }
    }
}

/// Starts a consumer of `group` polling until `stop`, then closing.
async fn spawn_member(
    broker: &str,
    group: &str,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> Arc<Mutex<Seen>> {
    let client = Client::connect(ClientConfig::new([broker.to_owned()]))
        .await
        .unwrap();
    let mut config = GroupConsumerConfig::new(group);
    config.reset = OffsetReset::Earliest;
    config.auto_commit = false;
    config.poll_timeout = Duration::from_millis(50);
    let subscription = Subscription::topics([GROUP_TOPIC.to_owned()]);
    let mut consumer = GroupConsumer::new(client, config, subscription)
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    consumer.set_listener(Listener(Arc::clone(&seen)));
    let shared = Arc::clone(&seen);
    let stop = stop.clone();
    tasks.spawn(async move {
        while !stop.is_cancelled() {
            let records = match consumer.poll().await {
                Ok(records) => records,
                Err(error) => panic!("poll failed: {error}"),
            };
            let mut seen = shared.lock().unwrap();
            for record in records {
                if seen.owned.contains(&record.partition) {
                    seen.delivered.insert(record.partition);
                }
            }
        }
        consumer.close().await.unwrap();
    });
    seen
}

/// Every partition has exactly one owner, the owners are balanced, and every partition
/// assigned after `since` has delivered a record to its owner.
fn converged(members: &[Arc<Mutex<Seen>>], since: Instant) -> bool {
    let mut owners = BTreeMap::new();
    let mut counts = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let seen = member.lock().unwrap();
        counts.push(seen.owned.len());
        for p in &seen.owned {
            if owners.insert(*p, i).is_some() {
                return false;
            }
            let moved = seen.assigned_at.get(p).is_some_and(|at| *at >= since);
            if moved && !seen.delivered.contains(p) {
                return false;
            }
        }
    }
    let (min, max) = (counts.iter().min(), counts.iter().max());
    owners.len() == PARTITIONS as usize && max.zip(min).is_some_and(|(max, min)| max - min <= 1)
}

async fn wait_converged(
    members: &[Arc<Mutex<Seen>>],
    since: Instant,
    tasks: &mut JoinSet<()>,
) -> Duration {
    let deadline = since + Duration::from_secs(60);
    while !converged(members, since) {
        // A member whose poll failed ends its task: report it rather than time out.
        if let Some(ended) = tasks.try_join_next() {
            ended.unwrap();
            panic!("a member stopped polling");
        }
        if Instant::now() >= deadline {
            for (i, member) in members.iter().enumerate() {
                let seen = member.lock().unwrap();
                let waiting: Vec<&i32> = seen
                    .owned
                    .iter()
                    .filter(|p| !seen.delivered.contains(p))
                    .collect();
                eprintln!(
                    "member {i}: owns {:?}, no record yet from {waiting:?}",
                    seen.owned
                );
            }
            panic!("the group did not converge");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    since.elapsed()
}

async fn stable(cluster: &GroupCluster, group: &str, members: usize) {
    let (_, mut client) = cluster.coordinator_for(group).await;
    loop {
        let described = client
            .describe_groups(pb::DescribeGroupsRequest {
                group_ids: vec![group.to_owned()],
                include_lag: false,
            })
            .await
            .unwrap()
            .into_inner();
        let g = &described.groups[0];
        if g.state == pb::GroupState::Stable as i32 && g.members.len() == members {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn trial(cluster: &GroupCluster, group: &str) -> Duration {
    let broker = cluster.broker.address.clone();
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut members = Vec::new();
    let formed = Instant::now();
    for _ in 0..MEMBERS {
        members.push(spawn_member(&broker, group, &mut tasks, &stop).await);
    }
    let formation = wait_converged(&members, formed, &mut tasks).await;
    stable(cluster, group, MEMBERS).await;
    // Let every member settle into its slow heartbeat before the join.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let joined = Instant::now();
    members.push(spawn_member(&broker, group, &mut tasks, &stop).await);
    let took = wait_converged(&members, joined, &mut tasks).await;
    let counts: Vec<usize> = members
        .iter()
        .map(|m| m.lock().unwrap().owned.len())
        .collect();
    stop.cancel();
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    println!(
        "{group}: formed in {:.2} s; after the join every member consumed its target in {:.2} s ({counts:?})",
        formation.as_secs_f64(),
        took.as_secs_f64()
    );
    took
}

/// The median time for a group to absorb an 11th member; `None` without etcd.
pub async fn run() -> Option<f64> {
    let cluster =
        GroupCluster::start_tuned("bench-rebalance", PARTITIONS, RECORDS, "1s", "2s").await?;
    let mut samples = Vec::new();
    for t in 0..trials(5) {
        samples.push(
            trial(&cluster, &format!("rebalance-{t}"))
                .await
                .as_secs_f64(),
        );
    }
    Some(median(samples))
}
