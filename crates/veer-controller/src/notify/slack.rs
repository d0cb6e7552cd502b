//! Slack: the message (Block Kit blocks inside a coloured attachment, with a plain-text
//! `text` fallback for notifications and old clients), built purely by [`message`], and the
//! [`Slack`] notifier posting it to an incoming webhook or, with a bot token, through
//! `chat.postMessage`, keeping one thread per rollout.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::delivery::{post_json, scrub};
use super::event::{Event, Severity, commit_url};
use super::{DeliveryError, Notifier, SlackConfig, SlackTarget};
use crate::secret::SecretSource;

/// Slack's limit on a section's text.
const SECTION_LIMIT: usize = 3000;
/// Rollout threads remembered; the oldest is forgotten first (a later event of that rollout
/// then starts a new thread, which is harmless).
const MAX_THREADS: usize = 512;

/// How messages look, whichever way they are posted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Style {
    pub channel: Option<String>,
    pub username: Option<String>,
    /// e.g. `https://github.com/org/repo/commit/{commit}`.
    pub commit_url_template: Option<String>,
}

/// The attachment bar colour of a severity.
pub fn colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "#2eb886",
        Severity::Warning => "#daa038",
        Severity::Error => "#a30200",
    }
}

/// The Slack message for an event (without `thread_ts`). Pure.
pub fn message(event: &Event, style: &Style) -> Value {
    let title = event.title();
    let details = event.details();
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(&format!("*{}*", escape(&title)))},
    })];
    if !details.is_empty() {
        let text = details
            .iter()
            .map(|l| escape(l))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&text)},
        }));
    }
    let commit = event.commit();
    let short = commit.get(..12).unwrap_or(commit);
    let commit_ref = match &style.commit_url_template {
        Some(t) => format!("<{}|{}>", escape(&commit_url(t, commit)), escape(short)),
        None => format!("`{}`", escape(short)),
    };
    let mut context = vec![
        format!("*{}*", event.severity()),
        event.kind().as_str().to_string(),
        format!("commit {commit_ref}"),
    ];
    if let Some(rollout) = event.rollout() {
        context.push(format!("rollout {}", escape(rollout)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context.join(" · ")}],
    }));
    let fallback = event.plain_text();
    let mut msg = json!({
        "text": truncate(&title),
        "attachments": [{
            "color": colour(event.severity()),
            "fallback": truncate(&fallback),
            "blocks": blocks,
        }],
    });
    if let Some(channel) = &style.channel {
        msg["channel"] = json!(channel);
    }
    if let Some(username) = &style.username {
        msg["username"] = json!(username);
    }
    msg
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped; everything else is literal enough.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(SECTION_LIMIT - 1) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Parent message `ts` of each rollout's thread, keyed by (rollout, revision), bounded.
#[derive(Debug, Default)]
struct Threads {
    parents: HashMap<(String, String), String>,
    order: VecDeque<(String, String)>,
}

impl Threads {
    fn get(&self, key: &(String, String)) -> Option<String> {
        self.parents.get(key).cloned()
    }

    fn remember(&mut self, key: (String, String), ts: String) {
        if self.parents.insert(key.clone(), ts).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_THREADS {
            if let Some(old) = self.order.pop_front() {
                self.parents.remove(&old);
            }
        }
    }
}

/// The Slack notifier. Holds where the secrets are, never the secrets: they are read at each
/// delivery, so a rotated webhook URL or token is picked up.
#[derive(Debug)]
pub struct Slack {
    target: SlackTarget,
    style: Style,
    client: reqwest::Client,
    threads: Mutex<Threads>,
}

impl Slack {
    pub(crate) fn new(config: &SlackConfig, client: reqwest::Client) -> Self {
        Slack {
            target: config.target.clone(),
            style: Style {
                channel: config.channel.clone(),
                username: config.username.clone(),
                commit_url_template: config.commit_url_template.clone(),
            },
            client,
            threads: Mutex::new(Threads::default()),
        }
    }

