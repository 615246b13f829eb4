//! The whole-node scenario's nemesis: power loss and restart, flaky drives, bit flips, a full
//! drive, a drive swapped for a blank one, clock jumps, and in a cluster partitions and lossy
//! links — drawn before the run from its own stream, never more lost for good than the parity
//! covers, and in five nodes and more two nodes out at once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use super::{SharedRef, DRIVES, MEMBER_DRIVES, NODE};
use crate::disk::DiskFaults;
use crate::net::{LinkFaults, SimNet};
use crate::s3node::NodeDisks;

#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// Power loss of node `n` (index): the node and every disk; MemDb keeps a seeded prefix of
    /// unflushed batches.
    Crash(usize),
    /// The node that is down starts again on what its disks kept.
    Restart,
    /// Lost and misdirected writes on drive `d` of node `n`, one of the drives faults may hit.
    FlakyDrive(usize, usize),
    /// One bit of one stored file on that drive.
    BitFlip(usize, usize),
    /// The drive fills up: writes past a little more than it holds now fail with ENOSPC.
    FullDrive(usize, usize),
    /// The drive is swapped for a blank one (every shard on it gone).
    LoseDrive(usize, usize),
    /// Node `n`'s clock jumps by this many seconds.
    ClockJump(usize, i64),
    /// Node `n` is cut off from every peer and client (a cluster only).
    Isolate(usize),
    /// Every cut link works again.
    Reconnect,
    /// Every link loses and duplicates messages (a cluster only).
    Lossy,
    /// Drives whole again, clocks back, links whole, every node up: the quiet period begins.
    HealAll,
}

/// The nemesis' plan from `start` over `window`, then everything healed. A single node gets
/// crashes and drive faults on two of its drives (the parity covers them); a cluster of
/// `nodes` gets crashes and partitions ([`max_out`] nodes at a time) and faults on one drive.
/// Three nodes (3+3 over six drives): one node's two shards and the bad drive, never more than
/// the parity's three out at once. Five (6+4 over ten): two nodes and the bad drive may be out
/// together, five shards, so a read may have to wait for a node; but a node that is out keeps
/// its shards, so only the bad drive's one shard can be lost for good, and every write
/// acknowledged at the write quorum (7) keeps at least six.
pub(super) fn schedule(
    rng: &mut StdRng,
    start: Duration,
    window: Duration,
    nodes: usize,
) -> Vec<(Duration, Fault)> {
    if nodes > 1 {
        return schedule_cluster(rng, start, window, nodes);
    }
    // Faults may only hit these two drives: the parity covers them.
    let first = rng.gen_range(0..DRIVES);
    let bad = [first, (first + rng.gen_range(1..DRIVES)) % DRIVES];
    let mut plan = Vec::new();
    let mut t = start + Duration::from_millis(rng.gen_range(100..800));
    while t < start + window {
        let fault = match rng.gen_range(0..12) {
            0..=2 => Fault::Crash(0),
            3..=4 => Fault::FlakyDrive(0, bad[rng.gen_range(0..2)]),
            5..=7 => Fault::BitFlip(0, bad[rng.gen_range(0..2)]),
            8 => Fault::FullDrive(0, bad[rng.gen_range(0..2)]),
            9 => Fault::LoseDrive(0, bad[rng.gen_range(0..2)]),
            _ => Fault::ClockJump(0, rng.gen_range(-600..600)),
        };
        plan.push((t, fault));
        if matches!(fault, Fault::Crash(_)) {
            plan.push((
                t + Duration::from_millis(rng.gen_range(50..1500)),
                Fault::Restart,
            ));
        }
        t += Duration::from_millis(rng.gen_range(300..1500));
    }
    plan.push((start + window, Fault::HealAll));
    plan.sort_by_key(|(at, _)| *at);
    plan
}

fn schedule_cluster(
    rng: &mut StdRng,
    start: Duration,
    window: Duration,
    nodes: usize,
) -> Vec<(Duration, Fault)> {
    let bad = (rng.gen_range(0..nodes), rng.gen_range(0..MEMBER_DRIVES));
    let mut plan = Vec::new();
    let mut t = start + Duration::from_millis(rng.gen_range(100..800));
    while t < start + window {
        let n = rng.gen_range(0..nodes);
        let fault = match rng.gen_range(0..14) {
            0..=2 => Fault::Crash(n),
            3..=4 => Fault::Isolate(n),
            5 => Fault::Lossy,
            6 => Fault::FlakyDrive(bad.0, bad.1),
            7..=8 => Fault::BitFlip(bad.0, bad.1),
            9 => Fault::FullDrive(bad.0, bad.1),
            10 => Fault::LoseDrive(bad.0, bad.1),
            _ => Fault::ClockJump(n, rng.gen_range(-600..600)),
        };
        plan.push((t, fault));
        let back = t + Duration::from_millis(rng.gen_range(200..2500));
        match fault {
            Fault::Crash(_) => plan.push((back, Fault::Restart)),
            Fault::Isolate(_) => plan.push((back, Fault::Reconnect)),
            _ => {}
        }
        t += Duration::from_millis(rng.gen_range(300..1500));
    }
    plan.push((start + window, Fault::HealAll));
    plan.sort_by_key(|(at, _)| *at);
    plan
}

/// Nodes the nemesis may have down or cut off at once in a cluster of `nodes`: a Raft
/// minority, and one node at a time below five (the parity of 3+3 covers one node's shards and
/// the bad drive).
pub(super) fn max_out(nodes: usize) -> usize {
    if nodes >= 5 {
        2
    } else {
        1
    }
}

