//! What ticks and idle polls leave out, against the fakes of `driver_tests`: a finished
//! rollout (it asks no wake) until a command asks something of it, without forgetting it;
//! and in an idle poll (nothing new in git or the cluster), every rollout it cannot move.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use super::super::ports::{Clock, Ports};
use super::{
    Command, Health, LoadedRevision, Phase, World, key, live, revision, state_command, tick, vs,
};

/// An idle poll as the controller makes it (`Controller::tick_rollouts` with `every`): the
/// commands labelled pending read first, then the rollouts it can move driven.
async fn idle_poll(w: &mut World, loaded: &LoadedRevision, live: Value) {
    let ports = Ports {
        store: &w.store,
        probe: &w.probe,
        traffic: &w.route,
        clock: &w.clock,
    };
    let commands = w.driver.read_commands(&ports, false).await.unwrap();
    let commanded = commands.keys().cloned().collect();
    let only = w.driver.idle_poll(&commanded, w.clock.now());
    let bindings = w.driver.bindings(loaded, "git://example/mesh.git");
    let live = BTreeMap::from([(key(), live)]);
    let (bindings, only) = (&bindings, only.as_ref());
    w.driver
        .drive_bound(&ports, loaded, bindings, only, live, true, Some(commands))
        .await;
}

/// Aborted, a rollout fails (its split restored) and asks nothing more: ticks and idle
/// polls plan without it, keep its state, and the `retry` an operator sends is still
/// heard by the next idle poll, which starts it again.
#[tokio::test(start_paused = true)]
async fn a_finished_rollout_is_left_out_of_ticks_until_a_command() {
    let mut w = World::new();
    let loaded = revision(&w, "a", &vs(0, 100, Some("p")));
    tick(&mut w, &loaded, live(100, 0, "veer"), true).await;
    let id = w.driver.tracked().unwrap().into_iter().next().unwrap();
    assert_eq!(w.driver.in_flight([]), Some([id.clone()].into()), "running");

    *w.store.mailbox.lock().unwrap() = Some(state_command(&w, 1, Command::Abort));
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(1)).await;
        tick(&mut w, &loaded, live(75, 25, "veer"), true).await;
    }
    assert_eq!(w.state().phase, Phase::Failed);
    assert_eq!(w.driver.in_flight([]), Some([].into()), "finished");

    // Ticks and idle polls without a command: left out, and not taken for a rollout whose
    // VirtualService left git.
    let stores = *w.store.writes.lock().unwrap();
    for idle in [false, true, false] {
        tokio::time::advance(Duration::from_secs(60)).await;
        match idle {
            true => idle_poll(&mut w, &loaded, live(100, 0, "veer")).await,
            false => tick(&mut w, &loaded, live(100, 0, "veer"), false).await,
        }
        assert_eq!(w.driver.in_flight([]), Some([].into()), "still finished");
    }
    assert_eq!(*w.store.writes.lock().unwrap(), stores, "nothing stored");
    assert_eq!(w.state().phase, Phase::Failed, "its state kept");
    assert_eq!(w.driver.states().count(), 1);

    // A command waiting: the finished rollout is in the idle poll again.
    *w.store.mailbox.lock().unwrap() = Some(state_command(&w, 1, Command::Retry));
    assert_eq!(w.driver.in_flight([&id]), Some([id.clone()].into()));
    tokio::time::advance(Duration::from_secs(1)).await;
    idle_poll(&mut w, &loaded, live(100, 0, "veer")).await;
    assert_ne!(w.state().phase, Phase::Failed, "retried: {:?}", w.state());
    assert_eq!(w.driver.in_flight([]), Some([id].into()), "running again");
}

/// An idle poll drives only the rollouts it can move: one settling toward its next check
/// waits for its wake (the poll does not even look at its route); due, waiting for its new
/// version's health, or with a command waiting, it is driven.
#[tokio::test(start_paused = true)]
async fn an_idle_poll_drives_only_the_rollouts_it_can_move() {
    let mut w = World::new();
    let loaded = revision(&w, "a", &vs(0, 100, Some("p")));
    tick(&mut w, &loaded, live(100, 0, "veer"), true).await;
    assert_eq!(
        w.state().phase,
        Phase::Progressing,
        "settling at its first step"
    );
    let id = w.driver.tracked().unwrap().into_iter().next().unwrap();
    let none = BTreeSet::new();
    let now = || w.clock.now();
    assert_eq!(
        w.driver.idle_poll(&none, now()),
        Some([].into()),
        "settling"
    );
    assert_eq!(
        w.driver.idle_poll(&[id.clone()].into(), now()),
        Some([id.clone()].into()),
        "a command waiting"
    );

    // Were it driven, the route someone else set would be written back at once.
    let (stores, writes) = (*w.store.writes.lock().unwrap(), w.written().len());
    tokio::time::advance(Duration::from_secs(1)).await;
    idle_poll(&mut w, &loaded, live(60, 40, "kubectl")).await;
    assert_eq!(w.written().len(), writes, "not driven: nothing written");
    assert_eq!(*w.store.writes.lock().unwrap(), stores, "nor stored");
    let now = w.clock.now();
    assert_eq!(
        w.driver.idle_poll(&none, now),
        Some([].into()),
        "its wake kept"
    );

    // Its check due: driven.
    tokio::time::advance(Duration::from_secs(120)).await;
    let now = w.clock.now();
    assert_eq!(w.driver.idle_poll(&none, now), Some([id].into()), "due");

    // Waiting for its new version to be available: looked at in every idle poll.
    let mut w = World::new();
    *w.probe.0.lock().unwrap() = Health::Unavailable("reviews-v2: 0 of 1 ready".into());
    let loaded = revision(&w, "a", &vs(0, 100, Some("p")));
    tick(&mut w, &loaded, live(100, 0, "veer"), true).await;
    assert_eq!(w.state().phase, Phase::WaitingForHealth);
    tokio::time::advance(Duration::from_secs(1)).await;
    let waiting = w.driver.idle_poll(&none, w.clock.now()).unwrap();
    assert_eq!(waiting.len(), 1, "waiting for health");
}
