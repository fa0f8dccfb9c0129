//! Prometheus metrics: the `[metrics]` config section, a registry with scrape-time refresh
//! hooks, the HTTP endpoint that serves it ([`MetricsServer`]) and the per-RPC metrics every
//! gRPC server records ([`RpcMetrics`]).
//!
//! Services own their metric families (`prometheus_client` counters, gauges, histograms),
//! register them once at start-up, and update them on the paths they measure. Values that
//! are cheaper to compute when asked (log sizes, partition states) are filled in by a refresh
//! hook that runs before each scrape.
//!
//! Output is the OpenMetrics text format, which Prometheus scrapes natively; counters carry
//! the `_total` suffix.

mod http;
mod rpc;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

pub use http::MetricsServer;
pub use rpc::{MeteredBody, RpcMetrics, RpcMetricsLayer, RpcMetricsService};

use crate::config::Validate;

/// The `[metrics]` section of a service config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// Serve `/metrics` over HTTP.
    pub enabled: bool,
    /// Where to listen. Each service has its own default port (broker 9102, controller 9103,
    /// coordinator 9104), so the three can share a host.
    pub listen: SocketAddr,
}

impl MetricsConfig {
    /// Enabled, on all interfaces at `port`.
    pub const fn on_port(port: u16) -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        }
    }

    /// Not served (in-process clusters and tests that do not scrape).
    pub const fn disabled() -> Self {
        let mut config = Self::on_port(0);
        config.enabled = false;
        config
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self::disabled()
    }
}

impl Validate for MetricsConfig {}

/// Latency histogram buckets in seconds: 100 µs doubling up to about 13 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18)
}

type Refresh = Box<dyn Fn() + Send + Sync>;

/// A registry plus the hooks that refresh computed values before each scrape.
pub struct MetricsRegistry {
    registry: Registry,
    refresh: Vec<Refresh>,
    /// Serializes scrapes, so two refreshes never interleave.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("refresh_hooks", &self.refresh.len())
            .finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    /// A registry with `strom_build_info{service, version}` = 1 and the per-RPC metrics of
    /// `rpc` registered.
    pub fn new(service: &'static str, rpc: &RpcMetrics) -> Self {
        let mut registry = Registry::default();
        let info = prometheus_client::metrics::family::Family::<
            [(&'static str, &'static str); 2],
            Gauge,
        >::default();
        info.get_or_create(&[("service", service), ("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register("strom_build_info", "Strom build and role", info);
        rpc.register(&mut registry);
        Self {
            registry,
            refresh: Vec::new(),
            scrape: Mutex::new(()),
        }
    }

    /// The registry, to register a service's metric families on.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Runs `hook` before every scrape (keep it short and non-blocking).
    pub fn on_scrape(&mut self, hook: impl Fn() + Send + Sync + 'static) {
        self.refresh.push(Box::new(hook));
    }

    /// Refreshes computed values and renders every metric as OpenMetrics text.
    pub fn render(&self) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        for hook in &self.refresh {
            hook();
        }
        let mut out = String::new();
        // Writing into a String cannot fail; an encoding error would mean a bad metric name,
        // which registration already rules out.
        if let Err(error) = encode(&mut out, &self.registry) {
            tracing::warn!(%error, "could not encode metrics");
        }
        out
    }

    /// Shares the finished registry with the HTTP endpoint.
    pub fn into_shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn render_runs_hooks_and_lists_build_info() {
        let rpc = RpcMetrics::default();
        let mut metrics = MetricsRegistry::new("test", &rpc);
        let counter = Counter::<u64>::default();
        metrics
            .registry()
            .register("strom_test_events", "Events", counter.clone());
        let hooked = counter.clone();
        metrics.on_scrape(move || {
            hooked.inc();
        });
        let text = metrics.render();
        assert!(text.contains("strom_build_info{service=\"test\""), "{text}");
        assert!(text.contains("strom_test_events_total 1"), "{text}");
        assert!(metrics.render().contains("strom_test_events_total 2"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn config_defaults_and_names() {
        assert!(!MetricsConfig::default().enabled);
        let c = MetricsConfig::on_port(9102);
        assert!(c.enabled);
        assert_eq!(c.listen.to_string(), "0.0.0.0:9102");
        let parsed: MetricsConfig =
            toml::from_str("enabled = true\nlisten = \"127.0.0.1:0\"").unwrap();
        assert_eq!(parsed.listen.port(), 0);
        assert!(toml::from_str::<MetricsConfig>("port = 1").is_err());
    }

    #[test]
    fn latency_buckets_span_micros_to_seconds() {
        let buckets: Vec<f64> = latency_buckets().collect();
        assert_eq!(buckets.len(), 18);
        assert!((buckets[0] - 0.0001).abs() < 1e-12);
        assert!(buckets[17] > 10.0);
    }
}
