//! The full single-node pipeline end to end: PUT and GET through the real S3 server (in this
//! process, over loopback HTTP, with the Rust S3 SDK as the client) with the real stream cipher,
//! against the same server with a no-op cipher that exists only in this file (installed through
//! [`coffer_node::server::RunOptions`]). Each SSE mode × data cipher × object size × drive
//! count. Both servers run at once and every object goes to both in turn, alternating which is
//! first, so a noisy neighbour hits both alike; a cell's ratio is the median of its per-object
//! ratios. Every object is read twice: right after the PUTs (from the page cache: the CPU-bound
//! case) and again after the server's drive files were dropped from the page cache (from the
//! device: the case of a data set larger than memory, which is what an object store mostly
//! serves).
//!
//! `cargo bench -p coffer-node --bench s3_cipher_ratio [-- --quick] [--rounds N] [--drives N]
//! [--size MIB] [--cipher aes|chacha]`
//!
//! Efficiency: the AEAD's own single-core throughput is measured in the same run; the serial
//! bound is the no-op throughput with the AEAD added in series (1 / (1/no-op + 1/AEAD)), the
//! parallel bound min(no-op, AEAD) (cipher fully overlapped with everything else).
//!
//! CPU: each timed request also records the process's CPU time, so every cell reports CPU
//! milliseconds per MiB for both variants and how many of the machine's cores the no-op run
//! kept busy — whether the cipher had idle cores to hide in. "GET lean" reads each object once
//! more through a presigned URL with a bare HTTP reader, to tell the SDK client's share of the
//! CPU from the server's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use base64::Engine as _;
use bytes::Bytes;
use coffer_crypto::{
    derive_stream_key, open_package, CipherSuite, Encryptor, SecretKey, StreamBinding, StreamKey,
    PACKAGE_SIZE, TAG_LEN,
};
use coffer_node::config::{Config, LogFormat};
use coffer_node::pipeline::{CipherFactory, PackageOpener, StreamSealer};
use coffer_node::server::{run_with, RunOptions};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const MIB: usize = 1 << 20;
const ACCESS: &str = "benchaccess";
const SECRET: &str = "benchsecret-0123456789";
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const KMS_KEY_ID: &str = "coffer-default";
const GET_TARGET: f64 = 0.90;
const PUT_TARGET: f64 = 0.85;

// ---------------------------------------------------------------------------------------------
// The no-op cipher (as in benches/pipeline.rs): the STREAM framing (64 KiB packages, each
// followed by a 16-byte tag, one package held back until the end is known), plaintext copied,
// zero tags. Sizes, block boundaries and shard files match the real cipher's exactly.

#[path = "support/noop.rs"]
mod noop;
use noop::{NoopOpener, NoopSealer};
#[path = "support/page_cache.rs"]
mod page_cache;

struct NoopCipher;

impl CipherFactory for NoopCipher {
    fn sealer(&self, _: StreamKey) -> Box<dyn StreamSealer> {
        Box::new(NoopSealer::new())
    }

    fn opener(&self, _: StreamKey) -> Box<dyn PackageOpener> {
        Box::new(NoopOpener)
    }
}

// ---------------------------------------------------------------------------------------------
// The server, in process.

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

