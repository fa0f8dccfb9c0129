//! Helpers for the bad-input suites: calls bounded in time, error codes read out of responses,
//! outcomes that compare in one assertion, and a raw gRPC client that puts bytes on the wire
//! no generated client would send; and the produce, fetch, commit and reset helpers that more
//! than one suite uses.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use strom_proto::admin::v1 as admin_pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::broker::v1 as pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_proto::coordinator::v1 as group_pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};

use super::data::produce_request;

/// How long any single bad call may take: the server must answer, not hang.
pub const CALL_LIMIT: Duration = Duration::from_secs(5);

/// Request bytes above the broker's default `max-request-size` (64 MiB).
pub const OVER_BROKER_LIMIT: usize = 65 * 1024 * 1024;

/// Request bytes above tonic's default decoding limit (4 MiB), which the controller, the
/// coordinators and the broker's CoordinatorService keep.
pub const OVER_DEFAULT_LIMIT: usize = 5 * 1024 * 1024;

/// A protobuf message whose field 1 claims 5 bytes but holds one: no message type decodes it.
pub const TRUNCATED_MESSAGE: &[u8] = &[0x0a, 0x05, 0x01];

/// Field 1000 as a varint: unknown to every Strom message, so it decodes as an empty one.
pub const UNKNOWN_FIELD_ONLY: &[u8] = &[0xc0, 0x3e, 0x01];

/// Awaits `call`, failing the test if it takes longer than [`CALL_LIMIT`].
pub async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not return within {CALL_LIMIT:?}"),
    }
}

/// Awaits a call that must succeed at the gRPC level within [`CALL_LIMIT`]; its message.
pub async fn answer<T>(what: &str, call: impl Future<Output = Result<Response<T>, Status>>) -> T {
    match bounded(what, call).await {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what} failed with {status:?}"),
    }
}

/// Awaits a call that must fail at the gRPC level within [`CALL_LIMIT`]; its status.
pub async fn refusal<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Status {
    match bounded(what, call).await {
        Ok(response) => panic!("{what} succeeded: {:?}", response.get_ref()),
        Err(status) => status,
    }
}

/// The code of an optional wire error; panics on a code this build does not know.
pub fn code(error: Option<&PbError>) -> Option<ErrorCode> {
    error.map(|e| ErrorCode::try_from(e.code).unwrap())
}

/// Checks that `status` is gRPC's refusal of a message above the server's decoding limit.
pub fn assert_too_large(status: &Status) {
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
}

/// Checks that a call was refused by gRPC because its request message does not decode.
pub fn assert_undecodable<T: std::fmt::Debug>(outcome: Result<T, Status>) {
    match outcome {
        Ok(message) => panic!("an undecodable request was answered: {message:?}"),
        Err(status) => assert_eq!(status.code(), Code::Internal, "{status:?}"),
    }
}

/// What one call came to, in a form a test can compare for many calls in one assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response; its (first) error code, or `None` for success.
    Answer(Option<ErrorCode>),
    /// A non-OK gRPC status.
    Status(Code),
    /// A stream ended with an OK status and no further message.
    EndedSilently,
    /// A number the test read back, such as a log end offset.
    Value(i64),
    /// No answer within [`CALL_LIMIT`].
    Hung,
}

impl Outcome {
    /// Runs a unary call bounded by [`CALL_LIMIT`]; `code_of` reads the response's code.
    pub async fn of_call<T>(
        call: impl Future<Output = Result<Response<T>, Status>>,
        code_of: impl FnOnce(&T) -> Option<ErrorCode>,
    ) -> Self {
        match tokio::time::timeout(CALL_LIMIT, call).await {
            Err(_) => Outcome::Hung,
            Ok(Err(status)) => Outcome::Status(status.code()),
            Ok(Ok(response)) => Outcome::Answer(code_of(response.get_ref())),
        }
    }

    /// Reads the next message of a stream, bounded by [`CALL_LIMIT`].
    pub async fn of_next<T>(
        stream: &mut Streaming<T>,
        code_of: impl FnOnce(&T) -> Option<ErrorCode>,
    ) -> Self {
        match tokio::time::timeout(CALL_LIMIT, stream.message()).await {
            Err(_) => Outcome::Hung,
            Ok(Err(status)) => Outcome::Status(status.code()),
            Ok(Ok(None)) => Outcome::EndedSilently,
            Ok(Ok(Some(message))) => Outcome::Answer(code_of(&message)),
        }
    }
}

/// `base` with `edit` applied: a request that differs from a good one in one way.
pub fn edited<T: Clone>(base: &T, edit: impl FnOnce(&mut T)) -> T {
    let mut request = base.clone();
    edit(&mut request);
    request
}

