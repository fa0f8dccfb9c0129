//! Bad input to the AdminService, through a broker (which forwards every call to the active
//! controller) and on the controller itself: invalid names, partition counts, replication
//! factors and configs; unknown topics and brokers; bad resource and operation types; absurd
//! timeouts; undecodable and oversized messages. Every call answers within a bound with a
//! definite code, a refused creation creates no topic, a refused config change changes nothing
//! DescribeConfigs shows, a refused drain drains nothing, and both processes keep serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::bad_input::{
    Checks, OVER_BROKER_LIMIT, OVER_DEFAULT_LIMIT, Outcome, TRUNCATED_MESSAGE, UNKNOWN_FIELD_ONLY,
    answer, assert_too_large, assert_undecodable, code, filler, produce_one, raw_unary, refusal,
};
use common::data::{Cluster, TOPIC, batch, client, leader_of};
use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::common::v1::ErrorCode;
use tonic::transport::Channel;

type Admin = AdminServiceClient<Channel>;

/// Every AdminService method.
const METHODS: [&str; 7] = [
    "/strom.admin.v1.AdminService/CreateTopics",
    "/strom.admin.v1.AdminService/DeleteTopics",
    "/strom.admin.v1.AdminService/DescribeTopics",
    "/strom.admin.v1.AdminService/DescribeCluster",
    "/strom.admin.v1.AdminService/AlterConfigs",
    "/strom.admin.v1.AdminService/DescribeConfigs",
    "/strom.admin.v1.AdminService/DrainBroker",
];
const DESCRIBE_CLUSTER: &str = "/strom.admin.v1.AdminService/DescribeCluster";