struct Server {
    s3: SocketAddr,
    admin: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    drives: Vec<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

async fn start(drives: usize, noop: bool) -> Server {
    let dir = match std::env::var_os("COFFER_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let (s3, admin) = (free_addr(), free_addr());
    let drive_dirs: Vec<_> = (0..drives)
        .map(|i| dir.path().join(format!("d{i}")))
        .collect();
    let cfg = Config {
        data: dir.path().join("data"),
        s3_addr: s3,
        admin_addr: admin,
        drives: drive_dirs.clone(),
        audit_log: None,
        log_format: LogFormat::Text,
        insecure_http: false,
        domain: None,
        tls: None,
        tls_watch: None,
        kms: Default::default(),
        cluster: None,
    };
    let cipher: Arc<dyn CipherFactory> = if noop {
        Arc::new(NoopCipher)
    } else {
        coffer_node::pipeline::stream_cipher()
    };
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        run_with(
            cfg,
            token,
            RunOptions {
                cipher,
                ..RunOptions::default()
            },
        )
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
        admin,
        shutdown,
        task,
        drives: drive_dirs,
        _dir: dir,
    }
}

impl Server {
    /// Drops the server's drive files (its shards, not its metadata) from the page cache;
    /// returns the bytes they hold.
    fn evict_drives(&self) -> u64 {
        self.drives.iter().map(|d| page_cache::evict_tree(d)).sum()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

fn client(addr: SocketAddr) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS, SECRET, None, None, "bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// Sets a bucket's default encryption and data cipher through the admin API.
fn set_bucket_cipher(admin: SocketAddr, bucket: &str, cipher: &str) {
    let body = format!(r#"{{"enabled":true,"algorithm":"AES256","cipher":"{cipher}"}}"#);
    let req = format!(
        "PUT /api/v1/buckets/{bucket}/encryption HTTP/1.1\r\nHost: {admin}\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = TcpStream::connect(admin).expect("admin connect");
    s.write_all(req.as_bytes()).expect("admin write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("admin read");
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.1 204"),
        "admin PUT encryption: {resp}"
    );
}

// ---------------------------------------------------------------------------------------------
// The workload.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sse {
    S3,
    Kms,
    C,
}

impl Sse {
    const ALL: [Sse; 3] = [Sse::S3, Sse::Kms, Sse::C];
    fn name(self) -> &'static str {
        match self {
            Sse::S3 => "SSE-S3",
            Sse::Kms => "SSE-KMS",
            Sse::C => "SSE-C",
        }
    }
}

struct CustomerKey {
    b64: String,
    md5: String,
}

fn customer_key() -> CustomerKey {
    let raw = [0x5au8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    CustomerKey {
        b64: b64.encode(raw),
        md5: b64.encode(Md5::digest(raw)),
    }
}

fn bucket_of(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::Aes256Gcm => "bench-aes",
        _ => "bench-chacha",
    }
}

fn mibs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// One object's timings on both servers: index 0 real cipher, 1 no-op.
#[derive(Clone, Copy, Default)]
struct Pair {
    /// Wall seconds.
    wall: [f64; 2],
    /// CPU seconds of this whole process (client and both servers) over the same span.
    cpu: [f64; 2],
}

/// Wall and process CPU time since it started.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    /// Records the elapsed times into `pair` as variant `v`.
    fn stop(self, pair: &mut Pair, v: usize) {
        pair.wall[v] = self.wall.elapsed().as_secs_f64();
        pair.cpu[v] = (process_cpu() - self.cpu).as_secs_f64();
    }
}

/// Timings of one cell, one pair per object.
#[derive(Default)]
struct Pairs {
    put: Vec<Pair>,
    /// From the page cache, right after the PUTs.
    get: Vec<Pair>,
    /// After the shard files were dropped from the page cache.
    get_cold: Vec<Pair>,
    /// From the page cache, read through a presigned URL by a minimal HTTP reader.
    get_lean: Vec<Pair>,
}

async fn put_one(c: &Client, bucket: &str, key: &str, sse: Sse, body: Bytes, ck: &CustomerKey) {
    let mut req = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body));
    req = match sse {
        Sse::S3 => req.server_side_encryption(ServerSideEncryption::Aes256),
        Sse::Kms => req
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(KMS_KEY_ID),
        Sse::C => req
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&ck.b64)
            .sse_customer_key_md5(&ck.md5),
    };
    req.send().await.expect("PUT");
}

/// A GetObject request for the object, with the customer key when it is an SSE-C one.
fn get_request(
    c: &Client,
    bucket: &str,
    key: &str,
    sse: Sse,
    ck: &CustomerKey,
) -> aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder {
    let req = c.get_object().bucket(bucket).key(key);
    if sse != Sse::C {
        return req;
    }
    req.sse_customer_algorithm("AES256")
        .sse_customer_key(&ck.b64)
        .sse_customer_key_md5(&ck.md5)
}

