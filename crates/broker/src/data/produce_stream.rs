//! ProduceStream: pipelined produce. Requests are appended strictly in arrival order; their
//! answers (which may wait for replication) complete concurrently and are sent as they are
//! ready, matched to requests by correlation id.

use std::future::Future;
use std::pin::Pin;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};

use super::lookup::Lookup;
use super::produce::{append_all, complete};

/// Requests appended but not yet answered before the broker stops reading the stream; gRPC
/// flow control then holds the client back.
const MAX_IN_FLIGHT: usize = 64;

type Answer = Pin<Box<dyn Future<Output = pb::ProduceStreamResponse> + Send>>;

struct State<S, E> {
    requests: S,
    requests_done: bool,
    /// Why reading requests stopped, when it was not the client closing its side.
    failed: Option<E>,
    in_flight: FuturesUnordered<Answer>,
    lookup: Lookup,
}

/// The answers to a stream of produce requests. A request that cannot be read (it does not
/// decode, or is larger than the broker accepts) stops the reading: the answers in flight are
/// sent, then the stream ends with that error.
pub fn produce_stream<S, E>(
    lookup: Lookup,
    requests: S,
) -> impl Stream<Item = Result<pb::ProduceStreamResponse, E>> + Send + 'static
where
    S: Stream<Item = Result<pb::ProduceStreamRequest, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let state = State {
        requests,
        requests_done: false,
        failed: None,
        in_flight: FuturesUnordered::new(),
        lookup,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            let reading = !state.requests_done && state.in_flight.len() < MAX_IN_FLIGHT;
            tokio::select! {
                biased;
                Some(answer) = state.in_flight.next(), if !state.in_flight.is_empty() => {
                    return Some((Ok(answer), state));
                }
                request = state.requests.next(), if reading => match request {
                    Some(Ok(request)) => {
                        let answer = accept(&state.lookup, request).await;
                        state.in_flight.push(answer);
                    }
                    // Finish what is in flight, then end with the error.
                    Some(Err(error)) => {
                        state.requests_done = true;
                        state.failed = Some(error);
                    }
                    // The client closed its side: finish what is in flight, then end.
                    None => state.requests_done = true,
                },
                else => return state.failed.take().map(|error| (Err(error), state)),
            }
        }
    })
}

/// Appends one request now and returns the future of its answer.
async fn accept(lookup: &Lookup, request: pb::ProduceStreamRequest) -> Answer {
    let correlation_id = request.correlation_id;
    let Some(inner) = request.request else {
        let response = pb::ProduceResponse {
            error: Some(PbError::new(
                ErrorCode::InvalidRequest,
                "a ProduceStreamRequest must carry a request",
            )),
            topics: Vec::new(),
        };
        return Box::pin(async move {
            pb::ProduceStreamResponse {
                correlation_id,
                response: Some(response),
            }
        });
    };
    let appended = append_all(lookup, inner).await;
    let lookup = lookup.clone();
    Box::pin(async move {
        let response = complete(&lookup, appended).await;
        pb::ProduceStreamResponse {
            correlation_id,
            response: Some(response),
        }
    })
}
