//! What a rollout calls out to: webhooks (names, URLs, timeouts) and the revert commit's
//! author.

use std::collections::HashMap;

use super::check_duration;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::rollout_policy::{self as policy, RolloutPolicySpec, Webhook};
use crate::manifest::yaml::pointer_join;

pub(super) fn check_webhooks(m: &Manifest, webhooks: &[Webhook], out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, w) in webhooks.iter().enumerate() {
        let at = pointer_join("/spec/webhooks", i);
        if w.name.is_empty() {
            out.push(
                m.error(
                    "rp-webhook-name",
                    &pointer_join(&at, "name"),
                    format!("{}.name is empty", display_path(&at)),
                )
                .fix("name the webhook; the name shows in status and alerts"),
            );
        } else if let Some(first) = seen.insert(&w.name, i) {
            out.push(
                m.error(
                    "rp-webhook-name",
                    &pointer_join(&at, "name"),
                    format!(
                        "{}.name: `{}` is also the name of spec.webhooks[{first}]",
                        display_path(&at),
                        w.name
                    ),
                )
                .fix("give each webhook its own name"),
            );
        }
        let url_at = pointer_join(&at, "url");
        let problem = match url::Url::parse(&w.url) {
            Err(e) => Some(format!("`{}` is not a URL: {e}", w.url)),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                Some(format!("`{}` is not an http(s) URL", w.url))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                Some(format!("`{}` has no host", w.url))
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            out.push(
                m.error(
                    "rp-webhook-url",
                    &url_at,
                    format!("{}: {problem}", display_path(&url_at)),
                )
                .fix("write an absolute http or https URL, e.g. http://hooks.ns.svc.cluster.local/check"),
            );
        }
        if let Some(t) = &w.timeout {
            check_duration(m, &pointer_join(&at, "timeout"), t, out);
        }
    }
}

pub(super) fn check_revert(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    let Some(author) = &spec.revert_author else {
        return;
    };
    match spec.revert {
        policy::Revert::None => out.push(
            m.warning(
                "rp-revert-author",
                "/spec/revertAuthor",
                "spec.revertAuthor is set but spec.revert is not `git`, so it is never used",
            )
            .fix("set `revert: git`, or remove revertAuthor"),
        ),
        policy::Revert::Git => {
            let ok = author.split_once('<').is_some_and(|(name, rest)| {
                !name.trim().is_empty() && rest.ends_with('>') && rest.contains('@')
            });
            if !ok {
                out.push(
                    m.error(
                        "rp-revert-author",
                        "/spec/revertAuthor",
                        format!("spec.revertAuthor: `{author}` is not `Name <email>`"),
                    )
                    .fix("write the author as git does, e.g. `veer <veer@example.com>`"),
                );
            }
        }
    }
}
