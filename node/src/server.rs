//! Start-up and graceful shutdown of a node.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer_crypto::{Entropy, OsEntropy};
use coffer_erasure::ErasureConfig;
use coffer_metadata::MetaStore;
use ractor::Actor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::actors::{DriveActors, KeyHandle, NodeSupervisor, SupervisorArgs};
use crate::config::Config;
use crate::drive::Drive;
use crate::keys::KeyService;
use crate::metrics::{Metrics, Observer};
use crate::seams::audit::AuditLog;
use crate::seams::{Clock, DriveIo, FsDriveIo, SystemClock};
use crate::secret_env::secret_var;
use crate::secrets;
use crate::service::NodeService;

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Secrets could not be loaded.
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    /// A `NAME` / `NAME_FILE` secret variable could not be read.
    #[error(transparent)]
    SecretEnv(#[from] crate::secret_env::SecretEnvError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(#[from] coffer_metadata::MetaError),
    /// A drive or file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The erasure layout is impossible.
    #[error("erasure layout: {0}")]
    Erasure(#[from] coffer_erasure::ErasureError),
    /// The S3 service could not be built.
    #[error("S3 service: {0}")]
    S3Service(#[from] coffer_s3api::ServiceConfigError),
    /// The TLS certificates could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] coffer_cluster::tls::TlsError),
    /// An actor failed to start.
    #[error("actor start-up: {0}")]
    Actor(String),
    /// The KMS is unreachable, refuses the credentials, or lacks the default key.
    #[error(transparent)]
    Kms(#[from] crate::kms_setup::KmsStartError),
    /// Cluster mode could not start (certificates, joining).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterStartError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let what = what.into();
    move |source| NodeError::Io { what, source }
}

/// What a node runs with beyond its [`Config`]: seams that only benchmarks and tests replace.
#[derive(Clone)]
pub struct RunOptions {
    /// The stream cipher of object data (production: [`crate::pipeline::StreamCipher`]).
    pub cipher: Arc<dyn crate::pipeline::CipherFactory>,
    /// How long the data of a replaced or deleted object outlives its manifest, so that reads
    /// and copies that loaded the old manifest just before can still finish.
    pub discard_grace: std::time::Duration,
    /// Time between passes of the orphan sweep ([`crate::heal::orphans`]).
    pub orphan_sweep_every: std::time::Duration,
    /// How long the orphan sweep must have found a shard file unreferenced before it removes
    /// it; longer than any write takes from its first shard commit to its manifest commit.
    pub orphan_min_age: std::time::Duration,
}

/// [`RunOptions::discard_grace`] unless a test shortens it.
pub const DISCARD_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            cipher: crate::pipeline::stream_cipher(),
            discard_grace: DISCARD_GRACE,
            orphan_sweep_every: crate::heal::orphans::SWEEP_EVERY,
            orphan_min_age: crate::heal::orphans::MIN_AGE,
        }
    }
}

/// Runs a node until `shutdown` is cancelled, then drains in-flight requests and flushes.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), NodeError> {
    run_with(cfg, shutdown, RunOptions::default()).await
}

