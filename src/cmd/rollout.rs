//! `veer rollout status|pause|resume|promote|abort|retry`: read rollout states (once or
//! watching) and send commands to the controller.

use std::io::IsTerminal;

use anyhow::{Context, Result};

use veer::cli::{OutputFormat, RolloutCommand, exit};
use veer::config::Config;

use super::{connect, runtime};

/// `veer rollout status|pause|resume|promote|abort|retry`.
pub(crate) fn rollout_command(config: &Config, command: &RolloutCommand) -> Result<i32> {
    use veer::controller::rollouts as r;
    use veer::ids::RolloutId;
    use veer::rollout::Command as Op;
    let parse = |text: &str| {
        RolloutId::parse(text)
            .with_context(|| format!("`{text}` is not NAMESPACE/NAME of a VirtualService"))
    };
    let ns = config.cluster.state_namespace.clone();
    runtime()?.block_on(async {
        let cluster = connect(config).await?;
        let client = cluster.client();
        let (target, op) = match command {
            RolloutCommand::Status(args) => {
                let Some(text) = &args.rollout else {
                    let all = r::list_rollouts(client, &ns).await?;
                    match args.output {
                        OutputFormat::Json => {
                            let value: Vec<serde_json::Value> = all
                                .iter()
                                .map(|(id, state, policy)| serde_json::json!({"rollout": id.to_string(), "policy": policy, "state": state}))
                                .collect();
                            println!("{}", serde_json::to_string_pretty(&value)?);
                        }
                        OutputFormat::Human if all.is_empty() => println!("no rollouts"),
                        OutputFormat::Human => {
                            for (id, state, policy) in &all {
                                let live = live_of(&cluster, id, state).await;
                                print!(
                                    "{}",
                                    r::render_status_with_live(id, state, policy, live.as_ref())
                                );
                            }
                        }
                    }
                    // As for one rollout: a rolled-back one among them fails the command.
                    return Ok(if all.iter().any(|(_, state, _)| state.phase.is_failed()) {
                        exit::ROLLOUT_FAILED
                    } else {
                        exit::OK
                    });
                };
                let id = parse(text)?;
                let mut last = String::new();
                loop {
                    let Some((state, _, policy)) = r::read_rollout(client, &ns, &id).await? else {
                        eprintln!("veer: no rollout of {id} (state namespace {ns})");
                        return Ok(exit::FAILURE);
                    };
                    let text = match args.output {
                        OutputFormat::Human => {
                            let live = live_of(&cluster, &id, &state).await;
                            r::render_status_with_live(&id, &state, &policy, live.as_ref())
                        }
                        OutputFormat::Json => serde_json::to_string_pretty(&state)? + "\n",
                    };
                    if text != last {
                        if args.watch && std::io::stdout().is_terminal() {
                            print!("\x1b[2J\x1b[H");
                        }
                        print!("{text}");
                        last = text;
                    }
                    let code = if state.phase.is_failed() {
                        exit::ROLLOUT_FAILED
                    } else {
                        exit::OK
                    };
                    if !args.watch || state.phase.is_terminal() {
                        return Ok(code);
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
            RolloutCommand::Pause(t) => (t, Op::Pause),
            RolloutCommand::Resume(t) => (t, Op::Resume),
            RolloutCommand::Promote(t) => (t, Op::Promote),
            RolloutCommand::Abort(t) => (t, Op::Abort),
            RolloutCommand::Retry(t) => (t, Op::Retry),
        };
        let id = parse(&target.rollout)?;
        match r::send_command(client, &ns, &id, op).await? {
            Some(sent) => {
                println!(
                    "{} sent to {id} (command {}); veer applies it at its next pass",
                    op.as_str(),
                    sent.id
                );
                Ok(exit::OK)
            }
            None => {
                eprintln!("veer: no rollout of {id} (state namespace {ns})");
                Ok(exit::FAILURE)
            }
        }
    })
}

/// The split the rolled-out route serves now, read from the API server; `None` when it cannot
/// be read (then the status shows the recorded split alone). Istio serves VirtualServices as
/// `v1` since 1.22, `v1beta1` and `v1alpha3` before.
async fn live_of(
    cluster: &veer::cluster::Cluster,
    id: &veer::ids::RolloutId,
    state: &veer::rollout::RolloutState,
) -> Option<veer::rollout::TrafficSplit> {
    for version in ["v1", "v1beta1", "v1alpha3"] {
        let key = veer::manifest::ObjectKey {
            group: "networking.istio.io".into(),
            version: version.into(),
            kind: "VirtualService".into(),
            namespace: Some(id.namespace.clone()),
            name: id.name.clone(),
        };
        match veer::controller::rollouts::live_split(cluster, &key, &state.route).await {
            Ok(split) => return split,
            Err(veer::cluster::ClusterError::UnknownKind { .. }) => {}
            Err(_) => return None,
        }
    }
    None
}
