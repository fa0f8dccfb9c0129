//! Admin requests on the active controller: topics and their configs, and the cluster overview.

use std::collections::BTreeMap;

use strom_meta::Written;
use strom_proto::admin::v1 as pb;
use strom_proto::common::v1::{Broker, Error as PbError};
use strom_types::{TopicId, TopicName};

use super::active::Active;
use crate::view::ClusterView;
use crate::{Error, NewTopic, plan_create_topic, topic_config};

/// The wire form of an error.
pub(super) fn wire(error: &Error) -> PbError {
    PbError::new(error.code(), error.to_string())
}

impl Active {
    pub(super) async fn create_topics(
        &mut self,
        request: pb::CreateTopicsRequest,
    ) -> pb::CreateTopicsResponse {
        let mut results = Vec::with_capacity(request.topics.len());
        // A validation plans every topic against a scratch copy of the view, so later topics
        // of the request meet earlier ones as they would in a real creation.
        let mut scratch = request.validate_only.then(|| self.mirror.view.clone());
        for topic in request.topics {
            let name = topic.topic.clone();
            let result = match self.create_topic(topic, scratch.as_mut()).await {
                Ok((id, partitions, rf)) => pb::CreateTopicResult {
                    topic: name,
                    error: None,
                    topic_id: id.map(|id| id.to_string()).unwrap_or_default(),
                    partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
                    replication_factor: i32::from(rf),
                },
                Err(error) => pb::CreateTopicResult {
                    topic: name,
                    error: Some(wire(&error)),
                    ..Default::default()
                },
            };
            results.push(result);
        }
        pb::CreateTopicsResponse {
            error: None,
            topics: results,
        }
    }

    /// Creates `topic`, or only plans it into `scratch` when validating.
    async fn create_topic(
        &mut self,
        topic: pb::NewTopic,
        scratch: Option<&mut ClusterView>,
    ) -> Result<(Option<TopicId>, u32, u16), Error> {
        let request = NewTopic {
            name: topic.topic,
            partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: topic.configs.into_iter().collect(),
        };
        let id = TopicId::new(rand::random::<u128>());
        let start = rand::random::<u32>() as usize;
        let view = scratch.as_deref().unwrap_or(&self.mirror.view);
        let plan = plan_create_topic(&request, &self.settings.topic_defaults, view, id, start)?;
        let (partitions, rf) = (plan.topic.partitions, plan.topic.replication_factor);
        if let Some(view) = scratch {
            view.topics.insert(id, plan.topic);
            return Ok((None, partitions, rf));
        }
        match self
            .meta
            .create_topic(&self.leadership, &plan.topic, &plan.partitions)
            .await?
        {
            Written::Applied { revision } => {
                // Seen at once, so its partitions (arriving on another watch) are not orphans.
                self.mirror.topic_revisions.insert(id, revision);
                self.mirror.view.topics.insert(id, plan.topic);
                Ok((Some(id), partitions, rf))
            }
            Written::Rejected => Err(self.rejected_create(plan.topic.name).await),
        }
    }

    /// Explains a rejected creation: another controller took over, or the name got taken.
    async fn rejected_create(&mut self, name: TopicName) -> Error {
        match self.superseded_error().await {
            Some(error) => error,
            None => Error::TopicAlreadyExists { topic: name },
        }
    }

    pub(super) async fn delete_topics(
        &mut self,
        request: pb::DeleteTopicsRequest,
    ) -> pb::DeleteTopicsResponse {
        let mut results = Vec::with_capacity(request.topics.len());
        for name in request.topics {
            let result = match self.delete_topic(&name).await {
                Ok(id) => pb::DeleteTopicResult {
                    topic: name,
                    error: None,
                    topic_id: id.to_string(),
                },
                Err(error) => pb::DeleteTopicResult {
                    topic: name,
                    error: Some(wire(&error)),
                    topic_id: String::new(),
                },
            };
            results.push(result);
        }
        pb::DeleteTopicsResponse {
            error: None,
            topics: results,
        }
    }

    async fn delete_topic(&mut self, name: &str) -> Result<TopicId, Error> {
        let (topic, revision) = self.find_topic(name)?;
        match self
            .meta
            .delete_topic(&self.leadership, &topic, revision)
            .await?
        {
            Written::Applied { .. } => {
                self.mirror.view.topics.remove(&topic.id);
                self.mirror.topic_revisions.remove(&topic.id);
                Ok(topic.id)
            }
            Written::Rejected => {
                if let Some(error) = self.superseded_error().await {
                    return Err(error);
                }
                Err(Error::Meta(strom_meta::Error::Unavailable {
                    operation: "delete topic",
                    reason: "the topic changed while it was being deleted; retry".to_owned(),
                }))
            }
        }
    }

