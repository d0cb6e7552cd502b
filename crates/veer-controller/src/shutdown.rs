//! Waiting for the signal to stop: Ctrl-C, or SIGTERM as Kubernetes (and `veer demo`, for
//! its `veer run` child) sends it.

/// Resolves at the first Ctrl-C or SIGTERM.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // No SIGTERM handler (should not happen on Unix): Ctrl-C still stops.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