/// Each registered broker's epoch, by id, as the controller at `address` describes them.
pub async fn broker_epochs(address: &str) -> BTreeMap<i32, i64> {
    let mut admin = AdminServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let call = admin.describe_cluster(admin_pb::DescribeClusterRequest {});
    let cluster = answer("describe cluster", call).await;
    cluster
        .brokers
        .iter()
        .filter_map(|b| Some((b.broker.as_ref()?.broker_id, b.broker_epoch?)))
        .collect()
}

/// Outcomes checked together, so that one failure lists every case that differs.
#[derive(Debug, Default)]
pub struct Checks {
    cases: Vec<(String, Outcome, Outcome)>,
}

impl Checks {
    /// Records that `case` came to `got` where `expected` was wanted.
    pub fn check(&mut self, case: impl Into<String>, got: Outcome, expected: Outcome) {
        self.cases.push((case.into(), got, expected));
    }

    /// Fails, listing them as (case, got, expected), if any case differs from its expectation.
    pub fn assert_all(&self) {
        let wrong: Vec<_> = self
            .cases
            .iter()
            .filter(|(_, got, expected)| got != expected)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} cases differ (case, got, expected): {wrong:#?}",
            wrong.len(),
            self.cases.len()
        );
    }
}

/// The next message of `stream` within [`CALL_LIMIT`]; `None` once it ended with an OK status.
pub async fn next_message<T>(what: &str, stream: &mut Streaming<T>) -> Option<T> {
    match bounded(what, stream.message()).await {
        Ok(message) => message,
        Err(status) => panic!("{what} failed with {status:?}"),
    }
}

/// A codec that sends and receives message bytes as they are, unparsed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// The decoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// A raw gRPC client of the server at `address` (`host:port`), ready for a call.
async fn raw_client(address: &str) -> tonic::client::Grpc<Channel> {
    let channel = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc
}

/// Calls unary method `path` (e.g. `/strom.broker.v1.BrokerService/Produce`) with `body` as
/// the encoded request message; the encoded response message or the status. Bounded by
/// [`CALL_LIMIT`].
pub async fn raw_unary(address: &str, path: &'static str, body: &[u8]) -> Result<Bytes, Status> {
    let mut grpc = raw_client(address).await;
    let request = tonic::Request::new(Bytes::copy_from_slice(body));
    let call = grpc.unary(request, PathAndQuery::from_static(path), RawCodec);
    bounded(path, call).await.map(Response::into_inner)
}

/// Calls streaming method `path` with `items` as the encoded request messages; the first
/// response message (`None` when the stream ended without one) or the status the call or the
/// stream failed with.
async fn raw_first_message(
    address: &str,
    path: &'static str,
    items: Vec<Bytes>,
) -> Result<Option<Bytes>, Status> {
    let mut grpc = raw_client(address).await;
    let request = tonic::Request::new(tokio_stream::iter(items));
    let mut responses = grpc
        .streaming(request, PathAndQuery::from_static(path), RawCodec)
        .await?
        .into_inner();
    responses.message().await
}

/// [`raw_first_message`], bounded by [`CALL_LIMIT`].
pub async fn raw_streaming(
    address: &str,
    path: &'static str,
    items: Vec<Bytes>,
) -> Result<Option<Bytes>, Status> {
    bounded(path, raw_first_message(address, path, items)).await
}

/// [`raw_first_message`] as an [`Outcome`]; a first message counts as a successful answer.
pub async fn raw_streaming_outcome(
    address: &str,
    path: &'static str,
    items: Vec<Bytes>,
) -> Outcome {
    let call = raw_first_message(address, path, items);
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Err(_) => Outcome::Hung,
        Ok(Ok(Some(_))) => Outcome::Answer(None),
        Ok(Ok(None)) => Outcome::EndedSilently,
        Ok(Err(status)) => Outcome::Status(status.code()),
    }
}

/// A string of `len` bytes, to make a request larger than a server accepts.
pub fn filler(len: usize) -> String {
    "x".repeat(len)
}

/// A BrokerService client.
pub type BrokerClient = BrokerServiceClient<Channel>;

/// A produce (acks=1) of `records` to partition `partition` of [`TOPIC`].
pub fn produce_at(partition: i32, records: Bytes) -> pb::ProduceRequest {
    let mut request = produce_request(pb::Acks::Leader as i32, records);
    request.topics[0].partitions[0].partition = partition;
    request
}

