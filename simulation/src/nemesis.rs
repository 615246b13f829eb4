//! The nemesis: a schedule of faults drawn from its own seeded stream before the run starts
//! (so it does not depend on what the workload does), ending with a heal of everything.

use std::time::Duration;

use coffer_cluster::NodeId;
use rand::rngs::StdRng;
use rand::Rng;

use crate::net::LinkFaults;

/// One fault (or its repair).
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Crash a node: its runtime stops, its disk keeps what was flushed plus a seeded prefix.
    Crash(NodeId),
    /// Crash whichever node currently leads.
    CrashLeader,
    /// Crash every node at once (a power cut): only flushed writes (and a prefix) survive.
    PowerLoss,
    /// Restart a crashed node.
    Restart(NodeId),
    /// Restart every crashed node.
    RestartAll,
    /// Cut a node off from everyone.
    Isolate(NodeId),
    /// Cut the link between two nodes both ways.
    Cut(NodeId, NodeId),
    /// Cut one direction.
    CutOneWay(NodeId, NodeId),
    /// Hold one direction's messages until the network heals.
    Hold(NodeId, NodeId),
    /// Loss, duplication and wide delays (reordering) on every link.
    Lossy(LinkFaults),
    /// Undo every network fault.
    HealNet,
    /// The end of the fault window: heal the network and restart every crashed node.
    HealAll,
}

impl Fault {
    /// Whether this injects a fault (rather than repairing one).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Fault::Restart(_) | Fault::RestartAll | Fault::HealNet | Fault::HealAll
        )
    }
}

/// A fault at a simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// When (sim time since the start).
    pub at: Duration,
    /// What.
    pub fault: Fault,
}

fn two(rng: &mut StdRng, nodes: u64) -> (NodeId, NodeId) {
    let a = rng.gen_range(1..=nodes);
    let mut b = rng.gen_range(1..nodes);
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// The faults of one run: from `start`, a fault every 0.3–1.5 s lasting 0.2–3 s (some
/// overlapping), until `start + window`, where everything heals.
pub fn plan(rng: &mut StdRng, nodes: u64, start: Duration, window: Duration) -> Vec<Action> {
    let end = start + window;
    let mut out = Vec::new();
    let mut t = start + Duration::from_millis(rng.gen_range(100..800));
    while t < end {
        let lasts = Duration::from_millis(rng.gen_range(200..3000));
        let (fault, repair) = match rng.gen_range(0..100) {
            0..=19 => {
                let id = rng.gen_range(1..=nodes);
                (Fault::Crash(id), Fault::Restart(id))
            }
            20..=34 => (Fault::CrashLeader, Fault::RestartAll),
            35..=41 => (Fault::PowerLoss, Fault::RestartAll),
            42..=53 => (Fault::Isolate(rng.gen_range(1..=nodes)), Fault::HealNet),
            54..=63 => {
                let (a, b) = two(rng, nodes);
                (Fault::Cut(a, b), Fault::HealNet)
            }
            64..=73 => {
                let (a, b) = two(rng, nodes);
                (Fault::CutOneWay(a, b), Fault::HealNet)
            }
            74..=81 => {
                let (a, b) = two(rng, nodes);
                (Fault::Hold(a, b), Fault::HealNet)
            }
            _ => {
                let f = LinkFaults {
                    min_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(rng.gen_range(10..80)),
                    loss: rng.gen_range(0.0..0.2),
                    duplicate: rng.gen_range(0.0..0.2),
                };
                (Fault::Lossy(f), Fault::HealNet)
            }
        };
        out.push(Action { at: t, fault });
        out.push(Action {
            at: (t + lasts).min(end),
            fault: repair,
        });
        t += Duration::from_millis(rng.gen_range(300..1500));
    }
    out.push(Action {
        at: end,
        fault: Fault::HealAll,
    });
    // Stable: a repair and a fault at the same moment keep their drawing order.
    out.sort_by_key(|a| a.at);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn plans_replay_from_the_seed_and_end_healed() {
        let p = |seed| {
            plan(
                &mut StdRng::seed_from_u64(seed),
                3,
                Duration::from_secs(2),
                Duration::from_secs(10),
            )
        };
        assert_eq!(p(1), p(1));
        assert_ne!(p(1), p(2));
        let plan = p(3);
        assert_eq!(plan.last().map(|a| &a.fault), Some(&Fault::HealAll));
        assert!(plan.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(plan.iter().filter(|a| a.fault.is_fault()).count() >= 5);
    }
}
