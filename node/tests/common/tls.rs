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

use aws_sdk_s3::Client;

use super::{
    assert_same_bytes, bucket_name, coffer_bin, create_bucket, parse_response, put_bytes,
    request_head, split_url, RawResponse, ServerOpts, TestServer, ACCESS_KEY, SECRET_KEY,
};

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

/// A CA and a node certificate (localhost + 127.0.0.1) under `root`: (ca dir, cert, key).
pub fn ca_and_node(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = root.join("ca");
    make_ca(&ca);
    let (cert, key) = make_node_cert(&ca, "node1", "localhost", &root.join("tls"));
    (ca, cert, key)
}

/// Starts the server with `args` (the TLS flags among them); the harness trusts `ca_pem`.
pub async fn start_tls(args: Vec<String>, ca_pem: PathBuf) -> TestServer {
    TestServer::start(ServerOpts {
        extra_args: args,
        tls_ca: Some(ca_pem),
        ..Default::default()
    })
    .await
}

/// `--tls-cert CERT --tls-key KEY`.
pub fn pair_args(cert: &Path, key: &Path) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ]
}

/// aws-sdk-s3 with a rustls (aws-lc-rs) connector that trusts only `ca_pem`.
pub fn sdk_client_trusting(server: &TestServer, ca_pem: &Path) -> Client {
    use aws_smithy_http_client::tls;
    let pem = std::fs::read(ca_pem).expect("read CA");
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .expect("TLS context"),
        )
        .build_https();
    Client::from_conf(
        server
            .config_builder(ACCESS_KEY, SECRET_KEY)
            .http_client(http)
            .build(),
    )
}

/// The leaf certificate a new handshake (no SNI) gets now.
pub async fn served_leaf(ca_pem: &Path, addr: &str) -> CertificateDer<'static> {
    let (_, n) = tls_connect(client_config(&[ca_pem], None, None), addr, None)
        .await
        .expect("handshake");
    n.peer_certs[0].clone()
}

/// Waits (at most `limit`) until new handshakes get `leaf`; panics otherwise.
pub async fn wait_for_leaf(ca_pem: &Path, addr: &str, leaf: &CertificateDer<'_>, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    // Bounded by the deadline; 100 ms apart.
    loop {
        if served_leaf(ca_pem, addr).await == *leaf {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new handshakes did not get the new certificate within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A GET over its own TLS connection, begun (head of the body read) and not yet finished.
pub struct OpenDownload {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    raw: Vec<u8>,
    /// The leaf certificate this connection's handshake got.
    pub leaf: CertificateDer<'static>,
}

impl OpenDownload {
    /// PUTs `body` as a new object and starts a presigned GET of it, reading its first 256 KiB.
    pub async fn begin(server: &TestServer, ca_pem: &Path, body: &[u8]) -> OpenDownload {
        use aws_sdk_s3::presigning::PresigningConfig;
        let s3 = sdk_client_trusting(server, ca_pem);
        let bucket = bucket_name("reload");
        create_bucket(&s3, &bucket).await;
        put_bytes(&s3, &bucket, "big", body).await;
        let presigned = s3
            .get_object()
            .bucket(&bucket)
            .key("big")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
            .await
            .unwrap();
        let (addr, path) = split_url(presigned.uri());
        let (mut stream, n) = tls_connect(client_config(&[ca_pem], None, None), &addr, None)
            .await
            .unwrap();
        let head = request_head(&addr, "GET", &path, &[], 0);
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = vec![0u8; 256 * 1024];
        stream.read_exact(&mut raw).await.unwrap();
        OpenDownload {
            stream,
            raw,
            leaf: n.peer_certs[0].clone(),
        }
    }

    /// Reads the rest (at most 60 s) and asserts a 200 with exactly `body`.
    pub async fn finish(mut self, body: &[u8]) {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), async {
            match self.stream.read_to_end(&mut rest).await {
                Ok(_) => {}
                // The server may close without close_notify after the last byte.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                Err(e) => panic!("download: {e}"),
            }
        })
        .await
        .expect("download finishes");
        self.raw.extend_from_slice(&rest);
        let resp = parse_response(&self.raw, false).unwrap();
        assert_eq!(resp.status, 200, "{}", resp.brief());
        assert_same_bytes(&resp.body, body, "download across the reload");
    }
}
