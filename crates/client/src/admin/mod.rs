//! Cluster administration: topics, configs, the cluster overview and consumer groups.
//!
//! Topic and cluster calls go to any broker, which forwards them to the active controller;
//! group calls go to the group's coordinator, found through FindCoordinator. Answers are the
//! wire messages of `strom.admin.v1` and `strom.coordinator.v1`; an error the server reports
//! for the whole request or for the one item asked about comes back as [`Error`].

mod groups;
mod offsets;

use std::collections::HashMap;
use std::time::Duration;

use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::common::v1 as common;
use tonic::transport::Channel;

use crate::{Client, Error, Result};

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name.
    pub name: String,
    /// The number of partitions; `None` uses the cluster default.
    pub partitions: Option<i32>,
    /// Replicas per partition; `None` uses the cluster default.
    pub replication_factor: Option<i32>,
    /// Topic config overrides, e.g. `retention.ms`.
    pub configs: HashMap<String, String>,
}

/// One change to a topic's config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set an override.
    Set {
        /// The config name.
        name: String,
        /// Its new value.
        value: String,
    },
    /// Remove an override, falling back to the inherited value.
    Delete {
        /// The config name.
        name: String,
    },
}

/// Administration of a cluster, sharing the [`Client`]'s channels.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

/// Turns a server-reported error into `Err`.
fn check(error: Option<common::Error>) -> Result<()> {
    match error {
        Some(error) => Err(Error::broker(error.code(), error.message)),
        None => Ok(()),
    }
}

impl Admin {
    /// Administration through `client`.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client underneath.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T>
    where
        F: Fn(AdminServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.client
            .call_any_broker(operation, |channel| call(AdminServiceClient::new(channel)))
            .await
    }

    /// Creates a topic, waiting up to `timeout` for its partitions to get leaders (zero
    /// answers once it is recorded); with `validate_only`, only checks the request.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        timeout: Duration,
        validate_only: bool,
    ) -> Result<pb::CreateTopicResult> {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::NewTopic {
                topic: topic.name,
                partitions: topic.partitions.unwrap_or(0),
                replication_factor: topic.replication_factor.unwrap_or(0),
                configs: topic.configs,
            }],
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            validate_only,
        };
        let response = self
            .call("create topics", |mut rpc| {
                let request = request.clone();
                async move { rpc.create_topics(request).await }
            })
            .await?;
        check(response.error)?;
        let result = one(response.topics)?;
        check(result.error.clone())?;
        Ok(result)
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str, timeout: Duration) -> Result<()> {
        let request = pb::DeleteTopicsRequest {
            topics: vec![name.to_owned()],
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        };
        let response = self
            .call("delete topics", |mut rpc| {
                let request = request.clone();
                async move { rpc.delete_topics(request).await }
            })
            .await?;
        check(response.error)?;
        check(one(response.topics)?.error)
    }

    /// Describes the named topics, or every topic when `names` is empty, with each
    /// partition's log start offset and high watermark (asked of its leader when the answer
    /// lacks them). A named topic that cannot be described fails the call.
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<pb::TopicDescription>> {
        let request = pb::DescribeTopicsRequest {
            topics: names.to_vec(),
        };
        let response = self
            .call("describe topics", |mut rpc| {
                let request = request.clone();
                async move { rpc.describe_topics(request).await }
            })
            .await?;
        check(response.error)?;
        for topic in &response.topics {
            check(topic.error.clone())?;
        }
        let mut topics = response.topics;
        self.fill_offsets(&mut topics).await;
        Ok(topics)
    }

    /// The cluster overview: brokers, controller, coordinators and partition health.
    pub async fn describe_cluster(&self) -> Result<pb::DescribeClusterResponse> {
        let response = self
            .call("describe cluster", |mut rpc| async move {
                rpc.describe_cluster(pb::DescribeClusterRequest {}).await
            })
            .await?;
        check(response.error.clone())?;
        Ok(response)
    }

    /// Asks the controller to move every leadership off `broker` (before stopping it) and to
    /// keep new ones off while it stays registered. Returns (leaderships moved by this call,
    /// leaderships remaining); call again to follow progress.
    pub async fn drain_broker(&self, broker: i32) -> Result<(i32, i32)> {
        let response = self
            .call("drain broker", |mut rpc| async move {
                rpc.drain_broker(pb::DrainBrokerRequest { broker_id: broker })
                    .await
            })
            .await?;
        check(response.error.clone())?;
        Ok((response.moved, response.remaining))
    }

    /// Applies `changes` to a topic's config overrides, all or none.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        changes: Vec<ConfigChange>,
        validate_only: bool,
    ) -> Result<()> {
        let operations = changes
            .into_iter()
            .map(|change| match change {
                ConfigChange::Set { name, value } => pb::AlterConfigOp {
                    name,
                    op_type: pb::AlterConfigOpType::Set.into(),
                    value,
                },
                ConfigChange::Delete { name } => pb::AlterConfigOp {
                    name,
                    op_type: pb::AlterConfigOpType::Delete.into(),
                    value: String::new(),
                },
            })
            .collect();
        let request = pb::AlterConfigsRequest {
            resources: vec![pb::AlterConfigsResource {
                resource: Some(topic_resource(topic)),
                operations,
            }],
            validate_only,
        };
        let response = self
            .call("alter configs", |mut rpc| {
                let request = request.clone();
                async move { rpc.alter_configs(request).await }
            })
            .await?;
        check(response.error)?;
        check(one(response.results)?.error)
    }

    /// A topic's effective configs, with their documentation when asked.
    pub async fn describe_topic_config(
        &self,
        topic: &str,
        include_documentation: bool,
    ) -> Result<Vec<pb::ConfigEntry>> {
        let request = pb::DescribeConfigsRequest {
            resources: vec![topic_resource(topic)],
            include_documentation,
        };
        let response = self
            .call("describe configs", |mut rpc| {
                let request = request.clone();
                async move { rpc.describe_configs(request).await }
            })
            .await?;
        check(response.error)?;
        let result = one(response.results)?;
        check(result.error)?;
        Ok(result.entries)
    }
}

fn topic_resource(topic: &str) -> pb::ConfigResource {
    pb::ConfigResource {
        r#type: pb::ConfigResourceType::Topic.into(),
        name: topic.to_owned(),
    }
}

/// The single result of a one-item request.
fn one<T>(results: Vec<T>) -> Result<T> {
    results.into_iter().next().ok_or(Error::Protocol {
        reason: "the answer lacks the requested item",
    })
}
