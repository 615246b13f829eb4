//! Server-side TLS for the S3 and admin listeners: rustls with the aws-lc-rs provider (hybrid
//! post-quantum X25519MLKEM768 offered first, classical groups as fallback), TLS 1.2 and 1.3
//! only, certificates from one pair of files or from a directory of pairs chosen by SNI, and
//! reloadable without a restart.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash as _, Hasher as _, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Protocol versions served: TLS 1.3 and 1.2; never 1.1 or older (rustls has none).
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Where the server's certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// One certificate chain (PEM) and its private key (PEM), served for every name.
    Pair {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file.
        key: PathBuf,
    },
    /// A directory of `<name>.pem` + `<name>.key` pairs; each certificate serves the DNS names
    /// in its SANs. The default (no SNI, or an unknown name) is `default.pem` when present,
    /// else the first pair by file name.
    Dir(PathBuf),
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file holds no certificate, or an unreadable one.
    #[error("{path}: no usable PEM certificate")]
    NoCertificate {
        /// File.
        path: PathBuf,
    },
    /// A file holds no private key, or an unreadable one.
    #[error("{path}: no usable PEM private key")]
    NoKey {
        /// File.
        path: PathBuf,
    },
    /// The key is of a type the provider cannot sign with, or does not match the certificate.
    #[error("{path}: {reason}")]
    BadKey {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate is not a parsable X.509 end-entity certificate.
    #[error("{path}: invalid certificate: {reason}")]
    BadCertificate {
        /// File.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A TLS directory holds no certificate/key pair.
    #[error("{0}: no <name>.pem + <name>.key pair found")]
    EmptyDir(PathBuf),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The crypto provider used for every TLS endpoint: aws-lc-rs with its default key-exchange
/// groups (X25519MLKEM768 first).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// One loaded certificate and the names it serves.
#[derive(Debug)]
struct Entry {
    file: PathBuf,
    /// Lower-cased DNS SANs; wildcards kept as `*.suffix`.
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// A loaded set of certificates.
#[derive(Debug)]
struct CertSet {
    entries: Vec<Entry>,
    exact: HashMap<String, usize>,
    /// `suffix` (without `*.`) → entry.
    wildcard: HashMap<String, usize>,
    default: usize,
}

impl CertSet {
    fn pick(&self, sni: Option<&str>) -> &Entry {
        let idx = sni
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .and_then(|s| {
                self.exact.get(&s).copied().or_else(|| {
                    let (_, suffix) = s.split_once('.')?;
                    self.wildcard.get(suffix).copied()
                })
            })
            .unwrap_or(self.default);
        &self.entries[idx]
    }
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Entry, TlsError> {
    let cert_bytes = std::fs::read(cert).map_err(io_err(cert))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: cert.to_path_buf(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    };
    let names = {
        let ee = webpki::EndEntityCert::try_from(leaf).map_err(|e| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
        ee.valid_dns_names()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let key_bytes = zeroize::Zeroizing::new(std::fs::read(key).map_err(io_err(key))?);
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| TlsError::NoKey {
        path: key.to_path_buf(),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| TlsError::BadKey {
        path: key.to_path_buf(),
        reason: format!("does not match {}: {e}", cert.display()),
    })?;
    Ok(Entry {
        file: cert.to_path_buf(),
        names,
        key: Arc::new(certified),
    })
}

fn load(source: &TlsSource, provider: &CryptoProvider) -> Result<CertSet, TlsError> {
    let mut entries = Vec::new();
    let mut default = 0;
    match source {
        TlsSource::Pair { cert, key } => entries.push(load_pair(cert, key, provider)?),
        TlsSource::Dir(dir) => {
            let mut pems = Vec::new();
            for e in std::fs::read_dir(dir).map_err(io_err(dir))? {
                let path = e.map_err(io_err(dir))?.path();
                if path.extension().is_some_and(|x| x == "pem") && path.is_file() {
                    pems.push(path);
                }
            }
            pems.sort();
            for cert in pems {
                let key = cert.with_extension("key");
                if !key.is_file() {
                    tracing::debug!(file = %cert.display(), "no matching .key: not a server certificate");
                    continue;
                }
                if cert.file_stem().is_some_and(|s| s == "default") {
                    default = entries.len();
                }
                entries.push(load_pair(&cert, &key, provider)?);
            }
            if entries.is_empty() {
                return Err(TlsError::EmptyDir(dir.clone()));
            }
        }
    }
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for n in &e.names {
            let (map, key) = match n.strip_prefix("*.") {
                Some(suffix) => (&mut wildcard, suffix.to_string()),
                None => (&mut exact, n.clone()),
            };
            if let Some(prev) = map.insert(key.clone(), i) {
                // First file (by name) wins; say so, since the operator probably did not mean it.
                map.insert(key, prev);
                tracing::warn!(name = %n, file = %e.file.display(), kept = %entries[prev].file.display(),
                    "name served by two certificates: keeping the first");
            }
        }
    }
    Ok(CertSet {
        entries,
        exact,
        wildcard,
        default,
    })
}

/// A digest of what a [`TlsSource`]'s files hold now, to notice when they change.
///
/// Content, not modification times: a rename of a file written in the same second, or a copy
/// that keeps the old mtime, would otherwise go unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64);

/// Feeds one file (name, and content or why it could not be read) into `h`.
fn hash_file(h: &mut impl std::hash::Hasher, path: &Path) {
    path.hash(h);
    match std::fs::read(path) {
        Ok(bytes) => {
            // Key files pass through here: do not leave a copy behind in freed memory.
            let bytes = zeroize::Zeroizing::new(bytes);
            0u8.hash(h);
            bytes.hash(h);
        }
        Err(e) => {
            1u8.hash(h);
            e.kind().hash(h);
        }
    }
}

/// Resolves the server certificate by SNI from a reloadable certificate set.
#[derive(Debug)]
pub struct SniResolver {
    source: TlsSource,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertSet>>,
    /// Fingerprint of the files the current set was loaded from (taken before reading them, so
    /// a change during a load is seen on the next check rather than lost).
    loaded: RwLock<Fingerprint>,
    /// Keys the fingerprint hash per process: a digest over private-key bytes must not be a
    /// fixed, precomputable function of them.
    hasher: RandomState,
}

impl SniResolver {
    /// Loads the certificates of `source`.
    pub fn new(source: TlsSource, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let hasher = RandomState::new();
        let fingerprint = fingerprint_of(&source, &hasher);
        let set = load(&source, &provider)?;
        Ok(Self {
            source,
            provider,
            current: RwLock::new(Arc::new(set)),
            loaded: RwLock::new(fingerprint),
            hasher,
        })
    }

    /// Reads the files again. On success new handshakes use the new certificates (open
    /// connections keep theirs); on failure the old ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fingerprint = self.files_fingerprint();
        let set = Arc::new(load(&self.source, &self.provider)?);
        let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
        *cur = set;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = fingerprint;
        Ok(())
    }

    /// The fingerprint of the configured files as they are now (blocking file reads).
    pub fn files_fingerprint(&self) -> Fingerprint {
        fingerprint_of(&self.source, &self.hasher)
    }

    /// Whether the certificates in use were loaded from files with this fingerprint.
    pub fn is_loaded(&self, fingerprint: Fingerprint) -> bool {
        *self.loaded.read().unwrap_or_else(|p| p.into_inner()) == fingerprint
    }

    fn set(&self) -> Arc<CertSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The DNS names each loaded certificate serves, by file (for the start-up log).
    pub fn summary(&self) -> Vec<(PathBuf, Vec<String>)> {
        self.set()
            .entries
            .iter()
            .map(|e| (e.file.clone(), e.names.clone()))
            .collect()
    }
}

/// The fingerprint of every file `source` may load: the pair, or each `.pem` and `.key` in the
/// directory (a new or removed pair changes it too).
fn fingerprint_of(source: &TlsSource, hasher: &RandomState) -> Fingerprint {
    let mut h = hasher.build_hasher();
    match source {
        TlsSource::Pair { cert, key } => {
            hash_file(&mut h, cert);
            hash_file(&mut h, key);
        }
        TlsSource::Dir(dir) => match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "key"))
                    .collect();
                files.sort();
                for f in files {
                    hash_file(&mut h, &f);
                }
            }
            Err(e) => e.kind().hash(&mut h),
        },
    }
    Fingerprint(h.finish())
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.set().pick(hello.server_name()).key.clone())
    }
}

