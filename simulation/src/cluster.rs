//! A metadata cluster under faults: real `MetaStore`s (openraft, the state machine, forwarding,
//! read barriers) on turmoil hosts over [`SimNet`] and [`MemDb`], clients issuing writes,
//! compare-and-sets and linearizable reads of records, a nemesis drawn from the seed, then a
//! quiet period and the checks (see `docs/simulation.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, Handlers, NodeId, RpcHandler, Transport};
use coffer_metadata::kv::{Db, MemDb};
use coffer_metadata::{MetaError, MetaOptions, MetaStore, RecordExpect};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::check::{self, Event, Leaders, Op, Outcome};
use crate::nemesis::{self, Action, Fault};
use crate::net::{LinkFaults, SimNet};
use crate::Trace;

/// The channel simulated clients call a node's metadata store on.
const KV_CHANNEL: &str = "sim/kv";
/// The record namespace the workload writes.
const NAMESPACE: &str = "sim";
/// A client's deadline per operation.
const CLIENT_DEADLINE: Duration = Duration::from_secs(4);
/// First client id (nodes are 1..=nodes).
const CLIENT_BASE: NodeId = 100;

/// What one run does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The master seed; every random choice derives from it.
    pub seed: u64,
    /// Metadata nodes (ids 1..=nodes).
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Keys the workload touches.
    pub keys: usize,
    /// Upper bound on operations per client during the fault window.
    pub max_ops: usize,
    /// How long faults are injected after the cluster formed.
    pub fault_window: Duration,
    /// How long the cluster is left alone after the faults stop before the final checks.
    pub quiet: Duration,
    /// After the quiet period every node must accept a write within this bound.
    pub liveness_bound: Duration,
    /// Inject faults (off: the same workload on a healthy cluster).
    pub faults: bool,
    /// Keep the readable event lines (`--trace`), not just their hash.
    pub keep_trace: bool,
}

