//! A whole Coffer node on a turmoil host: the real start-up path
//! ([`coffer_node::server::assemble`]) over simulated files, clock, randomness and metadata
//! disk, with its S3 service reachable as a channel of the simulated network.
//!
//! The drives are [`SimDisk`]s, one per drive directory, plus one for the data directory
//! (sealed secrets, the local KMS root). Metadata is a [`MemDb`]. The data path's blocking
//! stages run inline on the host's runtime (`coffer_node::seams::stages`), so the seed decides
//! every interleaving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{HandlerError, Handlers, NodeId, RpcHandler};
use coffer_crypto::SeededEntropy;
use coffer_metadata::kv::{Db, MemDb};
use coffer_metadata::{MetaOptions, MetaStore};
use coffer_node::cluster::ClusterLink;
use coffer_node::cluster_config::{ClusterSettings, Peer};
use coffer_node::config::{Config, LogFormat};
use coffer_node::seams::{Clock, DriveIo, ShardSink, ShardSource};
use coffer_node::server::{assemble, AssembledNode, NodeSeams, RunOptions};
use http_body_util::{BodyExt as _, Full};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::disk::SimDisk;
use crate::net::SimNet;
use crate::s3wire::{WireRequest, WireResponse};

/// Replaced data outlives its manifest this long: past the slowest read the workload makes, yet
/// short enough that the deletions happen (and are checked) within a run.
const DISCARD_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// The orphan sweep's interval and the age an unreferenced shard file must reach: the age
/// beyond the longest a write here takes from its first shard commit to its manifest commit
/// (several 5 s call timeouts; 6 s was seen to be too short), short enough that long runs see
/// orphans removed. Production: 10 min and 1 h.
const ORPHAN_SWEEP: std::time::Duration = std::time::Duration::from_secs(4);
const ORPHAN_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(12);

/// The channel a node's S3 service answers on.
pub const S3_CHANNEL: &str = "sim/s3";
/// The channel a node's admin API answers on.
pub const ADMIN_CHANNEL: &str = "sim/admin";

/// The data directory of a simulated node.
const DATA: &str = "/data";

/// The node's files: drive `i` lives under `/drive{i}` on `drives[i]`, everything else (the
/// data directory) on `system`.
#[derive(Clone)]
pub struct SimFs {
    /// The data directory's disk.
    pub system: SimDisk,
    /// One disk per drive.
    pub drives: Vec<SimDisk>,
}

impl SimFs {
    /// The directory of drive `i`.
    pub fn drive_dir(i: usize) -> PathBuf {
        PathBuf::from(format!("/drive{i}"))
    }

