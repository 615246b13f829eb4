//! The object scenario: one whole node — the real start-up path, S3 router, SigV4 check, key
//! service, encrypting and erasure-coding data path — on four simulated drives (2 data + 2
//! parity), with clients issuing S3 operations and a nemesis of node crashes, drive faults and
//! clock jumps.
//!
//! Checkers: per-key linearizability of what PUT, conditional PUT, DELETE and GET saw (so every
//! acknowledged write survives a crash); every body read is exactly the bytes written (a GET's
//! whole body, a ranged GET's slice, a HEAD's length), never other bytes; no 500; liveness after
//! the faults; and after the run no object byte and no user-metadata value in plaintext on any
//! simulated disk or in the metadata store. Drive faults hit at most two drives (the parity),
//! so no acknowledged object may be lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use coffer_cluster::NodeId;
use coffer_metadata::kv::MemDb;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::check::{self, Event};
use crate::cluster::{sub_seed, Report};
use crate::disk::{DiskFaults, SimDisk};
use crate::net::{LinkFaults, SimNet};
use crate::s3node::{self, NodeDisks, SimClock, SimFs};
use crate::Trace;

mod client;
mod nemesis;

use client::Client;
use nemesis::{apply, schedule, Fault};

/// How one seed's run is shaped.
#[derive(Debug, Clone)]
pub struct ObjectsConfig {
    /// The master seed.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Object keys the clients share (`k*`).
    pub keys: usize,
    /// SSE-C object keys the clients share (`s*`).
    pub ssec_keys: usize,
    /// Operations per client.
    pub ops: usize,
    /// Whole nodes: 1 (four drives, 2+2) or a cluster of this many with two drives each,
    /// joined through node 1 over the simulated network.
    pub nodes: usize,
    /// How long the nemesis acts, from the first client operation.
    pub fault_window: Duration,
    /// Keep the trace lines (`--trace`).
    pub keep_trace: bool,
}

impl ObjectsConfig {
    /// The configuration of `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            clients: 3,
            keys: 4,
            ssec_keys: 2,
            ops: 24,
            nodes: 1,
            fault_window: Duration::from_secs(8),
            keep_trace: false,
        }
    }
}

pub(super) const NODE: NodeId = 1;
/// Drives of a single node.
pub(super) const DRIVES: usize = 4;
/// Drives of each cluster member.
pub(super) const MEMBER_DRIVES: usize = 2;
pub(super) const BUCKET: &str = "sim";
/// Every object body starts with this and its value id; the plaintext scan looks for it.
pub(super) const BODY_MARK: &[u8] = b"SIMPLAIN:";
/// Every object carries `x-amz-meta-note: SIMMETA:<value id>`.
pub(super) const META_MARK: &[u8] = b"SIMMETA:";
pub(super) const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// S3's smallest part but the last.
pub(super) const MIN_PART: usize = 5 << 20;

const STREAM_TURMOIL: u64 = 11;
const STREAM_NET: u64 = 12;
const STREAM_NEMESIS: u64 = 13;
const STREAM_DISK: u64 = 14;
const STREAM_KMS: u64 = 15;
const STREAM_ENTROPY: u64 = 1_000;
pub(super) const STREAM_CLIENT: u64 = 2_000;

