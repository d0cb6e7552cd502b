//! The controller a bench drives: state in `veer/veer-state`, pruning on, default sync.

use veer::cluster::Cluster;
use veer::controller::{Controller, ControllerOptions};
use veer::sync::SyncOptions;
use veer::sync::state::StateLocation;

pub async fn controller(client: kube::Client, source_url: &str) -> Controller {
    let location = StateLocation {
        namespace: "veer".into(),
        name: "veer-state".into(),
    };
    let options = ControllerOptions {
        source_url: source_url.into(),
        prune: true,
        sync: SyncOptions::default(),
    };
    Controller::start(Cluster::new(client), location, options)
        .await
        .expect("the controller reads its state")
}
