//! What a QUIC endpoint needs: this node's certificate and key, the cluster CA, and the
//! transport settings; and the rustls configurations built from them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::verify::{NodeClientVerifier, NodeServerVerifier};
use super::QuicError;
use crate::identity::{node_id_of_cert, NodeId};
use crate::transport::DEFAULT_DEADLINE;

/// ALPN protocol of the inter-node RPC protocol; a peer speaking anything else is refused.
pub const ALPN: &[u8] = b"coffer/1";

/// Largest request or reply payload accepted by default (Raft snapshot chunks and shard blocks
/// fit well below it).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// This node's certificate chain and key, and the cluster CA it trusts.
pub struct NodeTls {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
    node_id: NodeId,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("node_id", &self.node_id)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Clone for NodeTls {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            roots: Arc::clone(&self.roots),
            node_id: self.node_id,
        }
    }
}

impl NodeTls {
    /// From PEM text: the node's chain (leaf first, as `coffer certs node` writes it), its
    /// private key, and the cluster CA certificate(s). The leaf must carry a node id.
    pub fn from_pem(chain_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Self, QuicError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| QuicError::BadPem("node certificate"))?;
        let leaf = chain.first().ok_or(QuicError::BadPem("node certificate"))?;
        let node_id = node_id_of_cert(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| QuicError::BadPem("node key"))?;
        let mut roots = RootCertStore::empty();
        let mut any = false;
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let ca = ca.map_err(|_| QuicError::BadPem("CA certificate"))?;
            roots.add(ca)?;
            any = true;
        }
        if !any {
            return Err(QuicError::BadPem("CA certificate"));
        }
        Ok(Self {
            chain,
            key,
            roots: Arc::new(roots),
            node_id,
        })
    }

    /// From files: `cert` (chain), `key`, `ca` (the cluster CA's `ca.pem`).
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self, QuicError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| QuicError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let key_pem = zeroize::Zeroizing::new(read(key)?);
        Self::from_pem(&read(cert)?, &key_pem, &read(ca)?)
    }

    /// The node id this certificate names.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The rustls server side: TLS 1.3 only (QUIC requires it), client certificate mandatory.
    /// The private key's DER bytes (for keys derived from it; never logged).
    pub(crate) fn key_der(&self) -> &[u8] {
        self.key.secret_der()
    }

    pub(crate) fn server_config(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<QuicServerConfig, QuicError> {
        let inner = WebPkiClientVerifier::builder_with_provider(
            Arc::clone(&self.roots),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| QuicError::Verifier(e.to_string()))?;
        let verifier = Arc::new(NodeClientVerifier::new(inner));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        QuicServerConfig::try_from(cfg).map_err(|_| QuicError::NoInitialSuite)
    }

    /// The rustls client side for dialling node `expected`: presents this node's certificate.
    pub(crate) fn client_config(
        &self,
        provider: Arc<CryptoProvider>,
        expected: NodeId,
    ) -> Result<QuicClientConfig, QuicError> {
        let verifier = Arc::new(NodeServerVerifier::new(
            Arc::clone(&self.roots),
            provider.signature_verification_algorithms,
            expected,
        ));
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        QuicClientConfig::try_from(cfg).map_err(|_| QuicError::NoInitialSuite)
    }
}

/// Settings of one node's QUIC endpoint.
#[derive(Debug, Clone)]
pub struct QuicConfig {
    /// UDP address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Certificates.
    pub tls: NodeTls,
    /// Deadline of calls that name none.
    pub default_deadline: Duration,
    /// Largest request or reply payload, in bytes.
    pub max_frame: usize,
    /// A connection with no traffic for this long is closed (keep-alives prevent it while the
    /// peer is up), which is also how a silently dead peer is noticed.
    pub idle_timeout: Duration,
    /// Keep-alive interval on open connections.
    pub keep_alive: Duration,
    /// Calls in flight per connection, each way; further calls wait (backpressure).
    pub max_concurrent_calls: u32,
    /// How long a graceful shutdown waits for calls in flight.
    pub shutdown_grace: Duration,
    /// The TLS provider; `None` is [`crate::tls::provider`] (aws-lc-rs, X25519MLKEM768 first).
    pub provider: Option<Arc<CryptoProvider>>,
}

impl QuicConfig {
    /// Defaults for `listen` with `tls`.
    pub fn new(listen: SocketAddr, tls: NodeTls) -> Self {
        Self {
            listen,
            tls,
            default_deadline: DEFAULT_DEADLINE,
            max_frame: DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            max_concurrent_calls: 256,
            shutdown_grace: Duration::from_secs(5),
            provider: None,
        }
    }

    pub(crate) fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone().unwrap_or_else(crate::tls::provider)
    }

    /// quinn's transport parameters from these settings.
    pub(crate) fn transport(&self) -> Result<Arc<quinn::TransportConfig>, QuicError> {
        let mut t = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| QuicError::Setting("idle_timeout"))?;
        t.max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(self.keep_alive))
            .max_concurrent_bidi_streams(self.max_concurrent_calls.into())
            .max_concurrent_uni_streams(0u32.into())
            // Room for a multi-MiB frame in flight on one stream without stalling on credit.
            .stream_receive_window((8u32 * 1024 * 1024).into());
        Ok(Arc::new(t))
    }
}
