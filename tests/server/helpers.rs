//! What the server tests share: a server started on an ephemeral port with the tracked
//! repository and hook secret, plain GETs against it, and a GitHub-style push body.

use std::sync::Arc;

use tokio::sync::mpsc;

use veer::metrics::Metrics;
use veer::secret::SecretSource;
use veer::server::{
    Limits, Server, ServerState, StatusBoard, TrackedSource, Trigger, trigger_channel,
};
use veer::source::{GitRef, SourceSpec};

pub(crate) const SECRET: &str = "hook-s3cret";
pub(crate) const REPO: &str = "https://git.example.com/platform/mesh.git";
pub(crate) const COMMIT: &str = "4f9c2d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";

pub(crate) struct Running {
    pub(crate) server: Server,
    pub(crate) url: String,
    pub(crate) board: StatusBoard,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) triggers: mpsc::Receiver<Trigger>,
    pub(crate) client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start(with_secret: bool) -> Running {
    start_with(with_secret, Limits::default()).await
}

pub(crate) async fn start_with(with_secret: bool, limits: Limits) -> Running {
    veer::http_client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let (trigger, triggers) = trigger_channel();
    let board = StatusBoard::new();
    let metrics = Arc::new(Metrics::new());
    let source = SourceSpec::new(REPO, GitRef::Branch("main".into())).unwrap();
    board.set_source(TrackedSource::from(&source));
    let state = ServerState {
        metrics: metrics.clone(),
        board: board.clone(),
        trigger,
        webhook_secret: with_secret.then_some(SecretSource::File(secret_file)),
        source: Some(source),
    };
    let server = Server::start_with("127.0.0.1:0".parse().unwrap(), state, limits)
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr());
    Running {
        server,
        url,
        board,
        metrics,
        triggers,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

pub(crate) async fn get(r: &Running, path: &str) -> (u16, String, String) {
    let response = r
        .client
        .get(format!("{}{path}", r.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

pub(crate) fn push_body(repo: &str, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": reference,
        "before": "0".repeat(40),
        "after": COMMIT,
        "repository": {
            "full_name": "platform/mesh",
            "clone_url": repo,
            "html_url": repo.trim_end_matches(".git"),
        },
        "commits": [{"id": COMMIT, "message": "shift reviews to v2"}],
    }))
    .unwrap()
}
