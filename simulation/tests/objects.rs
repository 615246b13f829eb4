//! The whole-node object scenario end to end: a node behind its real S3 router on simulated
//! drives passes every check under crashes, drive faults and clock jumps, and replays to the
//! same trace; so does a cluster of three.

use coffer_simulation::objects::{run, ObjectsConfig};

#[test]
fn faulty_seeds_pass_and_replay_to_the_same_trace() {
    for seed in [2, 3] {
        let cfg = ObjectsConfig {
            keep_trace: true,
            ..ObjectsConfig::new(seed)
        };
        let a = run(&cfg);
        assert!(a.passed(), "seed {seed}: {:#?}", a.violations);
        assert!(a.faults >= 5, "seed {seed}: only {} faults", a.faults);
        assert!(
            a.trace.iter().any(|l| l.contains("power loss")),
            "seed {seed} should crash the node at least once"
        );
        assert!(
            a.trace.iter().any(|l| l.contains("node up (start 1)")),
            "seed {seed}: the node should come back"
        );
        // Reads of objects written before a crash, through the real GET path.
        assert!(
            a.trace.iter().filter(|l| l.contains("GET -> c")).count() >= 5,
            "seed {seed}: too few successful reads"
        );
        let b = run(&cfg);
        assert_eq!(a.trace, b.trace, "seed {seed} diverged");
        assert_eq!(a.trace_hash, b.trace_hash);
    }
}

/// Three whole nodes whose shards travel over the simulated network. Seed 9 copies from a
/// source that another client overwrites meanwhile (the copy used to find the old version's
/// shards already deleted and answer 500); seed 11 copies while a node holding shards loses
/// power (it used to answer 500 instead of 503).
#[test]
fn a_cluster_of_three_passes_and_replays_to_the_same_trace() {
    for (seed, fault) in [(9, "cut off"), (11, "power loss")] {
        let cfg = ObjectsConfig {
            keep_trace: true,
            nodes: 3,
            ..ObjectsConfig::new(seed)
        };
        let a = run(&cfg);
        assert!(a.passed(), "seed {seed}: {:#?}", a.violations);
        assert!(
            a.trace.iter().any(|l| l.contains(fault)),
            "seed {seed} should inject {fault:?}"
        );
        assert!(
            a.trace
                .iter()
                .any(|l| l.contains("copy from") && l.ends_with("-> ok")),
            "seed {seed}: no CopyObject succeeded"
        );
        assert!(
            a.trace.iter().filter(|l| l.contains("GET -> c")).count() >= 10,
            "seed {seed}: too few successful reads"
        );
        let b = run(&cfg);
        assert_eq!(a.trace, b.trace, "seed {seed} diverged");
        assert_eq!(a.trace_hash, b.trace_hash);
    }
}
