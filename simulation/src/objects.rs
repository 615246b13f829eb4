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

use bytes::Bytes;
use coffer_cluster::{Handlers, NodeId, Transport, TransportError};
use coffer_metadata::kv::MemDb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::{self, Event, Op, Outcome};
use crate::cluster::{sub_seed, Report};
use crate::disk::{DiskFaults, SimDisk};
use crate::net::{LinkFaults, SimNet};
use crate::s3node::{self, NodeDisks, SimClock, SimFs};
use crate::s3wire::{WireRequest, WireResponse};
use crate::Trace;

/// How one seed's run is shaped.
#[derive(Debug, Clone)]
pub struct ObjectsConfig {
    /// The master seed.
    pub seed: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Object keys the clients share.
    pub keys: usize,
    /// Operations per client.
    pub ops: usize,
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
            ops: 24,
            fault_window: Duration::from_secs(8),
            keep_trace: false,
        }
    }
}

const NODE: NodeId = 1;
const DRIVES: usize = 4;
const BUCKET: &str = "sim";
/// Every object body starts with this and its value id; the plaintext scan looks for it.
const BODY_MARK: &[u8] = b"SIMPLAIN:";
/// Every object carries `x-amz-meta-note: SIMMETA:<value id>`.
const META_MARK: &[u8] = b"SIMMETA:";
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// S3's smallest part but the last.
const MIN_PART: usize = 5 << 20;

const STREAM_TURMOIL: u64 = 11;
const STREAM_NET: u64 = 12;
const STREAM_NEMESIS: u64 = 13;
const STREAM_DISK: u64 = 14;
const STREAM_ENTROPY: u64 = 1_000;
const STREAM_CLIENT: u64 = 2_000;

