//! GET throughput of a 64 MiB object over HTTPS against plain HTTP, on loopback, side by side in
//! one run (issue 5's benchmark). The real server runs in this process (`server::run_with`, the
//! production cipher, SSE-S3, one drive); the client is aws-sdk-s3 with the same rustls
//! (aws-lc-rs) connector for both variants, so the only difference is TLS on the wire. Servers
//! alternate HTTPS / HTTP / HTTP / HTTPS (A/B/B/A) so drift on a noisy machine hits both alike;
//! each variant reports the median of all its GETs, and the ratio HTTPS / HTTP.
//!
//! `cargo bench -p coffer-node --bench s3_tls_ratio [-- --quick]`

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use coffer_cluster::tls::TlsSource;
use coffer_node::config::{Config, LogFormat};
use coffer_node::server::{run_with, RunOptions};
use rustls_pki_types::pem::PemObject as _;
use tokio_util::sync::CancellationToken;

const MIB: usize = 1 << 20;
const OBJECT: usize = 64 * MIB;
const ACCESS: &str = "benchaccess";
const SECRET: &str = "benchsecret-0123456789";
const BUCKET: &str = "bench-tls";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// A cluster CA and a node certificate for localhost / 127.0.0.1, as `coffer certs` makes them.
struct Certs {
    ca_pem: Vec<u8>,
    source: TlsSource,
}

fn make_certs(dir: &Path) -> Certs {
    use coffer_cluster::certs;
    let ca = certs::write_ca(&dir.join("ca"), false).expect("CA");
    let node = certs::write_node(
        &dir.join("ca"),
        "node1",
        Some(1),
        &["localhost".into()],
        &[[127, 0, 0, 1].into()],
        &dir.join("tls"),
        false,
    )
    .expect("node certificate");
    Certs {
        ca_pem: std::fs::read(ca.cert).expect("read CA"),
        source: TlsSource::Pair {
            cert: node.cert,
            key: node.key,
        },
    }
}

