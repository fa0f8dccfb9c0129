//! Per-RPC metrics for every gRPC server, as a tower layer: calls started, calls handled by
//! gRPC status code, and handling time. A call is handled when its response body ends (the
//! trailers carry the status), so a unary call is timed to its last byte and a streaming
//! call over its whole life; a call whose response is dropped before it ends (the client went
//! away) counts as `Canceled`.
//!
//! Names and labels follow the usual gRPC server metrics: `grpc_service`, `grpc_method`,
//! `grpc_code` (`OK`, `InvalidArgument`, `Unavailable`, ...).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::latency_buckets;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

impl MethodLabels {
    /// From a gRPC path, `/strom.broker.v1.BrokerService/Produce`.
    fn from_path(path: &str) -> Self {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().filter(|s| !s.is_empty());
        let method = parts.next().filter(|m| !m.is_empty() && !m.contains('/'));
        match (service, method) {
            (Some(service), Some(method)) => Self {
                grpc_service: service.to_owned(),
                grpc_method: method.to_owned(),
            },
            _ => Self {
                grpc_service: "unknown".to_owned(),
                grpc_method: "unknown".to_owned(),
            },
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The per-RPC metric families; cheap to clone (clones share the values).
#[derive(Debug, Clone)]
pub struct RpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            started: Family::default(),
            handled: Family::default(),
            seconds: Family::new_with_constructor(histogram),
        }
    }
}

impl RpcMetrics {
    /// Registers the families on `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "strom_grpc_server_started",
            "gRPC calls started on the server",
            self.started.clone(),
        );
        registry.register(
            "strom_grpc_server_handled",
            "gRPC calls completed on the server, by status code",
            self.handled.clone(),
        );
        registry.register(
            "strom_grpc_server_handling_seconds",
            "Time from a gRPC call's arrival to the end of its response",
            self.seconds.clone(),
        );
    }

    /// The layer that records these metrics for every call through a server.
    pub fn layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer {
            metrics: self.clone(),
        }
    }
}

/// A tower layer recording [`RpcMetrics`].
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: RpcMetrics,
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around a gRPC router.
#[derive(Debug, Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: RpcMetrics,
}

impl<S, B, RB> tower::Service<Request<B>> for RpcMetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready; call the instance that was polled.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let labels = MethodLabels::from_path(request.uri().path());
        self.metrics.started.get_or_create(&labels).inc();
        let mut call = CallRecord {
            metrics: self.metrics.clone(),
            labels,
            started: Instant::now(),
            code: None,
            done: false,
        };
        Box::pin(async move {
            match inner.call(request).await {
                Ok(response) => {
                    // A trailers-only response (most errors) carries the status in its headers.
                    call.code = status_of(response.headers());
                    let (parts, body) = response.into_parts();
                    Ok(Response::from_parts(
                        parts,
                        MeteredBody {
                            inner: body,
                            call: Some(call),
                        },
                    ))
                }
                Err(error) => {
                    call.finish(Some("Unknown".to_owned()));
                    Err(error)
                }
            }
        })
    }
}

/// One call in flight, recorded exactly once: when [`finish`](Self::finish)ed, or when
/// dropped unfinished (with the status its headers carried, else as `Canceled`).
#[derive(Debug)]
struct CallRecord {
    metrics: RpcMetrics,
    labels: MethodLabels,
    started: Instant,
    /// The status from the response headers, if they carried one.
    code: Option<String>,
    done: bool,
}

impl CallRecord {
    /// Records the call with `code`, or the headers' status when `None`.
    fn finish(&mut self, code: Option<String>) {
        if self.done {
            return;
        }
        self.done = true;
        let code = code
            .or_else(|| self.code.take())
            .unwrap_or_else(|| "Canceled".to_owned());
        self.metrics
            .seconds
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics
            .handled
            .get_or_create(&HandledLabels {
                grpc_service: self.labels.grpc_service.clone(),
                grpc_method: self.labels.grpc_method.clone(),
                grpc_code: code,
            })
            .inc();
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// The `grpc-status` in `headers`, by name.
fn status_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    let code = tonic::Code::from(value.trim().parse::<i32>().ok()?);
    Some(match code {
        tonic::Code::Ok => "OK".to_owned(),
        other => format!("{other:?}"),
    })
}

pin_project_lite::pin_project! {
    /// A response body that records its call when it ends or is dropped.
    #[derive(Debug)]
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<CallRecord>,
    }
}

impl<B: Body> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.as_mut()
                {
                    call.finish(status_of(trailers));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.as_mut() {
                    call.finish(Some("Internal".to_owned()));
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.as_mut() {
                    // Ended without trailers: the status came with the headers, if at all.
                    let code = call.code.take().unwrap_or_else(|| "OK".to_owned());
                    call.finish(Some(code));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_from_paths() {
        let l = MethodLabels::from_path("/strom.broker.v1.BrokerService/Produce");
        assert_eq!(l.grpc_service, "strom.broker.v1.BrokerService");
        assert_eq!(l.grpc_method, "Produce");
        for bad in ["/", "", "/only", "/a/b/c"] {
            assert_eq!(
                MethodLabels::from_path(bad).grpc_service,
                "unknown",
                "{bad}"
            );
        }
    }

    #[test]
    fn status_names() {
        let mut headers = HeaderMap::new();
        assert_eq!(status_of(&headers), None);
        headers.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(status_of(&headers).as_deref(), Some("OK"));
        headers.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(status_of(&headers).as_deref(), Some("Unavailable"));
    }

    #[test]
    fn dropped_call_counts_as_canceled() {
        let metrics = RpcMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        drop(CallRecord {
            metrics: metrics.clone(),
            labels: MethodLabels::from_path("/s.S/M"),
            started: Instant::now(),
            code: None,
            done: false,
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "strom_grpc_server_handled_total{grpc_service=\"s.S\",grpc_method=\"M\",grpc_code=\"Canceled\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "strom_grpc_server_handling_seconds_count{grpc_service=\"s.S\",grpc_method=\"M\"} 1"
            ),
            "{text}"
        );
    }
}
