//! The synthetic Istio metrics exporter: serves `istio_requests_total` and the
//! `istio_request_duration_milliseconds` histogram on `/metrics`, for traffic that follows the
//! live VirtualServices (watched on a Kubernetes API server: weights, A/B header routes,
//! mirrors and faults) or weights a test sets. Tests set each subset's error rate and latency,
//! and each service's share of requests carrying the A/B header, through `/control` or
//! [`Exporter`]'s methods.
//!
//! It exists for tests and the demo, where no mesh runs: Prometheus scrapes it like it would
//! scrape Istio's sidecars, and veer's analysis reads the result through the real PromQL. The
//! model (which route a request takes, what each sidecar reports) is in [`weights`] and
//! [`traffic`].

mod http;
pub mod traffic;
pub mod weights;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;

use traffic::check_matched_share;
use weights::UNKNOWN_SUBSET;

pub use traffic::{Batch, Behaviour, DEFAULT_MATCHED_SHARE, Reporter, Traffic};
pub use weights::{
    Fault, FaultAbort, FaultDelay, Mirror, Routes, ServiceKey, Split, routes_from_virtual_service,
};

/// Istio's default buckets for `istio_request_duration_milliseconds`.
pub const DURATION_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot listen on {addr}: {message}; pick a free address with --listen")]
    Bind { addr: SocketAddr, message: String },
    #[error("{subset} of {namespace}/{service}: {reason}")]
    InvalidBehaviour {
        namespace: String,
        service: String,
        subset: String,
        reason: ControlError,
    },
    #[error("weights for {namespace}/{service}: {reason}")]
    InvalidSplit {
        namespace: String,
        service: String,
        reason: ControlError,
    },
    /// `scope`: the service (`ns/name`), or `every service` for the configured default.
    #[error(
        "share of requests matching the A/B route for {scope}: {reason}; give a share between 0 and 1 (e.g. 0.1)"
    )]
    InvalidMatchedShare { scope: String, reason: ControlError },
    #[error("the metrics server stopped: {message}")]
    Serve { message: String },
}

/// Why a value a test sets (through `/control` or [`Exporter`]'s methods) is refused: the
/// message names the field and the range it must be in (the body of the 400).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("errorRate {0} is not between 0 and 1")]
    ErrorRate(f64),
    /// A latency that is negative or not a number.
    #[error("latencyMs {0} is not a duration")]
    Latency(f64),
    #[error("matchedShare {0} is not between 0 and 1")]
    MatchedShare(f64),
    #[error("weights sum to {0}, not 100")]
    WeightSum(u32),
    #[error("fault delayMs {0} is not a duration")]
    FaultDelay(f64),
    /// `what`: `mirror percent`, `fault delay percent` or `fault abort percent`.
    #[error("{what} {percent} is not between 0 and 100")]
    Percent { what: &'static str, percent: f64 },
}

impl ExporterError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ExporterError::Bind { .. } => "bind",
            ExporterError::InvalidBehaviour { .. } => "invalid-behaviour",
            ExporterError::InvalidSplit { .. } => "invalid-split",
            ExporterError::InvalidMatchedShare { .. } => "invalid-matched-share",
            ExporterError::Serve { .. } => "serve",
        }
    }
}

/// Which VirtualServices to follow.
#[derive(Clone)]
pub struct WatchConfig {
    pub client: kube::Client,
    /// Namespace to watch; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// The networking.istio.io version the API server serves (`v1`, `v1beta1`).
    pub api_version: String,
}

#[derive(Clone)]
pub struct ExporterConfig {
    /// Where to serve; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Requests per second each service receives, split across its subsets.
    pub requests_per_second: f64,
    /// Share (0..=1) of each service's requests that carry the A/B header or cookie, so they
    /// take a header-matching route ahead of the catch-all (unless a test sets another).
    pub matched_share: f64,
    /// How often counters advance (by the time that really passed, on tokio's clock).
    pub tick: Duration,
    /// Follow live VirtualServices; without it, only weights set through control count.
    pub watch: Option<WatchConfig>,
}

impl ExporterConfig {
    pub fn local(requests_per_second: f64) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            requests_per_second,
            matched_share: DEFAULT_MATCHED_SHARE,
            tick: Duration::from_millis(100),
            watch: None,
        }
    }
}

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_MS)
}

/// State shared by the tick, the watcher and the HTTP handlers.
pub(crate) struct Shared {
    traffic: Mutex<Traffic>,
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: HistogramFamily,
}

