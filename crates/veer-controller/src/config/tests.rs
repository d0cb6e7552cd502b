//! Table tests of [`resolve`](super::resolve): defaults, file, flags over file, and the error
//! messages (key, origin, what is allowed) of every section.

use std::time::Duration;

use crate::notify::{EventKind, Filter, NotifyConfig, Severity, SlackTarget};
use crate::source::{Auth, GitRef, Schedule};

use super::*;

fn file(text: &str) -> Result<Config, ConfigError> {
    resolve(Some(("veer.yaml", text)), &Overrides::default())
}

#[test]
fn defaults_without_file_or_flags() {
    let c = resolve(None, &Overrides::default()).unwrap();
    assert_eq!(c.source, None);
    assert_eq!(c.read.default_namespace, "default");
    assert_eq!(c.log_format, LogFormat::Human);
}

#[test]
fn full_file_is_read() {
    let c = file(
        "source:\n  url: https://example.com/mesh.git\n  ref: tag:v1.2\n  path: clusters/prod/\n  schedule: \"0 */5 * * * *\"\n  timeout: 20s\n  auth:\n    token:\n      {env: GIT_TOKEN}\nmanifests:\n  defaultNamespace: shop\nlog:\n  format: json\n",
    )
    .unwrap();
    let s = c.source.unwrap();
    assert_eq!(s.spec.reference, GitRef::Tag("v1.2".into()));
    assert_eq!(s.spec.sub_path.as_deref(), Some("clusters/prod"));
    assert!(matches!(s.schedule, Schedule::Cron(_)));
    assert_eq!(s.timeout, Duration::from_secs(20));
    assert!(matches!(s.spec.auth, Auth::Token(_)));
    assert_eq!(c.read.default_namespace, "shop");
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn flags_override_file() {
    let o = Overrides {
        repo: Some("/tmp/repo".into()),
        interval: Some("2m".into()),
        ..Overrides::default()
    };
    let c = resolve(
        Some((
            "veer.yaml",
            "source:\n  url: https://x/y.git\n  interval: 10s\n",
        )),
        &o,
    )
    .unwrap();
    let s = c.source.unwrap();
    assert_eq!(s.spec.url.text, "/tmp/repo");
    assert_eq!(s.schedule, Schedule::Interval(Duration::from_secs(120)));
}

#[test]
fn errors_name_key_origin_and_allowed_values() {
    let cases = [
        (
            "source:\n  url: x\n  interval: 10\n",
            "veer.yaml:3: `source.interval`",
        ),
        (
            "source:\n  url: x\n  schedule: \"*/5 * * * *\"\n",
            "seconds field",
        ),
        (
            "source:\n  url: x\n  interval: 1s\n  schedule: \"0 * * * * *\"\n",
            "not both",
        ),
        ("source:\n  url: x\n  path: ../up\n", "`source.path`"),
        ("source:\n  url: x\n  ref: commit:abc\n", "40-digit"),
        (
            "source:\n  url: https://h/r.git\n  auth:\n    ssh: {privateKey: /k, knownHosts: /h}\n",
            "`source.auth`",
        ),
        (
            "source:\n  url: x\n  auth:\n    token: {token: {vault: x}}\n",
            "veer.yaml:4",
        ),
        ("sauce:\n  url: x\n", "veer.yaml:1"),
        ("log:\n  format: xml\n", "veer.yaml:2"),
        (
            "manifests:\n  defaultNamespace: Not_Valid\n",
            "defaultNamespace",
        ),
    ];
    for (text, expected) in cases {
        let err = file(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{text:?} gave {err:?}, wanted {expected:?}"
        );
    }
}

#[test]
fn cluster_and_sync_table() {
    struct Case {
        file: &'static str,
        overrides: Overrides,
        want_cluster: (Option<&'static str>, Option<&'static str>, &'static str),
        want_sync: (bool, bool, bool),
    }
    let cases = [
        Case {
            file: "",
            overrides: Overrides::default(),
            want_cluster: (None, None, "veer"),
            want_sync: (true, true, false),
        },
        Case {
            file: "cluster:\n  kubeconfig: /k\n  context: prod\n  stateNamespace: gitops\nsync:\n  prune: false\n  selfHeal: false\n  forceConflicts: true\n",
            overrides: Overrides::default(),
            want_cluster: (Some("/k"), Some("prod"), "gitops"),
            want_sync: (false, false, true),
        },
        Case {
            file: "cluster:\n  kubeconfig: /k\n  context: prod\n  stateNamespace: gitops\nsync:\n  prune: false\n  selfHeal: false\n",
            overrides: Overrides {
                kubeconfig: Some("/flag".into()),
                context: Some("dev".into()),
                state_namespace: Some("other".into()),
                prune: Some(true),
                self_heal: Some(true),
                force_conflicts: Some(true),
                ..Overrides::default()
            },
            want_cluster: (Some("/flag"), Some("dev"), "other"),
            want_sync: (true, true, true),
        },
    ];
    for case in cases {
        let c = resolve(Some(("veer.yaml", case.file)), &case.overrides).unwrap();
        assert_eq!(
            (
                c.cluster.kubeconfig.as_deref().and_then(|p| p.to_str()),
                c.cluster.context.as_deref(),
                c.cluster.state_namespace.as_str(),
            ),
            case.want_cluster,
            "{:?}",
            case.file
        );
        assert_eq!(c.cluster.state_name, "veer-state");
        assert_eq!(
            (c.sync.prune, c.sync.self_heal, c.sync.force_conflicts),
            case.want_sync,
            "{:?}",
            case.file
        );
    }
    let err = resolve(
        None,
        &Overrides {
            state_namespace: Some("Bad_NS".into()),
            ..Overrides::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--state-namespace: `cluster.stateNamespace`"),
        "{err}"
    );
    let err = file("sync:\n  prune: maybe\n").unwrap_err().to_string();
    assert!(err.contains("veer.yaml:2"), "{err}");
    let err = file("cluster:\n  stateName: \"-x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster.stateName"), "{err}");
}

#[test]
fn resync_interval_from_file_or_flag() {
    assert_eq!(
        file("").unwrap().sync.resync_interval,
        Duration::from_secs(600)
    );
    let c = file("sync:\n  resyncInterval: 30m\n").unwrap();
    assert_eq!(c.sync.resync_interval, Duration::from_secs(1800));
    let flag = Overrides {
        resync_interval: Some("90s".into()),
        ..Overrides::default()
    };
    let c = resolve(Some(("veer.yaml", "sync:\n  resyncInterval: 30m\n")), &flag).unwrap();
    assert_eq!(c.sync.resync_interval, Duration::from_secs(90));
    let err = file("sync:\n  resyncInterval: 0s\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("veer.yaml:2: `sync.resyncInterval`: must be longer than zero"),
        "{err}"
    );
    let bad = Overrides {
        resync_interval: Some("soon".into()),
        ..Overrides::default()
    };
    let err = resolve(None, &bad).unwrap_err().to_string();
    assert!(
        err.starts_with("--resync-interval: `sync.resyncInterval`"),
        "{err}"
    );
}

#[test]
fn notify_section_is_read() {
    let c = file(concat!(
        "notify:\n",
        "  queueSize: 32\n",
        "  maxAttempts: 3\n",
        "  dedupWindow: 10m\n",
        "  timeout: 5s\n",
        "  slack:\n",
        "    botToken: {file: /var/run/secrets/slack/token}\n",
        "    channel: \"#mesh\"\n",
        "    username: veer\n",
        "    apiUrl: http://127.0.0.1:9/api\n",
        "    events: [rolled-back, step-advanced]\n",
        "    minSeverity: warning\n",
        "    commitUrlTemplate: https://github.com/org/repo/commit/{commit}\n",
        "  webhooks:\n",
        "    - url: https://hooks.example.com/veer\n",
        "      secret: {env: VEER_HOOK_KEY}\n",
        "    - url: http://alerts.local/in\n",
        "      minSeverity: error\n",
    ))
    .unwrap();
    let n = c.notify;
    assert_eq!(n.queue_size, 32);
    assert_eq!(n.retry.max_attempts, 3);
    assert_eq!(n.dedup_window, Duration::from_secs(600));
    assert_eq!(n.timeout, Duration::from_secs(5));
    let slack = n.slack.unwrap();
    assert_eq!(
        slack.target,
        SlackTarget::Bot {
            token: crate::source::SecretSource::File("/var/run/secrets/slack/token".into()),
            api_url: "http://127.0.0.1:9/api/".into(),
        }
    );
    assert_eq!(slack.channel.as_deref(), Some("#mesh"));
    assert_eq!(slack.username.as_deref(), Some("veer"));
    assert_eq!(
        slack.filter.events.iter().copied().collect::<Vec<_>>(),
        vec![EventKind::StepAdvanced, EventKind::RolledBack]
    );
    assert_eq!(slack.filter.min_severity, Severity::Warning);
    assert_eq!(n.webhooks.len(), 2);
    assert_eq!(n.webhooks[0].url.as_str(), "https://hooks.example.com/veer");
    assert_eq!(
        n.webhooks[0].secret,
        Some(crate::source::SecretSource::Env("VEER_HOOK_KEY".into()))
    );
    assert_eq!(n.webhooks[0].filter, Filter::default());
    assert_eq!(n.webhooks[1].secret, None);
    assert_eq!(n.webhooks[1].filter.min_severity, Severity::Error);
}

#[test]
fn an_inline_secret_is_refused_without_echoing_it() {
    let err =
        file("notify:\n  slack:\n    webhookUrl: https://hooks.slack.com/services/T1/B1/SeCrEt\n")
            .unwrap_err()
            .to_string();
    assert!(!err.contains("SeCrEt"), "{err}");
    assert!(
        err.starts_with("veer.yaml:3: `notify.slack.webhookUrl`: secrets are not written"),
        "{err}"
    );
    let err = file("notify:\n  webhooks:\n    - url: http://x/\n      secret: hunter2hunter2\n")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.contains("veer.yaml:4: `notify.webhooks[0].secret`"),
        "{err}"
    );
}

#[test]
fn analysis_and_rollouts_table() {
    use crate::analysis::PrometheusAuth;
    /// Prometheus URL and timeout (seconds), and maxConcurrent; or the failing key.
    type Want = Result<(Option<(&'static str, u64)>, usize), &'static str>;
    struct Case {
        file: &'static str,
        want: Want,
    }
    let cases = [
        Case {
            file: "",
            want: Ok((None, 0)),
        },
        Case {
            file: "analysis:\n  prometheus:\n    url: http://prom:9090\n",
            want: Ok((Some(("http://prom:9090", 10)), 0)),
        },
        Case {
            file: "analysis:\n  prometheus:\n    url: https://p.example/prom/\n    timeout: 3s\nrollouts:\n  maxConcurrent: 2\n",
            want: Ok((Some(("https://p.example/prom/", 3)), 2)),
        },
        Case {
            file: "analysis:\n  prometheus:\n    url: prom:9090\n",
            want: Err("analysis.prometheus.url"),
        },
        Case {
            file: "analysis:\n  prometheus:\n    url: http://prom\n    timeout: 0s\n",
            want: Err("analysis.prometheus.timeout"),
        },
        Case {
            file: "rollouts:\n  maxConcurent: 2\n",
            want: Err("(file)"),
        },
    ];
    for case in cases {
        let got = file(case.file);
        match (&case.want, got) {
            (Ok((prom, max)), Ok(c)) => {
                assert_eq!(
                    c.analysis
                        .prometheus
                        .as_ref()
                        .map(|p| (p.url.as_str(), p.timeout.as_secs())),
                    *prom,
                    "{}",
                    case.file
                );
                assert_eq!(c.rollouts.max_concurrent, *max, "{}", case.file);
            }
            (Err(key), Err(e)) => assert_eq!(e.key, *key, "{}", case.file),
            (want, got) => panic!("{}: wanted {want:?}, got {got:?}", case.file),
        }
    }
    let c = file(
        "analysis:\n  prometheus:\n    url: http://prom\n    auth:\n      bearer: {env: PROM_TOKEN}\n",
    );
    assert!(matches!(
        c.map(|c| c.analysis.prometheus.map(|p| p.auth)),
        Ok(Some(PrometheusAuth::Bearer(_)))
    ));
}

#[test]
fn notify_defaults() {
    let c = resolve(None, &Overrides::default()).unwrap();
    assert_eq!(c.notify, NotifyConfig::default());
    let c = file("notify:\n  slack:\n    webhookUrl: {env: SLACK_URL}\n").unwrap();
    let slack = c.notify.slack.unwrap();
    assert_eq!(
        slack.target,
        SlackTarget::Webhook {
            url: crate::source::SecretSource::Env("SLACK_URL".into())
        }
    );
    assert_eq!(slack.filter, Filter::default());
    assert!(!slack.filter.events.contains(&EventKind::StepAdvanced));
    assert_eq!(c.notify.queue_size, crate::notify::DEFAULT_QUEUE_SIZE);
}

#[test]
fn notify_errors_name_key_origin_and_allowed_values() {
    let cases = [
        (
            "notify:\n  slack:\n    channel: x\n",
            "exactly one of `webhookUrl`",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    botToken: {env: B}\n",
            "exactly one of",
        ),
        (
            "notify:\n  slack:\n    botToken: {env: B}\n",
            "`notify.slack.channel`: is required",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: https://hooks.slack.com/services/x\n",
            "veer.yaml:3",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    events: [rolled-back, rollback]\n",
            "veer.yaml:4: `notify.slack.events`: `rollback` is not an event; use one of revision-applied,",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    events: []\n",
            "list at least one event",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    minSeverity: critical\n",
            "veer.yaml:4",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    commitUrlTemplate: https://x/commit\n",
            "veer.yaml:4: `notify.slack.commitUrlTemplate`: must contain `{commit}`",
        ),
        (
            "notify:\n  slack:\n    webhookUrl: {env: A}\n    apiUrl: http://x/\n",
            "only applies with `botToken`",
        ),
        (
            "notify:\n  webhooks:\n    - url: ftp://x/y\n",
            "veer.yaml:3: `notify.webhooks[0].url`: `ftp://x/y` must be an http",
        ),
        (
            "notify:\n  webhooks:\n    - url: not a url\n",
            "is not a URL",
        ),
        (
            "notify:\n  queueSize: 0\n",
            "`notify.queueSize`: must be at least 1",
        ),
        ("notify:\n  maxAttempts: 0\n", "`notify.maxAttempts`"),
        (
            "notify:\n  dedupWindow: 0s\n",
            "veer.yaml:2: `notify.dedupWindow`",
        ),
        ("notify:\n  timeout: soon\n", "`notify.timeout`"),
        ("notify:\n  email: {}\n", "veer.yaml:2"),
    ];
    for (text, expected) in cases {
        let err = file(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{text:?} gave {err:?}, wanted {expected:?}"
        );
    }
}

#[test]
fn server_table() {
    struct Case {
        file: &'static str,
        flag: Option<&'static str>,
        want: Result<(&'static str, Option<crate::source::SecretSource>), &'static str>,
    }
    let env = |n: &str| Some(crate::source::SecretSource::Env(n.into()));
    let cases = [
        Case {
            file: "",
            flag: None,
            want: Ok(("127.0.0.1:8080", None)),
        },
        Case {
            file: "server:\n  listen: 0.0.0.0:9090\n  webhookSecret: {env: HOOK_KEY}\n",
            flag: None,
            want: Ok(("0.0.0.0:9090", env("HOOK_KEY"))),
        },
        Case {
            file: "server:\n  webhookSecret: {file: /run/secrets/hook}\n",
            flag: None,
            want: Ok((
                "127.0.0.1:8080",
                Some(crate::source::SecretSource::File(
                    "/run/secrets/hook".into(),
                )),
            )),
        },
        Case {
            file: "server:\n  listen: 0.0.0.0:9090\n",
            flag: Some("[::1]:7000"),
            want: Ok(("[::1]:7000", None)),
        },
        Case {
            file: "server:\n  listen: localhost\n",
            flag: None,
            want: Err("veer.yaml:2: `server.listen`: `localhost` is not an address"),
        },
        Case {
            file: "",
            flag: Some("8080"),
            want: Err("--listen: `server.listen`: `8080` is not an address"),
        },
        Case {
            file: "server:\n  webhookSecret: hunter2hunter2\n",
            flag: None,
            want: Err("veer.yaml:2: `server.webhookSecret`: secrets are not written"),
        },
        Case {
            file: "server:\n  port: 80\n",
            flag: None,
            want: Err("veer.yaml:2"),
        },
    ];
    for case in cases {
        let overrides = Overrides {
            listen: case.flag.map(str::to_string),
            ..Overrides::default()
        };
        let got = resolve(Some(("veer.yaml", case.file)), &overrides);
        match (got, case.want) {
            (Ok(c), Ok((listen, secret))) => {
                assert_eq!(c.server.listen.to_string(), listen, "{:?}", case.file);
                assert_eq!(c.server.webhook_secret, secret, "{:?}", case.file);
            }
            (Err(e), Err(want)) => {
                let e = e.to_string();
                assert!(
                    e.contains(want),
                    "{:?} gave {e:?}, wanted {want:?}",
                    case.file
                );
                assert!(!e.contains("hunter2"), "{e}");
            }
            (got, want) => panic!("{:?}: got {got:?}, want {want:?}", case.file),
        }
    }
}

#[test]
fn server_limits_table() {
    let server =
        |text: &str| resolve(Some(("veer.yaml", text)), &Overrides::default()).map(|c| c.server);
    let defaults = server("").unwrap();
    assert_eq!(
        (
            defaults.max_connections,
            defaults.header_read_timeout,
            defaults.request_timeout,
            defaults.not_ready_after_api_outage
        ),
        (
            512,
            Duration::from_secs(10),
            Duration::from_secs(30),
            Duration::from_secs(60)
        )
    );
    let set = server(
        "server:\n  maxConnections: 64\n  headerReadTimeout: 2s\n  requestTimeout: 1m\n  notReadyAfterApiOutage: 1m30s\n",
    )
    .unwrap();
    assert_eq!(set.max_connections, 64);
    assert_eq!(set.header_read_timeout, Duration::from_secs(2));
    assert_eq!(set.request_timeout, Duration::from_secs(60));
    assert_eq!(set.not_ready_after_api_outage, Duration::from_secs(90));
    let cases = [
        (
            "server:\n  maxConnections: 0\n",
            "veer.yaml:2: `server.maxConnections`: must be at least 1",
        ),
        ("server:\n  maxConnections: -3\n", "veer.yaml:2"),
        (
            "server:\n  headerReadTimeout: 0s\n",
            "veer.yaml:2: `server.headerReadTimeout`: must be longer than zero",
        ),
        (
            "server:\n  listen: 127.0.0.1:1\n  requestTimeout: 30\n",
            "veer.yaml:3: `server.requestTimeout`: `30` needs a unit",
        ),
        (
            "server:\n  notReadyAfterApiOutage: soon\n",
            "veer.yaml:2: `server.notReadyAfterApiOutage`",
        ),
    ];
    for (text, want) in cases {
        let err = server(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?} gave {err:?}, wanted {want:?}");
    }
}

#[test]
fn ref_table() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(GitRef::parse("main"), Ok(GitRef::Branch("main".into())));
    assert_eq!(
        GitRef::parse("branch:rel/1"),
        Ok(GitRef::Branch("rel/1".into()))
    );
    assert_eq!(GitRef::parse("tag:v1"), Ok(GitRef::Tag("v1".into())));
    assert_eq!(GitRef::parse(sha), Ok(GitRef::Commit(sha.into())));
    assert!(GitRef::parse("pr:1").is_err());
    assert!(GitRef::parse("").is_err());
}
