//! Shared harness for the end-to-end tests: starts the real `coffer` binary on free loopback ports
//! in a temporary directory, and offers an S3 client, a tiny raw HTTP client and data helpers.
//!
//! The binary is `$COFFER_BIN` when set (scripts/test.sh points it at the release build), else the
//! debug build cargo made for this test target.
//!
//! Every wait here is bounded in time; every loop is bounded in count.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::Client;
use base64::Engine as _;

pub mod cluster;
pub mod data;
pub mod http;
pub mod kms;
pub mod sse;
pub mod tls;

pub use data::*;
pub use http::*;
// Not every test file uses the SSE helpers.
#[allow(unused_imports)]
pub use sse::*;

/// Root S3 credentials the harness gives the server (COFFER_ROOT_USER / COFFER_ROOT_PASSWORD).
pub const ACCESS_KEY: &str = "coffertestroot";
pub const SECRET_KEY: &str = "coffer-test-secret-key-0123456789";
/// Admin API bearer token (COFFER_ADMIN_TOKEN).
pub const ADMIN_TOKEN: &str = "coffer-test-admin-token-0123456789abcdef";
pub const REGION: &str = "us-east-1";

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;
/// Plaintext bytes per encryption package.
pub const PACKAGE: usize = 64 * KIB;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the server binary under test.
pub fn coffer_bin() -> PathBuf {
    match std::env::var_os("COFFER_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_coffer")),
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// `n` bytes from the OS RNG.
pub fn os_random(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

#[derive(Clone, Debug, Default)]
pub struct ServerOpts {
    /// Number of drive directories to pass with `--drives` (0: none, the server's default layout).
    pub drives: usize,
    /// Extra command-line arguments after the standard ones.
    pub extra_args: Vec<String>,
    /// Extra environment variables.
    pub extra_env: Vec<(String, String)>,
    /// Give the root credentials, admin token and KMS root key as files (`COFFER_*_FILE`, one
    /// trailing newline each, as `echo` writes them) instead of variables.
    pub secrets_from_files: bool,
    /// The server speaks HTTPS (set up by `extra_args`); the harness trusts this CA (PEM file)
    /// for its health checks and connects to 127.0.0.1 without SNI.
    pub tls_ca: Option<PathBuf>,
}

impl ServerOpts {
    pub fn with_drives(drives: usize) -> Self {
        ServerOpts {
            drives,
            ..Default::default()
        }
    }
}

pub struct TestServer {
    /// Holds every file of this server: data/, drives/dN, logs; removed on drop.
    pub root: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub drive_dirs: Vec<PathBuf>,
    pub audit_log: PathBuf,
    pub s3_port: u16,
    pub admin_port: u16,
    /// The local KMS root key (32 bytes) given via COFFER_KMS_LOCAL_KEY.
    pub kms_key: Vec<u8>,
    pub opts: ServerOpts,
    child: Option<Child>,
    /// How many times the process was started (names the log files).
    generation: u32,
}

impl TestServer {
    /// Starts the server and waits (at most 30 s) until `GET /api/v1/health` answers 200.
    pub async fn start(opts: ServerOpts) -> TestServer {
        let root = tempfile::Builder::new()
            .prefix("coffer-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = root.path().join("data");
        fs::create_dir_all(&data_dir).expect("create data dir");
        let drive_dirs: Vec<PathBuf> = (1..=opts.drives)
            .map(|i| root.path().join("drives").join(format!("d{i}")))
            .collect();
        for d in &drive_dirs {
            fs::create_dir_all(d).expect("create drive dir");
        }
        let audit_log = root.path().join("audit.log");
        let mut server = TestServer {
            data_dir,
            drive_dirs,
            audit_log,
            s3_port: free_port(),
            admin_port: free_port(),
            kms_key: os_random(32),
            opts,
            child: None,
            generation: 0,
            root,
        };
        server.spawn_and_wait().await;
        server
    }

    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }

    pub fn s3_endpoint(&self) -> String {
        let scheme = if self.opts.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.s3_port)
    }

    pub fn s3_addr(&self) -> String {
        format!("127.0.0.1:{}", self.s3_port)
    }

    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin_port)
    }

    pub fn kms_key_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.kms_key)
    }

    fn log_paths(&self, generation: u32) -> (PathBuf, PathBuf) {
        (
            self.root.path().join(format!("stdout.{generation}.log")),
            self.root.path().join(format!("stderr.{generation}.log")),
        )
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(coffer_bin());
        cmd.arg("server")
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--s3-addr")
            .arg(self.s3_addr())
            .arg("--admin-addr")
            .arg(self.admin_addr())
            .arg("--audit-log")
            .arg(&self.audit_log);
        if !self.drive_dirs.is_empty() {
            let list: Vec<String> = self
                .drive_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            cmd.arg("--drives").arg(list.join(","));
        }
        cmd.args(&self.opts.extra_args);
        let secrets = [
            ("COFFER_ROOT_USER", ACCESS_KEY.to_string()),
            ("COFFER_ROOT_PASSWORD", SECRET_KEY.to_string()),
            ("COFFER_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("COFFER_KMS_LOCAL_KEY", self.kms_key_b64()),
        ];
        for (name, value) in secrets {
            if self.opts.secrets_from_files {
                let dir = self.root.path().join("secrets");
                fs::create_dir_all(&dir).expect("secrets dir");
                let file = dir.join(name.to_lowercase());
                fs::write(&file, format!("{value}\n")).expect("write secret file");
                cmd.env(format!("{name}_FILE"), &file);
            } else {
                cmd.env(name, value);
            }
        }
        for (k, v) in &self.opts.extra_env {
            cmd.env(k, v);
        }
        cmd.current_dir(self.root.path());
        cmd
    }

    /// Starts the process and waits for health. If it exits at once because a port was taken
    /// (a free port can be grabbed by someone else before the server binds it), it is tried
    /// again on fresh ports, at most three times in all.
    async fn spawn_and_wait(&mut self) {
        assert!(self.child.is_none(), "server already running");
        for attempt in 1..=3 {
            self.generation += 1;
            let (out, err) = self.log_paths(self.generation);
            let mut cmd = self.command();
            cmd.stdin(Stdio::null())
                .stdout(File::create(&out).expect("stdout log"))
                .stderr(File::create(&err).expect("stderr log"));
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", coffer_bin().display()));
            self.child = Some(child);
            match self.wait_healthy().await {
                Ok(()) => return,
                Err(why) => {
                    let logs = [out, err]
                        .iter()
                        .map(|p| fs::read_to_string(p).unwrap_or_default())
                        .collect::<String>()
                        .to_ascii_lowercase();
                    let port_taken = logs.contains("in use") || logs.contains("addrinuse");
                    if port_taken && attempt < 3 && self.child.is_none() {
                        eprintln!("coffer could not bind its ports ({why}); retrying on new ones");
                        self.s3_port = free_port();
                        self.admin_port = free_port();
                        continue;
                    }
                    self.kill_9();
                    self.dump_logs();
                    panic!("{why}");
                }
            }
        }
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("coffer exited during start-up with {status}"));
                }
            }
            let answer = match &self.opts.tls_ca {
                None => http_request(&self.admin_addr(), "GET", "/api/v1/health", &[], b"").await,
                Some(ca) => {
                    let cfg = tls::client_config(&[ca.as_path()], None, None);
                    tls::https_request(
                        cfg,
                        &self.admin_addr(),
                        None,
                        "GET",
                        "/api/v1/health",
                        &[],
                        b"",
                    )
                    .await
                    .map(|(r, _)| r)
                }
            };
            match answer {
                Ok(r) if r.status == 200 => return Ok(()),
                Ok(r) => last = format!("status {}", r.status),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "coffer not healthy within {HEALTH_TIMEOUT:?}: {last}"
        ))
    }

    /// Prints the server's stdout/stderr of every start so far (on failure).
    pub fn dump_logs(&self) {
        for g in 1..=self.generation {
            let (out, err) = self.log_paths(g);
            for p in [out, err] {
                let text = fs::read(&p).unwrap_or_default();
                let text = String::from_utf8_lossy(&text);
                // Keep the tail: that is where the trouble is.
                let tail: String = {
                    let chars: Vec<char> = text.chars().collect();
                    let from = chars.len().saturating_sub(20_000);
                    chars[from..].iter().collect()
                };
                eprintln!("===== {} =====\n{tail}", p.display());
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, then reap.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; SIGKILL if it does not come.
    /// Returns whether the process exited by itself with success.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("coffer did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it");
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts the server again on the same directories, ports and keys.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.stop().await;
        }
        self.spawn_and_wait().await;
    }

    /// Like `restart`, but on fresh ports (for when the old ones may linger).
    pub async fn restart_on_new_ports(&mut self) {
        if self.child.is_some() {
            self.stop().await;
        }
        self.s3_port = free_port();
        self.admin_port = free_port();
        self.spawn_and_wait().await;
    }

    /// S3 client with the root credentials.
    pub fn client(&self) -> Client {
        self.client_with(ACCESS_KEY, SECRET_KEY)
    }

    /// S3 client with the given credentials: path-style, us-east-1, no retries (so that a
    /// failure is seen as it happened); a stream that stalls for 60 s fails instead of hanging.
    pub fn client_with(&self, access_key: &str, secret_key: &str) -> Client {
        Client::from_conf(self.config_builder(access_key, secret_key).build())
    }

    pub fn config_builder(
        &self,
        access_key: &str,
        secret_key: &str,
    ) -> aws_sdk_s3::config::Builder {
        let creds = Credentials::new(access_key, secret_key, None, None, "coffer-test");
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.s3_endpoint())
            .credentials_provider(creds)
            .force_path_style(true)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(300))
                    .build(),
            )
            .stalled_stream_protection(
                aws_sdk_s3::config::StalledStreamProtectionConfig::enabled()
                    .grace_period(Duration::from_secs(60))
                    .build(),
            )
    }

    /// Client for presigning: no flexible checksums in the presigned URL.
    pub fn presign_client(&self) -> Client {
        Client::from_conf(
            self.config_builder(ACCESS_KEY, SECRET_KEY)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .build(),
        )
    }

    /// Admin API request with the right bearer token.
    pub async fn admin(&self, method: &str, path: &str, body: &[u8]) -> RawResponse {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        http_request(&self.admin_addr(), method, path, &headers, body)
            .await
            .unwrap_or_else(|e| panic!("admin {method} {path}: {e}"))
    }

    /// Every regular file under `dir`, recursively (symlinks are not followed).
    pub fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        let mut budget = 1_000_000usize;
        while let Some(d) = stack.pop() {
            let Ok(entries) = fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                budget = budget
                    .checked_sub(1)
                    .expect("too many files under test dir");
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(e.path());
                } else if ft.is_file() {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            self.dump_logs();
            if std::env::var_os("COFFER_KEEP_TEST_DIRS").is_some() {
                let path = self.root.path().to_path_buf();
                eprintln!("keeping test dir {}", path.display());
                // Leak the directory on purpose for inspection.
                let dir = std::mem::replace(&mut self.root, tempfile::tempdir().expect("tempdir"));
                let _ = dir.keep();
            }
        }
    }
}