/// The body of value `id` with `len` bytes: a pure function of both.
fn body(id: &str, len: usize) -> Vec<u8> {
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
fn id_of(b: &[u8]) -> Option<String> {
    let rest = b.strip_prefix(BODY_MARK)?;
    let end = rest.iter().position(|&c| c == b'|')?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[derive(Default)]
struct Shared {
    trace: Trace,
    lines: Option<Vec<String>>,
    histories: BTreeMap<String, Vec<Event>>,
    /// Every value ever sent per key (id, length): what a ranged read may show.
    sent: BTreeMap<String, Vec<(String, usize)>>,
    creds: Option<(String, String)>,
    bucket_ready: bool,
    /// Sim µs of the first workload operation (the nemesis starts then).
    started_at: Option<u64>,
    healed: bool,
    violations: Vec<String>,
    ops: usize,
    unknown: usize,
    clients_done: u64,
}

#[derive(Clone, Default)]
struct SharedRef(Arc<Mutex<Shared>>);

impl SharedRef {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, who: &str, what: &str) {
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

    fn violation(&self, who: &str, what: String) {
        self.record(who, &format!("VIOLATION {what}"));
        self.lock().violations.push(what);
    }
}

fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

fn micros(d: Duration) -> u64 {
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
    let disks = NodeDisks {
        fs: SimFs {
            system: SimDisk::new(100, disk_seed, DiskFaults::default()),
            drives: (0..DRIVES)
                .map(|i| SimDisk::new(i as u64, disk_seed ^ (i as u64 + 1), DiskFaults::default()))
                .collect(),
        },
        meta: MemDb::new(),
        clock: SimClock::default(),
    };
    let mut sim = turmoil::Builder::new()
        .rng_seed(sub_seed(cfg.seed, STREAM_TURMOIL))
        .simulation_duration(Duration::from_secs(240))
        .build();
    let starts = Arc::new(AtomicU64::new(0));
    {
        let (net, disks, shared, seed) = (net.clone(), disks.clone(), shared.clone(), cfg.seed);
        sim.host("n1", move || {
            let (net, disks, shared, starts) =
                (net.clone(), disks.clone(), shared.clone(), starts.clone());
            async move {
                let start = starts.fetch_add(1, Ordering::Relaxed);
                let node =
                    s3node::start(NODE, &net, &disks, sub_seed(seed, STREAM_ENTROPY + start))
                        .await?;
                shared.lock().creds = Some((
                    node.credentials.access_key.clone(),
                    node.credentials.secret.as_str().to_owned(),
                ));
                shared.record("n1", &format!("node up (start {start})"));
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
    let mut down = false;
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
            ));
        }
        if let Some(p) = &mut plan {
            while p.first().is_some_and(|(at, _)| *at <= t) {
                let (_, fault) = p.remove(0);
                faults += usize::from(!matches!(fault, Fault::Restart | Fault::HealAll));
                let what = apply(&mut sim, &disks, &shared, &mut nemesis, &mut down, fault);
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
    violations.extend(plaintext_on(&disks));
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

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Power loss: the node and every disk; MemDb keeps a seeded prefix of unflushed batches.
    Crash,
    Restart,
    /// Lost and misdirected writes on one of the two drives faults may hit.
    FlakyDrive(usize),
    /// One bit of one stored file on one of those drives.
    BitFlip(usize),
    /// The node's clock jumps by this many seconds.
    ClockJump(i64),
    HealAll,
}

/// The nemesis' plan from `start` over `window`, then everything healed.
fn schedule(rng: &mut StdRng, start: Duration, window: Duration) -> Vec<(Duration, Fault)> {
    // Faults may only hit these two drives: the parity covers them.
    let first = rng.gen_range(0..DRIVES);
    let bad = [first, (first + rng.gen_range(1..DRIVES)) % DRIVES];
    let mut plan = Vec::new();
    let mut t = start + Duration::from_millis(rng.gen_range(100..800));
    while t < start + window {
        let fault = match rng.gen_range(0..10) {
            0..=2 => Fault::Crash,
            3..=4 => Fault::FlakyDrive(bad[rng.gen_range(0..2)]),
            5..=7 => Fault::BitFlip(bad[rng.gen_range(0..2)]),
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

fn apply(
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
        Fault::ClockJump(secs) => {
            disks
                .clock
                .skew_ms
                .fetch_add(secs * 1000, Ordering::Relaxed);
            format!("clock jumps {secs} s")
        }
    }
}

/// What one S3 call came to.
enum Reply {
    /// An HTTP response.
    Http(WireResponse),
    /// The request never reached the node (it was down): no effect.
    NotDelivered,
    /// No answer (lost, timed out, crashed mid-call): the effect is unknown.
    NoAnswer,
}

struct Client {
    index: u64,
    who: String,
    transport: crate::net::SimTransport,
    shared: SharedRef,
    rng: StdRng,
    keys: usize,
    creds: (String, String),
}

impl Client {
    fn new(cfg: &ObjectsConfig, index: u64, net: &SimNet, shared: SharedRef) -> Self {
        Self {
            index,
            who: format!("c{index}"),
            transport: net.attach_client(100 + index, Handlers::default()),
            shared,
            rng: StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_CLIENT + index)),
            keys: cfg.keys,
            creds: (String::new(), String::new()),
        }
    }

    async fn call(&self, mut req: WireRequest) -> Reply {
        if matches!(req.method.as_str(), "PUT" | "POST") {
            // What an HTTP client always sends with a body (s3s requires it on XML bodies).
            req.headers
                .push(("content-length".into(), req.body.len().to_string()));
        }
        let req = req.sign(&self.creds.0, &self.creds.1);
        match self
            .transport
            .call_with_deadline(NODE, s3node::S3_CHANNEL, req.encode(), CLIENT_DEADLINE)
            .await
        {
            Ok(b) => match WireResponse::decode(&b) {
                Ok(r) => Reply::Http(r),
                Err(_) => Reply::NoAnswer,
            },
            Err(TransportError::Unreachable { .. }) => Reply::NotDelivered,
            Err(_) => Reply::NoAnswer,
        }
    }

    async fn run(&mut self, cfg: &ObjectsConfig) {
        // The node's root credentials (it generates them on its first start).
        loop {
            if let Some(c) = self.shared.lock().creds.clone() {
                self.creds = c;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.index == 0 {
            self.create_bucket().await;
        }
        while !self.shared.lock().bucket_ready {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shared.lock().started_at.get_or_insert(micros(now()));
        for op in 0..cfg.ops {
            self.random_op(op).await;
            let pause = self.rng.gen_range(0..300);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        while !self.shared.lock().healed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Liveness: a write goes through within 15 s of the heal.
        let deadline = now() + Duration::from_secs(15);
        let id = format!("c{}live", self.index);
        loop {
            if self
                .put(&format!("live{}", self.index), &id, 100, false)
                .await
            {
                break;
            }
            if now() > deadline {
                self.shared.violation(
                    &self.who,
                    "liveness: no PUT succeeded within 15 s of the heal".into(),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Final reads, faults healed: every key answers definitely, and (by linearizability)
        // with its last acknowledged write.
        for k in 0..self.keys {
            let key = format!("k{k}");
            if !self.get(&key).await {
                self.shared.violation(
                    &self.who,
                    format!("final read of {key} failed after the heal: an acknowledged object is unreadable"),
                );
            }
        }
        self.shared.lock().clients_done += 1;
    }

    async fn create_bucket(&mut self) {
        loop {
            let r = self
                .call(WireRequest {
                    method: "PUT".into(),
                    target: format!("/{BUCKET}"),
                    ..Default::default()
                })
                .await;
            if let Reply::Http(r) = r {
                let code = r.error_code();
                if r.status == 200 || code.as_deref() == Some("BucketAlreadyOwnedByYou") {
                    self.shared.record(&self.who, "bucket created");
                    self.shared.lock().bucket_ready = true;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn random_op(&mut self, op: usize) {
        let key = format!("k{}", self.rng.gen_range(0..self.keys));
        match self.rng.gen_range(0..20) {
            0 => {
                let id = format!("c{}o{op}", self.index);
                let first = MIN_PART + self.rng.gen_range(0..50_000);
                let last = self.rng.gen_range(1..300_000);
                self.multipart(&key, &id, [first, last]).await;
            }
            1..=7 => {
                let len = match self.rng.gen_range(0..4) {
                    0 => self.rng.gen_range(0..64),
                    1 => self.rng.gen_range(64..70_000),
                    2 => self.rng.gen_range(200_000..400_000),
                    _ => self.rng.gen_range(1_000_000..1_300_000),
                };
                let id = format!("c{}o{op}", self.index);
                let conditional = self.rng.gen_bool(0.2);
                self.put(
                    &key,
                    &id,
                    len.max(BODY_MARK.len() + id.len() + 1),
                    conditional,
                )
                .await;
            }
            8..=11 => {
                self.get(&key).await;
            }
            12..=13 => self.get_range(&key).await,
            14..=15 => self.head(&key).await,
            16..=17 => self.delete(&key).await,
            _ => self.list().await,
        }
    }

    /// Records `op` on `key` with what the client learned; `None` leaves it out (a failed read).
    fn history(&self, key: &str, op: Op, outcome: Option<Outcome>, invoked: u64, what: &str) {
        let returned = micros(now());
        let mut s = self.shared.lock();
        s.ops += 1;
        if let Some(outcome) = outcome {
            let returned = if outcome == Outcome::Unknown {
                s.unknown += 1;
                u64::MAX
            } else {
                returned
            };
            s.histories.entry(key.to_owned()).or_default().push(Event {
                client: self.index,
                op,
                outcome,
                invoked,
                returned,
            });
        }
        drop(s);
        self.shared.record(&self.who, &format!("{key}: {what}"));
    }

    /// A 500 is never a right answer, and a 4xx other than `allowed` means a request the
    /// client built correctly was refused.
    fn unexpected(&self, what: &str, r: &WireResponse, allowed: &[&str]) -> bool {
        let code = r.error_code().unwrap_or_default();
        let ok = r.status < 300
            || r.status == 503
            || allowed.contains(&code.as_str())
            || (r.status == 404 && allowed.contains(&"404"));
        if !ok {
            self.shared
                .violation(&self.who, format!("{what}: unexpected {} {code}", r.status));
        }
        !ok
    }

    async fn put(&mut self, key: &str, id: &str, len: usize, conditional: bool) -> bool {
        let invoked = micros(now());
        let data = body(id, len);
        self.shared
            .lock()
            .sent
            .entry(key.to_owned())
            .or_default()
            .push((id.to_owned(), len));
        let mut headers = vec![("x-amz-meta-note".into(), format!("SIMMETA:{id}"))];
        if self.rng.gen_bool(0.5) {
            headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        if conditional {
            headers.push(("if-none-match".into(), "*".into()));
        }
        let reply = self
            .call(WireRequest {
                method: "PUT".into(),
                target: format!("/{BUCKET}/{key}"),
                headers,
                body: Bytes::from(data),
            })
            .await;
        let op = if conditional {
            Op::Cas {
                expect: None,
                new: id.to_owned(),
            }
        } else {
            Op::Write(id.to_owned())
        };
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 => (Some(Outcome::Done), "ok".to_owned()),
            Reply::Http(r) if conditional && r.status == 412 => {
                (Some(Outcome::Failed), "412".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("PUT", r, &["ServiceUnavailable", "SlowDown"]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        let done = matches!(outcome, Some(Outcome::Done));
        let desc = format!("{op:?} {len} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
        done
    }

    /// A two-part upload of value `id` (`parts` bytes each) as one write: invoked at
    /// CreateMultipartUpload, done at CompleteMultipartUpload. A failure before the complete
    /// call leaves no object (an abandoned upload); a failed or lost complete is unknown.
    async fn multipart(&mut self, key: &str, id: &str, parts: [usize; 2]) {
        let invoked = micros(now());
        let total = parts[0] + parts[1];
        let data = Bytes::from(body(id, total));
        self.shared
            .lock()
            .sent
            .entry(key.to_owned())
            .or_default()
            .push((id.to_owned(), total));
        let op = Op::Write(id.to_owned());
        let mut headers = vec![("x-amz-meta-note".into(), format!("SIMMETA:{id}"))];
        if self.rng.gen_bool(0.5) {
            headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        let created = self
            .call(WireRequest {
                method: "POST".into(),
                target: format!("/{BUCKET}/{key}?uploads"),
                headers,
                ..Default::default()
            })
            .await;
        let upload = match &created {
            Reply::Http(r) if r.status == 200 => xml_value(&r.body, "UploadId"),
            Reply::Http(r) => {
                self.unexpected("CreateMultipartUpload", r, &[]);
                None
            }
            _ => None,
        };
        let Some(upload) = upload else {
            self.history(key, op, None, invoked, "multipart: no upload");
            return;
        };
        let mut etags = Vec::new();
        let mut from = 0;
        for (i, len) in parts.iter().enumerate() {
            let reply = self
                .call(WireRequest {
                    method: "PUT".into(),
                    target: format!("/{BUCKET}/{key}?partNumber={}&uploadId={upload}", i + 1),
                    body: data.slice(from..from + len),
                    ..Default::default()
                })
                .await;
            from += len;
            match &reply {
                Reply::Http(r) if r.status == 200 => {
                    etags.push(r.header("etag").unwrap_or_default().to_owned())
                }
                Reply::Http(r) => {
                    self.unexpected("UploadPart", r, &[]);
                    break;
                }
                _ => break,
            }
        }
        if etags.len() < parts.len() {
            self.history(
                key,
                op,
                None,
                invoked,
                "multipart: a part failed; abandoned",
            );
            return;
        }
        let list: String = etags
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                    i + 1
                )
            })
            .collect();
        let reply = self
            .call(WireRequest {
                method: "POST".into(),
                target: format!("/{BUCKET}/{key}?uploadId={upload}"),
                body: Bytes::from(format!(
                    "<CompleteMultipartUpload>{list}</CompleteMultipartUpload>"
                )),
                ..Default::default()
            })
            .await;
        // CompleteMultipartUpload may answer 200 with an error document.
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 && xml_value(&r.body, "ETag").is_some() => {
                (Some(Outcome::Done), "ok".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("CompleteMultipartUpload", r, &["ServiceUnavailable"]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        let desc = format!("multipart {op:?} {parts:?} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
    }

    /// Checks a body read as value `id` is exactly that value's bytes.
    fn check_body(&self, key: &str, got: &[u8]) -> Option<String> {
        let Some(id) = id_of(got) else {
            self.shared.violation(
                &self.who,
                format!("GET {key}: {} bytes that no client wrote", got.len()),
            );
            return None;
        };
        if body(&id, got.len()) != got {
            self.shared
                .violation(&self.who, format!("GET {key}: wrong bytes for {id}"));
            return None;
        }
        let sent = self
            .shared
            .lock()
            .sent
            .get(key)
            .cloned()
            .unwrap_or_default();
        if !sent.iter().any(|(i, l)| *i == id && *l == got.len()) {
            self.shared.violation(
                &self.who,
                format!(
                    "GET {key}: {id} with {} bytes was never written there",
                    got.len()
                ),
            );
            return None;
        }
        Some(id)
    }

    /// GETs `key`; whether the answer was definite (the object, or NoSuchKey).
    async fn get(&mut self, key: &str) -> bool {
        let invoked = micros(now());
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 => match self.check_body(key, &r.body) {
                Some(id) => (Some(Outcome::Value(Some(id.clone()))), id),
                None => (None, "wrong bytes".to_owned()),
            },
            Reply::Http(r) if r.error_code().as_deref() == Some("NoSuchKey") => {
                (Some(Outcome::Value(None)), "NoSuchKey".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("GET", r, &[]);
                (None, format!("{}", r.status))
            }
            _ => (None, "no answer".to_owned()),
        };
        let definite = outcome.is_some();
        self.history(key, Op::Read, outcome, invoked, &format!("GET -> {what}"));
        definite
    }

    async fn get_range(&mut self, key: &str) {
        let start = self.rng.gen_range(0..1_200_000u64);
        let len = self.rng.gen_range(1..200_000u64);
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}/{key}"),
                headers: vec![("range".into(), format!("bytes={start}-{}", start + len - 1))],
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 206 => {
                let total: Option<usize> = r
                    .header("content-range")
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|t| t.parse().ok());
                let sent = self
                    .shared
                    .lock()
                    .sent
                    .get(key)
                    .cloned()
                    .unwrap_or_default();
                let from = start as usize;
                let ok = total.is_some_and(|total| {
                    sent.iter().any(|(id, l)| {
                        *l == total
                            && from < *l
                            && body(id, *l)[from..(from + r.body.len()).min(*l)] == r.body[..]
                    })
                });
                if !ok {
                    self.shared.violation(
                        &self.who,
                        format!("GET {key} range {start}+{len}: bytes no client wrote there"),
                    );
                }
                format!("206 {} B", r.body.len())
            }
            Reply::Http(r) => {
                self.unexpected("ranged GET", r, &["NoSuchKey", "InvalidRange"]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.history(
            key,
            Op::Read,
            None,
            0,
            &format!("GET range {start}+{len} -> {what}"),
        );
    }

    async fn head(&mut self, key: &str) {
        let reply = self
            .call(WireRequest {
                method: "HEAD".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let len: Option<usize> = r.header("content-length").and_then(|v| v.parse().ok());
                let sent = self
                    .shared
                    .lock()
                    .sent
                    .get(key)
                    .cloned()
                    .unwrap_or_default();
                if !len.is_some_and(|n| sent.iter().any(|(_, l)| *l == n)) {
                    self.shared.violation(
                        &self.who,
                        format!("HEAD {key}: length {len:?} never written"),
                    );
                }
                format!("200 {len:?}")
            }
            Reply::Http(r) => {
                self.unexpected("HEAD", r, &["404"]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.history(key, Op::Read, None, 0, &format!("HEAD -> {what}"));
    }

    async fn delete(&mut self, key: &str) {
        let invoked = micros(now());
        let reply = self
            .call(WireRequest {
                method: "DELETE".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 204 || r.status == 200 => {
                (Some(Outcome::Done), "ok".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("DELETE", r, &[]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        self.history(
            key,
            Op::Delete,
            outcome,
            invoked,
            &format!("DELETE -> {what}"),
        );
    }

    async fn list(&mut self) {
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}?list-type=2"),
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let text = String::from_utf8_lossy(&r.body);
                let keys: Vec<&str> = text
                    .split("<Key>")
                    .skip(1)
                    .filter_map(|s| s.split("</Key>").next())
                    .collect();
                let sent = self.shared.lock().sent.clone();
                for k in &keys {
                    if !sent.contains_key(*k) {
                        self.shared
                            .violation(&self.who, format!("LIST: key {k} was never written"));
                    }
                }
                format!("200 {keys:?}")
            }
            Reply::Http(r) => {
                self.unexpected("LIST", r, &[]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.shared.lock().ops += 1;
        self.shared.record(&self.who, &format!("LIST -> {what}"));
    }
}

/// The text of the first `<tag>…</tag>` in an XML body.
fn xml_value(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].to_owned())
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
        assert_eq!(
            xml_value(b"<R><UploadId>ab12</UploadId></R>", "UploadId").as_deref(),
            Some("ab12")
        );
        assert_eq!(xml_value(b"<R></R>", "UploadId"), None);
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
