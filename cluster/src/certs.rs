//! Certificate tooling (rcgen): the cluster CA, node certificates for mutual TLS, and self-signed
//! development certificates, written as PEM files with private keys at mode 0600.
//!
//! File layout:
//! - CA directory: `ca.pem` (certificate), `ca-key.pem` (private key).
//! - Node / self-signed: `<name>.pem` (certificate, followed by the CA certificate for node
//!   certificates, so that the file is a full chain) and `<name>.key` (private key). The
//!   `<name>.pem` + `<name>.key` pairing is what `--tls-dir` loads.
//! - A node certificate issued with a node id also names it in a `coffer://node/<id>` URI SAN
//!   (see [`crate::identity`]); the QUIC transport requires it.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::identity::{node_id_uri, NodeId};

/// File name of the CA certificate in a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key in a CA directory.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// How long a cluster CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a node or self-signed certificate is valid.
pub const LEAF_VALIDITY: Duration = Duration::days(825);

/// Why a certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A target file exists and `--force` was not given.
    #[error("{0} already exists (pass --force to overwrite)")]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// rcgen refused the parameters or the input.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A name is not usable as a DNS subject alternative name.
    #[error("invalid DNS name {0:?}")]
    InvalidDnsName(String),
    /// A certificate file name is not usable.
    #[error("invalid certificate name {0:?}: use letters, digits, '.', '-' and '_'")]
    InvalidName(String),
    /// Neither a DNS name nor an IP address was given.
    #[error("at least one --dns or --ip is required")]
    NoSubjectNames,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A certificate and its private key, as PEM. The key zeroizes on drop and never prints.
pub struct Issued {
    /// Certificate PEM (for node certificates: the leaf followed by the CA).
    pub cert_pem: String,
    /// Private key PEM (PKCS#8).
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What was written where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The certificate file.
    pub cert: PathBuf,
    /// The private key file (mode 0600).
    pub key: PathBuf,
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = OffsetDateTime::now_utc();
    // A little slack for clocks that are slightly behind.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + lifetime;
}

fn subject_names(
    params: &mut CertificateParams,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<(), CertError> {
    if dns.is_empty() && ips.is_empty() {
        return Err(CertError::NoSubjectNames);
    }
    for name in dns {
        if rustls_pki_types::DnsName::try_from(name.as_str()).is_err()
            && !is_wildcard_dns(name.as_str())
        {
            return Err(CertError::InvalidDnsName(name.clone()));
        }
        let ia5 = rcgen::Ia5String::try_from(name.as_str())
            .map_err(|_| CertError::InvalidDnsName(name.clone()))?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(())
}

fn is_wildcard_dns(name: &str) -> bool {
    name.strip_prefix("*.")
        .is_some_and(|rest| rest.contains('.') && rustls_pki_types::DnsName::try_from(rest).is_ok())
}

fn check_file_name(name: &str) -> Result<(), CertError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(CertError::InvalidName(name.to_string()))
    }
}

/// Makes a new cluster CA (ECDSA P-256, path length 0).
pub fn new_ca(common_name: &str) -> Result<Issued, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Coffer");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

fn leaf_params(name: &str, dns: &[String], ips: &[IpAddr]) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    subject_names(&mut params, dns, ips)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Coffer");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut params, LEAF_VALIDITY);
    Ok(params)
}

