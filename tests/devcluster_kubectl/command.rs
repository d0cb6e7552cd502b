//! The `veer dev-cluster` command itself: the kubeconfig it writes and the state it saves.

use std::time::Duration;

use crate::support;

#[tokio::test]
async fn the_dev_cluster_command_writes_a_kubeconfig_kubectl_uses() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: veer::cli::DevClusterArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    let state = dir.path().join("state.json");
    let cmd = Cmd::parse_from([
        "dev-cluster",
        "--port",
        "0",
        "--kubeconfig",
        config.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        veer::devcluster::run_until(&cmd.args, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !config.is_file() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no kubeconfig written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("server: http://127.0.0.1:"), "{text}");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept}\ndata: {a: b}\n";
    support::kubectl_ok(&config, &["apply", "--server-side", "-f", "-"], Some(cm)).await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(
        saved.contains("\"kept\""),
        "the state file holds the object"
    );
}