    /// The topic record named `name` and its mod revision.
    fn find_topic(&self, name: &str) -> Result<(strom_meta::records::TopicRecord, i64), Error> {
        let unknown = || Error::UnknownTopic {
            topic: name.to_owned(),
        };
        let parsed = crate::create_topic::parse_topic_name(name)?;
        let topic = self
            .mirror
            .view
            .topic_by_name(&parsed)
            .ok_or_else(unknown)?
            .clone();
        let revision = self
            .mirror
            .topic_revisions
            .get(&topic.id)
            .copied()
            .ok_or_else(unknown)?;
        Ok((topic, revision))
    }

    pub(super) fn describe_topics(
        &self,
        request: &pb::DescribeTopicsRequest,
    ) -> pb::DescribeTopicsResponse {
        let names: Vec<String> = if request.topics.is_empty() {
            self.mirror
                .view
                .topics
                .values()
                .map(|t| t.name.to_string())
                .collect()
        } else {
            request.topics.clone()
        };
        let topics = names
            .into_iter()
            .map(|name| self.describe_topic(name))
            .collect();
        pb::DescribeTopicsResponse {
            error: None,
            topics,
        }
    }

    fn describe_topic(&self, name: String) -> pb::TopicDescription {
        let topic = match self.find_topic(&name) {
            Ok((topic, _)) => topic,
            Err(error) => {
                return pb::TopicDescription {
                    topic: name,
                    error: Some(wire(&error)),
                    ..Default::default()
                };
            }
        };
        let view = &self.mirror.view;
        let partitions = view
            .topic_partitions(topic.id)
            .map(|(partition, state)| {
                let record = &state.record;
                pb::PartitionDescription {
                    partition: partition.get(),
                    leader_id: record.leader.map(|b| b.get()),
                    leader_epoch: record.leader_epoch.get(),
                    partition_epoch: record.partition_epoch,
                    replicas: record.replicas.iter().map(|b| b.get()).collect(),
                    isr: record.isr.iter().map(|b| b.get()).collect(),
                    offline_replicas: record
                        .replicas
                        .iter()
                        .filter(|b| !view.is_live(**b))
                        .map(|b| b.get())
                        .collect(),
                    // Offsets live on the leader; the controller does not ask for them.
                    log_start_offset: None,
                    high_watermark: None,
                    log_end_offset: None,
                }
            })
            .collect();
        pb::TopicDescription {
            topic: name,
            error: None,
            topic_id: topic.id.to_string(),
            partitions,
            configs: config_entries(&topic.configs, false),
        }
    }

    pub(super) async fn describe_cluster(&mut self) -> pb::DescribeClusterResponse {
        // Coordinators are not part of the controller's mirror: read them on demand.
        let coordinators = match self.meta.coordinators().await {
            Ok(coordinators) => coordinators,
            Err(error) => {
                return pb::DescribeClusterResponse {
                    error: Some(wire(&Error::Meta(error))),
                    ..Default::default()
                };
            }
        };
        let view = &self.mirror.view;
        let loads = view.broker_loads();
        let brokers = view
            .brokers
            .iter()
            .map(|(id, broker)| {
                let load = loads.get(id).copied().unwrap_or_default();
                pb::BrokerStatus {
                    broker: Some(Broker {
                        broker_id: id.get(),
                        address: broker.address.clone(),
                        rack: broker.rack.clone().unwrap_or_default(),
                    }),
                    state: if view.is_draining(*id) {
                        pb::BrokerState::ShuttingDown as i32
                    } else {
                        pb::BrokerState::Online as i32
                    },
                    broker_epoch: Some(broker.broker_epoch),
                    leader_count: i32::try_from(load.leaders).unwrap_or(i32::MAX),
                    replica_count: i32::try_from(load.replicas).unwrap_or(i32::MAX),
                }
            })
            .collect();
        let partitions = view.partitions.values();
        let under_replicated = partitions
            .clone()
            .filter(|p| p.record.isr.len() < p.record.replicas.len())
            .count();
        let offline = partitions
            .clone()
            .filter(|p| p.record.leader.is_none())
            .count();
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        pb::DescribeClusterResponse {
            error: None,
            cluster_id: self.settings.cluster.clone(),
            controller: Some(pb::ControllerStatus {
                controller_id: self.settings.id,
                controller_epoch: self.leadership.epoch(),
                address: self.settings.advertised_address.clone(),
            }),
            brokers,
            coordinators: coordinators
                .into_iter()
                .map(|(c, groups)| pb::CoordinatorStatus {
                    coordinator_id: c.id,
                    address: c.address,
                    group_count: count(groups),
                })
                .collect(),
            topic_count: count(view.topics.len()),
            partition_count: count(view.partitions.len()),
            under_replicated_partitions: count(under_replicated),
            offline_partitions: count(offline),
        }
    }

