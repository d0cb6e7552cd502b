//! The `notify:` section resolved: Slack (incoming webhook or bot) and generic webhooks, each
//! with its event filter, secrets by reference only.

use crate::notify::{
    self, EventKind, Filter, NotifyConfig, Severity, SlackConfig, SlackTarget, WebhookConfig,
};

use super::ConfigError;
use super::check::{from_file, http_url, parse_positive_duration, secret_source};
use super::file::FileNotify;

pub(super) fn resolve_notify(file_name: &str, n: &FileNotify) -> Result<NotifyConfig, ConfigError> {
    let mut config = NotifyConfig::default();
    let error = |key: &str, origin: String, message: String| ConfigError {
        key: key.to_string(),
        origin,
        message,
    };
    if let Some(size) = n.queue_size {
        if size == 0 {
            return Err(error(
                "notify.queueSize",
                file_name.into(),
                "must be at least 1".into(),
            ));
        }
        config.queue_size = size;
    }
    if let Some(attempts) = n.max_attempts {
        if attempts == 0 {
            return Err(error(
                "notify.maxAttempts",
                file_name.into(),
                "must be at least 1 (the first attempt counts)".into(),
            ));
        }
        config.retry.max_attempts = attempts;
    }
    if let Some(w) = &n.dedup_window {
        config.dedup_window =
            parse_positive_duration("notify.dedupWindow", &from_file(file_name, w))?;
    }
    if let Some(t) = &n.timeout {
        config.timeout = parse_positive_duration("notify.timeout", &from_file(file_name, t))?;
    }
    if let Some(s) = &n.slack {
        let target = match (&s.webhook_url, &s.bot_token) {
            (Some(url), None) => {
                let url = secret_source(file_name, "notify.slack.webhookUrl", url)?;
                if s.api_url.is_some() {
                    return Err(error(
                        "notify.slack.apiUrl",
                        file_name.into(),
                        "only applies with `botToken`".into(),
                    ));
                }
                SlackTarget::Webhook { url }
            }
            (None, Some(token)) => {
                let token = secret_source(file_name, "notify.slack.botToken", token)?;
                if s.channel.is_none() {
                    return Err(error(
                        "notify.slack.channel",
                        file_name.into(),
                        "is required with `botToken` (chat.postMessage needs a channel)".into(),
                    ));
                }
                let api_url = match &s.api_url {
                    Some(u) => {
                        let mut url =
                            http_url("notify.slack.apiUrl", &from_file(file_name, u))?.to_string();
                        if !url.ends_with('/') {
                            url.push('/');
                        }
                        url
                    }
                    None => notify::DEFAULT_SLACK_API_URL.to_string(),
                };
                SlackTarget::Bot { token, api_url }
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(error(
                    "notify.slack",
                    file_name.into(),
                    "give exactly one of `webhookUrl` (incoming webhook) or `botToken` (bot, one thread per rollout), each as {file: PATH} or {env: NAME}".into(),
                ));
            }
        };
        let commit_url_template = match &s.commit_url_template {
            Some(t) if !t.value.contains("{commit}") && !t.value.contains("{short}") => {
                return Err(error(
                    "notify.slack.commitUrlTemplate",
                    from_file(file_name, t).origin,
                    "must contain `{commit}` (or `{short}`), e.g. https://github.com/org/repo/commit/{commit}".into(),
                ));
            }
            Some(t) => Some(t.value.clone()),
            None => None,
        };
        config.slack = Some(SlackConfig {
            target,
            channel: s.channel.clone(),
            username: s.username.clone(),
            filter: resolve_filter(
                file_name,
                "notify.slack.events",
                s.events.as_deref(),
                s.min_severity,
            )?,
            commit_url_template,
        });
    }
    for (i, w) in n.webhooks.iter().enumerate() {
        let key = format!("notify.webhooks[{i}]");
        config.webhooks.push(WebhookConfig {
            url: http_url(&format!("{key}.url"), &from_file(file_name, &w.url))?,
            secret: match &w.secret {
                Some(v) => Some(secret_source(file_name, &format!("{key}.secret"), v)?),
                None => None,
            },
            filter: resolve_filter(
                file_name,
                &format!("{key}.events"),
                w.events.as_deref(),
                w.min_severity,
            )?,
        });
    }
    Ok(config)
}

fn resolve_filter(
    file_name: &str,
    key: &str,
    events: Option<&[serde_saphyr::Spanned<String>]>,
    min_severity: Option<Severity>,
) -> Result<Filter, ConfigError> {
    let mut filter = Filter::default();
    if let Some(events) = events {
        if events.is_empty() {
            return Err(ConfigError {
                key: key.into(),
                origin: file_name.into(),
                message: "is empty; list at least one event, or remove the notifier".into(),
            });
        }
        filter.events.clear();
        for e in events {
            let kind = EventKind::parse(&e.value).ok_or_else(|| ConfigError {
                key: key.into(),
                origin: from_file(file_name, e).origin,
                message: format!(
                    "`{}` is not an event; use one of {}",
                    e.value,
                    EventKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            })?;
            filter.events.insert(kind);
        }
    }
    if let Some(min) = min_severity {
        filter.min_severity = min;
    }
    Ok(filter)
}