/// Issues a node certificate (server and client auth) for `dns`/`ips`, signed by the CA given
/// as PEM, carrying `node_id` as a `coffer://node/<id>` SAN when given. The returned
/// certificate PEM is the leaf followed by the CA certificate.
pub fn issue_node(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    name: &str,
    node_id: Option<NodeId>,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<Issued, CertError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let ca_params = CertificateParams::from_ca_cert_pem(ca_cert_pem)?;
    // Re-signing the CA's own parameters yields a certificate object with the CA's subject and
    // key; only those (not its signature) go into the node certificate.
    let ca = ca_params.self_signed(&ca_key)?;
    let mut params = leaf_params(name, dns, ips)?;
    if let Some(id) = node_id {
        let uri = rcgen::Ia5String::try_from(node_id_uri(id))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let mut chain = cert.pem();
    chain.push_str(ca_cert_pem.trim_end());
    chain.push('\n');
    Ok(Issued {
        cert_pem: chain,
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

/// Issues a self-signed certificate (server and client auth) for development.
pub fn self_signed(name: &str, dns: &[String], ips: &[IpAddr]) -> Result<Issued, CertError> {
    let params = leaf_params(name, dns, ips)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

/// Writes `issued` to `cert`/`key` in `dir` (created if missing). Nothing is written when a
/// target exists and `force` is false. The key is written with mode 0600.
fn write_pair(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    issued: &Issued,
    force: bool,
) -> Result<Written, CertError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let cert = dir.join(cert_name);
    let key = dir.join(key_name);
    if !force {
        for p in [&cert, &key] {
            if std::fs::symlink_metadata(p).is_ok() {
                return Err(CertError::Exists(p.clone()));
            }
        }
    }
    // Key first: a crash in between leaves no certificate without its key.
    write_file(&key, issued.key_pem.as_bytes(), 0o600, force)?;
    write_file(&cert, issued.cert_pem.as_bytes(), 0o644, force)?;
    Ok(Written { cert, key })
}

fn write_file(path: &Path, contents: &[u8], mode: u32, force: bool) -> Result<(), CertError> {
    let mut opts = OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CertError::Exists(path.to_path_buf())
        } else {
            io_err(path)(e)
        }
    })?;
    // `mode` only applies on creation: an overwritten file gets it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    f.write_all(contents).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(())
}

/// `coffer certs ca`: a new cluster CA in `out` (`ca.pem`, `ca-key.pem`).
pub fn write_ca(out: &Path, force: bool) -> Result<Written, CertError> {
    let issued = new_ca("Coffer cluster CA")?;
    write_pair(out, CA_CERT_FILE, CA_KEY_FILE, &issued, force)
}

/// `coffer certs node`: a node certificate signed by the CA in `ca_dir`, written to `out` as
/// `<name>.pem` (chain) and `<name>.key`; with `node_id`, usable for the cluster transport.
pub fn write_node(
    ca_dir: &Path,
    name: &str,
    node_id: Option<NodeId>,
    dns: &[String],
    ips: &[IpAddr],
    out: &Path,
    force: bool,
) -> Result<Written, CertError> {
    check_file_name(name)?;
    let ca_cert_path = ca_dir.join(CA_CERT_FILE);
    let ca_key_path = ca_dir.join(CA_KEY_FILE);
    let ca_cert = std::fs::read_to_string(&ca_cert_path).map_err(io_err(&ca_cert_path))?;
    let ca_key =
        Zeroizing::new(std::fs::read_to_string(&ca_key_path).map_err(io_err(&ca_key_path))?);
    let issued = issue_node(&ca_cert, &ca_key, name, node_id, dns, ips)?;
    write_pair(
        out,
        &format!("{name}.pem"),
        &format!("{name}.key"),
        &issued,
        force,
    )
}

/// `coffer certs self-signed`: a self-signed certificate written to `out` as `<name>.pem` and
/// `<name>.key`.
pub fn write_self_signed(
    name: &str,
    dns: &[String],
    ips: &[IpAddr],
    out: &Path,
    force: bool,
) -> Result<Written, CertError> {
    check_file_name(name)?;
    let issued = self_signed(name, dns, ips)?;
    write_pair(
        out,
        &format!("{name}.pem"),
        &format!("{name}.key"),
        &issued,
        force,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    fn certs_of(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    /// Verifies `leaf` against `anchor` for `usage` and `name` with webpki (what rustls uses).
    fn verify(
        anchor: &CertificateDer<'_>,
        leaf: &CertificateDer<'_>,
        name: &str,
        usage: webpki::KeyUsage,
    ) -> Result<(), webpki::Error> {
        let ta = webpki::anchor_from_trusted_cert(anchor).unwrap();
        let ee = webpki::EndEntityCert::try_from(leaf).unwrap();
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[ta],
            &[],
            UnixTime::now(),
            usage,
            None,
            None,
        )?;
        ee.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn ca_files_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let w = write_ca(dir.path(), false).unwrap();
        assert_eq!(w.cert, dir.path().join("ca.pem"));
        assert_eq!(w.key, dir.path().join("ca-key.pem"));
        assert_eq!(mode(&w.key), 0o600);
        let pem = std::fs::read_to_string(&w.cert).unwrap();
        let certs = certs_of(&pem);
        assert_eq!(certs.len(), 1);
        // A usable trust anchor.
        webpki::anchor_from_trusted_cert(&certs[0]).unwrap();
        let key = std::fs::read(&w.key).unwrap();
        rustls_pki_types::PrivateKeyDer::from_pem_slice(&key).unwrap();
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        write_ca(dir.path(), false).unwrap();
        let before = std::fs::read(dir.path().join("ca-key.pem")).unwrap();
        let err = write_ca(dir.path(), false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(
            std::fs::read(dir.path().join("ca-key.pem")).unwrap(),
            before
        );
        // Only the certificate present: still refused, and the key is not created.
        std::fs::remove_file(dir.path().join("ca-key.pem")).unwrap();
        assert!(matches!(
            write_ca(dir.path(), false),
            Err(CertError::Exists(_))
        ));
        assert!(!dir.path().join("ca-key.pem").exists());

        std::fs::write(dir.path().join("ca-key.pem"), b"old").unwrap();
        std::fs::set_permissions(
            dir.path().join("ca-key.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let w = write_ca(dir.path(), true).unwrap();
        assert_ne!(std::fs::read(&w.key).unwrap(), b"old");
        assert_eq!(mode(&w.key), 0o600, "an overwritten key is 0600 too");
    }

    #[test]
    fn node_cert_verifies_against_ca_for_its_sans_both_usages() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        write_ca(&ca_dir, false).unwrap();
        let out = dir.path().join("n1");
        let dns = vec![
            "node1.coffer.test".to_string(),
            "s3.coffer.test".to_string(),
        ];
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let w = write_node(&ca_dir, "node1", Some(1), &dns, &ips, &out, false).unwrap();
        assert_eq!(w.cert, out.join("node1.pem"));
        assert_eq!(w.key, out.join("node1.key"));
        assert_eq!(mode(&w.key), 0o600);

        let ca = certs_of(&std::fs::read_to_string(ca_dir.join("ca.pem")).unwrap());
        let chain = certs_of(&std::fs::read_to_string(&w.cert).unwrap());
        assert_eq!(chain.len(), 2, "leaf + CA");
        assert_eq!(chain[1], ca[0]);
        for name in ["node1.coffer.test", "s3.coffer.test", "10.0.0.1"] {
            verify(&ca[0], &chain[0], name, webpki::KeyUsage::server_auth()).unwrap();
            verify(&ca[0], &chain[0], name, webpki::KeyUsage::client_auth()).unwrap();
        }
        assert!(verify(
            &ca[0],
            &chain[0],
            "other.coffer.test",
            webpki::KeyUsage::server_auth()
        )
        .is_err());
        // Not valid under another CA.
        let other = dir.path().join("other");
        write_ca(&other, false).unwrap();
        let other_ca = certs_of(&std::fs::read_to_string(other.join("ca.pem")).unwrap());
        assert!(verify(
            &other_ca[0],
            &chain[0],
            "node1.coffer.test",
            webpki::KeyUsage::server_auth()
        )
        .is_err());
        // The subject names the node.
        let ee = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
        let subject = ee.subject();
        assert!(subject.windows(5).any(|w| w == b"node1"));
        // The node id is in the certificate.
        assert_eq!(crate::identity::node_id_of_cert(&chain[0]), Ok(1));
    }

    #[test]
    fn node_cert_without_id_has_none() {
        let ca = new_ca("t").unwrap();
        let plain = issue_node(
            &ca.cert_pem,
            &ca.key_pem,
            "n",
            None,
            &["a.test".into()],
            &[],
        )
        .unwrap();
        let with = issue_node(
            &ca.cert_pem,
            &ca.key_pem,
            "n",
            Some(42),
            &["a.test".into()],
            &[],
        )
        .unwrap();
        use crate::identity::{node_id_of_cert, CertIdError};
        assert_eq!(
            node_id_of_cert(&certs_of(&plain.cert_pem)[0]),
            Err(CertIdError::Missing)
        );
        assert_eq!(node_id_of_cert(&certs_of(&with.cert_pem)[0]), Ok(42));
        // The CA itself names no node.
        assert_eq!(
            node_id_of_cert(&certs_of(&ca.cert_pem)[0]),
            Err(CertIdError::Missing)
        );
    }

    #[test]
    fn self_signed_verifies_as_its_own_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let w = write_self_signed("dev", &["localhost".into()], &ips, dir.path(), false).unwrap();
        assert_eq!(mode(&w.key), 0o600);
        let certs = certs_of(&std::fs::read_to_string(&w.cert).unwrap());
        assert_eq!(certs.len(), 1);
        verify(
            &certs[0],
            &certs[0],
            "localhost",
            webpki::KeyUsage::server_auth(),
        )
        .unwrap();
        verify(
            &certs[0],
            &certs[0],
            "127.0.0.1",
            webpki::KeyUsage::server_auth(),
        )
        .unwrap();
        assert!(matches!(
            write_self_signed("dev", &["localhost".into()], &[], dir.path(), false),
            Err(CertError::Exists(_))
        ));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            write_self_signed("x", &[], &[], dir.path(), false),
            Err(CertError::NoSubjectNames)
        ));
        assert!(matches!(
            write_self_signed("x", &["not a name".into()], &[], dir.path(), false),
            Err(CertError::InvalidDnsName(_))
        ));
        assert!(matches!(
            write_self_signed("../x", &["localhost".into()], &[], dir.path(), false),
            Err(CertError::InvalidName(_))
        ));
        // Wildcards are fine.
        write_self_signed("w", &["*.coffer.test".into()], &[], dir.path(), false).unwrap();
        // A missing CA is an I/O error naming the file.
        let err = write_node(
            &dir.path().join("nope"),
            "n",
            None,
            &["a.test".into()],
            &[],
            dir.path(),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[test]
    fn issued_debug_hides_the_key() {
        let i = self_signed("dbg", &["localhost".into()], &[]).unwrap();
        let s = format!("{i:?}");
        assert!(!s.contains("PRIVATE KEY"));
        assert!(s.contains("<redacted>"));
    }
}