/// GETs an object, streamed (not buffered); checks its length and its first bytes.
async fn get_one(c: &Client, bucket: &str, key: &str, sse: Sse, body: &Bytes, ck: &CustomerKey) {
    let req = get_request(c, bucket, key, sse, ck);
    let mut out = req.send().await.expect("GET");
    let mut got = 0usize;
    while let Some(chunk) = out.body.next().await {
        let chunk = chunk.expect("GET body");
        if got == 0 {
            let n = chunk.len().min(4096);
            assert_eq!(&chunk[..n], &body[..n], "GET returned other bytes");
        }
        got += chunk.len();
    }
    assert_eq!(got, body.len());
}

/// A presigned GET of the object: signed before the clock starts, so that what is timed is the
/// server's work and a socket read.
async fn presign_get(c: &Client, bucket: &str, key: &str, sse: Sse, ck: &CustomerKey) -> Lean {
    let req = get_request(c, bucket, key, sse, ck);
    let p = req
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).expect("expiry"))
        .await
        .expect("presign GET");
    let rest = p.uri().strip_prefix("http://").expect("http URL");
    let slash = rest.find('/').expect("path");
    let (addr, path) = rest.split_at(slash);
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in p.headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    Lean {
        addr: addr.parse().expect("socket address"),
        head,
    }
}

/// A signed GET ready to send with [`get_lean`].
struct Lean {
    addr: SocketAddr,
    head: String,
}

/// Sends a presigned GET over a fresh connection and reads the response into one reused 256 KiB
/// buffer: the client's CPU cost is the socket read alone, as far as a client can get from a
/// server on other machines while sharing its two cores. Checks the status, the length and the
/// first bytes.
async fn get_lean(req: &Lean, body: &Bytes, buf: &mut [u8]) {
    let mut s = tokio::net::TcpStream::connect(req.addr)
        .await
        .expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.write_all(req.head.as_bytes()).await.expect("send GET");
    let mut filled = 0;
    let header_end = loop {
        let n = s.read(&mut buf[filled..]).await.expect("read head");
        assert!(n > 0, "connection closed inside the response head");
        filled += n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..header_end]).expect("ASCII head");
    assert!(head.starts_with("HTTP/1.1 200"), "lean GET: {head}");
    let n = body.len().min(4096).min(filled - header_end);
    assert_eq!(
        &buf[header_end..header_end + n],
        &body[..n],
        "GET returned other bytes"
    );
    let mut got = filled - header_end;
    loop {
        let n = s.read(buf).await.expect("read body");
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, body.len(), "lean GET length");
}

