//! Domain newtypes shared by every Strom crate.
//!
//! Raw integers and strings are converted into these types once, at the edge of the system
//! (gRPC conversion, on-disk decoding), so inner code never confuses an offset with an epoch or
//! handles an unchecked topic name. This crate does no I/O and depends on no workspace crate.

mod error;
mod group;
mod ids;
mod topic;
mod topic_id;

pub use error::{Error, Result};
pub use group::{MAX_GROUP_ID_LENGTH, group_id_problem};
pub use ids::{
    BrokerId, LeaderEpoch, Offset, PartitionId, ProducerEpoch, ProducerId, Sequence, Timestamp,
};
pub use topic::{MAX_TOPIC_NAME_LEN, TopicName, TopicPartition};
pub use topic_id::TopicId;
