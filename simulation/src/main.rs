//! `coffer-simulation`: runs seeds of the metadata cluster simulation and reports.
//!
//! ```text
//! cargo run -p coffer-simulation --release -- --seeds 1..1000      # summary
//! cargo run -p coffer-simulation --release -- --seed 17 --trace    # one seed's event trace
//! SIM_SEED=17 cargo run -p coffer-simulation --release             # the same seed
//! COFFER_SIM_LOG=coffer_node=debug ... --once --trace                # with the nodes' logs
//! cargo run -p coffer-simulation --release -- --objects --seeds 1..50  # whole-node scenario
//! cargo run -p coffer-simulation --release -- --objects --nodes 3 --seeds 1..20  # a cluster
//! ```
//! Two scenarios: the metadata cluster (default) and, with `--objects`, whole nodes behind
//! their real S3 routers on simulated drives (`objects/`): one, or with `--nodes N` a cluster
//! whose shards travel over the simulated network.
//! Every seed runs twice and the two trace hashes must match (`--once` skips the second run).
//! `--expect-failure` inverts the exit status: the planted-bug build must fail some seed.

use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_simulation::cluster::{self, Report, SimConfig};
#[cfg(feature = "node-seams")]
use coffer_simulation::objects::{self, ObjectsConfig};

/// Which simulation a seed runs.
#[derive(Clone, Copy)]
enum Scenario {
    /// The metadata cluster (`cluster.rs`).
    Metadata,
    /// Whole nodes over their S3 routers (`objects/`): one, or a cluster of this many.
    Objects {
        /// Nodes.
        nodes: usize,
    },
}

struct Args {
    scenario: Scenario,
    seeds: Range<u64>,
    trace: bool,
    once: bool,
    jobs: usize,
    expect_failure: bool,
    quiet: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: coffer-simulation [--objects [--nodes N]] [--seeds A..B | --seed N] [--trace] [--once] \
         [--jobs N] [--expect-failure] [--quiet]\n       SIM_SEED=N coffer-simulation"
    );
    ExitCode::from(2)
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        scenario: Scenario::Metadata,
        seeds: 1..11,
        trace: false,
        once: false,
        jobs: 1,
        expect_failure: false,
        quiet: false,
    };
    if let Ok(s) = std::env::var("SIM_SEED") {
        let n: u64 = s
            .parse()
            .map_err(|_| format!("SIM_SEED={s} is not a number"))?;
        args.seeds = n..n + 1;
    }
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seeds" => {
                let v = value()?;
                let (from, to) = v
                    .split_once("..")
                    .ok_or(format!("--seeds {v}: want A..B"))?;
                let from: u64 = from.parse().map_err(|_| format!("--seeds {v}"))?;
                let to: u64 = to.parse().map_err(|_| format!("--seeds {v}"))?;
                if to <= from {
                    return Err(format!("--seeds {v}: empty range"));
                }
                args.seeds = from..to;
            }
            "--seed" => {
                let v = value()?;
                let n: u64 = v.parse().map_err(|_| format!("--seed {v}"))?;
                args.seeds = n..n + 1;
            }
            "--jobs" => {
                let v = value()?;
                args.jobs = v.parse().map_err(|_| format!("--jobs {v}"))?;
                args.jobs = args.jobs.max(1);
            }
            "--objects" => args.scenario = Scenario::Objects { nodes: 1 },
            "--nodes" => {
                let v = value()?;
                let nodes: usize = v.parse().map_err(|_| format!("--nodes {v}"))?;
                if !(1..=5).contains(&nodes) {
                    return Err(format!("--nodes {v}: 1 to 5"));
                }
                args.scenario = Scenario::Objects { nodes };
            }
            "--trace" => args.trace = true,
            "--once" => args.once = true,
            "--expect-failure" => args.expect_failure = true,
            "--quiet" => args.quiet = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// One run of `seed` on a fresh thread (so no thread-local state of an earlier run can reach
/// it), with a panic anywhere in the simulation reported as a violation.
fn guarded(scenario: Scenario, seed: u64, trace: bool) -> Report {
    let run = std::thread::spawn(move || match scenario {
        Scenario::Metadata => {
            let mut cfg = SimConfig::new(seed);
            cfg.keep_trace = trace;
            cluster::run(&cfg)
        }
        #[cfg(feature = "node-seams")]
        Scenario::Objects { nodes } => {
            let mut cfg = ObjectsConfig::new(seed);
            cfg.keep_trace = trace;
            cfg.nodes = nodes;
            objects::run(&cfg)
        }
        #[cfg(not(feature = "node-seams"))]
        Scenario::Objects { .. } => {
            panic!("--objects needs the node-seams feature (on by default)")
        }
    })
    .join();
    match run {
        Ok(r) => r,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            Report {
                seed,
                trace_hash: 0,
                events: 0,
                trace: Vec::new(),
                sim_time: Duration::ZERO,
                ops: 0,
                unknown: 0,
                faults: 0,
                terms: 0,
                violations: vec![format!("panic: {message}")],
                non_linearizable_keys: 0,
            }
        }
    }
}

