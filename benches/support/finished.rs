//! The `rollouts` bench's idle polls: the CPU of a poll that finds nothing new (no commit,
//! nothing changed in the cluster) with every rollout in flight, then with every rollout
//! finished. Each rollout is aborted as `veer rollout abort` does (one command each) and
//! polled until it has rolled back and failed.

use std::time::Duration;

use chrono::Utc;
use veer::controller::Controller;
use veer::controller::rollouts::send_command;
use veer::rollout::Command;
use veer::rollout::state::Phase;
use veer::source::{LoadedRevision, PollOutcome};

use crate::figures::Figures;
use crate::processes::cpu_time;

/// Idle polls measured, each way.
const POLLS: usize = 5;

/// The median CPU of [`POLLS`] idle polls of `c` over `loaded`.
async fn idle_polls(c: &mut Controller, loaded: &LoadedRevision) -> Duration {
    let mut cpu = Vec::new();
    for _ in 0..POLLS {
        let unchanged = PollOutcome::Unchanged {
            commit: loaded.revision.commit.clone(),
        };
        let t = cpu_time();
        c.handle(unchanged, Utc::now()).await;
        cpu.push(cpu_time() - t);
    }
    cpu.sort();
    cpu[cpu.len() / 2]
}

fn failed(c: &Controller) -> usize {
    c.rollouts().map_or(0, |d| {
        d.states().filter(|(_, s)| s.phase == Phase::Failed).count()
    })
}

/// Print the idle polls' CPU with the `n` rollouts of `c` in flight, then finished (aborted
/// through `client`, their states in `state_ns`).
pub async fn idle_polls_in_flight_and_finished(
    c: &mut Controller,
    client: &kube::Client,
    state_ns: &str,
    loaded: &LoadedRevision,
    n: usize,
    fig: &mut Figures,
) {
    let key = |what: &str| format!("{n} rollouts/{what}");
    let in_flight = idle_polls(c, loaded).await;
    println!(
        "  idle poll, {n} rollouts in flight: {:>10}{}   median of {POLLS}",
        crate::ms(in_flight),
        fig.ms(&key("idle poll CPU, in flight"), in_flight),
    );
    let ids: Vec<_> = c
        .rollouts()
        .map(|d| d.states().map(|(id, _)| id.clone()).collect())
        .unwrap_or_default();
    for id in &ids {
        send_command(client, state_ns, id, Command::Abort)
            .await
            .expect("the abort command is written");
    }
    // The polls that roll every rollout back, and those that see the rollbacks' writes.
    for _ in 0..20 {
        if failed(c) == n {
            break;
        }
        let unchanged = PollOutcome::Unchanged {
            commit: loaded.revision.commit.clone(),
        };
        c.handle(unchanged, Utc::now()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Until a poll finds nothing new in the cluster either.
    for _ in 0..3 {
        let unchanged = PollOutcome::Unchanged {
            commit: loaded.revision.commit.clone(),
        };
        c.handle(unchanged, Utc::now()).await;
    }
    let flag = if failed(c) == n {
        ""
    } else {
        "   <-- UNEXPECTED"
    };
    let finished = idle_polls(c, loaded).await;
    println!(
        "  idle poll, {n} rollouts finished:  {:>10}{}   median of {POLLS}; {} of {n} failed after `abort`{flag}",
        crate::ms(finished),
        fig.ms(&key("idle poll CPU, finished"), finished),
        failed(c),
    );
}
