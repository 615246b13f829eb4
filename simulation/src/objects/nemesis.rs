//! The whole-node scenario's nemesis: power loss and restart, flaky drives, bit flips, a full
//! drive, a drive swapped for a blank one, clock jumps, and in a cluster partitions and lossy
//! links — drawn before the run from its own stream, never more out at once than the parity
//! covers.

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
/// `nodes` (3+3 over six drives) gets crashes and partitions of one node at a time and
/// faults on one drive: never more than the parity's three shards out at once.
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

/// What the nemesis has out of order: the node (index) that is down or cut off, and which.
#[derive(Debug, Default)]
pub(super) struct Impaired {
    down: Option<usize>,
    isolated: Option<usize>,
}

impl Impaired {
    fn any(&self) -> bool {
        self.down.is_some() || self.isolated.is_some()
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
        Fault::Crash(_) | Fault::Isolate(_) if out.any() => {
            // One node out at a time: its two shards and one bad drive are the parity's three.
            if to.disks.len() == 1 {
                "crash: already down".to_owned()
            } else {
                format!("{fault:?}: a node is already out")
            }
        }
        Fault::Crash(n) => {
            out.down = Some(n);
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
            let was_down = out.down.take();
            if let Some(n) = was_down {
                sim.bounce(format!("n{}", n + 1));
            }
            let was_down = was_down.is_some();
            if matches!(fault, Fault::HealAll) {
                for disks in to.disks {
                    for d in &disks.fs.drives {
                        d.set_faults(DiskFaults::default());
                    }
                    disks.clock.skew_ms.store(0, Ordering::Relaxed);
                }
                if to.disks.len() > 1 {
                    out.isolated = None;
                    to.net.heal();
                    to.net.set_faults(LinkFaults::default());
                }
                to.shared.lock().healed = true;
                return format!("heal everything (restarted: {was_down})");
            }
            format!("restart (was down: {was_down})")
        }
        Fault::Isolate(n) => {
            out.isolated = Some(n);
            to.net.isolate(NODE + n as u64);
            format!("n{} cut off", n + 1)
        }
        Fault::Reconnect => {
            out.isolated = None;
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