/// The server configuration for the S3 and admin listeners, and the resolver (for reloads).
pub fn server_config(source: TlsSource) -> Result<(Arc<ServerConfig>, Arc<SniResolver>), TlsError> {
    let provider = provider();
    let resolver = Arc::new(SniResolver::new(source, provider.clone())?);
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), resolver))
}

/// Name of a negotiated key-exchange group, for logs and metrics ("X25519MLKEM768", ...).
pub fn group_name(group: rustls::NamedGroup) -> String {
    match group {
        rustls::NamedGroup::Unknown(n) => format!("unknown-{n:#06x}"),
        g => format!("{g:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs;

    #[test]
    fn post_quantum_hybrid_is_offered_first() {
        let p = provider();
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(groups[0], rustls::NamedGroup::X25519MLKEM768, "{groups:?}");
        assert!(
            groups.contains(&rustls::NamedGroup::X25519),
            "classical fallback"
        );
        assert_eq!(group_name(groups[0]), "X25519MLKEM768");
    }

    #[test]
    fn only_tls12_and_tls13() {
        let dir = tempfile::tempdir().unwrap();
        let w =
            certs::write_self_signed("a", &["localhost".into()], &[], dir.path(), false).unwrap();
        let (cfg, _) = server_config(TlsSource::Pair {
            cert: w.cert,
            key: w.key,
        })
        .unwrap();
        // Every suite the server may pick is a TLS 1.2 or 1.3 suite.
        for s in &cfg.crypto_provider().cipher_suites {
            let v = s.version().version;
            assert!(
                v == rustls::ProtocolVersion::TLSv1_3 || v == rustls::ProtocolVersion::TLSv1_2,
                "{v:?}"
            );
        }
        assert_eq!(PROTOCOL_VERSIONS.len(), 2);
    }

    #[test]
    fn dir_picks_by_sni_with_default_and_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        certs::write_self_signed("b-one", &["one.test".into()], &[], dir.path(), false).unwrap();
        certs::write_self_signed(
            "a-two",
            &["two.test".into(), "*.wild.test".into()],
            &[],
            dir.path(),
            false,
        )
        .unwrap();
        // A stray CA certificate without a key is ignored.
        std::fs::write(dir.path().join("ca.pem"), b"not used").unwrap();
        let r = SniResolver::new(TlsSource::Dir(dir.path().into()), provider()).unwrap();
        let set = r.set();
        let file = |sni| {
            set.pick(sni)
                .file
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(file(Some("one.test")), "b-one.pem");
        assert_eq!(file(Some("ONE.test.")), "b-one.pem");
        assert_eq!(file(Some("two.test")), "a-two.pem");
        assert_eq!(file(Some("x.wild.test")), "a-two.pem");
        assert_eq!(
            file(Some("x.y.wild.test")),
            "a-two.pem",
            "unknown name: default"
        );
        // Default without default.pem: the first by file name.
        assert_eq!(file(None), "a-two.pem");

        certs::write_self_signed("default", &["d.test".into()], &[], dir.path(), false).unwrap();
        r.reload().unwrap();
        let set = r.set();
        assert_eq!(set.pick(None).file.file_name().unwrap(), "default.pem");
        assert_eq!(
            set.pick(Some("one.test")).file.file_name().unwrap(),
            "b-one.pem"
        );
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = SniResolver::new(TlsSource::Dir(dir.path().into()), provider()).unwrap_err();
        assert!(matches!(err, TlsError::EmptyDir(_)));
        let a = certs::write_self_signed("a", &["a.test".into()], &[], dir.path(), false).unwrap();
        let b = certs::write_self_signed("b", &["b.test".into()], &[], dir.path(), false).unwrap();
        let err = SniResolver::new(
            TlsSource::Pair {
                cert: a.cert.clone(),
                key: b.key.clone(),
            },
            provider(),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
        let err = SniResolver::new(
            TlsSource::Pair {
                cert: a.key.clone(),
                key: a.key.clone(),
            },
            provider(),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        // A failed reload keeps the old certificates.
        let r = SniResolver::new(
            TlsSource::Pair {
                cert: a.cert.clone(),
                key: a.key.clone(),
            },
            provider(),
        )
        .unwrap();
        std::fs::write(&a.cert, b"garbage").unwrap();
        assert!(r.reload().is_err());
        assert_eq!(r.summary()[0].1, vec!["a.test".to_string()]);
    }

    #[test]
    fn fingerprint_follows_file_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = certs::write_self_signed("a", &["a.test".into()], &[], dir.path(), false).unwrap();
        let r = SniResolver::new(
            TlsSource::Pair {
                cert: a.cert.clone(),
                key: a.key.clone(),
            },
            provider(),
        )
        .unwrap();
        let first = r.files_fingerprint();
        assert!(r.is_loaded(first), "unchanged files");
        // New content (same names): a different fingerprint, not loaded yet.
        certs::write_self_signed("a", &["b.test".into()], &[], dir.path(), true).unwrap();
        let second = r.files_fingerprint();
        assert_ne!(first, second);
        assert!(!r.is_loaded(second));
        r.reload().unwrap();
        assert!(r.is_loaded(second));
        assert_eq!(r.summary()[0].1, vec!["b.test".to_string()]);
        // A file that disappears changes it too; the failed reload keeps what was loaded.
        std::fs::remove_file(&a.key).unwrap();
        let gone = r.files_fingerprint();
        assert_ne!(gone, second);
        assert!(r.reload().is_err());
        assert!(r.is_loaded(second));

        // Directory mode: a new pair changes the fingerprint.
        let d = tempfile::tempdir().unwrap();
        certs::write_self_signed("x", &["x.test".into()], &[], d.path(), false).unwrap();
        let r = SniResolver::new(TlsSource::Dir(d.path().into()), provider()).unwrap();
        let before = r.files_fingerprint();
        assert!(r.is_loaded(before));
        certs::write_self_signed("y", &["y.test".into()], &[], d.path(), false).unwrap();
        assert!(!r.is_loaded(r.files_fingerprint()));
    }
}
