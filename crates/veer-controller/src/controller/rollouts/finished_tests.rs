//! A finished rollout against the fakes of `driver_tests`: ticks and idle passes leave it
//! out (it asks no wake), without forgetting it, until a command asks something of it.

use super::{Command, Phase, World, live, revision, state_command, tick, vs};

/// Aborted, a rollout fails (its split restored) and asks nothing more: ticks and idle
/// passes plan without it, keep its state, and the `retry` an operator sends is still
/// heard by the next idle pass, which starts it again.
#[tokio::test(start_paused = true)]
async fn a_finished_rollout_is_left_out_of_ticks_until_a_command() {
    let mut w = World::new();
    let loaded = revision(&w, "a", &vs(0, 100, Some("p")));
    tick(&mut w, &loaded, live(100, 0, "veer"), true).await;
    let id = w.driver.tracked().unwrap().into_iter().next().unwrap();
    assert_eq!(w.driver.in_flight([]), Some([id.clone()].into()), "running");

    *w.store.mailbox.lock().unwrap() = Some(state_command(&w, 1, Command::Abort));
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        tick(&mut w, &loaded, live(75, 25, "veer"), true).await;
    }
    assert_eq!(w.state().phase, Phase::Failed);
    assert_eq!(w.driver.in_flight([]), Some([].into()), "finished");

    // Ticks and idle passes without a command: left out, and not taken for a rollout
    // whose VirtualService left git.
    let stores = *w.store.writes.lock().unwrap();
    for every in [false, true, false] {
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        tick(&mut w, &loaded, live(100, 0, "veer"), every).await;
        assert_eq!(w.driver.in_flight([]), Some([].into()), "still finished");
    }
    assert_eq!(*w.store.writes.lock().unwrap(), stores, "nothing stored");
    assert_eq!(w.state().phase, Phase::Failed, "its state kept");
    assert_eq!(w.driver.states().count(), 1);

    // A command waiting: the finished rollout is in the idle pass again.
    let retry = state_command(&w, 1, Command::Retry);
    *w.store.mailbox.lock().unwrap() = Some(retry.clone());
    assert_eq!(w.driver.in_flight([&id]), Some([id.clone()].into()));
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    tick(&mut w, &loaded, live(100, 0, "veer"), true).await;
    assert_ne!(w.state().phase, Phase::Failed, "retried: {:?}", w.state());
    assert_eq!(w.driver.in_flight([]), Some([id].into()), "running again");
}
