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

/// A poll of `c` with no new commit over `loaded`; whether it planned nothing (nothing
/// changed in the cluster either: an idle poll).
async fn poll(c: &mut Controller, loaded: &LoadedRevision) -> bool {
    let unchanged = PollOutcome::Unchanged {
        commit: loaded.revision.commit.clone(),
    };
    c.handle(unchanged, Utc::now()).await;
    c.last_planning().is_some_and(|p| p.objects == 0)
}

/// The median CPU of [`POLLS`] idle polls of `c` over `loaded`, once a poll planned nothing
/// (the watches have seen every write before: the bench's own floor wrote every rollout's
/// VirtualService and state); and how many of them planned nothing.
async fn idle_polls(c: &mut Controller, loaded: &LoadedRevision) -> (Duration, usize) {
    for _ in 0..20 {
        if poll(c, loaded).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut cpu = Vec::new();
    let mut idle = 0;
    for _ in 0..POLLS {
        let t = cpu_time();
        idle += usize::from(poll(c, loaded).await);
        cpu.push(cpu_time() - t);
    }
    cpu.sort();
    (cpu[cpu.len() / 2], idle)
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
    let (in_flight, idle) = idle_polls(c, loaded).await;
    println!(
        "  idle poll, {n} rollouts in flight: {:>10}{}   median of {POLLS}, {idle} of them planning nothing",
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
    // The polls that roll every rollout back.
    for _ in 0..20 {
        if failed(c) == n {
            break;
        }
        poll(c, loaded).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let flag = if failed(c) == n {
        ""
    } else {
        "   <-- UNEXPECTED"
    };
    let (finished, idle) = idle_polls(c, loaded).await;
    println!(
        "  idle poll, {n} rollouts finished:  {:>10}{}   median of {POLLS}, {idle} of them planning nothing; {} of {n} failed after `abort`{flag}",
        crate::ms(finished),
        fig.ms(&key("idle poll CPU, finished"), finished),
        failed(c),
    );
}
