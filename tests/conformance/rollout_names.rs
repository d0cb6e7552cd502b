//! The rollout ConfigMaps' names: one per rollout (`veer-rollout-NS.NAME`), where older veers
//! wrote `veer-rollout-NS-NAME`, a name two rollouts could share (`a-b/c` and `a/b-c`). A
//! state an older veer wrote is read where it is by the CLI, and moved by the driver's load:
//! written under the new name with its pending command, then the old ConfigMap deleted; where
//! both names hold a state, the new one wins.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;
use veer::cluster::Cluster;
use veer::controller::rollouts::{self, RolloutDriver, RolloutOptions};
use veer::controller::{Controller, ControllerOptions};
use veer::ids::RolloutId;
use veer::manifest::rollout_policy::RolloutPolicySpec;
use veer::metrics::Metrics;
use veer::rollout::detect::RouteRef;
use veer::rollout::{Command, DestinationId, RolloutState, TrafficSplit};
use veer::sync::SyncOptions;
use veer::sync::state::StateLocation;
use veer::sync::store::{OwnConfigMap, write};

use crate::support::backend::TestCluster;

fn id(namespace: &str, name: &str) -> RolloutId {
    RolloutId {
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// A queued rollout of `revision` from v1 to v2, as the state machine starts one.
fn state(revision: &str) -> RolloutState {
    let split = |v1: u32, v2: u32| -> TrafficSplit {
        [
            (DestinationId::new("reviews", Some("v1")), v1),
            (DestinationId::new("reviews", Some("v2")), v2),
        ]
        .into_iter()
        .collect()
    };
    let policy: RolloutPolicySpec =
        serde_saphyr::from_str("interval: 1m\nthreshold: 2\nstepWeights: [10, 50]\n")
            .expect("a policy");
    RolloutState::new(
        revision,
        RouteRef {
            index: 0,
            name: Some("primary".into()),
        },
        &split(100, 0),
        &split(0, 100),
        &policy,
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    )
}

/// `id`'s state written under `name`, as veer writes its rollout ConfigMaps.
async fn put(cluster: &TestCluster, ns: &str, name: &str, id: &RolloutId, state: &RolloutState) {
    let mut labels = serde_json::Map::new();
    labels.insert("veer.io/rollout".into(), json!("true"));
    let cm = OwnConfigMap {
        namespace: ns,
        name,
        labels,
        data: json!({
            "namespace": id.namespace,
            "name": id.name,
            "policy": "canary",
            "state.json": state.encode(),
        }),
        binary_data: json!({}),
    };
    write(&cluster.client(), &cm)
        .await
        .expect("a rollout ConfigMap written");
}

/// The rollout ConfigMaps of `ns`, by name.
async fn names(cluster: &TestCluster, ns: &str) -> Vec<String> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    let mut names: Vec<String> = api
        .list(&kube::api::ListParams::default().labels("veer.io/rollout=true"))
        .await
        .expect("list the rollout ConfigMaps")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    names.sort();
    names
}

/// A veer starting on `ns` as its state namespace, up to reading the rollout states.
async fn load(cluster: &TestCluster, ns: &str) -> Controller {
    let driver = RolloutDriver::new(
        RolloutOptions {
            state_namespace: ns.into(),
            max_concurrent: 0,
            concurrency: RolloutOptions::DEFAULT_CONCURRENCY,
            policies: Vec::new(),
        },
        Arc::new(Metrics::new()),
    )
    .expect("the rollout driver");
    let location = StateLocation {
        namespace: ns.into(),
        name: "veer-state".into(),
    };
    let options = ControllerOptions {
        source_url: "file://mesh".into(),
        prune: true,
        sync: SyncOptions::default(),
    };
    let mut controller = Controller::start(Cluster::new(cluster.client()), location, options)
        .await
        .expect("the controller starts")
        .with_rollouts(driver);
    controller
        .load_rollouts()
        .await
        .expect("the rollout states are read");
    controller
}

pub async fn an_older_veers_state_moves_to_its_own_name(cluster: &TestCluster) {
    let ns = cluster.namespace("rollout-names");
    cluster.delete_namespace(&ns).await;
    let b = cluster.backend.name();
    let client = cluster.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let (reviews, ratings) = (id("shop", "reviews"), id("shop", "ratings"));
    let (moved, newer, older) = (state("c0ffee01"), state("c0ffee03"), state("c0ffee02"));
    put(cluster, &ns, "veer-rollout-shop-reviews", &reviews, &moved).await;
    // Both names hold a state of `ratings`: the one under the new name was written since.
    put(cluster, &ns, "veer-rollout-shop-ratings", &ratings, &older).await;
    put(cluster, &ns, "veer-rollout-shop.ratings", &ratings, &newer).await;

    // Before the move, the CLI reads the state where an older veer left it, lists each
    // rollout once, and writes a command there.
    let (read, _, policy) = rollouts::read_rollout(&client, &ns, &reviews)
        .await
        .expect("read")
        .expect("the older veer's state is found");
    assert_eq!((read, policy.as_str()), (moved.clone(), "canary"), "[{b}]");
    let listed = rollouts::list_rollouts(&client, &ns).await.expect("list");
    assert_eq!(
        listed,
        vec![
            (ratings.clone(), newer.clone(), "canary".to_string()),
            (reviews.clone(), moved.clone(), "canary".to_string()),
        ],
        "[{b}]"
    );
    let sent = rollouts::send_command(&client, &ns, &reviews, Command::Pause)
        .await
        .expect("send")
        .expect("the rollout is found");
    let text = serde_json::to_string(&sent).expect("a command");

    let controller = load(cluster, &ns).await;

    assert_eq!(
        names(cluster, &ns).await,
        ["veer-rollout-shop.ratings", "veer-rollout-shop.reviews"],
        "[{b}] the older veer's names are gone"
    );
    let stored = api
        .get("veer-rollout-shop.reviews")
        .await
        .expect("the moved ConfigMap");
    let data = stored.data.clone().unwrap_or_default();
    let labels = stored.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        (
            data.get("namespace").map(String::as_str),
            data.get("name").map(String::as_str),
            data.get("policy").map(String::as_str),
            data.get("command"),
            labels.get("veer.io/command").map(String::as_str),
        ),
        (
            Some("shop"),
            Some("reviews"),
            Some("canary"),
            Some(&text),
            Some("pending")
        ),
        "[{b}] the pending command moved with the state"
    );
    let state_of = |id: &RolloutId| {
        controller
            .rollouts()
            .and_then(|r| r.states().find(|(i, _)| *i == id).map(|(_, s)| s.clone()))
    };
    assert_eq!(state_of(&reviews), Some(moved.clone()), "[{b}]");
    assert_eq!(
        state_of(&ratings),
        Some(newer.clone()),
        "[{b}] the new name wins"
    );
    let (read, command, _) = rollouts::read_rollout(&client, &ns, &reviews)
        .await
        .expect("read")
        .expect("the moved state");
    assert_eq!((read, command), (moved, Some(sent)), "[{b}]");
    let (read, _, _) = rollouts::read_rollout(&client, &ns, &ratings)
        .await
        .expect("read")
        .expect("the newer state");
    assert_eq!(read, newer, "[{b}]");
    // Once moved, the command is cleared where the driver clears it.
    let cleared = rollouts::clear_command(&client, &ns, &reviews, &text)
        .await
        .expect("clear");
    assert!(cleared, "[{b}]");
    cluster.delete_namespace(&ns).await;
}

