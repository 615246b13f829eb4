//! A cluster of real `coffer` processes on loopback, made and driven by
//! `scripts/local-cluster.sh` (so the tests cover the script users run too).

use std::collections::HashMap;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::Client;

use super::{coffer_bin, http_request, RawResponse, REGION};

/// A running local cluster; stopped (and its directory removed) on drop.
pub struct LocalCluster {
    pub dir: tempfile::TempDir,
    pub n: usize,
    pub base_port: u16,
    pub endpoints: Vec<String>,
    secrets: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("local-cluster.sh")
}

/// A base port whose 3 × n ports (TCP for S3 and admin, UDP for QUIC) are free now.
fn free_base(n: usize) -> u16 {
    for attempt in 0..200u32 {
        let seed = super::os_random(2);
        let base = 20_000 + (u16::from_le_bytes([seed[0], seed[1]]) % 4000) * 10;
        let _ = attempt;
        let free = (1..=n as u16).all(|i| {
            let p = base + 10 * i;
            TcpListener::bind(("127.0.0.1", p)).is_ok()
                && TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
                && UdpSocket::bind(("127.0.0.1", p + 2)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free port range for {n} nodes");
}

impl LocalCluster {
    /// `scripts/local-cluster.sh start n` with `drives` drives per node.
    pub fn start(n: usize, drives: usize) -> Self {
        Self::start_with(n, drives, &[])
    }

    /// Like [`LocalCluster::start`], with extra environment for the script (e.g. PARITY).
    pub fn start_with(n: usize, drives: usize, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base_port = free_base(n);
        let out = Command::new("bash")
            .arg(script())
            .args(["start", &n.to_string()])
            .arg(dir.path().join("c"))
            .env("COFFER_BIN", coffer_bin())
            .env("BASE_PORT", base_port.to_string())
            .env("DRIVES", drives.to_string())
            .envs(env.iter().copied())
            .output()
            .expect("run local-cluster.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut c = Self {
            dir,
            n,
            base_port,
            endpoints: Vec::new(),
            secrets: HashMap::new(),
        };
        if !out.status.success() {
            c.dump_logs();
            panic!(
                "local-cluster.sh start {n} failed: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        c.endpoints = stdout
            .lines()
            .filter(|l| l.starts_with("http://"))
            .map(str::to_owned)
            .collect();
        assert_eq!(c.endpoints.len(), n, "one endpoint per node: {stdout}");
        let env = std::fs::read_to_string(c.root().join("secrets.env")).expect("secrets.env");
        for line in env.lines() {
            if let Some((k, v)) = line.split_once('=') {
                c.secrets.insert(k.to_owned(), v.to_owned());
            }
        }
        c
    }

    /// The cluster directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("c")
    }

    fn secret(&self, k: &str) -> &str {
        self.secrets.get(k).map(String::as_str).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("COFFER_BIN", coffer_bin())
            .env("BASE_PORT", self.base_port.to_string())
            .output()
            .expect("run local-cluster.sh")
    }

    /// SIGKILL node `i` (1-based).
    pub fn kill(&self, i: usize) {
        let root = self.root();
        let out = self.run(&["kill", root.to_str().unwrap(), &i.to_string()]);
        assert!(out.status.success(), "kill {i}: {out:?}");
    }

    /// Starts node `i` again on its own data and waits until it is healthy.
    pub fn restart(&self, i: usize) {
        let root = self.root();
        let out = self.run(&["restart", root.to_str().unwrap(), &i.to_string()]);
        if !out.status.success() {
            self.dump_logs();
            panic!("restart {i}: {out:?}");
        }
    }

    /// S3 client of node `i`: no SDK retries (a failure is seen as it happened), bounded waits.
    pub fn client(&self, i: usize) -> Client {
        Client::from_conf(self.config(i).build())
    }

    /// S3 client of node `i` with the SDK's standard retries (a client riding out a leader
    /// change the way real clients do).
    pub fn retrying_client(&self, i: usize) -> Client {
        Client::from_conf(
            self.config(i)
                .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(6))
                .build(),
        )
    }

    fn config(&self, i: usize) -> aws_sdk_s3::config::Builder {
        let creds = Credentials::new(
            self.secret("COFFER_ROOT_USER"),
            self.secret("COFFER_ROOT_PASSWORD"),
            None,
            None,
            "coffer-cluster-test",
        );
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoints[i - 1].clone())
            .credentials_provider(creds)
            .force_path_style(true)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            )
    }

    /// Admin address of node `i`.
    pub fn admin_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.base_port + 10 * i as u16 + 1)
    }

    /// Admin API request to node `i`.
    pub async fn admin(&self, i: usize, method: &str, path: &str, body: &[u8]) -> RawResponse {
        let auth = format!("Bearer {}", self.secret("COFFER_ADMIN_TOKEN"));
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        http_request(&self.admin_addr(i), method, path, &headers, body)
            .await
            .unwrap_or_else(|e| panic!("admin {method} {path} on node {i}: {e}"))
    }

    /// `GET /api/v1/cluster` of node `i` as JSON.
    pub async fn status(&self, i: usize) -> serde_json::Value {
        let r = self.admin(i, "GET", "/api/v1/cluster", b"").await;
        assert_eq!(r.status, 200, "cluster status of node {i}: {}", r.brief());
        serde_json::from_slice(&r.body).expect("status JSON")
    }

    /// The leader node 'i' knows of.
    pub async fn leader(&self, i: usize) -> Option<u64> {
        self.status(i).await["leader"].as_u64()
    }

    /// Prints the tail of every node's log (for failures).
    pub fn dump_logs(&self) {
        for i in 1..=self.n {
            let log = self.root().join(format!("node{i}.log"));
            if let Ok(text) = std::fs::read_to_string(&log) {
                let lines: Vec<&str> = text.lines().collect();
                // A panic's message, then the last lines.
                if let Some(p) = lines.iter().position(|l| l.contains("panicked at")) {
                    eprintln!("---- node {i} panic ----");
                    for l in &lines[p..(p + 4).min(lines.len())] {
                        eprintln!("{l}");
                    }
                }
                let from = lines.len().saturating_sub(40);
                eprintln!("---- node {i} log (last lines) ----");
                for l in &lines[from..] {
                    eprintln!("{l}");
                }
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let root = self.root();
        let _ = self.run(&["stop", root.to_str().unwrap_or_default()]);
    }
}

/// A PUT that must succeed, retried while a leader change settles (bounded).
pub async fn put_eventually(client: &Client, bucket: &str, key: &str, body: &[u8]) {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.to_vec()))
            .send()
            .await;
        match r {
            Ok(_) => return,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < until,
                    "PUT {key} kept failing: {}",
                    super::err_text(&e)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