/// What the nemesis has out of order: the nodes (indices) that are down, oldest first, and cut
/// off.
#[derive(Debug)]
pub(super) struct Impaired {
    down: std::collections::VecDeque<usize>,
    isolated: Vec<usize>,
    max_out: usize,
}

impl Impaired {
    /// Nothing out yet, at most `max_out` nodes at a time.
    pub(super) fn new(max_out: usize) -> Self {
        Self {
            down: Default::default(),
            isolated: Vec::new(),
            max_out,
        }
    }

    /// Whether node `n` may not go out now: it is out already, or the limit is reached.
    fn refuses(&self, n: usize) -> bool {
        self.down.len() + self.isolated.len() >= self.max_out
            || self.down.contains(&n)
            || self.isolated.contains(&n)
    }
}

/// The whole-node harness the nemesis acts on.
pub(super) struct Targets<'a> {
    pub(super) disks: &'a [NodeDisks],
    pub(super) net: &'a SimNet,
    pub(super) shared: &'a SharedRef,
}

impl Targets<'_> {
    /// How a drive is named in the trace ("drive 1" alone, "n2 drive 1" in a cluster).
    fn drive(&self, n: usize, d: usize) -> String {
        if self.disks.len() == 1 {
            format!("drive {d}")
        } else {
            format!("n{} drive {d}", n + 1)
        }
    }

    /// A node's prefix in the trace ("" alone).
    fn node(&self, n: usize) -> String {
        if self.disks.len() == 1 {
            String::new()
        } else {
            format!("n{} ", n + 1)
        }
    }
}

pub(super) fn apply(
    sim: &mut turmoil::Sim<'_>,
    to: &Targets<'_>,
    rng: &mut StdRng,
    out: &mut Impaired,
    fault: Fault,
) -> String {
    match fault {
        Fault::Crash(n) | Fault::Isolate(n) if out.refuses(n) => {
            if to.disks.len() == 1 {
                "crash: already down".to_owned()
            } else if out.max_out == 1 {
                format!("{fault:?}: a node is already out")
            } else {
                format!("{fault:?}: out already or {} nodes out", out.max_out)
            }
        }
        Fault::Crash(n) => {
            out.down.push_back(n);
            let disks = &to.disks[n];
            sim.crash(format!("n{}", n + 1));
            disks.fs.crash();
            let unflushed = disks.meta.unflushed();
            let keep = rng.gen_range(0..=unflushed);
            disks.meta.crash(keep);
            format!(
                "{}power loss (metadata kept {keep} of {unflushed} unflushed batches)",
                to.node(n)
            )
        }
        Fault::Restart | Fault::HealAll => {
            let back: Vec<usize> = if matches!(fault, Fault::HealAll) {
                out.down.drain(..).collect()
            } else {
                out.down.pop_front().into_iter().collect()
            };
            for n in &back {
                sim.bounce(format!("n{}", n + 1));
            }
            let was_down = !back.is_empty();
            if matches!(fault, Fault::HealAll) {
                for disks in to.disks {
                    for d in &disks.fs.drives {
                        d.set_faults(DiskFaults::default());
                    }
                    disks.clock.skew_ms.store(0, Ordering::Relaxed);
                }
                if to.disks.len() > 1 {
                    out.isolated.clear();
                    to.net.heal();
                    to.net.set_faults(LinkFaults::default());
                }
                to.shared.lock().healed = true;
                return format!("heal everything (restarted: {was_down})");
            }
            format!("restart (was down: {was_down})")
        }
        Fault::Isolate(n) => {
            out.isolated.push(n);
            to.net.isolate(NODE + n as u64);
            format!("n{} cut off", n + 1)
        }
        Fault::Reconnect => {
            out.isolated.clear();
            to.net.heal();
            "links whole again".to_owned()
        }
        Fault::Lossy => {
            let f = LinkFaults {
                loss: rng.gen_range(0.0..0.05),
                duplicate: rng.gen_range(0.0..0.05),
                ..LinkFaults::default()
            };
            to.net.set_faults(f);
            format!(
                "links lose {:.3}, duplicate {:.3} of messages",
                f.loss, f.duplicate
            )
        }
        Fault::FlakyDrive(n, d) => {
            let f = DiskFaults {
                lost_write: rng.gen_range(0.0..0.3),
                misdirected_write: rng.gen_range(0.0..0.1),
                capacity: u64::MAX,
            };
            to.disks[n].fs.drives[d].set_faults(f);
            format!(
                "{}: lose {:.2}, misdirect {:.2} of writes",
                to.drive(n, d),
                f.lost_write,
                f.misdirected_write
            )
        }
        Fault::BitFlip(n, d) => match to.disks[n].fs.drives[d].flip_random_bit() {
            Some((path, bit)) => {
                format!("{}: flip bit {bit} of {}", to.drive(n, d), path.display())
            }
            None => format!("{}: nothing to flip", to.drive(n, d)),
        },
        Fault::FullDrive(n, d) => {
            let drive = &to.disks[n].fs.drives[d];
            let room = rng.gen_range(0..3u64 << 20);
            let capacity = drive.used() + room;
            drive.set_faults(DiskFaults {
                capacity,
                ..DiskFaults::default()
            });
            format!("{}: full after {room} more bytes", to.drive(n, d))
        }
        Fault::LoseDrive(n, d) => {
            let lost = to.disks[n].fs.drives[d].wipe();
            format!(
                "{}: swapped for a blank one ({lost} files gone)",
                to.drive(n, d)
            )
        }
        Fault::ClockJump(n, secs) => {
            to.disks[n]
                .clock
                .skew_ms
                .fetch_add(secs * 1000, Ordering::Relaxed);
            format!("{}clock jumps {secs} s", to.node(n))
        }
    }
}