    /// The thread book; a panic elsewhere while holding it leaves nothing half-written.
    fn threads(&self) -> std::sync::MutexGuard<'_, Threads> {
        self.threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn post_webhook(&self, url: &SecretSource, event: &Event) -> Result<(), DeliveryError> {
        let secret = read_secret(url, "webhookUrl")?;
        let parsed = reqwest::Url::parse(secret.expose()).map_err(|_| DeliveryError::Config {
            message: format!(
                "the Slack webhook URL read from {url} is not a URL; check notify.slack.webhookUrl"
            ),
        })?;
        let body = serde_json::to_vec(&message(event, &self.style)).map_err(|e| {
            DeliveryError::Config {
                message: format!("cannot encode the Slack message: {e}"),
            }
        })?;
        // A receiver or proxy may echo only part of the URL: scrub the path and its long
        // segments (Slack's tokens) too.
        let mut parts = vec![crate::secret::Secret::new(parsed.path())];
        parts.extend(
            parsed
                .path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 8)
                .map(crate::secret::Secret::new),
        );
        parts.retain(|p| p.expose().len() >= 8);
        let mut secrets = vec![&secret];
        secrets.extend(parts.iter());
        post_json(&self.client, parsed.clone(), &[], body, &secrets).await?;
        Ok(())
    }

    async fn post_bot(
        &self,
        token: &SecretSource,
        api_url: &str,
        event: &Event,
    ) -> Result<(), DeliveryError> {
        let secret = read_secret(token, "botToken")?;
        let endpoint = reqwest::Url::parse(api_url)
            .and_then(|base| base.join("chat.postMessage"))
            .map_err(|e| DeliveryError::Config {
                message: format!("the Slack API URL `{api_url}` is not usable: {e}"),
            })?;
        let thread_key = event
            .rollout()
            .map(|r| (r.to_string(), event.commit().to_string()));
        let parent = thread_key.as_ref().and_then(|key| self.threads().get(key));
        let mut msg = message(event, &self.style);
        if let Some(ts) = &parent {
            msg["thread_ts"] = json!(ts);
        }
        let body = serde_json::to_vec(&msg).map_err(|e| DeliveryError::Config {
            message: format!("cannot encode the Slack message: {e}"),
        })?;
        let auth = format!("Bearer {}", secret.expose());
        let answer = post_json(
            &self.client,
            endpoint,
            &[("Authorization", auth)],
            body,
            &[&secret],
        )
        .await?;
        // The Web API answers 200 with `ok: false` for its own errors.
        let reply: Value =
            serde_json::from_slice(&answer.body).map_err(|_| DeliveryError::Rejected {
                status: None,
                message: "Slack's answer to chat.postMessage is not JSON".to_string(),
            })?;
        if reply["ok"] != json!(true) {
            let code = reply["error"].as_str().unwrap_or("unknown_error");
            let code = scrub(code, &[&secret]);
            return Err(if code == "ratelimited" {
                DeliveryError::Status {
                    status: 429,
                    retry_after: None,
                    body: code,
                }
            } else {
                DeliveryError::Rejected {
                    status: None,
                    message: format!("chat.postMessage: {code}"),
                }
            });
        }
        if let (Some(key), None, Some(ts)) = (thread_key, parent, reply["ts"].as_str()) {
            self.threads().remember(key, ts.to_string());
        }
        Ok(())
    }
}

fn read_secret(source: &SecretSource, key: &str) -> Result<crate::secret::Secret, DeliveryError> {
    source.read().map_err(|e| DeliveryError::Config {
        message: format!("{e} (notify.slack.{key})"),
    })
}

impl Notifier for Slack {
    fn deliver<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            match &self.target {
                SlackTarget::Webhook { url } => self.post_webhook(url, event).await,
                SlackTarget::Bot { token, api_url } => self.post_bot(token, api_url, event).await,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::{CommitInfo, Problem};

    fn applied() -> Event {
        Event::RevisionApplied {
            revision: CommitInfo {
                commit: "0123456789abcdef0123".into(),
                author: "Ada <ada@example.com>".into(),
                summary: "Send 10% to <v2> & more".into(),
            },
            created: 1,
            updated: 2,
            pruned: 0,
        }
    }

    #[test]
    fn message_has_blocks_fallback_colour_and_overrides() {
        let style = Style {
            channel: Some("#mesh".into()),
            username: Some("veer".into()),
            commit_url_template: Some("https://github.com/org/repo/commit/{commit}".into()),
        };
        let m = message(&applied(), &style);
        assert_eq!(
            m["text"],
            "Applied 0123456789ab (1 created, 2 updated, 0 pruned)"
        );
        assert_eq!(m["channel"], "#mesh");
        assert_eq!(m["username"], "veer");
        let a = &m["attachments"][0];
        assert_eq!(a["color"], "#2eb886");
        assert_eq!(
            a["fallback"],
            "Applied 0123456789ab (1 created, 2 updated, 0 pruned)\n0123456789ab by Ada <ada@example.com>: Send 10% to <v2> & more"
        );
        let blocks = a["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            blocks[1]["text"]["text"],
            "0123456789ab by Ada &lt;ada@example.com&gt;: Send 10% to &lt;v2&gt; &amp; more"
        );
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "*info* · revision-applied · commit <https://github.com/org/repo/commit/0123456789abcdef0123|0123456789ab>"
        );
    }

    #[test]
    fn colours_follow_severity_and_text_is_bounded() {
        let rejected = Event::RevisionRejected {
            revision: CommitInfo {
                commit: "c".into(),
                author: "a".into(),
                summary: "s".into(),
            },
            errors: vec![
                Problem {
                    file: "x.yaml".into(),
                    line: 3,
                    message: "y".repeat(5000),
                };
                3
            ],
        };
        let m = message(&rejected, &Style::default());
        assert_eq!(m["attachments"][0]["color"], "#a30200");
        assert!(m.get("channel").is_none());
        let details = m["attachments"][0]["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap();
        assert!(
            details.chars().count() <= SECTION_LIMIT,
            "{}",
            details.len()
        );
        assert!(details.starts_with("c by a: s\nx.yaml:3: yyy"));
    }

    #[test]
    fn threads_are_bounded() {
        let mut t = Threads::default();
        for i in 0..(MAX_THREADS + 5) {
            t.remember((format!("r{i}"), "c".into()), format!("{i}.0"));
        }
        assert_eq!(t.parents.len(), MAX_THREADS);
        assert_eq!(t.get(&("r0".into(), "c".into())), None);
        assert_eq!(
            t.get(&(format!("r{}", MAX_THREADS + 4), "c".into())),
            Some(format!("{}.0", MAX_THREADS + 4))
        );
    }
}
