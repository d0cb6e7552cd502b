//! Counting the bench's API requests on the client side: a tower layer on the kube client
//! that tallies each request by Kubernetes verb and notes when the API server last answered
//! a write of an object (the "applied" of commit to applied).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::{Layer, Service};

/// Request categories, in print order.
const VERBS: [&str; 9] = [
    "DISCOVERY",
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "UPDATE",
    "PATCH",
    "DELETE",
    "OTHER",
];

#[derive(Clone, Default)]
pub struct Counts {
    verbs: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// When the API server last answered a write of an object (a PATCH that is not a dry
    /// run, veer's own ConfigMaps aside): the "applied" of commit to applied.
    last_write: Arc<Mutex<Option<Instant>>>,
}

impl Counts {
    fn record(&self, verb: &'static str) {
        *self
            .verbs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(verb)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.verbs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn wrote(&self) {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// When the last object write was answered, if after `start`.
    pub fn written_since(&self, start: Instant) -> Option<Duration> {
        let last = *self.last_write.lock().unwrap_or_else(|p| p.into_inner());
        last.and_then(|at| at.checked_duration_since(start))
    }

    /// Requests made since `before`.
    pub fn since(&self, before: &BTreeMap<&'static str, u64>) -> Requests {
        let now = self.snapshot();
        Requests(
            VERBS
                .iter()
                .map(|v| {
                    let a = now.get(v).copied().unwrap_or(0);
                    let b = before.get(v).copied().unwrap_or(0);
                    (*v, a - b)
                })
                .collect(),
        )
    }
}

/// Requests by verb over an interval.
pub struct Requests(pub BTreeMap<&'static str, u64>);

impl Requests {
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, verb: &str) -> u64 {
        self.0.get(verb).copied().unwrap_or(0)
    }

    pub fn add(&mut self, other: &Requests) {
        for (v, n) in &other.0 {
            *self.0.entry(v).or_default() += n;
        }
    }
}

impl std::fmt::Display for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} requests", self.total())?;
        let parts: Vec<String> = VERBS
            .iter()
            .filter(|v| self.get(v) > 0)
            .map(|v| format!("{v} {}", self.get(v)))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// The Kubernetes verb of a request, from its method, path and query.
fn verb(method: &http::Method, uri: &http::Uri) -> &'static str {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // What follows /api/v1 or /apis/<group>/<version>; anything else is discovery.
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => return "DISCOVERY",
    };
    if rest.is_empty() {
        return "DISCOVERY";
    }
    // namespaces/<ns>/<resource>[/<name>[/<subresource>]]; a bare namespaces[/<name>] is the
    // Namespace kind itself.
    let resource_path = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let collection = resource_path.len() == 1;
    let watching = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    match *method {
        http::Method::GET if collection && watching => "WATCH",
        http::Method::GET if collection => "LIST",
        http::Method::GET => "GET",
        http::Method::POST => "CREATE",
        http::Method::PUT => "UPDATE",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

#[derive(Clone)]
struct CountLayer(Counts);

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct CountService<S> {
    inner: S,
    counts: Counts,
}

impl<S, B> Service<http::Request<B>> for CountService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.counts.record(verb(request.method(), request.uri()));
        let uri = request.uri();
        let object_write = request.method() == http::Method::PATCH
            && !uri.query().unwrap_or("").contains("dryRun")
            && !uri.path().contains("/configmaps/");
        let answer = self.inner.call(request);
        let counts = self.counts.clone();
        Box::pin(async move {
            let answered = answer.await;
            if object_write {
                counts.wrote();
            }
            answered
        })
    }
}

/// A kube client from the dev cluster's kubeconfig, counting its requests into `counts`.
pub async fn counting_client(kubeconfig: &Path, counts: &Counts) -> kube::Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("the dev cluster's kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig makes a client config");
    ClientBuilder::try_from(config)
        .expect("a client builder")
        .with_layer(&CountLayer(counts.clone()))
        .build()
}
