//! The metadata cluster simulation end to end: a healthy run and faulty seeds pass every
//! check and replay to the same trace hash, in this process and in two fresh ones.

use coffer_simulation::cluster::{run, SimConfig};

#[test]
fn a_healthy_cluster_passes_every_check() {
    let mut cfg = SimConfig::new(11);
    cfg.faults = false;
    let r = run(&cfg);
    assert!(r.passed(), "violations: {:#?}", r.violations);
    assert_eq!(r.faults, 0);
    assert!(r.ops > 50, "only {} operations", r.ops);
    assert_eq!(r.unknown, 0, "no fault, yet {} unknown outcomes", r.unknown);
    assert_eq!(r.terms, 1, "a healthy cluster should keep its first leader");
}

#[test]
fn faulty_seeds_pass_and_replay_to_the_same_trace() {
    for seed in [1, 2] {
        let cfg = SimConfig {
            keep_trace: true,
            ..SimConfig::new(seed)
        };
        let a = run(&cfg);
        assert!(a.passed(), "seed {seed}: {:#?}", a.violations);
        assert!(a.faults >= 5, "seed {seed}: only {} faults", a.faults);
        let b = run(&cfg);
        assert_eq!(a.trace, b.trace, "seed {seed} diverged");
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.events as usize, a.trace.len());
    }
    assert_ne!(
        run(&SimConfig::new(1)).trace_hash,
        run(&SimConfig::new(2)).trace_hash
    );
}

#[test]
fn a_seed_replays_in_two_processes() {
    let once = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer-simulation"))
            .args(["--once"])
            .env("SIM_SEED", "4")
            .output()
            .expect("run the simulation binary");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("seed 4:"))
            .map(str::to_owned);
        line.expect("a seed line")
    };
    let (a, b) = (once(), once());
    assert!(a.contains(": ok hash "), "{a}");
    assert_eq!(a, b);
}

/// Seed 452 restarts n1 after a power loss while it holds a committed vote for itself: openraft
/// restores it to leader without an election, with a commit index older than before the crash.
/// Before `restored_read_floor` a follower read through it returned a value older than an
/// acknowledged write. (Pinned to this seed's schedule; if the workload or nemesis changes,
/// find the scenario again with `--seeds` and update the seed.)
#[test]
fn a_leader_restored_from_its_vote_serves_no_stale_read() {
    let cfg = SimConfig {
        keep_trace: true,
        ..SimConfig::new(452)
    };
    let r = run(&cfg);
    assert!(r.passed(), "violations: {:#?}", r.violations);
    // The scenario: a power loss, then n1 back as leader of the term it led before.
    assert!(r.trace.iter().any(|l| l.contains("power loss")));
    assert!(r
        .trace
        .iter()
        .any(|l| l.contains("n1 leader of term 1") && !l.starts_with("     0.000")));
}