/// The request-level error code of a produce response, else that of its first partition.
pub fn produce_code(response: &pb::ProduceResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// The request-level error code of a fetch response, else that of its first partition.
pub fn fetch_code(response: &pb::FetchResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// Produces `records` to partition 0 of [`TOPIC`] (acks=1); the error code, if any.
pub async fn produce_one(broker: &mut BrokerClient, records: Bytes) -> Option<ErrorCode> {
    let call = broker.produce(produce_at(0, records));
    produce_code(&answer("produce", call).await)
}

/// One lookup of `spec` in `partition`.
pub fn lookup(partition: i32, spec: pb::OffsetSpec, timestamp_ms: i64) -> pb::ListOffsetsPartition {
    pb::ListOffsetsPartition {
        partition,
        spec: spec as i32,
        timestamp_ms,
        current_leader_epoch: None,
    }
}

/// The latest-offset lookup result of `topic`/`partition`, which must succeed.
pub async fn latest(
    broker: &mut BrokerClient,
    topic: &str,
    partition: i32,
) -> pb::ListOffsetsPartitionResult {
    let request = pb::ListOffsetsRequest {
        topics: vec![pb::ListOffsetsTopic {
            topic: topic.to_owned(),
            partitions: vec![lookup(partition, pb::OffsetSpec::Latest, 0)],
        }],
    };
    let response = answer("list offsets", broker.list_offsets(request)).await;
    let result = response.topics[0].partitions[0].clone();
    assert!(result.error.is_none(), "{result:?}");
    result
}

/// The high watermark of `topic`/`partition`; with one replica, also its log end.
pub async fn end_of(broker: &mut BrokerClient, topic: &str, partition: i32) -> i64 {
    latest(broker, topic, partition).await.offset.unwrap()
}

/// Where to read partition `partition` from.
pub fn partition_at(partition: i32, fetch_offset: i64) -> pb::FetchPartition {
    pb::FetchPartition {
        partition,
        fetch_offset,
        partition_max_bytes: 0,
        current_leader_epoch: None,
    }
}

/// A CoordinatorService client.
pub type CoordinatorClient = CoordinatorServiceClient<Channel>;

/// A CoordinatorService client of the process at `address`: a coordinator or a broker.
pub async fn connect_coordinator(address: &str) -> CoordinatorClient {
    CoordinatorServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// The code of a redirect and the id of the process its hint names.
pub fn redirect(error: Option<&PbError>) -> Option<(ErrorCode, i32)> {
    let leader = error?.leader.as_ref()?.leader_id;
    Some((code(error)?, leader))
}

/// Commits `(topic, partition, offset, metadata)` positions for `group` as `member` at
/// `epoch`; the request-level error code, else each position's code in (topic, partition)
/// order.
pub async fn commit_codes(
    client: &mut CoordinatorClient,
    group: &str,
    member: &str,
    epoch: i32,
    positions: &[(&str, i32, i64, &str)],
) -> Result<Vec<Option<ErrorCode>>, ErrorCode> {
    let mut topics: BTreeMap<&str, Vec<group_pb::CommitOffsetsPartition>> = BTreeMap::new();
    for &(topic, partition, offset, metadata) in positions {
        let position = group_pb::CommitOffsetsPartition {
            partition,
            offset,
            leader_epoch: None,
            metadata: metadata.to_owned(),
        };
        topics.entry(topic).or_default().push(position);
    }
    let request = group_pb::CommitOffsetsRequest {
        group_id: group.to_owned(),
        member_id: member.to_owned(),
        member_epoch: epoch,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| group_pb::CommitOffsetsTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    };
    let response = answer("commit offsets", client.commit_offsets(request)).await;
    if let Some(error) = code(response.error.as_ref()) {
        return Err(error);
    }
    Ok(response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| code(p.error.as_ref()))
        .collect())
}

/// Each group's error code in a DescribeGroups, with lag, of `groups`.
pub async fn describe_codes(
    client: &mut CoordinatorClient,
    groups: &[&str],
) -> Vec<Option<ErrorCode>> {
    let request = group_pb::DescribeGroupsRequest {
        group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
        include_lag: true,
    };
    let response = answer("describe groups", client.describe_groups(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    response
        .groups
        .iter()
        .map(|g| code(g.error.as_ref()))
        .collect()
}

/// Resets `group`'s committed offsets in `partitions` of `topic` (all of them when empty) by
/// `strategy`; the request-level error code, else each partition's new offset or error code.
pub async fn reset(
    client: &mut CoordinatorClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
    strategy: Strategy,
    dry_run: bool,
) -> Result<Vec<(i32, Result<i64, ErrorCode>)>, ErrorCode> {
    let request = group_pb::ResetOffsetsRequest {
        group_id: group.to_owned(),
        topic: topic.to_owned(),
        partitions: partitions.to_vec(),
        strategy: Some(strategy),
        dry_run,
    };
    let response = answer("reset offsets", client.reset_offsets(request)).await;
    if let Some(error) = code(response.error.as_ref()) {
        return Err(error);
    }
    Ok(response
        .partitions
        .iter()
        .map(|p| match code(p.error.as_ref()) {
            Some(error) => (p.partition, Err(error)),
            None => (p.partition, Ok(p.new_offset)),
        })
        .collect())
}