/// [`run`] with the given [`RunOptions`].
pub async fn run_with(
    cfg: Config,
    shutdown: CancellationToken,
    options: RunOptions,
) -> Result<(), NodeError> {
    cfg.check_listeners()?;
    // Certificates first: a bad file should stop start-up before anything else happens.
    let tls = match &cfg.tls {
        Some(source) => {
            let (server_cfg, resolver) = coffer_cluster::tls::server_config(source.clone())?;
            for (file, names) in resolver.summary() {
                tracing::info!(file = %file.display(), names = ?names, "TLS certificate loaded");
            }
            Some((tokio_rustls::TlsAcceptor::from(server_cfg), resolver))
        }
        None => None,
    };
    let node = assemble(&cfg, NodeSeams::real(), options, &shutdown).await?;
    // Printed to the terminal once, at generation; never logged.
    if node.new_credentials {
        println!(
            "Root access key: {}\nRoot secret key: {}",
            node.credentials.access_key,
            node.credentials.secret.as_str()
        );
    }
    if let Some(token) = &node.new_admin_token {
        println!("Admin token: {}", token.as_str());
    }

    let s3_listener = TcpListener::bind(cfg.s3_addr)
        .await
        .map_err(io(format!("bind S3 {}", cfg.s3_addr)))?;
    let admin_listener = TcpListener::bind(cfg.admin_addr)
        .await
        .map_err(io(format!("bind admin {}", cfg.admin_addr)))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(s3 = %cfg.s3_addr, admin = %cfg.admin_addr, scheme, "coffer is serving");
    println!(
        "S3 API: {scheme}://{}  admin API: {scheme}://{}",
        cfg.s3_addr, cfg.admin_addr
    );

    let m = node.metrics.clone();
    let opts = coffer_s3api::ServeOptions {
        tls: tls.as_ref().map(|(acceptor, _)| acceptor.clone()),
        on_handshake: Some(Arc::new(move |group: &str| m.record_tls_handshake(group))),
        ..Default::default()
    };
    let resolver = tls.map(|(_, resolver)| resolver);
    if let (Some(r), Some(interval)) = (&resolver, cfg.tls_watch) {
        tokio::spawn(crate::tls_reload::watch_files(
            r.clone(),
            interval,
            shutdown.clone(),
        ));
    }
    tokio::spawn(crate::tls_reload::on_sighup(resolver, shutdown.clone()));
    let s3_task = tokio::spawn(coffer_s3api::serve_s3_with(
        s3_listener,
        node.s3.clone(),
        shutdown.clone().cancelled_owned(),
        opts.clone(),
    ));
    let admin_task = tokio::spawn(coffer_s3api::serve_admin_with(
        admin_listener,
        node.admin.clone(),
        shutdown.clone().cancelled_owned(),
        opts,
    ));
    shutdown.cancelled().await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = s3_task.await;
    let _ = admin_task.await;
    node.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// The effects a node is built over: the real ones for [`run_with`], simulated ones in the
/// deterministic simulation (house plan §5).
pub struct NodeSeams {
    /// Files: the data directory and the drives.
    pub fs: Arc<dyn DriveIo>,
    /// Randomness for keys, nonces and ids.
    pub entropy: Arc<dyn Entropy>,
    /// Wall-clock time for object timestamps and jobs.
    pub clock: Arc<dyn Clock>,
    /// A single node's metadata store, already open; `None`: sled under `<data>/meta`.
    pub meta: Option<MetaStore>,
    /// A cluster member's link to its peers; `None`: QUIC from the cluster settings.
    pub cluster_link: Option<crate::cluster::ClusterLink>,
    /// The built-in KMS root key (base64), as `COFFER_KMS_LOCAL_KEY` gives it; `None`: that
    /// variable. Lets one process run several members that share a root, as a cluster must.
    pub kms_local_key: Option<zeroize::Zeroizing<String>>,
}

impl NodeSeams {
    /// The operating system's files, randomness and clock; sled for metadata.
    pub fn real() -> Self {
        Self {
            fs: Arc::new(FsDriveIo),
            entropy: Arc::new(OsEntropy),
            clock: Arc::new(SystemClock),
            meta: None,
            cluster_link: None,
            kms_local_key: None,
        }
    }
}

/// A node built and ready to serve: the S3 and admin services over one [`NodeService`], and
/// what stopping it needs.
pub struct AssembledNode {
    /// The S3 service (SigV4 auth, routing, audit) over the node.
    pub s3: coffer_s3api::S3HttpService,
    /// The admin API.
    pub admin: axum::Router,
    /// The backend both serve.
    pub service: Arc<NodeService>,
    /// The metadata store.
    pub meta: Arc<MetaStore>,
    /// Counters (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// The root S3 credentials.
    pub credentials: secrets::RootCredentials,
    /// Whether this start generated them (they are then shown once).
    pub new_credentials: bool,
    /// The admin token when this start generated it (shown once).
    pub new_admin_token: Option<zeroize::Zeroizing<String>>,
    cluster: Option<Arc<crate::cluster::ClusterNode>>,
    observer: Arc<Observer>,
    supervisor: ractor::ActorRef<<NodeSupervisor as Actor>::Msg>,
    supervisor_handle: tokio::task::JoinHandle<()>,
}

impl AssembledNode {
    /// Stops the actors, then flushes the metadata store and the audit log.
    pub async fn stop(self) {
        self.supervisor.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.supervisor_handle).await;
        if let Err(e) = self.meta.shutdown().await {
            tracing::warn!(error = %e, "metadata store shutdown");
        }
        if let Some(node) = &self.cluster {
            node.shutdown().await;
        }
        self.observer.flush();
    }
}