/// A seed's report and, if its two runs diverged, how.
type SeedResult = (Report, Option<String>);

/// One seed: run (twice unless `once`) and compare the hashes.
fn run_seed(scenario: Scenario, seed: u64, trace: bool, once: bool) -> SeedResult {
    let first = guarded(scenario, seed, trace);
    if once {
        return (first, None);
    }
    let second = guarded(scenario, seed, false);
    let diverged =
        (second.trace_hash != first.trace_hash || second.events != first.events).then(|| {
            format!(
                "nondeterminism: trace hash {:016x} ({} events) then {:016x} ({} events)",
                first.trace_hash, first.events, second.trace_hash, second.events
            )
        });
    (first, diverged)
}

/// Log lines carry the simulated time in milliseconds, as the trace does, so the two line up.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>10.3}", t.as_secs_f64() * 1000.0),
            None => write!(w, "{:>10}", "-"),
        }
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return usage();
        }
    };
    // The nodes' own logs, for debugging a replay; they are not part of the hashed trace.
    if let Ok(filter) = std::env::var("COFFER_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_timer(SimTime)
            .init();
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(args.seeds.start));
    let results: Arc<Mutex<Vec<SeedResult>>> = Arc::default();
    let workers: Vec<_> = (0..args.jobs.min((args.seeds.end - args.seeds.start) as usize))
        .map(|_| {
            let (next, results, end) = (next.clone(), results.clone(), args.seeds.end);
            let (trace, once, quiet, scenario) = (args.trace, args.once, args.quiet, args.scenario);
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    return;
                }
                let (report, diverged) = run_seed(scenario, seed, trace, once);
                if !quiet {
                    let verdict = if report.passed() && diverged.is_none() { "ok" } else { "FAIL" };
                    println!(
                        "seed {seed}: {verdict} hash {:016x} events {} ops {} unknown {} faults {} terms {} sim {:.1} s",
                        report.trace_hash,
                        report.events,
                        report.ops,
                        report.unknown,
                        report.faults,
                        report.terms,
                        report.sim_time.as_secs_f64()
                    );
                }
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((report, diverged));
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            eprintln!("a simulation worker panicked");
            return ExitCode::FAILURE;
        }
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|(r, _)| r.seed);
    let mut failed = Vec::new();
    let mut sim_time = Duration::ZERO;
    for (report, diverged) in &results {
        sim_time += report.sim_time;
        if args.trace {
            for line in &report.trace {
                println!("{line}");
            }
        }
        if !report.passed() || diverged.is_some() {
            failed.push(report.seed);
            if args.quiet && failed.len() > 3 {
                // --quiet: the first three failures in full, the rest in the summary count.
                continue;
            }
            println!("\nseed {} FAILED:", report.seed);
            for v in report.violations.iter().chain(diverged) {
                println!("  {v}");
            }
            println!(
                "  replay: SIM_SEED={} cargo run -p coffer-simulation --release -- --trace{}",
                report.seed,
                match args.scenario {
                    Scenario::Metadata => String::new(),
                    Scenario::Objects { nodes: 1 } => " --objects".to_owned(),
                    Scenario::Objects { nodes } => format!(" --objects --nodes {nodes}"),
                }
            );
        }
    }
    println!(
        "\nsimulation: {} seeds, {} failed{}, {:.0} s simulated, {:.1} s wall, determinism {}",
        results.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (SIM_SEED={})", failed[0])
        },
        sim_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        if args.once {
            "not checked"
        } else {
            "checked (every seed ran twice)"
        }
    );
    // The planted bug loses acknowledged writes: only a linearizability violation counts as
    // catching it (a panic or a timeout could have other causes).
    let caught = results
        .iter()
        .filter(|(r, _)| r.non_linearizable_keys > 0)
        .count();
    let diverged = results.iter().filter(|(_, d)| d.is_some()).count();
    match (args.expect_failure, failed.is_empty()) {
        (false, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::FAILURE,
        // Failing seeds must replay too, or a failure could not be debugged from its seed.
        (true, _) if diverged > 0 => {
            println!("--expect-failure: {diverged} seeds did not replay to the same trace");
            ExitCode::FAILURE
        }
        (true, _) if caught > 0 => {
            println!(
                "expected failures found: {caught} seeds lost acknowledged writes (not \
                 linearizable); the checkers caught the planted bug"
            );
            ExitCode::SUCCESS
        }
        (true, _) => {
            println!(
                "--expect-failure: no seed showed a non-linearizable history; the checkers \
                 missed the planted bug"
            );
            ExitCode::FAILURE
        }
    }
}