impl Shared {
    fn new(requests_per_second: f64, matched_share: f64) -> Self {
        let requests = Family::<Labels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(new_histogram);
        let mut registry = Registry::default();
        registry.register(
            "istio_requests",
            "Requests answered, as Istio's destination sidecar reports them (synthetic)",
            requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds (synthetic)",
            durations.clone(),
        );
        Self {
            traffic: Mutex::new(
                Traffic::new(requests_per_second).with_matched_share(matched_share),
            ),
            registry,
            requests,
            durations,
        }
    }

    pub(crate) fn traffic(&self) -> MutexGuard<'_, Traffic> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.traffic.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, batches: &[Batch]) {
        for b in batches {
            let labels = istio_labels(b);
            self.requests.get_or_create(&labels).inc_by(b.count);
            let histogram = self.durations.get_or_create(&labels);
            for _ in 0..b.count {
                histogram.observe(b.duration_ms);
            }
        }
    }

    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The labels Istio's standard metrics carry, as the batch's reporter reports them. A request
/// aborted by a fault reached no workload: Istio reports its destination workload and version
/// as `unknown`.
fn istio_labels(b: &Batch) -> Labels {
    let ns = b.key.namespace.as_str();
    let svc = b.key.service.as_str();
    let (workload, version) = match &b.subset {
        Some(subset) => (format!("{svc}-{subset}"), subset.clone()),
        None => (UNKNOWN_SUBSET.to_string(), UNKNOWN_SUBSET.to_string()),
    };
    [
        ("reporter", b.reporter.as_str().to_string()),
        ("source_workload", "veer-synthetic-client".to_string()),
        ("source_workload_namespace", ns.to_string()),
        ("destination_workload", workload),
        ("destination_workload_namespace", ns.to_string()),
        (
            "destination_service",
            format!("{svc}.{ns}.svc.cluster.local"),
        ),
        ("destination_service_name", svc.to_string()),
        ("destination_service_namespace", ns.to_string()),
        ("destination_version", version),
        ("request_protocol", "http".to_string()),
        ("response_code", b.code.to_string()),
        ("response_flags", b.flags.to_string()),
        ("connection_security_policy", "mutual_tls".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A running exporter; dropping it stops the server, the tick and the watch.
pub struct Exporter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Exporter {
    pub async fn start(config: ExporterConfig) -> Result<Self, ExporterError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| ExporterError::Bind {
                addr: config.listen,
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ExporterError::Bind {
            addr: config.listen,
            message: e.to_string(),
        })?;
        check_matched_share(config.matched_share).map_err(|reason| {
            ExporterError::InvalidMatchedShare {
                scope: "every service".to_string(),
                reason,
            }
        })?;
        let shared = Arc::new(Shared::new(
            config.requests_per_second,
            config.matched_share,
        ));
        let mut tasks = Vec::new();
        let app = http::router(shared.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "synthetic exporter server stopped");
            }
        }));
        let store = match config.watch {
            Some(watch) => {
                let (store, task) = watch_virtual_services(watch);
                tasks.push(task);
                Some(store)
            }
            None => None,
        };
        let tick_shared = shared.clone();
        let tick = config.tick.max(Duration::from_millis(1));
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = tokio::time::Instant::now();
            loop {
                ticker.tick().await;
                let now = tokio::time::Instant::now();
                let step = now - last;
                last = now;
                let batches = {
                    let mut traffic = tick_shared.traffic();
                    if let Some(store) = &store {
                        traffic.set_live(live_routes(store));
                    }
                    traffic.advance(step)
                };
                tick_shared.record(&batches);
            }
        }));
        tracing::info!(%addr, "synthetic Istio metrics exporter listening");
        Ok(Self {
            addr,
            shared,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, as a Prometheus scrape target.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_behaviour(
        &self,
        key: &ServiceKey,
        subset: &str,
        behaviour: Behaviour,
    ) -> Result<(), ExporterError> {
        behaviour
            .check()
            .map_err(|reason| ExporterError::InvalidBehaviour {
                namespace: key.namespace.clone(),
                service: key.service.clone(),
                subset: subset.to_string(),
                reason,
            })?;
        self.shared.traffic().set_behaviour(key, subset, behaviour);
        Ok(())
    }

    /// Weights that win over the live VirtualService; `None` follows it again.
    pub fn set_split(&self, key: &ServiceKey, split: Option<Split>) -> Result<(), ExporterError> {
        if let Some(split) = &split {
            check_split(split).map_err(|reason| ExporterError::InvalidSplit {
                namespace: key.namespace.clone(),
                service: key.service.clone(),
                reason,
            })?;
        }
        self.shared.traffic().set_override(key, split);
        Ok(())
    }

    pub fn set_rate(&self, key: &ServiceKey, requests_per_second: f64) {
        self.shared.traffic().set_rate(key, requests_per_second);
    }

    /// The share (0..=1) of `key`'s requests that carry the A/B header or cookie.
    pub fn set_matched_share(&self, key: &ServiceKey, share: f64) -> Result<(), ExporterError> {
        check_matched_share(share).map_err(|reason| ExporterError::InvalidMatchedShare {
            scope: format!("{}/{}", key.namespace, key.service),
            reason,
        })?;
        self.shared.traffic().set_matched_share(key, share);
        Ok(())
    }

    /// The split plain requests follow now.
    pub fn split(&self, key: &ServiceKey) -> Option<Split> {
        self.shared.traffic().split(key).cloned()
    }

    /// The routes requests follow now (plain, and matched when an A/B route is ahead).
    pub fn routes(&self, key: &ServiceKey) -> Option<Routes> {
        self.shared.traffic().routes(key)
    }

    /// Serves until `shutdown` resolves (for the command line).
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        shutdown.await;
        drop(self);
    }
}