impl SimConfig {
    /// The defaults CI runs, for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            // Every third seed runs five nodes (two may fail), the others three.
            nodes: if seed.is_multiple_of(3) { 5 } else { 3 },
            clients: 3,
            keys: 5,
            max_ops: 60,
            fault_window: Duration::from_secs(12),
            quiet: Duration::from_secs(3),
            liveness_bound: Duration::from_secs(10),
            faults: true,
            keep_trace: false,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Hash of the event trace.
    pub trace_hash: u64,
    /// Number of events.
    pub events: u64,
    /// The event lines (when kept).
    pub trace: Vec<String>,
    /// Simulated time the run took.
    pub sim_time: Duration,
    /// Client operations issued.
    pub ops: usize,
    /// Operations whose outcome stayed unknown.
    pub unknown: usize,
    /// Faults injected.
    pub faults: usize,
    /// Terms that had a leader.
    pub terms: usize,
    /// Every invariant that failed; empty for a passing run.
    pub violations: Vec<String>,
    /// How many keys had a history that is not linearizable (a lost acknowledged write, a
    /// read of a value never written or overwritten, ...), among `violations`.
    pub non_linearizable_keys: usize,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// SplitMix64: independent sub-seeds from the master seed, one per named stream, so adding
/// a draw to one stream (say the workload) does not shift another (the nemesis).
pub fn sub_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const STREAM_TURMOIL: u64 = 1;
const STREAM_NET: u64 = 2;
const STREAM_NEMESIS: u64 = 3;
const STREAM_RAFT: u64 = 4;
const STREAM_DISK: u64 = 5;
const STREAM_CLIENT: u64 = 100;

/// State the hosts and the harness share; only ever touched from the simulation thread.
#[derive(Default)]
struct Shared {
    trace: Trace,
    lines: Option<Vec<String>>,
    leaders: Leaders,
    /// Each running node's last (term, is leader).
    roles: BTreeMap<NodeId, (u64, bool)>,
    histories: BTreeMap<String, Vec<Event>>,
    /// Sim time (µs) at which every node became a voter.
    ready_at: Option<u64>,
    /// Sim time (µs) at which the nemesis stopped and everything was healed.
    healed_at: Option<u64>,
    violations: Vec<String>,
    ops: usize,
    unknown: usize,
}

#[derive(Clone, Default)]
struct SharedRef(Arc<Mutex<Shared>>);

impl SharedRef {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, at: Duration, who: &str, what: &str) {
        let line = format!("{:>10.3} {who:>4} {what}", at.as_secs_f64() * 1e3);
        let mut s = self.lock();
        s.trace.record(line.as_bytes());
        if let Some(lines) = &mut s.lines {
            lines.push(line);
        }
    }
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[derive(Serialize, Deserialize, Debug)]
enum KvRequest {
    Write {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    Cas {
        key: String,
        expect: Option<String>,
        value: String,
    },
    Read {
        key: String,
    },
}

#[derive(Serialize, Deserialize, Debug)]
enum KvReply {
    Done,
    Failed,
    Value(Option<String>),
    Error(String),
    /// Client side only: the request never reached the node.
    NotDelivered,
}

/// Serves the workload's calls on a node: the role the S3 layer plays for object requests.
struct KvHandler {
    meta: MetaStore,
}

#[async_trait::async_trait]
impl RpcHandler for KvHandler {
    async fn handle(&self, _from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        let req: KvRequest = serde_json::from_slice(&payload).map_err(|e| HandlerError {
            message: format!("bad request: {e}"),
        })?;
        let written = |r: Result<(), MetaError>| match r {
            Ok(()) => KvReply::Done,
            Err(MetaError::PreconditionFailed) => KvReply::Failed,
            Err(e) => KvReply::Error(e.to_string()),
        };
        let reply = match req {
            KvRequest::Write { key, value } => written(
                self.meta
                    .put_record(NAMESPACE, &key, Some(value), RecordExpect::Any)
                    .await,
            ),
            KvRequest::Delete { key } => written(
                self.meta
                    .put_record(NAMESPACE, &key, None, RecordExpect::Any)
                    .await,
            ),
            KvRequest::Cas { key, expect, value } => {
                let expect = expect.map_or(RecordExpect::Absent, RecordExpect::Is);
                written(
                    self.meta
                        .put_record(NAMESPACE, &key, Some(value), expect)
                        .await,
                )
            }
            KvRequest::Read { key } => match self.meta.get_record(NAMESPACE, &key).await {
                Ok(v) => KvReply::Value(v),
                Err(e) => KvReply::Error(e.to_string()),
            },
        };
        serde_json::to_vec(&reply)
            .map(Bytes::from)
            .map_err(|e| HandlerError {
                message: e.to_string(),
            })
    }
}

fn host_name(id: NodeId) -> String {
    format!("n{id}")
}

/// Options of a simulated node: the production cluster timings, forwarding over `transport`.
fn node_options(transport: Arc<dyn Transport>, bootstrap: bool, id: NodeId) -> MetaOptions {
    MetaOptions {
        advertise_addr: host_name(id),
        bootstrap,
        ready_timeout: Duration::from_secs(30),
        forward_timeout: Duration::from_secs(3),
        ..MetaOptions::over(transport)
    }
}

/// The software of node `id`: opens its store on `mem`, serves Raft and the workload, forms
/// the cluster on the first start of node 1, and reports its role changes.
async fn run_node(
    id: NodeId,
    nodes: u64,
    net: SimNet,
    mem: MemDb,
    shared: SharedRef,
) -> Result<(), Box<dyn std::error::Error>> {
    let fresh = Db::mem(&mem)
        .open_tree("raft_state")?
        .iter()
        .next()
        .is_none();
    let handlers = Handlers::default();
    let transport: Arc<dyn Transport> = Arc::new(net.attach(id, handlers.clone()));
    let bootstrap = fresh && id == 1;
    let meta =
        MetaStore::open_on(Db::mem(&mem), id, node_options(transport, bootstrap, id)).await?;
    meta.register_handlers(&handlers);
    handlers.register(KV_CHANNEL, Arc::new(KvHandler { meta: meta.clone() }));
    shared.record(
        now(),
        &host_name(id),
        if fresh { "started fresh" } else { "restarted" },
    );

    let mut metrics = meta.raft().metrics();
    let observer = shared.clone();
    tokio::spawn(async move {
        loop {
            let (term, leader) = {
                let m = metrics.borrow_and_update();
                (m.current_term, m.state == openraft::ServerState::Leader)
            };
            let changed = {
                let mut s = observer.lock();
                if leader {
                    s.leaders.saw_leader(term, id);
                } else {
                    s.leaders.saw_term(id, term);
                }
                s.roles.insert(id, (term, leader)) != Some((term, leader))
            };
            if changed && leader {
                observer.record(now(), &host_name(id), &format!("leader of term {term}"));
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });

    if bootstrap {
        for peer in 2..=nodes {
            while let Err(e) = meta.add_learner(peer, &host_name(peer)).await {
                tracing::debug!(peer, error = %e, "add_learner; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        while let Err(e) = meta.promote(2..=nodes).await {
            tracing::debug!(error = %e, "promote; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        shared.lock().ready_at = Some(micros(now()));
        shared.record(now(), "n1", &format!("cluster of {nodes} voters formed"));
    }
    std::future::pending::<()>().await;
    Ok(())
}

impl KvRequest {
    fn key(&self) -> &str {
        match self {
            KvRequest::Write { key, .. }
            | KvRequest::Delete { key }
            | KvRequest::Cas { key, .. }
            | KvRequest::Read { key } => key,
        }
    }

    /// The request as the checker models it.
    fn op(&self) -> Op {
        match self {
            KvRequest::Write { value, .. } => Op::Write(value.clone()),
            KvRequest::Delete { .. } => Op::Delete,
            KvRequest::Cas { expect, value, .. } => Op::Cas {
                expect: expect.clone(),
                new: value.clone(),
            },
            KvRequest::Read { .. } => Op::Read,
        }
    }
}

/// One simulated client: its link to the nodes and what it has seen.
struct Client {
    index: u64,
    who: String,
    transport: crate::net::SimTransport,
    shared: SharedRef,
    /// The last value this client saw per key (what its compare-and-sets expect).
    last_seen: BTreeMap<String, Option<String>>,
}

impl Client {
    async fn call(&self, node: NodeId, req: &KvRequest) -> KvReply {
        let payload = Bytes::from(serde_json::to_vec(req).unwrap_or_default());
        let answer = self
            .transport
            .call_with_deadline(node, KV_CHANNEL, payload, CLIENT_DEADLINE)
            .await;
        match answer {
            Ok(b) => serde_json::from_slice::<KvReply>(&b)
                .unwrap_or_else(|e| KvReply::Error(e.to_string())),
            // Never delivered (the node is down): it cannot have taken effect.
            Err(coffer_cluster::TransportError::Unreachable { .. }) => KvReply::NotDelivered,
            Err(e) => KvReply::Error(e.to_string()),
        }
    }

    /// Sends `req` to `node` and records it in the history and the trace; returns whether it
    /// was answered definitely (a write done, a read answered).
    async fn issue(&mut self, node: NodeId, req: KvRequest) -> bool {
        let invoked = micros(now());
        let reply = self.call(node, &req).await;
        let returned = micros(now());
        let answered = matches!(reply, KvReply::Done | KvReply::Value(_));
        self.record(node, &req, reply, invoked, returned);
        answered
    }

    fn record(
        &mut self,
        node: NodeId,
        req: &KvRequest,
        reply: KvReply,
        invoked: u64,
        returned: u64,
    ) {
        let (key, op) = (req.key(), req.op());
        let outcome = match (&op, reply) {
            (Op::Read, KvReply::Value(v)) => Some(Outcome::Value(v)),
            (Op::Read, _) | (_, KvReply::NotDelivered) => None,
            (_, KvReply::Done) => Some(Outcome::Done),
            (_, KvReply::Failed) => Some(Outcome::Failed),
            (_, _) => Some(Outcome::Unknown),
        };
        let line = format!(
            "{key} via n{node}: {op:?} -> {} (invoked {:.3})",
            outcome
                .as_ref()
                .map_or("no effect".to_owned(), |o| format!("{o:?}")),
            invoked as f64 / 1e3
        );
        let mut s = self.shared.lock();
        s.ops += 1;
        let Some(outcome) = outcome else {
            drop(s);
            self.shared
                .record(Duration::from_micros(returned), &self.who, &line);
            return;
        };
        match (&op, &outcome) {
            (Op::Read, Outcome::Value(v)) => {
                self.last_seen.insert(key.to_owned(), v.clone());
            }
            (Op::Write(v) | Op::Cas { new: v, .. }, Outcome::Done) => {
                self.last_seen.insert(key.to_owned(), Some(v.clone()));
            }
            (Op::Delete, Outcome::Done) => {
                self.last_seen.insert(key.to_owned(), None);
            }
            _ => {}
        }
        let unknown = outcome == Outcome::Unknown;
        if check::push_event(
            &mut s.histories,
            key,
            (self.index, op, outcome),
            invoked,
            returned,
        ) {
            s.unknown += 1;
        }
        let returned = if unknown { u64::MAX } else { returned };
        drop(s);
        self.shared.record(
            Duration::from_micros(returned.min(micros(now()))),
            &self.who,
            &line,
        );
    }
}

/// One client: operations during the fault window, then (after the quiet period) the
/// liveness writes and the final reads of every key through every node.
async fn run_client(
    cfg: SimConfig,
    index: u64,
    net: SimNet,
    shared: SharedRef,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client {
        index,
        who: format!("c{index}"),
        transport: net.attach_client(CLIENT_BASE + index, Handlers::default()),
        shared: shared.clone(),
        last_seen: BTreeMap::new(),
    };
    let mut rng = StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_CLIENT + index));
    let ready_at = loop {
        if let Some(t) = shared.lock().ready_at {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fault_end = ready_at + micros(cfg.fault_window);
    let mut seq = 0usize;
    while seq < cfg.max_ops && micros(now()) < fault_end {
        seq += 1;
        let node = rng.gen_range(1..=cfg.nodes);
        let key = format!("k{}", rng.gen_range(0..cfg.keys));
        let value = format!("c{index}.{seq}");
        let req = match rng.gen_range(0..10) {
            0..=3 => KvRequest::Write { key, value },
            4 => KvRequest::Delete { key },
            5 => {
                let expect = client.last_seen.get(&key).cloned().flatten();
                KvRequest::Cas { key, expect, value }
            }
            _ => KvRequest::Read { key },
        };
        client.issue(node, req).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..250))).await;
    }

    // The quiet period: the harness heals everything at `fault_end`.
    let checks_at = fault_end + micros(cfg.quiet);
    while micros(now()) < checks_at || shared.lock().healed_at.is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Liveness: every node accepts a new write within the bound (client 0 checks).
    if index == 0 {
        for node in 1..=cfg.nodes {
            let start = now();
            loop {
                let write = KvRequest::Write {
                    key: format!("live{node}"),
                    value: format!("up.{node}"),
                };
                if client.issue(node, write).await {
                    break;
                }
                if now() - start > cfg.liveness_bound {
                    shared.lock().violations.push(format!(
                        "liveness: node {node} accepted no write within {:?} after the quiet period",
                        cfg.liveness_bound
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Final reads: every acknowledged write must still be visible (the checker decides).
    for k in 0..cfg.keys {
        let node = (index + k as u64) % cfg.nodes + 1;
        for _ in 0..20 {
            if client
                .issue(
                    node,
                    KvRequest::Read {
                        key: format!("k{k}"),
                    },
                )
                .await
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    shared.record(now(), &client.who, "done");
    Ok(())
}

/// Runs one seed to the end and checks it.
pub fn run(cfg: &SimConfig) -> Report {
    crate::task_ids::align_task_ids();
    coffer_metadata::runtime::seed_thread_rng(sub_seed(cfg.seed, STREAM_RAFT));
    let report = run_inner(cfg);
    coffer_metadata::runtime::unseed_thread_rng();
    report
}

fn run_inner(cfg: &SimConfig) -> Report {
    let shared = SharedRef::default();
    if cfg.keep_trace {
        shared.lock().lines = Some(Vec::new());
    }
    let net = SimNet::new(sub_seed(cfg.seed, STREAM_NET), LinkFaults::default());
    let mems: BTreeMap<NodeId, MemDb> = (1..=cfg.nodes).map(|id| (id, MemDb::new())).collect();
    let mut sim = turmoil::Builder::new()
        .rng_seed(sub_seed(cfg.seed, STREAM_TURMOIL))
        .simulation_duration(Duration::from_secs(300))
        .build();
    for id in 1..=cfg.nodes {
        let (net, mem, shared, nodes) = (net.clone(), mems[&id].clone(), shared.clone(), cfg.nodes);
        sim.host(host_name(id), move || {
            run_node(id, nodes, net.clone(), mem.clone(), shared.clone())
        });
    }
    for c in 0..cfg.clients {
        let (cfg2, net, shared) = (cfg.clone(), net.clone(), shared.clone());
        sim.client(format!("c{c}"), run_client(cfg2, c, net, shared));
    }

    let mut nemesis = StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_NEMESIS));
    let mut disk_rng = StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_DISK));
    let mut schedule: Option<Vec<Action>> = None;
    let mut down: BTreeSet<NodeId> = BTreeSet::new();
    let mut faults = 0usize;
    let mut failure = None;
    loop {
        let t = sim.elapsed();
        let ready = shared.lock().ready_at;
        if let (Some(ready), None) = (ready, &schedule) {
            let start = Duration::from_micros(ready);
            schedule = Some(if cfg.faults {
                nemesis::plan(&mut nemesis, cfg.nodes, start, cfg.fault_window)
            } else {
                vec![Action {
                    at: start + cfg.fault_window,
                    fault: Fault::HealAll,
                }]
            });
        }
        if let Some(plan) = &mut schedule {
            while plan.first().is_some_and(|a| a.at <= t) {
                let action = plan.remove(0);
                faults += usize::from(action.fault.is_fault());
                let what = apply(
                    &mut sim,
                    &net,
                    &mems,
                    &shared,
                    &mut down,
                    &mut disk_rng,
                    &action.fault,
                );
                shared.record(t, "nem", &what);
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
    let bad_keys = check::check_keys(&s.histories);
    let non_linearizable_keys = bad_keys.len();
    violations.extend(bad_keys.iter().map(ToString::to_string));
    violations.extend(s.leaders.violations().iter().cloned());
    Report {
        seed: cfg.seed,
        trace_hash: s.trace.hash(),
        events: s.trace.events(),
        trace: s.lines.take().unwrap_or_default(),
        sim_time,
        ops: s.ops,
        unknown: s.unknown,
        faults,
        terms: s.leaders.terms(),
        violations,
        non_linearizable_keys,
    }
}

/// Applies one nemesis action; returns its description for the trace.
fn apply(
    sim: &mut turmoil::Sim<'_>,
    net: &SimNet,
    mems: &BTreeMap<NodeId, MemDb>,
    shared: &SharedRef,
    down: &mut BTreeSet<NodeId>,
    disk_rng: &mut StdRng,
    fault: &Fault,
) -> String {
    let mut crash = |sim: &mut turmoil::Sim<'_>, id: NodeId, down: &mut BTreeSet<NodeId>| {
        if !down.insert(id) {
            return format!("n{id} already down");
        }
        sim.crash(host_name(id));
        shared.lock().roles.remove(&id);
        // Everything the node wrote since its last flush may be lost; sled keeps a prefix.
        let mem = &mems[&id];
        let unflushed = mem.unflushed();
        let keep = disk_rng.gen_range(0..=unflushed);
        mem.crash(keep);
        format!("crash n{id} (kept {keep} of {unflushed} unflushed batches)")
    };
    match fault {
        Fault::Crash(id) => crash(sim, *id, down),
        Fault::CrashLeader => {
            let leader = shared
                .lock()
                .roles
                .iter()
                .filter(|(_, (_, l))| *l)
                .max_by_key(|(_, (term, _))| *term)
                .map(|(id, _)| *id);
            match leader {
                Some(id) => format!("leader: {}", crash(sim, id, down)),
                None => "crash leader: no leader".to_owned(),
            }
        }
        Fault::PowerLoss => {
            let all: Vec<String> = mems.keys().map(|id| crash(sim, *id, down)).collect();
            format!("power loss: {}", all.join("; "))
        }
        Fault::Restart(id) => {
            if down.remove(id) {
                sim.bounce(host_name(*id));
                format!("restart n{id}")
            } else {
                format!("n{id} already up")
            }
        }
        Fault::RestartAll => {
            let ids: Vec<NodeId> = down.iter().copied().collect();
            for id in &ids {
                sim.bounce(host_name(*id));
            }
            down.clear();
            format!("restart {ids:?}")
        }
        Fault::Isolate(id) => {
            net.isolate(*id);
            format!("isolate n{id}")
        }
        Fault::Cut(a, b) => {
            net.cut(*a, *b);
            format!("cut n{a} <-> n{b}")
        }
        Fault::CutOneWay(a, b) => {
            net.cut_one_way(*a, *b);
            format!("cut n{a} -> n{b}")
        }
        Fault::Hold(a, b) => {
            net.hold(*a, *b);
            format!("hold n{a} -> n{b}")
        }
        Fault::Lossy(f) => {
            net.set_faults(*f);
            format!("lossy links {f:?}")
        }
        Fault::HealNet => {
            net.heal();
            net.release();
            net.set_faults(LinkFaults::default());
            "heal network".to_owned()
        }
        Fault::HealAll => {
            net.heal();
            net.release();
            net.set_faults(LinkFaults::default());
            let ids: Vec<NodeId> = down.iter().copied().collect();
            for id in &ids {
                sim.bounce(host_name(*id));
            }
            down.clear();
            shared.lock().healed_at = Some(micros(sim.elapsed()));
            format!("heal everything, restart {ids:?}")
        }
    }
}
