//! Server-side printing: Tables for lists, single objects and Istio kinds, and Table watches
//! that send the columns once.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::helpers::{api_error, config_map, virtual_service_api};
use crate::support;

const TABLE_V1: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A GET with an Accept header, as kubectl sends for tables.
fn get_as(path: &str, accept: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path)
        .header("Accept", accept)
        .body(Vec::new())
        .unwrap()
}

fn cell_column(table: &Value, column: usize) -> Vec<Value> {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][column].clone())
        .collect()
}

#[tokio::test]
async fn tables_are_served_when_asked_for() {
    let cluster = support::start().await;
    let client = support::client(&cluster);
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(
        &PostParams::default(),
        &config_map("a", json!({"app": "web"})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    let path = "/api/v1/namespaces/default/configmaps";

    // kubectl's Accept: a meta.k8s.io/v1 Table with PartialObjectMetadata rows.
    let accept =
        format!("{TABLE_V1},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
    let table: Value = client.request(get_as(path, &accept)).await.unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        table["metadata"]["resourceVersion"],
        cluster.resource_version().to_string()
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Name", "Data", "Age"]);
    assert_eq!(cell_column(&table, 0), [json!("a"), json!("b")]);
    assert_eq!(cell_column(&table, 1), [json!(1), json!(1)]);
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["metadata"]["labels"]["app"], "web");
    assert!(object.get("data").is_none());

    // v1beta1 when that is the only Table asked for; whole objects or none by includeObject.
    let beta: Value = client
        .request(get_as(
            &format!("{path}?includeObject=Object"),
            "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        ))
        .await
        .unwrap();
    assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(beta["rows"][1]["object"]["kind"], "ConfigMap");
    assert_eq!(beta["rows"][1]["object"]["data"]["k"], "v");
    let bare: Value = client
        .request(get_as(&format!("{path}?includeObject=None"), TABLE_V1))
        .await
        .unwrap();
    assert!(bare["rows"][0].get("object").is_none());
    let refused = client
        .request::<Value>(get_as(
            &format!("{path}?includeObject=Everything"),
            TABLE_V1,
        ))
        .await;
    assert_eq!(api_error(refused).0, 400);

    // A single object: a one-row Table at the object's version.
    let one: Value = client
        .request(get_as(&format!("{path}/a"), TABLE_V1))
        .await
        .unwrap();
    let a = cms.get("a").await.unwrap();
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["metadata"]["resourceVersion"],
        a.metadata.resource_version.unwrap()
    );

    // Anyone else still gets the objects.
    let plain: Value = client
        .request(get_as(path, "application/json"))
        .await
        .unwrap();
    assert_eq!(plain["kind"], "ConfigMapList");

    // Istio kinds take their CRD's columns, whatever version is asked for.
    let vs: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": "reviews"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}
    }))
    .unwrap();
    virtual_service_api(client.clone(), "v1alpha3")
        .create(&PostParams::default(), &vs)
        .await
        .unwrap();
    let vs_table: Value = client
        .request(get_as(
            "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices?includeObject=Object",
            TABLE_V1,
        ))
        .await
        .unwrap();
    assert_eq!(vs_table["columnDefinitions"][2]["name"], "Hosts");
    let cells = vs_table["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[..3],
        [json!("reviews"), Value::Null, json!("[\"reviews\"]")]
    );
    assert!(
        cells[3].as_str().unwrap().ends_with('s'),
        "an age: {cells:?}"
    );
    assert_eq!(
        vs_table["rows"][0]["object"]["apiVersion"],
        "networking.istio.io/v1alpha3"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_table_watch_sends_the_columns_once() {
    use futures::AsyncBufReadExt;

    let cluster = support::start().await;
    let client = support::client(&cluster);
    let from = cluster.resource_version();
    let lines = client
        .request_stream(get_as(
            &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from}"),
            TABLE_V1,
        ))
        .await
        .unwrap();
    let mut lines = lines.lines();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &config_map("w", json!({})))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k2": "v2"}})),
    )
    .await
    .unwrap();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch is open")
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let added = next().await;
    assert_eq!(added["type"], "ADDED");
    assert_eq!(added["object"]["kind"], "Table");
    assert_eq!(
        added["object"]["columnDefinitions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        added["object"]["rows"][0]["cells"].as_array().unwrap()[..2],
        [json!("w"), json!(1)]
    );
    let modified = next().await;
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["columnDefinitions"], json!([]));
    assert_eq!(
        modified["object"]["rows"][0]["cells"].as_array().unwrap()[..2],
        [json!("w"), json!(2)]
    );
    assert_eq!(
        modified["object"]["rows"][0]["object"]["kind"],
        "PartialObjectMetadata"
    );
    cluster.shutdown().await.unwrap();
}
