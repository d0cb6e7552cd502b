//! How the chart answers particular values: the ones that cannot work are refused, leader
//! election follows the replica count, and a config change rolls the pods.

use serde_json::{Value, json};

use crate::common::{
    Render, URL, check_config, check_pod, default_values, env_names, fixture, kind_names, one,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_cannot_work_are_refused_and_leader_election_follows_replicas() {
    let k = fixture().await;
    let err = k
        .render(&[])
        .await
        .err()
        .expect("no repository is an error");
    assert!(err.contains("config.source.url is required"), "{err}");

    let err = k
        .render(&[
            default_values(),
            json!({"replicaCount": 2, "leaderElection": {"enabled": false}}),
        ])
        .await
        .err()
        .expect("two writers are refused");
    assert!(err.contains("every replica would write"), "{err}");

    let err = k
        .render(&[
            default_values(),
            json!({"secrets": {"git": {"existingSecret": "g", "type": "basic"}}}),
        ])
        .await
        .err()
        .expect("basic auth needs a user name");
    assert!(err.contains("secrets.git.username is required"), "{err}");

    type Case = (Value, bool);
    let cases: [Case; 4] = [
        (json!({}), false),
        (json!({"replicaCount": 3}), true),
        (json!({"leaderElection": {"enabled": true}}), true),
        (
            json!({"replicaCount": 2, "leaderElection": {"enabled": true}}),
            true,
        ),
    ];
    for (values, elected) in cases {
        let r = k.render_ok(&[default_values(), values.clone()]).await;
        let (container, _) = check_pod(&r);
        assert_eq!(
            env_names(&container).contains(&"VEER_LEADER_ELECTION".to_string()),
            elected,
            "{values}"
        );
        assert_eq!(
            kind_names(&r).contains(&"Role veer-system/veer-leader-election".to_string()),
            elected,
            "{values}"
        );
    }

    // The ssh and token forms of git credentials resolve too.
    for (url, git) in [
        (URL, json!({"existingSecret": "g", "type": "token"})),
        (
            "ssh://git@git.example.com/org/mesh.git",
            json!({"existingSecret": "g", "type": "ssh", "sshPassphraseKey": "passphrase"}),
        ),
    ] {
        let r = k
            .render_ok(&[
                json!({"config": {"source": {"url": url}}}),
                json!({"secrets": {"git": git}}),
            ])
            .await;
        let (container, _) = check_pod(&r);
        check_config(&r, &container);
    }
}

/// A change to veer.yaml changes the pod template, so the pods restart and read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_the_pods() {
    let k = fixture().await;
    let checksum = |r: &Render| {
        one(r, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .clone()
    };
    let a = k.render_ok(&[default_values()]).await;
    let b = k
        .render_ok(&[
            default_values(),
            json!({"config": {"sync": {"prune": false}}}),
        ])
        .await;
    assert!(checksum(&a).as_str().is_some_and(|s| s.len() == 64));
    assert_ne!(checksum(&a), checksum(&b));
}