pub(crate) fn check_split(split: &Split) -> Result<(), ControlError> {
    let sum: u32 = split.weights.values().sum();
    if sum != 100 {
        return Err(ControlError::WeightSum(sum));
    }
    let mut percents = Vec::new();
    if let Some(m) = &split.mirror {
        percents.push(("mirror percent", m.percent));
    }
    if let Some(f) = &split.fault {
        if let Some(d) = &f.delay {
            percents.push(("fault delay percent", d.percent));
            if !(d.delay_ms.is_finite() && d.delay_ms >= 0.0) {
                return Err(ControlError::FaultDelay(d.delay_ms));
            }
        }
        if let Some(a) = &f.abort {
            percents.push(("fault abort percent", a.percent));
        }
    }
    for (what, percent) in percents {
        if !(0.0..=100.0).contains(&percent) {
            return Err(ControlError::Percent { what, percent });
        }
    }
    Ok(())
}

fn virtual_service_resource(version: &str) -> ApiResource {
    ApiResource {
        group: "networking.istio.io".to_string(),
        version: version.to_string(),
        api_version: format!("networking.istio.io/{version}"),
        kind: "VirtualService".to_string(),
        plural: "virtualservices".to_string(),
    }
}

/// Keeps a reflector of the VirtualServices; the tick reads it, so a weight change shows in
/// traffic within one tick of the watch event.
fn watch_virtual_services(watch: WatchConfig) -> (reflector::Store<DynamicObject>, JoinHandle<()>) {
    let resource = virtual_service_resource(&watch.api_version);
    let api: kube::Api<DynamicObject> = match &watch.namespace {
        Some(ns) => kube::Api::namespaced_with(watch.client.clone(), ns, &resource),
        None => kube::Api::all_with(watch.client.clone(), &resource),
    };
    let writer = reflector::store::Writer::new(resource);
    let store = writer.as_reader();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(error = %e, "watching VirtualServices failed; retrying");
            }
        }
    });
    (store, task)
}

fn live_routes(
    store: &reflector::Store<DynamicObject>,
) -> std::collections::BTreeMap<ServiceKey, Routes> {
    let mut all = std::collections::BTreeMap::new();
    for vs in store.state() {
        let namespace = vs.metadata.namespace.as_deref().unwrap_or("default");
        if let Some(spec) = vs.data.get("spec") {
            all.extend(routes_from_virtual_service(namespace, spec));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_control_value_names_the_field_and_its_range() {
        let split = |weights: &[(&str, u32)]| Split {
            weights: weights.iter().map(|(s, w)| (s.to_string(), *w)).collect(),
            mirror: None,
            fault: None,
        };
        let message = |r: Result<(), ControlError>| r.map_err(|e| e.to_string());
        assert_eq!(message(check_split(&split(&[("v1", 100)]))), Ok(()));
        assert_eq!(
            message(check_split(&split(&[("v1", 90), ("v2", 20)]))),
            Err("weights sum to 110, not 100".to_string())
        );
        let behaviour = Behaviour {
            error_rate: 1.5,
            latency_ms: 1.0,
        };
        assert_eq!(
            message(behaviour.check()),
            Err("errorRate 1.5 is not between 0 and 1".to_string())
        );
        let behaviour = Behaviour {
            error_rate: 0.5,
            latency_ms: -1.0,
        };
        assert_eq!(
            message(behaviour.check()),
            Err("latencyMs -1 is not a duration".to_string())
        );
        assert_eq!(
            message(check_matched_share(1.5)),
            Err("matchedShare 1.5 is not between 0 and 1".to_string())
        );
    }
}