/// An AdminService client of the controller itself.
async fn controller_admin(address: &str) -> Admin {
    AdminServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// A topic to create, without config overrides.
fn new_topic(name: &str, partitions: i32, replication_factor: i32) -> pb::NewTopic {
    pb::NewTopic {
        topic: name.to_owned(),
        partitions,
        replication_factor,
        configs: Default::default(),
    }
}

/// A topic to create with one partition, one replica and the override `key` = `value`.
fn with_config(name: &str, key: &str, value: &str) -> pb::NewTopic {
    let mut topic = new_topic(name, 1, 1);
    topic.configs.insert(key.to_owned(), value.to_owned());
    topic
}

/// A CreateTopics request of `topics`.
fn create_request(topics: Vec<pb::NewTopic>, timeout_ms: i32) -> pb::CreateTopicsRequest {
    pb::CreateTopicsRequest {
        topics,
        timeout_ms,
        validate_only: false,
    }
}

/// Creates what `request` asks for; each topic's error code, in request order.
async fn create_codes(
    admin: &mut Admin,
    request: pb::CreateTopicsRequest,
) -> Vec<Option<ErrorCode>> {
    let response = answer("create topics", admin.create_topics(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    response
        .topics
        .iter()
        .map(|t| code(t.error.as_ref()))
        .collect()
}

/// Deletes `topics`; each topic's error code, in request order.
async fn delete_codes(
    admin: &mut Admin,
    topics: &[&str],
    timeout_ms: i32,
) -> Vec<Option<ErrorCode>> {
    let request = pb::DeleteTopicsRequest {
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        timeout_ms,
    };
    let response = answer("delete topics", admin.delete_topics(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    response
        .topics
        .iter()
        .map(|t| code(t.error.as_ref()))
        .collect()
}

/// The names of every topic, as the controller describes them.
async fn topic_names(admin: &mut Admin) -> BTreeSet<String> {
    let request = pb::DescribeTopicsRequest::default();
    let described = answer("describe topics", admin.describe_topics(request)).await;
    assert!(described.error.is_none(), "{described:?}");
    described.topics.into_iter().map(|t| t.topic).collect()
}

/// `list` as a set of owned names.
fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

/// A config resource of raw type `kind`.
fn resource(kind: i32, name: &str) -> pb::ConfigResource {
    pb::ConfigResource {
        r#type: kind,
        name: name.to_owned(),
    }
}

/// One config operation of raw type `op_type`.
fn op(op_type: i32, name: &str, value: &str) -> pb::AlterConfigOp {
    pb::AlterConfigOp {
        name: name.to_owned(),
        op_type,
        value: value.to_owned(),
    }
}

/// Sets `name` to `value`.
fn set(name: &str, value: &str) -> pb::AlterConfigOp {
    op(pb::AlterConfigOpType::Set as i32, name, value)
}

/// `operations` on `resource`.
fn change(
    resource: Option<pb::ConfigResource>,
    operations: Vec<pb::AlterConfigOp>,
) -> pb::AlterConfigsResource {
    pb::AlterConfigsResource {
        resource,
        operations,
    }
}

/// `operations` on the configs of [`TOPIC`].
fn on_topic(operations: Vec<pb::AlterConfigOp>) -> pb::AlterConfigsResource {
    let topic = pb::ConfigResourceType::Topic as i32;
    change(Some(resource(topic, TOPIC)), operations)
}

/// Alters configs as `resources` say; each resource's error code, in request order.
async fn alter_codes(
    admin: &mut Admin,
    resources: Vec<pb::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<Option<ErrorCode>> {
    let request = pb::AlterConfigsRequest {
        resources,
        validate_only,
    };
    let response = answer("alter configs", admin.alter_configs(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    response
        .results
        .iter()
        .map(|r| code(r.error.as_ref()))
        .collect()
}

/// The effective configs of `topic`: name to value and source.
async fn configs_of(admin: &mut Admin, topic: &str) -> BTreeMap<String, (Option<String>, i32)> {
    let request = pb::DescribeConfigsRequest {
        resources: vec![resource(pb::ConfigResourceType::Topic as i32, topic)],
        include_documentation: false,
    };
    let described = answer("describe configs", admin.describe_configs(request)).await;
    let result = described.results.into_iter().next().unwrap();
    assert!(result.error.is_none(), "{result:?}");
    result
        .entries
        .into_iter()
        .map(|e| (e.name, (e.value, e.source)))
        .collect()
}

/// A broker's id, state and leader count.
fn broker_state(status: &pb::BrokerStatus) -> (i32, i32, i32) {
    let id = status.broker.as_ref().unwrap().broker_id;
    (id, status.state, status.leader_count)
}

/// Each broker's id, state and leader count, as the controller describes them.
async fn broker_states(admin: &mut Admin) -> Vec<(i32, i32, i32)> {
    let call = admin.describe_cluster(pb::DescribeClusterRequest {});
    let cluster = answer("describe cluster", call).await;
    assert!(cluster.error.is_none(), "{cluster:?}");
    cluster.brokers.iter().map(broker_state).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_requests_with_bad_input_create_and_delete_nothing() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-admin-topics", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut admin = brokers[0].admin().await;

    // Bad names, counts, factors and configs, with an absurd timeout: none is created.
    let long_name = filler(250);
    let too_big = "9".repeat(20);
    let topics = vec![
        new_topic("bad name", 1, 1),
        new_topic("", 1, 1),
        new_topic(".", 1, 1),
        new_topic(&long_name, 1, 1),
        new_topic(TOPIC, 1, 1),
        new_topic("negative-partitions", -1, 1),
        new_topic("max-partitions", i32::MAX, 1),
        new_topic("negative-replicas", 1, -1),
        new_topic("more-replicas-than-brokers", 1, 2),
        new_topic("max-replicas", 1, i32::MAX),
        with_config("unknown-config", "retention.days", "1"),
        with_config("negative-retention", "retention.ms", "-7"),
        with_config("empty-segment-size", "segment.bytes", ""),
        with_config("isr-above-replicas", "min.insync.replicas", "2"),
        with_config("huge-message-size", "max.message.bytes", &too_big),
    ];
    let codes = create_codes(&mut admin, create_request(topics, -1)).await;
    let expected = [
        ErrorCode::InvalidTopicException,
        ErrorCode::InvalidTopicException,
        ErrorCode::InvalidTopicException,
        ErrorCode::InvalidTopicException,
        ErrorCode::TopicAlreadyExists,
        ErrorCode::InvalidPartitions,
        ErrorCode::InvalidPartitions,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidReplicationFactor,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidConfig,
    ];
    assert_eq!(codes, expected.map(Some));
    assert_eq!(topic_names(&mut admin).await, names(&[TOPIC]));

    // The controller itself answers the same.
    let mut direct = controller_admin(&controller.address).await;
    let topics = vec![new_topic("", 1, 1), new_topic("x", 0, -5)];
    let codes = create_codes(&mut direct, create_request(topics, 0)).await;
    let expected = [
        Some(ErrorCode::InvalidTopicException),
        Some(ErrorCode::InvalidReplicationFactor),
    ];
    assert_eq!(codes, expected);

    // Validation only, with an absurd timeout: what would happen, at once, and nothing made.
    let request = pb::CreateTopicsRequest {
        topics: vec![new_topic("would-be", 0, 0)],
        timeout_ms: i32::MAX,
        validate_only: true,
    };
    let response = answer("validate only", admin.create_topics(request)).await;
    let result = &response.topics[0];
    assert!(
        result.error.is_none() && result.topic_id.is_empty(),
        "{response:?}"
    );
    assert_eq!((result.partitions, result.replication_factor), (1, 1));
    assert_eq!(topic_names(&mut admin).await, names(&[TOPIC]));

    // The same name twice in one request: the second finds the first.
    let topics = vec![new_topic("twin", 1, 1), new_topic("twin", 1, 1)];
    let codes = create_codes(&mut admin, create_request(topics, 0)).await;
    assert_eq!(codes, [None, Some(ErrorCode::TopicAlreadyExists)]);
    assert_eq!(topic_names(&mut admin).await, names(&[TOPIC, "twin"]));

    // Deleting unknown topics, or one topic twice, with absurd timeouts.
    let unknown = Some(ErrorCode::UnknownTopicOrPartition);
    let codes = delete_codes(&mut admin, &["nope", "never-created"], -1).await;
    assert_eq!(codes, [unknown, unknown]);
    let codes = delete_codes(&mut admin, &["twin", "twin"], i32::MAX).await;
    assert_eq!(codes, [None, unknown]);
    assert_eq!(topic_names(&mut admin).await, names(&[TOPIC]));

    // Describing unknown topics next to a known one.
    let request = pb::DescribeTopicsRequest {
        topics: vec![TOPIC.to_owned(), "nope".to_owned()],
    };
    let described = answer("describe topics", admin.describe_topics(request)).await;
    let codes: Vec<_> = described
        .topics
        .iter()
        .map(|t| code(t.error.as_ref()))
        .collect();
    assert_eq!(codes, [None, unknown]);
    assert_eq!(described.topics[0].partitions.len(), 1);

    // The topic that was there all along still takes records.
    let mut data = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut data, batch(&["ok"])).await, None);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_cluster_requests_with_bad_input_change_nothing() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-admin-configs", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut admin = brokers[0].admin().await;
    let before = configs_of(&mut admin, TOPIC).await;
    let topic = pb::ConfigResourceType::Topic as i32;
    let broker = pb::ConfigResourceType::Broker as i32;
    let delete = pb::AlterConfigOpType::Delete as i32;

    // Bad resources, operation types, names and values; a good change next to a bad one.
    let retention = set("retention.ms", "604800001");
    let resources = vec![
        change(None, vec![retention.clone()]),
        change(Some(resource(0, TOPIC)), vec![retention.clone()]),
        change(Some(resource(99, TOPIC)), vec![retention.clone()]),
        change(Some(resource(broker, "1")), vec![retention.clone()]),
        change(Some(resource(topic, "nope")), vec![retention.clone()]),
        on_topic(vec![op(0, "retention.ms", "1")]),
        on_topic(vec![op(9, "retention.ms", "1")]),
        on_topic(vec![set("retention.days", "1")]),
        on_topic(vec![set("retention.ms", "-7")]),
        on_topic(vec![set("retention.ms", "soon")]),
        on_topic(vec![op(delete, "retention.days", "")]),
        on_topic(vec![set("min.insync.replicas", "2")]),
        on_topic(vec![retention.clone(), set("bogus", "1")]),
        on_topic(vec![set("segment.ms", "999"), op(0, "segment.ms", "1")]),
    ];
    let codes = alter_codes(&mut admin, resources, false).await;
    let invalid = Some(ErrorCode::InvalidRequest);
    let bad_config = Some(ErrorCode::InvalidConfig);
    let expected = [
        invalid,
        invalid,
        invalid,
        invalid,
        Some(ErrorCode::UnknownTopicOrPartition),
        invalid,
        invalid,
        bad_config,
        bad_config,
        bad_config,
        bad_config,
        bad_config,
        bad_config,
        invalid,
    ];
    assert_eq!(codes, expected);
    let after = configs_of(&mut admin, TOPIC).await;
    assert_eq!(after, before, "nothing changed");

    // Validation only changes nothing either; no resources at all is an empty answer.
    let codes = alter_codes(&mut admin, vec![on_topic(vec![retention])], true).await;
    assert_eq!(codes, [None]);
    assert_eq!(configs_of(&mut admin, TOPIC).await, before);
    let nothing = alter_codes(&mut admin, Vec::new(), false).await;
    assert!(nothing.is_empty());

    // DescribeConfigs: bad types and an unknown topic next to a good one.
    let request = pb::DescribeConfigsRequest {
        resources: vec![
            resource(0, TOPIC),
            resource(99, TOPIC),
            resource(broker, "not-a-broker-id"),
            resource(topic, "nope"),
            resource(topic, TOPIC),
        ],
        include_documentation: true,
    };
    let described = answer("describe configs", admin.describe_configs(request)).await;
    let codes: Vec<_> = described
        .results
        .iter()
        .map(|r| code(r.error.as_ref()))
        .collect();
    let expected = [
        invalid,
        invalid,
        invalid,
        Some(ErrorCode::UnknownTopicOrPartition),
        None,
    ];
    assert_eq!(codes, expected);
    let good = &described.results[4];
    assert!(good.entries.iter().all(|e| !e.documentation.is_empty()));
    let refused = &described.results[..4];
    assert!(refused.iter().all(|r| r.entries.is_empty()));

    // DrainBroker of ids that are negative or not registered drains nothing.
    let states = broker_states(&mut admin).await;
    let online = pb::BrokerState::Online as i32;
    assert!(states.iter().all(|(_, state, _)| *state == online));
    let drains = [
        (-1, ErrorCode::InvalidRequest),
        (i32::MIN, ErrorCode::InvalidRequest),
        (i32::MAX, ErrorCode::BrokerNotAvailable),
    ];
    for (broker_id, want) in drains {
        let call = admin.drain_broker(pb::DrainBrokerRequest { broker_id });
        let response = answer("drain", call).await;
        assert_eq!(code(response.error.as_ref()), Some(want), "{response:?}");
    }
    assert_eq!(broker_states(&mut admin).await, states);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_oversized_admin_messages_are_refused() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-admin-wire", 1, &[]).await
    else {
        return;
    };
    let addresses = [brokers[0].address.clone(), controller.address.clone()];

    // On the broker and on the controller: undecodable messages are refused, unknown fields
    // are skipped.
    for address in &addresses {
        for path in METHODS {
            assert_undecodable(raw_unary(address, path, TRUNCATED_MESSAGE).await);
        }
        let decoded = raw_unary(address, DESCRIBE_CLUSTER, UNKNOWN_FIELD_ONLY).await;
        assert!(decoded.is_ok(), "{decoded:?}");
    }

    // Above the broker's 64 MiB limit, and above the controller's 4 MiB one.
    let mut admin = brokers[0].admin().await;
    let huge = with_config("huge", "retention.ms", &filler(OVER_BROKER_LIMIT));
    let call = admin.create_topics(create_request(vec![huge], 0));
    assert_too_large(&refusal("an oversized create", call).await);
    let mut direct = controller_admin(&controller.address).await;
    let large = with_config("large", "retention.ms", &filler(OVER_DEFAULT_LIMIT));
    let call = direct.create_topics(create_request(vec![large], 0));
    assert_too_large(&refusal("an oversized create", call).await);

    // Both still serve, and nothing was created.
    assert_eq!(topic_names(&mut admin).await, names(&[TOPIC]));
    assert_eq!(topic_names(&mut direct).await, names(&[TOPIC]));
    assert_eq!(broker_states(&mut direct).await.len(), 1);
    controller.stop().await;
}

/// Inputs for which the contract names the answer: a request too large for the controller is
/// MESSAGE_TOO_LARGE, not the retriable NOT_CONTROLLER; a validation reports
/// what creating would do, so the second of two equal names already exists; and an invalid
/// topic name is not the retriable "unknown topic".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_inputs_get_the_answers_the_contract_names() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-admin-contract", 1, &[]).await
    else {
        return;
    };
    let mut admin = brokers[0].admin().await;
    let mut checks = Checks::default();
    let request_code = |r: &pb::CreateTopicsResponse| code(r.error.as_ref());

    let large = with_config("large", "retention.ms", &filler(OVER_DEFAULT_LIMIT));
    let call = admin.create_topics(create_request(vec![large], 0));
    let got = Outcome::of_call(call, request_code).await;
    // The broker accepts it (64 MiB) but the controller does not (4 MiB): a final error, not
    // the retriable NOT_CONTROLLER.
    let too_large = Outcome::Answer(Some(ErrorCode::MessageTooLarge));
    checks.check("a create too large for the controller", got, too_large);

    let request = pb::CreateTopicsRequest {
        topics: vec![new_topic("ghost", 1, 1), new_topic("ghost", 1, 1)],
        timeout_ms: 0,
        validate_only: true,
    };
    let validated = answer("validate only", admin.create_topics(request)).await;
    let got = Outcome::Answer(code(validated.topics[1].error.as_ref()));
    let exists = Outcome::Answer(Some(ErrorCode::TopicAlreadyExists));
    checks.check("validating the same name twice", got, exists);

    let invalid = Outcome::Answer(Some(ErrorCode::InvalidTopicException));
    let codes = delete_codes(&mut admin, &[""], 0).await;
    checks.check("deleting an empty name", Outcome::Answer(codes[0]), invalid);
    let request = pb::DescribeTopicsRequest {
        topics: vec![String::new()],
    };
    let described = answer("describe topics", admin.describe_topics(request)).await;
    let got = Outcome::Answer(code(described.topics[0].error.as_ref()));
    checks.check("describing an empty name", got, invalid);
    let topic = pb::ConfigResourceType::Topic as i32;
    let request = pb::DescribeConfigsRequest {
        resources: vec![resource(topic, "")],
        include_documentation: false,
    };
    let described = answer("describe configs", admin.describe_configs(request)).await;
    let got = Outcome::Answer(code(described.results[0].error.as_ref()));
    checks.check("describing the configs of an empty name", got, invalid);
    let empty_name = change(Some(resource(topic, "")), vec![set("retention.ms", "1")]);
    let codes = alter_codes(&mut admin, vec![empty_name], false).await;
    checks.check("altering an empty name", Outcome::Answer(codes[0]), invalid);
    checks.assert_all();
    controller.stop().await;
}