/// Builds a node from `cfg` over `seams`: KMS, secrets, metadata, drives, shard placement,
/// actors, and the S3 and admin services. Binds no socket; background jobs stop with
/// `shutdown`.
pub async fn assemble(
    cfg: &Config,
    seams: NodeSeams,
    options: RunOptions,
    shutdown: &CancellationToken,
) -> Result<AssembledNode, NodeError> {
    let NodeSeams {
        fs,
        entropy,
        clock,
        meta: given_meta,
        cluster_link,
        kms_local_key,
    } = seams;
    fs.create_dir_all(&cfg.data)
        .map_err(io(format!("create {}", cfg.data.display())))?;

    let metrics = Arc::new(Metrics::new());
    // The KMS is checked before anything is opened or sealed: a wrong address, token or key
    // stops start-up here with a message that names the provider and the cause.
    let local_root = || {
        let kms_env = match &kms_local_key {
            Some(k) => Some(k.clone()),
            None => secret_var("COFFER_KMS_LOCAL_KEY")?,
        };
        secrets::kms_root_key(
            kms_env.as_deref().map(String::as_str),
            &cfg.data,
            fs.as_ref(),
            entropy.as_ref(),
        )
    };
    let stack =
        crate::kms_setup::build(&cfg.kms, local_root, entropy.clone(), metrics.clone()).await?;
    let (provider, kms, local_kms) = (stack.provider, stack.cached, stack.local);
    let sealer = secrets::Sealer {
        kms: kms.as_ref(),
        key_id: &cfg.kms.default_key,
    };

    let creds_env = (
        secret_var("COFFER_ROOT_USER")?.map(|v| v.to_string()),
        secret_var("COFFER_ROOT_PASSWORD")?,
    );
    let (creds, new_creds) =
        secrets::root_credentials(creds_env, &cfg.data, fs.as_ref(), sealer, entropy.as_ref())
            .await?;
    let (token, new_token) = secrets::admin_token(
        secret_var("COFFER_ADMIN_TOKEN")?,
        &cfg.data,
        fs.as_ref(),
        sealer,
        entropy.as_ref(),
    )
    .await?;
    let meta_dir = cfg.data.join("meta");
    let (meta, cluster) = match (&cfg.cluster, given_meta) {
        (None, Some(meta)) => (meta, None),
        (None, None) => (MetaStore::open(&meta_dir, 1).await?, None),
        (Some(settings), _) => {
            let (node, meta) = crate::cluster::start(settings, &meta_dir, cluster_link).await?;
            (meta, Some(Arc::new(node)))
        }
    };
    let meta = Arc::new(meta);
    if let Some(local) = &local_kms {
        let registry = Arc::new(crate::kms_registry::RaftKeyRegistry::new(meta.clone()));
        // A restarted cluster member may still be catching up with the log (or waiting for a
        // leader): its first linearizable read can time out; keep trying for a bounded time.
        let until = tokio::time::Instant::now()
            + if cluster.is_some() {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            };
        loop {
            match local.attach_registry(registry.clone()).await {
                Ok(()) => break,
                Err(error) if tokio::time::Instant::now() < until => {
                    tracing::info!(%error, "key registry not readable yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    return Err(crate::kms_setup::KmsStartError {
                        provider: "local",
                        location: "built in".into(),
                        cause: format!("cannot load the key registry: {error}"),
                        error,
                    }
                    .into())
                }
            }
        }
    }
    let drives = open_drives(&cfg.drives, fs.clone())?;
    let shards = match &cluster {
        None => {
            let erasure = ErasureConfig::for_drives(drives.len())?;
            tracing::info!(
                drives = drives.len(),
                data = erasure.data,
                parity = erasure.parity,
                "erasure layout"
            );
            crate::shards::ShardMap::single(drives.clone(), erasure)
        }
        Some(node) => {
            let me = crate::shards::layout::NodeRecord {
                id: node.node_id,
                quic: node.settings.advertise.clone(),
                s3: node
                    .settings
                    .s3_advertise
                    .clone()
                    .unwrap_or_else(|| cfg.s3_addr.to_string()),
                admin: cfg.admin_addr.to_string(),
                drives: drives.len(),
            };
            let mut seed = [0u8; 8];
            entropy.fill(&mut seed);
            let cs = crate::shards::remote::ClusterShards::new(
                me.clone(),
                node.transport.clone(),
                node.settings.parity,
                u64::from_le_bytes(seed),
            );
            let members = meta.clone();
            let server = Arc::new(crate::shards::serve::ShardServer::new(
                drives.clone(),
                Box::new(move |id| members.status().members.iter().any(|m| m.id == id)),
            ));
            node.handlers.register(crate::shards::wire::CHANNEL, server);
            tokio::spawn(crate::cluster::run_layout(
                (*meta).clone(),
                cs.clone(),
                me,
                shutdown.clone(),
            ));
            tokio::spawn(cs.clone().heartbeats(shutdown.clone()));
            crate::shards::ShardMap::cluster(drives.clone(), cs)
        }
    };

    let drive_actors = DriveActors::default();
    let key_handle = KeyHandle::default();
    let args = SupervisorArgs {
        drives: drives.clone(),
        drive_actors: drive_actors.clone(),
        keys: Arc::new(
            KeyService::new(kms.clone(), entropy.clone())
                .with_provider(provider)
                .with_default_key(cfg.kms.default_key.clone()),
        ),
        key_handle: key_handle.clone(),
    };
    let (supervisor, supervisor_handle) = Actor::spawn(None, NodeSupervisor, args)
        .await
        .map_err(|e| NodeError::Actor(e.to_string()))?;

    let audit = match &cfg.audit_log {
        Some(p) => Some(AuditLog::open(p).map_err(io(format!("audit log {}", p.display())))?),
        None => None,
    };
    let observer = Arc::new(Observer::new(metrics.clone(), audit));
    let shards = Arc::new(shards);
    // The healer runs on the Raft leader: in a cluster one node rebuilds at a time; a single
    // node is its own leader and heals its own drives.
    let healer = Arc::new(crate::heal::Healer::new(
        meta.clone(),
        shards.clone(),
        metrics.clone(),
        clock.clone(),
    ));
    tokio::spawn(healer.clone().run(shutdown.clone()));
    // Every node sweeps its own drives, single or clustered.
    let sweep = Arc::new(crate::heal::orphans::OrphanSweep::new(
        meta.clone(),
        drives.clone(),
        metrics.clone(),
        options.orphan_sweep_every,
        options.orphan_min_age.max(options.discard_grace),
    ));
    tokio::spawn(sweep.run(shutdown.clone()));
    let rewrap = Arc::new(crate::rewrap::RewrapJobs::new(
        meta.clone(),
        key_handle.clone(),
        clock.clone(),
    ));
    let service = Arc::new(NodeService {
        meta: meta.clone(),
        keys: key_handle,
        drives,
        drive_actors,
        shards: shards.clone(),
        cluster: cluster.clone(),
        healer: healer.clone(),
        clock,
        entropy,
        metrics: metrics.clone(),
        cipher: options.cipher,
        discard_grace: options.discard_grace,
        rewrap: rewrap.clone(),
    });
    // Jobs a restart interrupted go on from their checkpoints.
    tokio::spawn(async move { rewrap.resume_interrupted().await });

    let s3_creds = vec![coffer_s3api::Credentials::new(
        creds.access_key.clone(),
        creds.secret.to_string(),
    )];
    let s3 = coffer_s3api::s3_service(
        service.clone(),
        s3_creds,
        observer.clone(),
        cfg.domain.clone(),
    )?;
    let m = metrics.clone();
    let admin = coffer_s3api::admin_router(
        service.clone(),
        coffer_s3api::AdminToken::new(token.to_string()),
        Arc::new(move || m.render()),
        observer.clone(),
    );
    Ok(AssembledNode {
        s3,
        admin,
        service,
        meta,
        metrics,
        credentials: creds,
        new_credentials: new_creds,
        new_admin_token: new_token.then_some(token),
        cluster,
        observer,
        supervisor,
        supervisor_handle,
    })
}

fn open_drives(
    dirs: &[std::path::PathBuf],
    fs: Arc<dyn DriveIo>,
) -> Result<Vec<Arc<Drive>>, NodeError> {
    let mut drives = Vec::with_capacity(dirs.len());
    let mut devices = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let d =
            Drive::open(i, dir, fs.clone()).map_err(io(format!("open drive {}", dir.display())))?;
        devices.push(fs.device_id(Path::new(dir)).unwrap_or(i as u64));
        drives.push(Arc::new(d));
    }
    devices.sort_unstable();
    devices.dedup();
    if dirs.len() > 1 && devices.len() < dirs.len() {
        tracing::warn!(
            drives = dirs.len(),
            devices = devices.len(),
            "several drives share one device: erasure coding then protects against file loss, \
             not against losing that disk"
        );
    }
    Ok(drives)
}