    pub(super) async fn alter_configs(
        &mut self,
        request: pb::AlterConfigsRequest,
    ) -> pb::AlterConfigsResponse {
        let mut results = Vec::with_capacity(request.resources.len());
        for resource in request.resources {
            let target = resource.resource.clone();
            let error = self
                .alter_resource(resource, request.validate_only)
                .await
                .err()
                .map(|e| wire(&e));
            results.push(pb::AlterConfigsResult {
                resource: target,
                error,
            });
        }
        pb::AlterConfigsResponse {
            error: None,
            results,
        }
    }

    async fn alter_resource(
        &mut self,
        resource: pb::AlterConfigsResource,
        validate_only: bool,
    ) -> Result<(), Error> {
        let name = topic_resource(resource.resource.as_ref())?;
        let (mut topic, revision) = self.find_topic(&name)?;
        let mut configs = topic.configs.clone();
        for op in resource.operations {
            match pb::AlterConfigOpType::try_from(op.op_type) {
                Ok(pb::AlterConfigOpType::Set) => {
                    configs.insert(op.name, op.value);
                }
                Ok(pb::AlterConfigOpType::Delete) => {
                    if topic_config::definition(&op.name).is_none() {
                        return Err(
                            strom_topic_config::Error::UnknownConfig { name: op.name }.into()
                        );
                    }
                    configs.remove(&op.name);
                }
                _ => {
                    return Err(Error::InvalidRequest {
                        reason: format!(
                            "config op {} for {} is not SET or DELETE",
                            op.op_type, op.name
                        ),
                    });
                }
            }
        }
        topic.configs = topic_config::validate_topic_configs(&configs, topic.replication_factor)?;
        if validate_only {
            return Ok(());
        }
        match self
            .meta
            .update_topic(&self.leadership, &topic, revision)
            .await?
        {
            Written::Applied { revision } => {
                self.mirror.topic_revisions.insert(topic.id, revision);
                self.mirror.view.topics.insert(topic.id, topic);
                Ok(())
            }
            Written::Rejected => {
                if let Some(error) = self.superseded_error().await {
                    return Err(error);
                }
                Err(Error::Meta(strom_meta::Error::Unavailable {
                    operation: "alter configs",
                    reason: "the topic changed while its configs were being altered; retry"
                        .to_owned(),
                }))
            }
        }
    }

    pub(super) fn describe_configs(
        &self,
        request: &pb::DescribeConfigsRequest,
    ) -> pb::DescribeConfigsResponse {
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let described =
                    topic_resource(Some(resource)).and_then(|name| self.find_topic(&name));
                match described {
                    Ok((topic, _)) => pb::DescribeConfigsResult {
                        resource: Some(resource.clone()),
                        error: None,
                        entries: config_entries(&topic.configs, request.include_documentation),
                    },
                    Err(error) => pb::DescribeConfigsResult {
                        resource: Some(resource.clone()),
                        error: Some(wire(&error)),
                        entries: Vec::new(),
                    },
                }
            })
            .collect();
        pb::DescribeConfigsResponse {
            error: None,
            results,
        }
    }
}

/// The topic a config resource names; broker resources are not kept by the controller.
fn topic_resource(resource: Option<&pb::ConfigResource>) -> Result<String, Error> {
    let resource = resource.ok_or_else(|| Error::InvalidRequest {
        reason: "missing config resource".to_owned(),
    })?;
    match pb::ConfigResourceType::try_from(resource.r#type) {
        Ok(pb::ConfigResourceType::Topic) => Ok(resource.name.clone()),
        Ok(pb::ConfigResourceType::Broker) => Err(Error::InvalidRequest {
            reason: "broker configs come from each broker's config file and are not managed by the controller".to_owned(),
        }),
        _ => Err(Error::InvalidRequest { reason: format!("unknown config resource type {}", resource.r#type) }),
    }
}

fn config_entries(configs: &BTreeMap<String, String>, documentation: bool) -> Vec<pb::ConfigEntry> {
    topic_config::effective_configs(configs)
        .into_iter()
        .map(|entry| pb::ConfigEntry {
            name: entry.def.name.to_owned(),
            value: Some(entry.value),
            source: match entry.source {
                topic_config::ConfigSource::Default => pb::ConfigSource::Default as i32,
                topic_config::ConfigSource::Topic => pb::ConfigSource::Topic as i32,
            },
            read_only: false,
            sensitive: false,
            documentation: if documentation {
                entry.def.doc.to_owned()
            } else {
                String::new()
            },
        })
        .collect()
}