pub async fn two_ids_a_dash_apart_keep_two_states(cluster: &TestCluster) {
    let ns = cluster.namespace("rollout-collide");
    cluster.delete_namespace(&ns).await;
    let b = cluster.backend.name();
    let client = cluster.client();
    let (left, right) = (id("a-b", "c"), id("a", "b-c"));
    let (left_state, right_state) = (state("aaaa0001"), state("bbbb0002"));
    // An older veer kept both under one name, the last write winning; each is moved to a
    // name of its own in turn.
    put(cluster, &ns, "veer-rollout-a-b-c", &left, &left_state).await;
    load(cluster, &ns).await;
    put(cluster, &ns, "veer-rollout-a-b-c", &right, &right_state).await;
    load(cluster, &ns).await;
    assert_eq!(
        names(cluster, &ns).await,
        ["veer-rollout-a-b.c", "veer-rollout-a.b-c"],
        "[{b}]"
    );
    for (id, state) in [(&left, &left_state), (&right, &right_state)] {
        let (read, _, _) = rollouts::read_rollout(&client, &ns, id)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("[{b}] no state of {id}"));
        assert_eq!(&read, state, "[{b}] {id}");
    }
    // Each load finds both where they are now.
    let controller = load(cluster, &ns).await;
    let loaded: Vec<RolloutId> = controller
        .rollouts()
        .map(|r| r.states().map(|(id, _)| id.clone()).collect())
        .unwrap_or_default();
    assert_eq!(loaded, vec![right, left], "[{b}]");
    cluster.delete_namespace(&ns).await;
}
