//! The whole-node object scenario end to end: a node behind its real S3 router on simulated
//! drives passes every check under crashes, drive faults and clock jumps, and replays to the
//! same trace.

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
