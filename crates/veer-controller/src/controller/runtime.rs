//! The async runtime `veer run`'s loop runs on (and the benches that run that loop).

/// One thread for every task (the loop, the watches, the HTTP server), blocking work (git,
/// pushes) on tokio's blocking threads. The loop is one task that waits on the API server
/// most of the time; on a pool of workers each answer woke another thread to hand it over,
/// and at 1,000 rollouts judged in one tick that cost more than a third of the tick's CPU
/// (`benches/rollouts.rs`: 355 against 230 ms); a cold start at 10,000 objects took 8.1 s
/// against 5.4 (`benches/daemon.rs`).
pub fn loop_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