/// `COFFER_BENCH_GET_REPEAT=N`: every object is read N times in the "GET" pass, so that a
/// profile of the run is mostly GET (a profiling aid; the benchmark itself reads each once).
fn get_repeat() -> usize {
    std::env::var("COFFER_BENCH_GET_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// PUTs, then GETs, `count` objects of `size` bytes to the real and the no-op server in turn,
/// object by object (real first on even objects, no-op first on odd ones), so that whatever
/// else the machine is doing hits both variants alike; then GETs each again with the server's
/// drive files dropped from the page cache just before.
#[allow(clippy::too_many_arguments)]
async fn paired(
    servers: &[Server; 2],
    clients: &[Client; 2],
    bucket: &str,
    sse: Sse,
    body: &Bytes,
    size: usize,
    count: usize,
    out: &mut Pairs,
) {
    let ck = customer_key();
    let body = body.slice(..size);
    let order = |i: usize| if i.is_multiple_of(2) { [0, 1] } else { [1, 0] };
    for i in 0..count {
        let key = format!("o{size}-{i}");
        let mut t = Pair::default();
        for v in order(i) {
            let sw = Stopwatch::start();
            put_one(&clients[v], bucket, &key, sse, body.clone(), &ck).await;
            sw.stop(&mut t, v);
        }
        out.put.push(t);
    }
    for i in 0..count * get_repeat() {
        let key = format!("o{size}-{}", i % count);
        let mut t = Pair::default();
        for v in order(i) {
            let sw = Stopwatch::start();
            get_one(&clients[v], bucket, &key, sse, &body, &ck).await;
            sw.stop(&mut t, v);
        }
        out.get.push(t);
    }
    let mut buf = vec![0u8; 256 * 1024];
    for i in 0..count {
        let key = format!("o{size}-{i}");
        let mut t = Pair::default();
        for v in order(i) {
            let req = presign_get(&clients[v], bucket, &key, sse, &ck).await;
            let sw = Stopwatch::start();
            get_lean(&req, &body, &mut buf).await;
            sw.stop(&mut t, v);
        }
        out.get_lean.push(t);
    }
    for i in 0..count {
        let key = format!("o{size}-{i}");
        let mut t = Pair::default();
        for v in order(i) {
            let evicted = servers[v].evict_drives();
            assert!(
                evicted >= size as u64,
                "the object's shard files were not found"
            );
            let sw = Stopwatch::start();
            get_one(&clients[v], bucket, &key, sse, &body, &ck).await;
            sw.stop(&mut t, v);
        }
        out.get_cold.push(t);
    }
    for i in 0..count {
        for c in clients {
            c.delete_object()
                .bucket(bucket)
                .key(format!("o{size}-{i}"))
                .send()
                .await
                .expect("DELETE");
        }
    }
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Single-core AEAD seal and open throughput (MiB/s, median of 5 over 16 MiB).
fn aead_rates(suite: CipherSuite, body: &Bytes) -> (f64, f64) {
    let data = body.slice(..16 * MIB);
    let key = || {
        derive_stream_key(
            &SecretKey::from_bytes([7; 32]),
            suite,
            &[1; 32],
            &StreamBinding::new("b", "k", "", 0),
        )
    };
    let opener = key();
    let mut sealed = Vec::with_capacity(data.len() + data.len() / PACKAGE_SIZE * TAG_LEN + 64);
    let mut seal = Vec::new();
    let mut open = Vec::new();
    for rep in 0..6 {
        sealed.clear();
        let t = Instant::now();
        let mut e = Encryptor::new(key());
        e.push(&data, &mut sealed).expect("seal");
        e.finish(&mut sealed).expect("seal");
        let s = mibs(data.len(), t.elapsed());
        let count = data.len().div_ceil(PACKAGE_SIZE);
        let t = Instant::now();
        for (i, pkg) in sealed.chunks(PACKAGE_SIZE + TAG_LEN).enumerate() {
            let p = open_package(&opener, i as u64, i + 1 == count, pkg).expect("open");
            std::hint::black_box(p);
        }
        let o = mibs(data.len(), t.elapsed());
        if rep > 0 {
            seal.push(s);
            open.push(o);
        }
    }
    (median(&mut seal), median(&mut open))
}

struct Cell {
    drives: usize,
    size: usize,
    suite: CipherSuite,
    sse: Sse,
    pairs: Pairs,
}

/// What one cell's pairs add up to.
struct Summary {
    /// Throughputs over the total wall time of each variant, MiB/s.
    real: f64,
    noop: f64,
    /// Median of the per-object ratios no-op time ÷ real time (robust against one stalled
    /// request).
    ratio: f64,
    /// Process CPU milliseconds per MiB, client included.
    cpu_real: f64,
    cpu_noop: f64,
}

fn summarize(pairs: &[Pair], size: usize) -> Summary {
    let total = |f: fn(&Pair) -> f64| pairs.iter().map(f).sum::<f64>();
    let mib = (size * pairs.len()) as f64 / MIB as f64;
    let mut ratios: Vec<f64> = pairs.iter().map(|p| p.wall[1] / p.wall[0]).collect();
    Summary {
        real: mib / total(|p| p.wall[0]),
        noop: mib / total(|p| p.wall[1]),
        ratio: median(&mut ratios),
        cpu_real: total(|p| p.cpu[0]) * 1e3 / mib,
        cpu_noop: total(|p| p.cpu[1]) * 1e3 / mib,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--list") {
        return;
    }
    // `--rounds N`: repeat every cell N times (more samples on a noisy machine);
    // `--drives N`: only that drive count.
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let rounds = value_of("--rounds").unwrap_or(1).max(1);
    // `--size MIB`: only objects of that many MiB; `--cipher aes|chacha`: only that cipher
    // (for profiling one cell family; the full run is the benchmark).
    let only_size = value_of("--size").map(|m| m * MIB);
    let only_suite = args
        .iter()
        .position(|a| a == "--cipher")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.to_ascii_lowercase());
    let wanted_suite = |s: CipherSuite| {
        only_suite
            .as_deref()
            .is_none_or(|w| s.name().to_ascii_lowercase().starts_with(w))
    };
    let drive_counts: Vec<usize> = match value_of("--drives") {
        Some(n) => vec![n],
        None => vec![1, 4],
    };
    // Edition 2021: set before the runtime starts any thread; read by the server at start-up.
    std::env::set_var("COFFER_ROOT_USER", ACCESS);
    std::env::set_var("COFFER_ROOT_PASSWORD", SECRET);
    std::env::set_var("COFFER_ADMIN_TOKEN", ADMIN_TOKEN);
    std::env::set_var(
        "COFFER_KMS_LOCAL_KEY",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let started = Instant::now();
    let sizes: [(usize, usize); 2] = if quick {
        [(MIB, 16), (64 * MIB, 1)]
    } else {
        [(MIB, 64), (64 * MIB, 4)]
    };
    let mut raw = vec![0u8; 64 * MIB];
    fill(&mut raw, 0x2545_F491_4F6C_DD1D);
    let body = Bytes::from(raw);
    let aead: Vec<(CipherSuite, (f64, f64))> = CipherSuite::ALL
        .iter()
        .map(|&s| (s, aead_rates(s, &body)))
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cells: Vec<Cell> = Vec::new();
    for &drives in &drive_counts {
        rt.block_on(async {
            let servers = [start(drives, false).await, start(drives, true).await];
            let clients = [client(servers[0].s3), client(servers[1].s3)];
            for (server, c) in servers.iter().zip(&clients) {
                for suite in CipherSuite::ALL {
                    let bucket = bucket_of(suite);
                    c.create_bucket()
                        .bucket(bucket)
                        .send()
                        .await
                        .expect("create bucket");
                    let name = match suite {
                        CipherSuite::Aes256Gcm => "AES256",
                        _ => "CHACHA20-POLY1305",
                    };
                    set_bucket_cipher(server.admin, bucket, name);
                }
            }
            // Warm-up: connections, KMS data-key cache, allocator.
            let mut warm = Pairs::default();
            for suite in CipherSuite::ALL {
                for sse in Sse::ALL {
                    let b = bucket_of(suite);
                    paired(&servers, &clients, b, sse, &body, MIB, 2, &mut warm).await;
                }
            }
            for round in 0..rounds {
                for &(size, count) in &sizes {
                    if only_size.is_some_and(|m| m != size) {
                        continue;
                    }
                    for suite in CipherSuite::ALL {
                        if !wanted_suite(suite) {
                            continue;
                        }
                        for sse in Sse::ALL {
                            let i = match cells.iter().position(|x| {
                                x.drives == drives
                                    && x.size == size
                                    && x.suite == suite
                                    && x.sse == sse
                            }) {
                                Some(i) => i,
                                None => {
                                    cells.push(Cell {
                                        drives,
                                        size,
                                        suite,
                                        sse,
                                        pairs: Pairs::default(),
                                    });
                                    cells.len() - 1
                                }
                            };
                            let bucket = bucket_of(suite);
                            paired(
                                &servers,
                                &clients,
                                bucket,
                                sse,
                                &body,
                                size,
                                count,
                                &mut cells[i].pairs,
                            )
                            .await;
                        }
                    }
                }
                eprintln!(
                    "[{:>5.1}s] done {drives} drive(s), round {}",
                    started.elapsed().as_secs_f64(),
                    round + 1
                );
            }
            for s in servers {
                s.stop().await;
            }
        });
    }

    println!(
        "## S3 end to end (MiB/s; real cipher vs no-op cipher, interleaved object by object)\n"
    );
    println!("In-process servers (one real, one no-op, both running), loopback HTTP, aws-sdk-s3 client; each object is PUT to both servers in turn (alternating which goes first), then GET (streamed, not buffered) from both — first from the page cache (\"GET\"), again from the page cache through a presigned URL by a minimal HTTP reader (\"GET lean\": the client costs one socket read), then after the server's drive files were dropped from the page cache with POSIX_FADV_DONTNEED (\"GET cold\": read from the device) — then DELETEd; bucket cipher set through the admin API. Ratio = median over objects of (no-op time / real time); throughputs from total times. CPU ms/MiB: this process's CPU time (client and servers) per MiB moved; CPU ratio = no-op ÷ real CPU per MiB, the ratio a machine with every core busy would see; cores busy = the no-op's CPU time ÷ its wall time (2 = this machine saturated).\n");
    println!("| AEAD (single core, same run) | seal MiB/s | open MiB/s |");
    println!("|---|---:|---:|");
    for (s, (seal, open)) in &aead {
        println!("| {} | {seal:.0} | {open:.0} |", s.name());
    }
    println!();
    println!("| op | drives | object | cipher | SSE | real | no-op | ratio | target | | serial bound | eff. serial | parallel bound | eff. parallel | CPU ms/MiB real | no-op | CPU ratio | cores busy (no-op) |");
    println!(
        "|---|---:|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let ops = ["PUT", "GET", "GET cold", "GET lean"];
    let mut misses = [0; 4];
    let mut total = 0;
    for (k, op) in ops.iter().enumerate() {
        for c in &cells {
            let target = if op == &"PUT" { PUT_TARGET } else { GET_TARGET };
            let pairs = match k {
                0 => &c.pairs.put,
                1 => &c.pairs.get,
                2 => &c.pairs.get_cold,
                _ => &c.pairs.get_lean,
            };
            let m = summarize(pairs, c.size);
            let ok = m.ratio >= target;
            if k == 0 {
                total += 1;
            }
            misses[k] += usize::from(!ok);
            let (seal, open) = aead
                .iter()
                .find(|(s, _)| *s == c.suite)
                .map(|(_, r)| *r)
                .expect("measured");
            let a = if k == 0 { seal } else { open };
            let serial = 1.0 / (1.0 / m.noop + 1.0 / a);
            let parallel = m.noop.min(a);
            println!(
                "| {op} | {} | {} MiB ×{} | {} | {} | {:.0} | {:.0} | {:.3} | {target:.2} | {} | {serial:.0} | {:.2} | {parallel:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} |",
                c.drives,
                c.size / MIB,
                pairs.len(),
                c.suite.name(),
                c.sse.name(),
                m.real,
                m.noop,
                m.ratio,
                if ok { "ok" } else { "MISS" },
                m.real / serial,
                m.real / parallel,
                m.cpu_real,
                m.cpu_noop,
                m.cpu_noop / m.cpu_real,
                m.cpu_noop * m.noop / 1e3,
            );
        }
    }
    println!(
        "\nBelow target, of {total} cells each: PUT {}, GET {}, GET cold {}, GET lean {}; total run {:.0} s.",
        misses[0],
        misses[1],
        misses[2],
        misses[3],
        started.elapsed().as_secs_f64()
    );
}
