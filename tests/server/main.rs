//! veer's HTTP server over real HTTP on 127.0.0.1 ephemeral ports: readiness, `/metrics`
//! (also scraped by a real Prometheus), git push hooks from GitHub, GitLab and Gitea (genuine,
//! forged, unsigned, for another repository or branch, oversize), and the status page: golden
//! HTML (`UPDATE_GOLDEN=1` rewrites `tests/fixtures/status/*.html`) and headless Chromium
//! (screenshot saved under `target/test-artifacts/`, DOM asserted).
//!
//! The tests, by concern: [`endpoints`] (readiness, `/metrics`, a real Prometheus scrape),
//! [`hooks`] (git push hooks), [`connections`] (slow, oversize and stuck clients, the
//! connection cap, shutdown) and [`status_page`] (goldens and headless Chromium); what they
//! share (a running server, the tracked repository) is in [`helpers`].

#[path = "../support/prometheus.rs"]
mod prometheus_support;

mod connections;
mod endpoints;
mod helpers;
mod hooks;
mod status_page;