/// The body of value `id` with `len` bytes: a pure function of both.
pub(super) fn body(id: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(BODY_MARK);
    out.extend_from_slice(id.as_bytes());
    out.push(b'|');
    let mut s = id.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    while out.len() < len {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The value id a body names, if it has the marker.
pub(super) fn id_of(b: &[u8]) -> Option<String> {
    let rest = b.strip_prefix(BODY_MARK)?;
    let end = rest.iter().position(|&c| c == b'|')?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[derive(Default)]
pub(super) struct Shared {
    pub(super) trace: Trace,
    pub(super) lines: Option<Vec<String>>,
    pub(super) histories: BTreeMap<String, Vec<Event>>,
    /// Every value ever sent per key (id, length): what a ranged read may show.
    pub(super) sent: BTreeMap<String, Vec<(String, usize)>>,
    /// Every ETag seen, bare, and the value (id, length) it names.
    pub(super) etags: BTreeMap<String, (String, usize)>,
    /// The last ETag seen per key.
    pub(super) key_etags: BTreeMap<String, String>,
    /// Each node's root credentials, once it serves.
    pub(super) creds: BTreeMap<NodeId, (String, String)>,
    /// Nodes whose start-up finished (members join once node 1 is among them).
    pub(super) members_up: std::collections::BTreeSet<NodeId>,
    /// The admin token each node showed on its first start.
    pub(super) admin_tokens: BTreeMap<NodeId, String>,
    pub(super) bucket_ready: bool,
    /// Sim µs of the first workload operation (the nemesis starts then).
    pub(super) started_at: Option<u64>,
    pub(super) healed: bool,
    pub(super) violations: Vec<String>,
    pub(super) ops: usize,
    pub(super) unknown: usize,
    pub(super) clients_done: u64,
}

#[derive(Clone, Default)]
pub(super) struct SharedRef(Arc<Mutex<Shared>>);

impl SharedRef {
    pub(super) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn record(&self, who: &str, what: &str) {
        self.record_at(now(), who, what);
    }

    /// [`SharedRef::record`] at `at` (the harness, outside any host, passes the sim's time).
    fn record_at(&self, at: Duration, who: &str, what: &str) {
        let line = format!("{:>10.3} {who:>4} {what}", at.as_secs_f64() * 1e3);
        let mut s = self.lock();
        s.trace.record(line.as_bytes());
        if let Some(lines) = &mut s.lines {
            lines.push(line);
        }
    }

    pub(super) fn violation(&self, who: &str, what: String) {
        self.record(who, &format!("VIOLATION {what}"));
        self.lock().violations.push(what);
    }
}

pub(super) fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs one seed of the object scenario.
pub fn run(cfg: &ObjectsConfig) -> Report {
    crate::task_ids::align_task_ids();
    coffer_metadata::runtime::seed_thread_rng(sub_seed(cfg.seed, 4));
    let report = run_inner(cfg);
    coffer_metadata::runtime::unseed_thread_rng();
    coffer_node::seams::stages::run_inline_on_this_thread(false);
    report
}

fn run_inner(cfg: &ObjectsConfig) -> Report {
    let shared = SharedRef::default();
    if cfg.keep_trace {
        shared.lock().lines = Some(Vec::new());
    }
    let net = SimNet::new(sub_seed(cfg.seed, STREAM_NET), LinkFaults::default());
    let disk_seed = sub_seed(cfg.seed, STREAM_DISK);
    let per_node = if cfg.nodes > 1 { MEMBER_DRIVES } else { DRIVES };
    let all_disks: Vec<NodeDisks> = (0..cfg.nodes as u64)
        .map(|n| {
            // Node 0's seeds are the single node's, so that scenario's traces stay as they were.
            let seed = disk_seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            NodeDisks {
                fs: SimFs {
                    system: SimDisk::new(100, seed, DiskFaults::default()),
                    drives: (0..per_node)
                        .map(|i| {
                            SimDisk::new(i as u64, seed ^ (i as u64 + 1), DiskFaults::default())
                        })
                        .collect(),
                },
                meta: MemDb::new(),
                clock: SimClock::default(),
            }
        })
        .collect();
    let cluster = (cfg.nodes > 1).then(|| {
        use base64::Engine as _;
        let mut rng = StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_KMS));
        let root: [u8; 32] = rand::Rng::gen(&mut rng);
        s3node::SimCluster {
            kms_key: base64::engine::general_purpose::STANDARD.encode(root),
        }
    });
    let total_drives = per_node * cfg.nodes;
    let mut sim = turmoil::Builder::new()
        .rng_seed(sub_seed(cfg.seed, STREAM_TURMOIL))
        .simulation_duration(Duration::from_secs(240))
        .build();
    for (n, disks) in all_disks.iter().enumerate() {
        let id = NODE + n as NodeId;
        let name = format!("n{id}");
        let starts = Arc::new(AtomicU64::new(0));
        let (net, disks, shared, seed) = (net.clone(), disks.clone(), shared.clone(), cfg.seed);
        let cluster = cluster.clone();
        sim.host(name.clone().as_str(), move || {
            let (net, disks, shared, starts, cluster, name) = (
                net.clone(),
                disks.clone(),
                shared.clone(),
                starts.clone(),
                cluster.clone(),
                name.clone(),
            );
            async move {
                let start = starts.fetch_add(1, Ordering::Relaxed);
                // Members join through node 1: they start once it serves.
                while id != NODE && !shared.lock().members_up.contains(&NODE) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // Streams of node 0 are the single node's (its traces stay as they were).
                let entropy = sub_seed(seed, STREAM_ENTROPY + start + 100 * n as u64);
                let node = s3node::start(id, &net, &disks, entropy, cluster.as_ref()).await?;
                shared.lock().members_up.insert(id);
                if cluster.is_some() && start == 0 {
                    // Serving once the layout holds every member's drives, so that the
                    // workload's objects spread over the whole cluster.
                    while node.service.shard_layout().width() < total_drives.min(16) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                {
                    let mut s = shared.lock();
                    s.creds.insert(
                        id,
                        (
                            node.credentials.access_key.clone(),
                            node.credentials.secret.as_str().to_owned(),
                        ),
                    );
                    if let Some(token) = &node.new_admin_token {
                        s.admin_tokens.insert(id, token.to_string());
                    }
                }
                shared.record(&name, &format!("node up (start {start})"));
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    for c in 0..cfg.clients {
        let (cfg2, net, shared) = (cfg.clone(), net.clone(), shared.clone());
        sim.client(format!("c{c}"), async move {
            let mut client = Client::new(&cfg2, c, &net, shared);
            client.run(&cfg2).await;
            Ok(())
        });
    }

    let mut nemesis = StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_NEMESIS));
    let mut plan: Option<Vec<(Duration, Fault)>> = None;
    let mut out = nemesis::Impaired::new(nemesis::max_out(cfg.nodes));
    let mut faults = 0usize;
    let mut failure = None;
    loop {
        let t = sim.elapsed();
        let started = shared.lock().started_at;
        if let (Some(at), None) = (started, &plan) {
            plan = Some(schedule(
                &mut nemesis,
                Duration::from_micros(at),
                cfg.fault_window,
                cfg.nodes,
            ));
        }
        if let Some(p) = &mut plan {
            while p.first().is_some_and(|(at, _)| *at <= t) {
                let (_, fault) = p.remove(0);
                faults += usize::from(!matches!(
                    fault,
                    Fault::Restart | Fault::Reconnect | Fault::HealAll
                ));
                let targets = nemesis::Targets {
                    disks: &all_disks,
                    net: &net,
                    shared: &shared,
                };
                let what = apply(&mut sim, &targets, &mut nemesis, &mut out, fault);
                shared.record_at(t, "nem", &what);
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                failure = Some(format!("a host or client failed: {e}"));
                break;
            }
        }
    }
    let sim_time = sim.elapsed();
    drop(sim);

    let mut s = shared.lock();
    let mut violations = std::mem::take(&mut s.violations);
    violations.extend(failure);
    if s.clients_done < cfg.clients {
        violations.push(format!(
            "only {} of {} clients finished",
            s.clients_done, cfg.clients
        ));
    }
    let bad_keys = check::check_keys(&s.histories);
    let non_linearizable_keys = bad_keys.len();
    violations.extend(bad_keys.iter().map(ToString::to_string));
    for disks in &all_disks {
        violations.extend(plaintext_on(disks));
    }
    Report {
        seed: cfg.seed,
        trace_hash: s.trace.hash(),
        events: s.trace.events(),
        trace: s.lines.take().unwrap_or_default(),
        sim_time,
        ops: s.ops,
        unknown: s.unknown,
        faults,
        terms: 0,
        violations,
        non_linearizable_keys,
    }
}

/// Every place a known plaintext shows up: object bodies and user metadata must be sealed on
/// every disk (drives, data directory) and in the metadata store.
fn plaintext_on(disks: &NodeDisks) -> Vec<String> {
    let mut found = Vec::new();
    let mut scan = |what: String, data: &[u8]| {
        for mark in [BODY_MARK, META_MARK] {
            if data.windows(mark.len()).any(|w| w == mark) {
                found.push(format!(
                    "plaintext {:?} in {what}",
                    String::from_utf8_lossy(mark)
                ));
            }
        }
    };
    for disk in disks.fs.all() {
        for (path, data) in disk.contents() {
            scan(path.display().to_string(), &data);
        }
    }
    for (tree, key, value) in disks.meta.contents() {
        scan(format!("metadata tree {tree}"), &key);
        scan(format!("metadata tree {tree}"), &value);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_their_value() {
        let b = body("c1o7", 1000);
        assert_eq!(b.len(), 1000);
        assert_eq!(id_of(&b).as_deref(), Some("c1o7"));
        assert_eq!(body("c1o7", 1000), b, "a pure function");
        assert_ne!(body("c1o8", 1000)[20..], b[20..]);
        assert_eq!(id_of(b"junk"), None);
    }

    #[test]
    fn the_plaintext_scan_finds_markers_on_drives_and_in_metadata() {
        use coffer_node::seams::DriveIo;
        let disks = || NodeDisks {
            fs: SimFs {
                system: SimDisk::new(100, 1, DiskFaults::default()),
                drives: vec![SimDisk::new(0, 2, DiskFaults::default())],
            },
            meta: MemDb::new(),
            clock: SimClock::default(),
        };
        let clean = disks();
        clean
            .fs
            .write_file(std::path::Path::new("/drive0/x"), b"sealed bytes", 0o600)
            .unwrap();
        assert!(plaintext_on(&clean).is_empty());
        let leaky = disks();
        let mut data = b"header ".to_vec();
        data.extend_from_slice(&body("c0o1", 100));
        leaky
            .fs
            .write_file(std::path::Path::new("/drive0/shard"), &data, 0o600)
            .unwrap();
        let found = plaintext_on(&leaky);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("/drive0/shard"));
        let tree = coffer_metadata::kv::Db::mem(&leaky.meta)
            .open_tree("objects")
            .unwrap();
        tree.insert(b"k", b"note=SIMMETA:c0o1".to_vec()).unwrap();
        assert_eq!(plaintext_on(&leaky).len(), 2);
    }
}
