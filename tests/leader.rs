//! Leader election against the embedded API server: one leader at a time; a standby takes
//! over when the leader crashes (its lease expires) or steps down (it releases the lease).

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::time::timeout;
use veer::leader::{LeaderConfig, LeaderElection};

fn config(identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: "default".into(),
        name: "veer-leader".into(),
        identity: identity.into(),
        duration: Duration::from_secs(2),
        grace: Duration::from_secs(1),
    }
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get("veer-leader")
        .await
        .ok()
        .and_then(|l| l.spec?.holder_identity)
}

/// Run an election on its own runtime in its own thread; dropping that runtime when told to
/// is a crash: no release, the lease is left to expire.
fn crashable_leader(url: String, identity: &'static str) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (acquired_tx, acquired_rx) = mpsc::channel();
    let (crash_tx, crash_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
            let mut election = LeaderElection::start(client, &config(identity))
                .await
                .unwrap();
            election.acquired().await.unwrap();
            acquired_tx.send(()).unwrap();
            // Keep the election alive (renewing) until told to crash.
            let _ = tokio::task::spawn_blocking(move || crash_rx.recv()).await;
            std::mem::forget(election);
        });
        // Dropping the runtime here cancels the lease task mid-flight, without a release.
        drop(runtime);
    });
    (acquired_rx, crash_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_standby_takes_over_when_it_crashes() {
    let cluster = support::devcluster::start().await;
    let client = support::devcluster::client(&cluster);

    let (acquired, crash) = crashable_leader(cluster.url().to_string(), "a");
    tokio::task::spawn_blocking(move || acquired.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("a becomes leader in time");

    let mut b = LeaderElection::start(client.clone(), &config("b"))
        .await
        .expect("b starts");
    // b stays a standby while a renews (longer than one lease duration).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!b.is_leader(), "b must not lead while a renews");
    assert_eq!(holder(&client).await.as_deref(), Some("a"));

    crash.send(()).unwrap();
    let crashed_at = Instant::now();
    timeout(Duration::from_secs(10), b.acquired())
        .await
        .expect("b takes over within seconds of a's crash")
        .expect("b's election runs");
    let took = crashed_at.elapsed();
    assert!(took < Duration::from_secs(8), "takeover took {took:?}");
    assert_eq!(holder(&client).await.as_deref(), Some("b"));

    // b steps down cleanly: a new candidate gets the lease without waiting for expiry.
    b.release().await;
    // Given up, not left to expire: nobody holds it now.
    assert_ne!(holder(&client).await.as_deref(), Some("b"), "b still holds");
    let mut c = LeaderElection::start(client.clone(), &config("c"))
        .await
        .expect("c starts");
    timeout(Duration::from_secs(5), c.acquired())
        .await
        .expect("c leads soon after b released")
        .expect("c's election runs");
    assert_eq!(holder(&client).await.as_deref(), Some("c"));
}
