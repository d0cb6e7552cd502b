//! A test-only tower layer in front of the real kube client: answers chosen requests with an
//! API error (`Status`) instead of sending them, so retries and per-object failures can be
//! tested against the real dev cluster without changing it. Dry-run requests are never
//! faulted (see [`FaultService`]'s `call`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kube::client::{Body, ClientBuilder};
use tower::{Layer, Service};

use veer::devcluster::RunningCluster;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type DynBody = dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + Unpin;

/// Answer the next `times` requests with this method whose path contains `path` with
/// `code`/`reason`/`message`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path: String,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub times: usize,
}

/// The faults still to inject, and how many were.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pending: Arc<Mutex<Vec<Fault>>>,
    injected: Arc<Mutex<usize>>,
}

impl Faults {
    pub fn add(&self, fault: Fault) {
        self.pending.lock().unwrap().push(fault);
    }

    pub fn injected(&self) -> usize {
        *self.injected.lock().unwrap()
    }

    fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut pending = self.pending.lock().unwrap();
        let fault = pending
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.contains(&f.path))?;
        fault.times -= 1;
        *self.injected.lock().unwrap() += 1;
        Some(fault.clone())
    }
}

#[derive(Clone)]
pub struct FaultLayer(pub Faults);

impl<S> Layer<S> for FaultLayer {
    type Service = FaultService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            faults: self.0.clone(),
        }
    }
}

pub struct FaultService<S> {
    inner: S,
    faults: Faults,
}

impl<S> Service<http::Request<Body>> for FaultService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Box<DynBody>>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Box<DynBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // A fault models the real write failing: the server-side dry run veer sends before it
        // (its all-or-nothing gate) goes through, as it would when the failure is a race or
        // an outage that starts between the two.
        let dry_run = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("dryRun=All"));
        if !dry_run
            && let Some(f) = self
                .faults
                .take(request.method().as_str(), request.uri().path())
        {
            let status = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "code": f.code, "reason": f.reason, "message": f.message,
            });
            let body: Box<DynBody> = Box::new(
                Full::new(Bytes::from(status.to_string()))
                    .map_err(|never| -> BoxError { match never {} }),
            );
            let response = http::Response::builder()
                .status(f.code)
                .header("content-type", "application/json")
                .body(body)
                .expect("a valid response");
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// A kube client for `cluster` with `faults` in front of it.
pub fn client(cluster: &RunningCluster, faults: &Faults) -> kube::Client {
    let url: http::Uri = cluster.url().parse().expect("the cluster URL parses");
    let builder = ClientBuilder::try_from(kube::Config::new(url)).expect("a client builder");
    builder.with_layer(&FaultLayer(faults.clone())).build()
}
