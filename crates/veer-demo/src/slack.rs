//! The demo's Slack: a local HTTP server standing in for a Slack incoming webhook. veer posts
//! to it as it would to Slack; every message is handed to the demo (which prints it) and
//! answered `ok`, as Slack answers.

use std::net::SocketAddr;

use axum::body::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The path veer posts to (any path is accepted; this one is in the URL veer is given).
pub const PATH: &str = "/services/demo";

pub struct SlackReceiver {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SlackReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlackReceiver {
    /// Listen on a free loopback port; each JSON body received goes to `messages`.
    pub async fn start(messages: mpsc::UnboundedSender<Value>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(move |body: Bytes| {
            let messages = messages.clone();
            async move {
                // Not JSON: show it as text rather than lose it.
                let value = serde_json::from_slice(&body).unwrap_or_else(
                    |_| serde_json::json!({"text": String::from_utf8_lossy(&body)}),
                );
                let _ = messages.send(value);
                "ok"
            }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the demo's Slack receiver stopped");
            }
        });
        Ok(Self { addr, task })
    }

    /// The incoming-webhook URL to give veer.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }
}
