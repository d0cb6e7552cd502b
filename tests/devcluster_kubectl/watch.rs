//! `kubectl get -w`: names, and table rows under a single header, as objects change.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

use crate::helpers::table_rows;
use crate::support;

#[tokio::test]
async fn get_watch_prints_changes() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let mut child = std::process::Command::new(support::kubectl())
        .env("KUBECONFIG", &config)
        .env("HOME", config.parent().unwrap())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait for the watch to be open before writing, so the event is live, not listed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.open_watches() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never opened a watch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "watched"}})).unwrap();
    Api::<ConfigMap>::default_namespaced(support::client(&cluster))
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("kubectl prints the new object within 10 s")
        .expect("kubectl is still running");
    assert_eq!(line, "configmap/watched");
    child.kill().unwrap();
    child.wait().unwrap();
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_watch_prints_rows_under_one_header() {
    let cluster = support::start().await;
    let (_dir, config) = support::kubeconfig(&cluster);
    let mut child = std::process::Command::new(support::kubectl())
        .env("KUBECONFIG", &config)
        .env("HOME", config.parent().unwrap())
        .args(["get", "configmaps", "-w"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster.open_watches() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never opened a watch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let configmaps = Api::<ConfigMap>::default_namespaced(support::client(&cluster));
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "watched"}, "data": {"a": "1"}}))
            .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("kubectl prints within 10 s")
            .expect("kubectl is still running")
    };
    let header = next_line().await;
    assert_eq!(table_rows(&header)[0], ["NAME", "DATA", "AGE"]);
    let added = table_rows(&next_line().await).remove(0);
    assert_eq!(added[..2], ["watched", "1"]);

    cm.data
        .get_or_insert_default()
        .insert("b".into(), "2".into());
    configmaps
        .replace("watched", &PostParams::default(), &cm)
        .await
        .unwrap();
    // The second event reuses the columns: a row, no second header.
    let modified = table_rows(&next_line().await).remove(0);
    assert_eq!(modified[..2], ["watched", "2"]);
    child.kill().unwrap();
    child.wait().unwrap();
    cluster.shutdown().await.unwrap();
}
