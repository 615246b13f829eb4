//! PUT/GET throughput of one node through the real binary and the Rust S3 SDK, peak RSS during
//! a 1 GiB PUT, and the server's memory per concurrent GET stream (readers that drain and
//! readers that stall). Run: `cargo bench -p coffer-node --bench s3_throughput`
//! (uses `COFFER_BIN` if set, else the release binary built by cargo for this bench).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

const ACCESS: &str = "benchaccess";
const SECRET: &str = "benchsecret-0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    s3: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, drives: usize) -> Server {
    let bin =
        std::env::var("COFFER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_coffer").to_string());
    let (s3, admin) = (free_port(), free_port());
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--s3-addr")
        .arg(format!("127.0.0.1:{s3}"))
        .arg("--admin-addr")
        .arg(format!("127.0.0.1:{admin}"))
        .env("COFFER_ROOT_USER", ACCESS)
        .env("COFFER_ROOT_PASSWORD", SECRET)
        .env("COFFER_ADMIN_TOKEN", "bench-admin-token-0123456789")
        .env(
            "COFFER_KMS_LOCAL_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if drives > 1 {
        let list: Vec<String> = (0..drives)
            .map(|i| dir.join(format!("d{i}")).display().to_string())
            .collect();
        cmd.arg("--drives").arg(list.join(","));
    }
    let child = cmd.spawn().expect("start coffer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", s3)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, s3 }
}

fn client(port: u16) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS, SECRET, None, None, "bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// A `/proc/PID/status` field in KiB (`VmHWM` peak, `VmRSS` now).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Concurrent GET streams of `key`, each reading `read` bytes and then, when `stall` is set,
/// holding its response open unread for a second (the server's buffers fill, then it must
/// stop reading shards). Returns the server's highest RSS above what it was before, in KiB,
/// sampled every 20 ms while the streams are open, and the slowest stream's time from request
/// to first body byte.
async fn concurrent_gets(
    c: &Client,
    pid: u32,
    key: &str,
    streams: usize,
    read: usize,
    stall: bool,
) -> (u64, Duration) {
    let base_kib = status_kib(pid, "VmRSS:");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (c, key, done) = (c.clone(), key.to_string(), done.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut out = c
                .get_object()
                .bucket("bench")
                .key(key)
                .send()
                .await
                .unwrap();
            let mut got = 0;
            let mut first = None;
            while got < read {
                match out.body.next().await {
                    Some(chunk) => got += chunk.unwrap().len(),
                    None => break,
                }
                first.get_or_insert_with(|| t.elapsed());
            }
            if stall {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            first.unwrap_or_default()
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    while done.load(std::sync::atomic::Ordering::SeqCst) < streams && Instant::now() < deadline {
        peak = peak.max(status_kib(pid, "VmRSS:").saturating_sub(base_kib));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut slowest_first = Duration::ZERO;
    for t in tasks {
        slowest_first = slowest_first.max(t.await.unwrap());
    }
    (peak, slowest_first)
}

async fn put_get(c: &Client, size: usize, count: usize) -> (f64, f64) {
    let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let t = Instant::now();
    for i in 0..count {
        c.put_object()
            .bucket("bench")
            .key(format!("o{size}-{i}"))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    let put = (size * count) as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..count {
        let out = c
            .get_object()
            .bucket("bench")
            .key(format!("o{size}-{i}"))
            .send()
            .await
            .unwrap();
        let got = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(got.len(), size);
    }
    let get = (size * count) as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
    (put, get)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for drives in [1usize, 4] {
        let dir = tempfile::tempdir().unwrap();
        let server = start(dir.path(), drives);
        let c = client(server.s3);
        c.create_bucket().bucket("bench").send().await.unwrap();
        let (p1, g1) = put_get(&c, 1 << 20, 64).await;
        let (p64, g64) = put_get(&c, 64 << 20, 4).await;
        println!(
            "drives={drives}: 1 MiB PUT {p1:.0} MiB/s GET {g1:.0} MiB/s; 64 MiB PUT {p64:.0} MiB/s GET {g64:.0} MiB/s"
        );
        if drives == 1 {
            let big = dir.path().join("big");
            let f = std::fs::File::create(&big).unwrap();
            f.set_len(1 << 30).unwrap();
            let before = peak_rss_kib(server.child.id());
            let t = Instant::now();
            c.put_object()
                .bucket("bench")
                .key("big")
                .body(ByteStream::from_path(&big).await.unwrap())
                .send()
                .await
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            let after = peak_rss_kib(server.child.id());
            println!(
                "1 GiB PUT: {:.0} MiB/s; server peak RSS before {} MiB, after {} MiB",
                1024.0 / secs,
                before / 1024,
                after / 1024
            );
            let pid = server.child.id();
            let t = Instant::now();
            let (extra, first) = concurrent_gets(&c, pid, "big", 1, 1 << 30, false).await;
            println!(
                "1 GiB GET: {:.0} MiB/s, first body byte after {:.1} ms; server RSS +{} MiB at most",
                1024.0 / t.elapsed().as_secs_f64(),
                first.as_secs_f64() * 1e3,
                extra / 1024
            );
            for (streams, read, stall) in [(32, 64 << 20, false), (32, 8 << 20, true)] {
                let (extra, first) = concurrent_gets(&c, pid, "big", streams, read, stall).await;
                println!(
                    "{streams} concurrent GETs of the 1 GiB object, each {} {} MiB: server RSS +{} MiB at most ({:.1} MiB per stream); slowest first byte {:.1} ms",
                    if stall { "reads then stalls after" } else { "drains" },
                    read >> 20,
                    extra / 1024,
                    extra as f64 / 1024.0 / streams as f64,
                    first.as_secs_f64() * 1e3
                );
            }
        }
    }
}
