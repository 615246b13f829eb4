//! TLS helpers for the HTTPS tests: certificates made by the real `coffer certs`, a rustls client
//! with chosen roots, versions and key-exchange groups, and one-request HTTPS.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{coffer_bin, parse_response, request_head, RawResponse};

/// Runs `coffer certs ARGS` and returns (exit success, stdout + stderr).
pub fn coffer_certs(args: &[&str]) -> (bool, String) {
    let out = Command::new(coffer_bin())
        .arg("certs")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run coffer certs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `coffer certs ca --out DIR`, asserting success.
pub fn make_ca(dir: &Path) -> PathBuf {
    let (ok, text) = coffer_certs(&["ca", "--out", &dir.display().to_string()]);
    assert!(ok, "coffer certs ca: {text}");
    dir.join("ca.pem")
}

/// `coffer certs node` with `dns` names and 127.0.0.1, asserting success; returns (cert, key).
pub fn make_node_cert(ca_dir: &Path, name: &str, dns: &str, out: &Path) -> (PathBuf, PathBuf) {
    let (ok, text) = coffer_certs(&[
        "node",
        "--ca",
        &ca_dir.display().to_string(),
        "--name",
        name,
        "--dns",
        dns,
        "--ip",
        "127.0.0.1",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(ok, "coffer certs node: {text}");
    (
        out.join(format!("{name}.pem")),
        out.join(format!("{name}.key")),
    )
}

/// The certificates in a PEM file.
pub fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("open PEM")
        .collect::<Result<Vec<_>, _>>()
        .expect("parse PEM")
}

/// A rustls client config trusting the CAs in `roots`; `versions` and `groups` restrict what the
/// client offers (None: rustls defaults).
pub fn client_config(
    roots: &[&Path],
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        for c in pem_certs(r) {
            store.add(c).expect("add root");
        }
    }
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(g) = groups {
        provider.kx_groups = g;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider));
    let builder = match versions {
        Some(v) => builder.with_protocol_versions(v),
        None => builder.with_safe_default_protocol_versions(),
    }
    .expect("versions");
    Arc::new(builder.with_root_certificates(store).with_no_client_auth())
}

/// What the handshake negotiated.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub version: Option<rustls::ProtocolVersion>,
    pub group: Option<rustls::NamedGroup>,
    /// The server's chain, leaf first.
    pub peer_certs: Vec<CertificateDer<'static>>,
}

/// `sni` None: connect by IP (127.0.0.1), which sends no SNI.
fn server_name(sni: Option<&str>) -> ServerName<'static> {
    match sni {
        Some(n) => ServerName::try_from(n.to_string()).expect("server name"),
        None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    }
}

/// Connects and completes a TLS handshake.
pub async fn tls_connect(
    cfg: Arc<rustls::ClientConfig>,
    addr: &str,
    sni: Option<&str>,
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        Negotiated,
    ),
    String,
> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let stream = tokio::time::timeout(
        Duration::from_secs(20),
        connector.connect(server_name(sni), tcp),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_string())?
    .map_err(|e| format!("TLS handshake: {e}"))?;
    let (_, conn) = stream.get_ref();
    let n = Negotiated {
        version: conn.protocol_version(),
        group: conn.negotiated_key_exchange_group().map(|g| g.name()),
        peer_certs: conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default(),
    };
    Ok((stream, n))
}

/// One HTTPS request (Connection: close); the whole response and what was negotiated.
pub async fn https_request(
    cfg: Arc<rustls::ClientConfig>,
    addr: &str,
    sni: Option<&str>,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(RawResponse, Negotiated), String> {
    let (mut stream, n) = tls_connect(cfg, addr, sni).await?;
    let head = request_head(addr, method, path_and_query, headers, body.len());
    let io = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut raw = Vec::new();
        // The server may close without close_notify after Connection: close.
        match stream.read_to_end(&mut raw).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(120), io)
        .await
        .map_err(|_| "HTTPS request timed out".to_string())?
        .map_err(|e| format!("HTTPS I/O: {e}"))?;
    Ok((parse_response(&raw, method == "HEAD")?, n))
}
