//! The whole-node scenario's nemesis: power loss and restart, flaky drives, bit flips, a full
//! drive, a drive swapped for a blank one, clock jumps — drawn before the run from its own
//! stream; drive faults only on two drives per seed (the parity covers them).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use super::{SharedRef, DRIVES};
use crate::disk::DiskFaults;
use crate::s3node::NodeDisks;

#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// Power loss: the node and every disk; MemDb keeps a seeded prefix of unflushed batches.
    Crash,
    /// The node starts again on what its disks kept.
    Restart,
    /// Lost and misdirected writes on one of the two drives faults may hit.
    FlakyDrive(usize),
    /// One bit of one stored file on one of those drives.
    BitFlip(usize),
    /// The drive fills up: writes past a little more than it holds now fail with ENOSPC.
    FullDrive(usize),
    /// The drive is swapped for a blank one (every shard on it gone).
    LoseDrive(usize),
    /// The node's clock jumps by this many seconds.
    ClockJump(i64),
    /// Drives whole again, clock back, node up: the quiet period begins.
    HealAll,
}

/// The nemesis' plan from `start` over `window`, then everything healed.
pub(super) fn schedule(
    rng: &mut StdRng,
    start: Duration,
    window: Duration,
) -> Vec<(Duration, Fault)> {
    // Faults may only hit these two drives: the parity covers them.
    let first = rng.gen_range(0..DRIVES);
    let bad = [first, (first + rng.gen_range(1..DRIVES)) % DRIVES];
    let mut plan = Vec::new();
    let mut t = start + Duration::from_millis(rng.gen_range(100..800));
    while t < start + window {
        let fault = match rng.gen_range(0..12) {
            0..=2 => Fault::Crash,
            3..=4 => Fault::FlakyDrive(bad[rng.gen_range(0..2)]),
            5..=7 => Fault::BitFlip(bad[rng.gen_range(0..2)]),
            8 => Fault::FullDrive(bad[rng.gen_range(0..2)]),
            9 => Fault::LoseDrive(bad[rng.gen_range(0..2)]),
            _ => Fault::ClockJump(rng.gen_range(-600..600)),
        };
        plan.push((t, fault));
        if matches!(fault, Fault::Crash) {
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

pub(super) fn apply(
    sim: &mut turmoil::Sim<'_>,
    disks: &NodeDisks,
    shared: &SharedRef,
    rng: &mut StdRng,
    down: &mut bool,
    fault: Fault,
) -> String {
    match fault {
        Fault::Crash if *down => "crash: already down".to_owned(),
        Fault::Crash => {
            *down = true;
            sim.crash("n1");
            disks.fs.crash();
            let unflushed = disks.meta.unflushed();
            let keep = rng.gen_range(0..=unflushed);
            disks.meta.crash(keep);
            format!("power loss (metadata kept {keep} of {unflushed} unflushed batches)")
        }
        Fault::Restart | Fault::HealAll => {
            let was_down = std::mem::replace(down, false);
            if was_down {
                sim.bounce("n1");
            }
            if matches!(fault, Fault::HealAll) {
                for d in &disks.fs.drives {
                    d.set_faults(DiskFaults::default());
                }
                disks.clock.skew_ms.store(0, Ordering::Relaxed);
                shared.lock().healed = true;
                return format!("heal everything (restarted: {was_down})");
            }
            format!("restart (was down: {was_down})")
        }
        Fault::FlakyDrive(d) => {
            let f = DiskFaults {
                lost_write: rng.gen_range(0.0..0.3),
                misdirected_write: rng.gen_range(0.0..0.1),
                capacity: u64::MAX,
            };
            disks.fs.drives[d].set_faults(f);
            format!(
                "drive {d}: lose {:.2}, misdirect {:.2} of writes",
                f.lost_write, f.misdirected_write
            )
        }
        Fault::BitFlip(d) => match disks.fs.drives[d].flip_random_bit() {
            Some((path, bit)) => format!("drive {d}: flip bit {bit} of {}", path.display()),
            None => format!("drive {d}: nothing to flip"),
        },
        Fault::FullDrive(d) => {
            let drive = &disks.fs.drives[d];
            let room = rng.gen_range(0..3u64 << 20);
            let capacity = drive.used() + room;
            drive.set_faults(DiskFaults {
                capacity,
                ..DiskFaults::default()
            });
            format!("drive {d}: full after {room} more bytes")
        }
        Fault::LoseDrive(d) => {
            let lost = disks.fs.drives[d].wipe();
            format!("drive {d}: swapped for a blank one ({lost} files gone)")
        }
        Fault::ClockJump(secs) => {
            disks
                .clock
                .skew_ms
                .fetch_add(secs * 1000, Ordering::Relaxed);
            format!("clock jumps {secs} s")
        }
    }
}