struct Server {
    s3: SocketAddr,
    tls: bool,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(tls: Option<TlsSource>) -> Server {
    let dir = match std::env::var_os("COFFER_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let s3 = free_addr();
    let cfg = Config {
        data: dir.path().join("data"),
        s3_addr: s3,
        admin_addr: free_addr(),
        drives: vec![dir.path().join("d0")],
        audit_log: None,
        log_format: LogFormat::Text,
        insecure_http: false,
        domain: None,
        tls_watch: None,
        kms: Default::default(),
        cluster: None,
        tls: tls.clone(),
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        run_with(cfg, token, RunOptions::default())
            .await
            .expect("server");
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(s3).await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server {
        s3,
        tls: tls.is_some(),
        shutdown,
        task,
        _dir: dir,
    }
}

impl Server {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// aws-sdk-s3 over one rustls (aws-lc-rs) connector trusting only `ca_pem`; the same connector
/// speaks plain HTTP to an `http://` endpoint, so both variants share the client stack.
fn client(server: &Server, ca_pem: &[u8]) -> Client {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(ca_pem.to_vec());
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
    let scheme = if server.tls { "https" } else { "http" };
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS, SECRET, None, None, "bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("{scheme}://127.0.0.1:{}", server.s3.port()))
        .credentials_provider(creds)
        .force_path_style(true)
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// What one handshake with the server negotiates (version, suite, group), for the report.
async fn negotiated(server: &Server, ca_pem: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.expect("CA PEM")).expect("root");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(coffer_cluster::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.s3)
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let (_, c) = tls.get_ref();
    format!(
        "{:?}, {:?}, {:?}",
        c.protocol_version().expect("version"),
        c.negotiated_cipher_suite().expect("suite").suite(),
        c.negotiated_key_exchange_group().expect("group").name()
    )
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// One streamed GET of the whole object (not buffered); MiB/s.
async fn get_once(c: &Client, body: &Bytes) -> f64 {
    let t = Instant::now();
    let mut out = c
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .send()
        .await
        .expect("GET");
    let mut got = 0usize;
    while let Some(chunk) = out.body.next().await {
        let chunk = chunk.expect("GET body");
        // Spot-check the bytes without a full compare inside the timed loop.
        if got == 0 {
            let n = chunk.len().min(4096);
            assert_eq!(&chunk[..n], &body[..n], "GET returned other bytes");
        }
        got += chunk.len();
    }
    let rate = mibs(got, t.elapsed());
    assert_eq!(got, OBJECT, "GET length");
    rate
}

fn fill(buf: &mut [u8], mut s: u64) {
    for b in buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = b.len();
        b.copy_from_slice(&s.to_le_bytes()[..n]);
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // Edition 2021: set before the runtime starts any thread; read by the server at start-up.
    std::env::set_var("COFFER_ROOT_USER", ACCESS);
    std::env::set_var("COFFER_ROOT_PASSWORD", SECRET);
    std::env::set_var("COFFER_ADMIN_TOKEN", "bench-admin-token-0123456789");
    std::env::set_var(
        "COFFER_KMS_LOCAL_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let started = Instant::now();
    // Full: four A/B/B/A rounds, 5 timed GETs per server (about 20 s here); quick: one round, 2.
    let (rounds, gets) = if quick { (1, 2) } else { (4, 5) };
    let cert_dir = tempfile::tempdir().expect("temp dir");
    let certs = make_certs(cert_dir.path());
    let mut raw = vec![0u8; OBJECT];
    fill(&mut raw, 0x2545_F491_4F6C_DD1D);
    let body = Bytes::from(raw);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (mut https, mut http) = (Vec::new(), Vec::new());
    let mut per_run = Vec::new();
    let mut handshake = String::new();
    for round in 0..rounds {
        for tls in [true, false, false, true] {
            let samples = rt.block_on(async {
                let server = start(tls.then(|| certs.source.clone())).await;
                if tls && handshake.is_empty() {
                    handshake = negotiated(&server, &certs.ca_pem).await;
                }
                let c = client(&server, &certs.ca_pem);
                c.create_bucket()
                    .bucket(BUCKET)
                    .send()
                    .await
                    .expect("create bucket");
                c.put_object()
                    .bucket(BUCKET)
                    .key("obj")
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                    .expect("PUT");
                // Warm-up: connection (and handshake), data-key cache, allocator, page cache.
                get_once(&c, &body).await;
                let mut samples = Vec::with_capacity(gets);
                for _ in 0..gets {
                    samples.push(get_once(&c, &body).await);
                }
                server.stop().await;
                samples
            });
            let name = if tls { "HTTPS" } else { "HTTP" };
            eprintln!(
                "[{:>5.1}s] round {} {name}: {:?} MiB/s",
                started.elapsed().as_secs_f64(),
                round + 1,
                samples.iter().map(|s| s.round()).collect::<Vec<_>>()
            );
            per_run.push((name, median(&samples)));
            if tls {
                https.extend(samples);
            } else {
                http.extend(samples);
            }
        }
    }

    let (a, b) = (median(&https), median(&http));
    println!("## GET of a 64 MiB object, HTTPS vs plain HTTP (loopback, in-process server)\n");
    println!(
        "aws-sdk-s3 client with one rustls/aws-lc-rs connector for both; SSE-S3 (AES-256-GCM at \
         rest), one drive; {rounds} A/B/B/A round(s), {gets} timed GETs per server after one \
         warm-up GET. TLS negotiated: {handshake}.\n"
    );
    println!("| server run | median MiB/s |\n|---|---:|");
    for (name, m) in &per_run {
        println!("| {name} | {m:.0} |");
    }
    println!("\n| variant | GETs | median MiB/s | min | max |\n|---|---:|---:|---:|---:|");
    for (name, v) in [("HTTPS", &https), ("HTTP", &http)] {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {} | {:.0} | {min:.0} | {max:.0} |",
            v.len(),
            median(v)
        );
    }
    println!(
        "\nratio HTTPS / HTTP = {:.3}; total run {:.0} s.",
        a / b,
        started.elapsed().as_secs_f64()
    );
}
