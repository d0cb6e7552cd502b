//! The conformance matrix: the same cluster-facing scenarios, with the same assertions, against
//! the embedded API server and a real kube-apiserver (`VEER_TEST_KUBECONFIG`, started by
//! `make test`). veer runs as a user runs it: the real binary, a real git repository, a
//! kubeconfig. Where the two servers answer differently the real one is right; the differences
//! that belong to the real server's version (v1.20) are named in `tests/conformance/known.rs`
//! and asserted there, never skipped.

mod support;

#[path = "conformance/scenarios.rs"]
mod scenarios;

#[path = "conformance/known.rs"]
mod known;

#[path = "conformance/immutable.rs"]
mod immutable;

#[path = "conformance/all_or_nothing.rs"]
mod all_or_nothing;

#[path = "conformance/mailbox.rs"]
mod mailbox;

#[path = "conformance/state_shards.rs"]
mod state_shards;

#[path = "conformance/rollout_names.rs"]
mod rollout_names;

#[path = "conformance/own_state.rs"]
mod own_state;

#[path = "conformance/gate_cache.rs"]
mod gate_cache;

/// Each scenario of `module` twice: `<scenario>::embedded` and `<scenario>::real`.
macro_rules! matrix {
    ($module:ident: $($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use crate::support::backend::{Backend, TestCluster};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                crate::$module::$scenario(&TestCluster::start(Backend::Embedded).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real() {
                crate::$module::$scenario(&TestCluster::start(Backend::Real).await).await;
            }
        }
    )*};
}

matrix!(
    scenarios:
    every_example_syncs_into_an_empty_cluster_then_diffs_clean,
    numbers_are_compared_by_value,
    keyed_lists_are_owned_per_entry,
    drift_is_reported_then_healed,
    conflicts_with_another_manager_then_force,
    server_dry_run_writes_nothing,
    prune_takes_only_what_veer_applied,
    namespace_is_never_pruned_while_objects_remain,
    state_config_map_round_trips,
    rollout_weights_written_and_read_back,
    leader_lease_is_taken_and_released,
);

matrix!(immutable: immutable_fields_are_refused_alike);

matrix!(gate_cache: the_cache_keeps_a_deployments_availability);

matrix!(
    all_or_nothing:
    a_revision_the_server_refuses_writes_nothing,
    a_refused_revision_is_asked_again_at_each_pass,
);

matrix!(
    state_shards:
    a_large_state_is_stored_in_shards,
    a_state_stored_whole_is_read_then_sharded,
);

matrix!(
    mailbox:
    a_command_written_mid_pass_is_never_lost,
    own_config_maps_create_their_namespace,
);

matrix!(
    rollout_names:
    an_older_veers_state_moves_to_its_own_name,
    two_ids_a_dash_apart_keep_two_states,
);

matrix!(own_state: own_state_config_maps_are_not_watched);