    fn disk(&self, path: &Path) -> &SimDisk {
        let Some(std::path::Component::Normal(first)) = path.components().nth(1) else {
            return &self.system;
        };
        first
            .to_str()
            .and_then(|s| s.strip_prefix("drive"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|i| self.drives.get(i))
            .unwrap_or(&self.system)
    }

    /// Every disk, the system disk first.
    pub fn all(&self) -> impl Iterator<Item = &SimDisk> {
        std::iter::once(&self.system).chain(self.drives.iter())
    }

    /// Power loss on every disk.
    pub fn crash(&self) {
        self.all().for_each(SimDisk::crash);
    }
}

impl DriveIo for SimFs {
    fn create(&self, tmp: &Path, path: &Path) -> std::io::Result<Box<dyn ShardSink>> {
        self.disk(path).create(tmp, path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn ShardSource>> {
        self.disk(path).open(path)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.disk(path).remove(path)
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.disk(path).create_dir_all(path)
    }
    fn clear_dir(&self, dir: &Path) -> std::io::Result<usize> {
        self.disk(dir).clear_dir(dir)
    }
    fn write_file(&self, path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
        self.disk(path).write_file(path, data, mode)
    }
    fn read_file(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        self.disk(path).read_file(path)
    }
    fn device_id(&self, path: &Path) -> std::io::Result<u64> {
        self.disk(path).device_id(path)
    }
    fn list_files(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.disk(dir).list_files(dir)
    }
}

/// Wall-clock time of a simulated node: a fixed epoch plus simulated time plus a skew the
/// nemesis may jump (shared with the harness).
#[derive(Clone, Default)]
pub struct SimClock {
    /// Milliseconds added to the node's clock.
    pub skew_ms: Arc<AtomicI64>,
}

/// 2026-01-01T00:00:00Z: the simulated clocks start here.
const EPOCH_MS: i64 = 1_767_225_600_000;

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        EPOCH_MS
            + turmoil::sim_elapsed().unwrap_or_default().as_millis() as i64
            + self.skew_ms.load(Ordering::Relaxed)
    }
}

/// What a node host is built from; survives the host's crashes.
#[derive(Clone)]
pub struct NodeDisks {
    /// Files.
    pub fs: SimFs,
    /// Metadata.
    pub meta: MemDb,
    /// The node's clock skew.
    pub clock: SimClock,
}

/// The node's configuration: the data directory and drives of [`SimFs`], the built-in KMS.
fn config(drives: usize) -> Config {
    Config {
        data: PathBuf::from(DATA),
        // Never bound: the S3 service is reached over the simulated network.
        s3_addr: "127.0.0.1:9000".parse().expect("address"),
        admin_addr: "127.0.0.1:9001".parse().expect("address"),
        drives: (0..drives).map(SimFs::drive_dir).collect(),
        audit_log: None,
        log_format: LogFormat::Text,
        insecure_http: false,
        domain: None,
        tls: None,
        tls_watch: None,
        kms: Default::default(),
        cluster: None,
    }
}

/// What a member of a simulated cluster starts with: node 1 bootstraps, the others join
/// through it; every member shares the built-in KMS root, as a real cluster's members do.
#[derive(Clone)]
pub struct SimCluster {
    /// The built-in KMS root key (base64 of 32 bytes), a function of the seed.
    pub kms_key: String,
}

/// Starts node `id` on the current host over `disks` — alone, or as a member of `cluster`
/// over the simulated network; `entropy_seed` differs per start (each start draws fresh
/// randomness, as a rebooted machine would). Serves S3 on [`S3_CHANNEL`] until the host
/// crashes.
pub async fn start(
    id: NodeId,
    net: &SimNet,
    disks: &NodeDisks,
    entropy_seed: u64,
    cluster: Option<&SimCluster>,
) -> Result<Arc<AssembledNode>, Box<dyn std::error::Error>> {
    coffer_node::seams::stages::run_inline_on_this_thread(true);
    let handlers = Handlers::default();
    let mut config = config(disks.fs.drives.len());
    let (meta, cluster_link, kms_local_key) = match cluster {
        None => {
            let meta = MetaStore::open_on(
                Db::mem(&disks.meta),
                id,
                MetaOptions {
                    ready_timeout: Duration::from_secs(30),
                    ..MetaOptions::default()
                },
            )
            .await?;
            (Some(meta), None, None)
        }
        Some(c) => {
            // Peers must reach a member while it joins: the inbox opens before start-up.
            let transport = net.attach(id, handlers.clone());
            config.cluster = Some(member_settings(id));
            let link = ClusterLink {
                node_id: id,
                transport: Arc::new(transport),
                handlers: handlers.clone(),
                db: Db::mem(&disks.meta),
                fresh: disks.meta.contents().is_empty(),
            };
            (None, Some(link), Some(Zeroizing::new(c.kms_key.clone())))
        }
    };
    let seams = NodeSeams {
        fs: Arc::new(disks.fs.clone()),
        entropy: Arc::new(SeededEntropy::new(entropy_seed)),
        clock: Arc::new(disks.clock.clone()),
        meta,
        cluster_link,
        kms_local_key,
    };
    let node = assemble(
        &config,
        seams,
        RunOptions {
            discard_grace: DISCARD_GRACE,
            orphan_sweep_every: ORPHAN_SWEEP,
            orphan_min_age: ORPHAN_MIN_AGE,
            ..RunOptions::default()
        },
        &CancellationToken::new(),
    )
    .await?;
    let node = Arc::new(node);
    handlers.register(S3_CHANNEL, Arc::new(S3Handler { node: node.clone() }));
    handlers.register(ADMIN_CHANNEL, Arc::new(AdminHandler { node: node.clone() }));
    if cluster.is_none() {
        net.attach(id, handlers);
    }
    Ok(node)
}

/// The cluster settings of member `id`: addresses are node names (the simulated network
/// routes by id), no certificate files (the link stands in for QUIC and its TLS).
fn member_settings(id: NodeId) -> ClusterSettings {
    ClusterSettings {
        node_id: Some(id),
        listen: "127.0.0.1:9100".parse().expect("address"),
        advertise: format!("n{id}"),
        peers: if id == 1 {
            Vec::new()
        } else {
            vec![Peer {
                id: 1,
                addr: "n1".into(),
            }]
        },
        bootstrap: id == 1,
        cert: PathBuf::new(),
        key: PathBuf::new(),
        ca: PathBuf::new(),
        parity: None,
        s3_advertise: None,
    }
}

/// Hands a [`WireRequest`] to the node's real S3 service.
struct S3Handler {
    node: Arc<AssembledNode>,
}

/// Hands a [`WireRequest`] to the node's real admin router.
struct AdminHandler {
    node: Arc<AssembledNode>,
}

fn handler_error(message: String) -> HandlerError {
    HandlerError { message }
}

/// The HTTP request a [`WireRequest`] stands for.
fn http_request<B>(
    req: WireRequest,
    body: impl FnOnce(Bytes) -> B,
) -> Result<http::Request<B>, HandlerError> {
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.target.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(body(req.body))
        .map_err(|e| handler_error(format!("request: {e}")))
}

/// A response as a [`WireResponse`] message.
async fn wire_response<B>(resp: http::Response<B>) -> Result<Bytes, HandlerError>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| handler_error(format!("response body: {e}")))?
        .to_bytes();
    Ok(WireResponse {
        status,
        headers,
        body,
    }
    .encode())
}

#[async_trait::async_trait]
impl RpcHandler for AdminHandler {
    async fn handle(&self, _from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        use tower::ServiceExt as _;
        let req = WireRequest::decode(&payload).map_err(handler_error)?;
        let http_req = http_request(req, axum::body::Body::from)?;
        let resp = self
            .node
            .admin
            .clone()
            .oneshot(http_req)
            .await
            .map_err(|e| handler_error(format!("admin router: {e}")))?;
        wire_response(resp).await
    }
}

#[async_trait::async_trait]
impl RpcHandler for S3Handler {
    async fn handle(&self, _from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        let req = WireRequest::decode(&payload).map_err(handler_error)?;
        let http_req = http_request(req, Full::new)?;
        wire_response(self.node.s3.handle(http_req).await).await
    }
}
