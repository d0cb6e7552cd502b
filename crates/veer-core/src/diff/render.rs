//! Renderings of a [`Plan`]: a unified YAML diff per object for people (`veer diff`), with
//! ANSI colour only when asked, and JSON for machines (`--output json`).

use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use super::{Cause, DiffError, ObjectAction, ObjectPlan, Plan, Summary};
use crate::manifest::ObjectKey;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// YAML as the diff shows it; nothing for an absent side.
fn yaml(key: &ObjectKey, value: Option<&Value>) -> Result<String, DiffError> {
    match value {
        None => Ok(String::new()),
        Some(v) => serde_saphyr::to_string(v).map_err(|e| DiffError::Yaml {
            object: key.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn title(object: &ObjectPlan) -> Option<String> {
    let what = match &object.action {
        ObjectAction::Create => "create".to_string(),
        ObjectAction::Update { cause, .. } => match cause {
            Cause::GitChange => "update".to_string(),
            Cause::Drift => "update (drift: changed in the cluster, not in git)".to_string(),
            Cause::Rollout => "update (a rollout's traffic)".to_string(),
        },
        ObjectAction::Prune => "prune".to_string(),
        ObjectAction::PruneSkipped { reason } => format!("prune skipped ({reason})"),
        ObjectAction::Unchanged => return None,
    };
    Some(format!("{}: {what}", object.key))
}

/// The summary line: `2 to create, 1 to update (1 drift), 0 to prune`.
pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!("{} to create, {} to update", summary.create, summary.update);
    if summary.drift > 0 {
        line.push_str(&format!(" ({} drift)", summary.drift));
    }
    line.push_str(&format!(", {} to prune", summary.prune));
    if summary.prune_skipped > 0 {
        line.push_str(&format!(" ({} skipped)", summary.prune_skipped));
    }
    line
}

/// Paint one line of unified diff output.
fn paint(line: &str, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let style = if line.starts_with("---") || line.starts_with("+++") {
        BOLD
    } else if line.starts_with('-') {
        RED
    } else if line.starts_with('+') {
        GREEN
    } else if line.starts_with("@@") {
        CYAN
    } else {
        return line.to_string();
    };
    format!("{style}{line}{RESET}")
}

/// The human form: per differing object a title line and a unified diff of the live
/// projection (`--- live Kind ns/name`) against git (`+++ git Kind ns/name`), then the
/// summary line. Unchanged objects are left out.
pub fn human(plan: &Plan, color: bool) -> Result<String, DiffError> {
    let mut out = String::new();
    for object in &plan.objects {
        let Some(title) = title(object) else {
            continue;
        };
        out.push_str(&paint(&format!("# {title}"), color));
        out.push('\n');
        let (live, git) = match object.action {
            ObjectAction::PruneSkipped { .. } => continue,
            ObjectAction::Create
            | ObjectAction::Update { .. }
            | ObjectAction::Prune
            | ObjectAction::Unchanged => (
                yaml(&object.key, object.live.as_deref())?,
                yaml(
                    &object.key,
                    object.desired.as_ref().map(|d| d.value()).as_deref(),
                )?,
            ),
        };
        let diff = TextDiff::from_lines(&live, &git);
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("live {}", object.key),
                &format!("git {}", object.key),
            )
            .to_string();
        for line in text.lines() {
            out.push_str(&paint(line, color));
            out.push('\n');
        }
    }
    out.push_str(&summary_line(&plan.summary()));
    out.push('\n');
    Ok(out)
}

#[derive(Serialize)]
struct JsonObject<'a> {
    object: String,
    key: &'a ObjectKey,
    #[serde(flatten)]
    action: &'a ObjectAction,
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    objects: Vec<JsonObject<'a>>,
    summary: Summary,
    #[serde(rename = "hasChanges")]
    has_changes: bool,
}

/// The machine form: every object (unchanged ones too) with its action, cause and changes,
/// and the counts. Pretty-printed, one trailing newline.
pub fn json(plan: &Plan) -> Result<String, DiffError> {
    let doc = JsonPlan {
        objects: plan
            .objects
            .iter()
            .map(|o| JsonObject {
                object: o.key.to_string(),
                key: &o.key,
                action: &o.action,
            })
            .collect(),
        summary: plan.summary(),
        has_changes: plan.has_changes(),
    };
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| DiffError::Json {
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}
