//! Resolving subscriptions against the cluster's topics and computing the target assignment.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use strom_types::TopicId;

use super::{Group, Member};
use crate::assignor::{AssignmentSpec, DEFAULT_ASSIGNOR, MemberSpec, assignor};

/// The topics a group can subscribe to: name → (id, partition count), and id → name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsView {
    /// Topics by name.
    pub topics: BTreeMap<String, (TopicId, u32)>,
    names: BTreeMap<TopicId, String>,
}

impl TopicsView {
    /// The view of topics given by name.
    pub fn new(topics: BTreeMap<String, (TopicId, u32)>) -> Self {
        let names = topics
            .iter()
            .map(|(name, (id, _))| (*id, name.clone()))
            .collect();
        Self { topics, names }
    }

    /// The view of `state`'s topics.
    pub fn from_cluster(state: &strom_meta::ClusterState) -> Self {
        Self::new(
            state
                .topics
                .values()
                .map(|t| (t.name.as_str().to_owned(), (t.id, t.partitions)))
                .collect(),
        )
    }

    /// The name of a topic id, if the topic exists.
    pub fn name_of(&self, id: TopicId) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }
}

/// Compiles a subscription regex so it must match the whole topic name.
pub(super) fn compile_subscription(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// The existing topics `member` subscribes to.
fn member_topics(member: &Member, view: &TopicsView) -> BTreeSet<TopicId> {
    let regex = member
        .topic_regex
        .as_deref()
        .and_then(|p| compile_subscription(p).ok());
    matching_topics(&member.topic_names, regex.as_ref(), view)
}

/// The existing topics named in `names` or matched by `regex`.
fn matching_topics(
    names: &BTreeSet<String>,
    regex: Option<&Regex>,
    view: &TopicsView,
) -> BTreeSet<TopicId> {
    view.topics
        .iter()
        .filter(|(name, _)| names.contains(*name) || regex.is_some_and(|r| r.is_match(name)))
        .map(|(_, (id, _))| *id)
        .collect()
}

/// Partition counts of every topic some member subscribes to. Members usually share one
/// subscription, so each distinct pattern is compiled once per call.
pub(super) fn subscribed_topics(group: &Group, view: &TopicsView) -> BTreeMap<TopicId, u32> {
    let mut names = BTreeSet::new();
    let mut patterns = BTreeSet::new();
    for member in group.members.values() {
        names.extend(member.topic_names.iter().cloned());
        patterns.extend(member.topic_regex.as_deref());
    }
    let mut wanted = matching_topics(&names, None, view);
    for pattern in patterns {
        if let Ok(regex) = compile_subscription(pattern) {
            wanted.extend(matching_topics(&BTreeSet::new(), Some(&regex), view));
        }
    }
    view.topics
        .values()
        .filter(|(id, _)| wanted.contains(id))
        .map(|(id, count)| (*id, *count))
        .collect()
}

/// The assignor the group uses: the one most members ask for (ties go to the name that sorts
/// first), else `default`.
pub(super) fn choose_assignor(group: &Group, default: &str) -> String {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for member in group.members.values() {
        if let Some(name) = member.assignor.as_deref() {
            *votes.entry(name).or_default() += 1;
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (name, count) in votes {
        if best.is_none_or(|(_, c)| count > c) {
            best = Some((name, count));
        }
    }
    best.map_or_else(|| default.to_owned(), |(name, _)| name.to_owned())
}

/// Recomputes the target when the group epoch moved past it, or when the partitions of
/// subscribed topics changed (which first bumps the epoch). Returns whether anything changed.
pub(super) fn refresh_target(group: &mut Group, view: &TopicsView, default_assignor: &str) -> bool {
    let topics = subscribed_topics(group, view);
    let mut changed = false;
    if topics != group.topics {
        group.topics = topics;
        group.epoch += 1;
        changed = true;
    }
    if group.assignment_epoch >= group.epoch {
        return changed;
    }
    let name = choose_assignor(group, default_assignor);
    let chosen = assignor(&name)
        .or_else(|| assignor(DEFAULT_ASSIGNOR))
        .map(|a| (a.name(), a));
    let Some((name, assignor)) = chosen else {
        return changed;
    };
    let members = group
        .members
        .values()
        .map(|m| {
            let spec = MemberSpec {
                subscribed: member_topics(m, view),
                rack: m.rack.clone(),
                current: group.target.get(&m.id).cloned().unwrap_or_default(),
            };
            (m.id.clone(), spec)
        })
        .collect();
    let spec = AssignmentSpec {
        members,
        topics: group.topics.clone(),
    };
    group.target = assignor.assign(&spec);
    group.assignor = name.to_owned();
    group.assignment_epoch = group.epoch;
    true
}
