//! The same seed gives the same trace; different seeds give different ones.

#[test]
fn same_seed_same_trace() {
    let a = coffer_simulation::run_smoke(7, 6).unwrap();
    let b = coffer_simulation::run_smoke(7, 6).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.events(), b.events());
    let c = coffer_simulation::run_smoke(8, 6).unwrap();
    assert_ne!(
        a.hash(),
        c.hash(),
        "different seeds should give different traces"
    );
}
