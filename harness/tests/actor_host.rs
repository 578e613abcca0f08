//! The actor-host example's run (`leasehold::actor_host`), on stores the
//! seed's TOML names: messages processed, a crash, a takeover from the last
//! snapshots, a fenced zombie — and the counters read back add up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure panics with its message

use std::time::Duration;

const TIMES: &str = "[actor_management]\nlease_duration_seconds = 1\nsnapshot_interval_seconds = 1\nidle_timeout_seconds = 2\n";

#[test]
fn hosts_on_the_lsm_keep_every_snapshotted_message_across_a_crash_and_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orbit.toml");
    let data = dir.path().join("orbit");
    std::fs::write(
        &config,
        format!(
            "[persistence]\ntype = \"lsm_tree\"\ndata_dir = \"{}\"\ndurability = \"sync\"\n{TIMES}",
            data.display()
        ),
    )
    .unwrap();
    let first = leasehold::actor_host::run_from_config(&config, Duration::from_secs(5)).unwrap();
    first.check().unwrap();
    assert!(first.processed > 0 && first.deactivations > 0 && first.snapshots > 0);
    assert!(first.renewals > 0, "{first:?}");
    // Again on the same files: the counters go on from where they were.
    let second = leasehold::actor_host::run_from_config(&config, Duration::from_secs(4)).unwrap();
    second.check().unwrap();
    assert_eq!(second.initial_total, first.final_total);
}

/// The README's command, on the committed `orbit.toml` shape: a bad path is a
/// clear error, not a panic.
#[test]
fn a_missing_config_is_an_error() {
    let err = leasehold::actor_host::run_from_config(
        std::path::Path::new("/nonexistent/orbit.toml"),
        Duration::from_secs(3),
    )
    .unwrap_err();
    assert!(
        matches!(err, leasehold::Error::Config(_)) && err.to_string().contains("orbit.toml"),
        "{err:?}"
    );
}
