//! `coffer admin ...`: operator commands that drive a running node through its admin API. The
//! bearer token comes only from `COFFER_ADMIN_TOKEN` (a flag would show in `ps`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// Subcommands of `coffer admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Re-wrap every object's data key in a bucket under the newest version of its KMS key (or,
    /// with --to-key, move SSE-KMS objects to another key) without rewriting object data.
    /// Resumes an interrupted job from its checkpoint; safe to run again.
    Rewrap(RewrapArgs),
    /// Ask the node whether it serves (exit status 0) or not (1): for container health checks.
    /// Needs no token.
    Health(HealthArgs),
}

/// Where a node's admin API is (every `coffer admin` command takes these).
#[derive(Debug, Args)]
pub struct AdminEndpoint {
    /// The node's admin API.
    #[arg(
        long,
        env = "COFFER_ADMIN_URL",
        default_value = "http://127.0.0.1:9001",
        value_name = "URL"
    )]
    pub admin_url: String,
    /// CA certificate (PEM) that signed the admin API's certificate, for https URLs.
    #[arg(long, env = "COFFER_ADMIN_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// Options of `coffer admin health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The node.
    #[command(flatten)]
    pub node: AdminEndpoint,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub timeout_ms: u64,
}

/// Options of `coffer admin rewrap`.
#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Bucket.
    #[arg(long)]
    pub bucket: String,
    /// Move SSE-KMS objects to this KMS key (SSE-S3 objects stay under the default key).
    #[arg(long, value_name = "KEY")]
    pub to_key: Option<String>,
    /// At most this many objects per second (spares a rate-limited KMS).
    #[arg(long, value_name = "N")]
    pub max_per_second: Option<u32>,
    /// The node.
    #[command(flatten)]
    pub node: AdminEndpoint,
    /// Start or resume the job and return without waiting for it.
    #[arg(long)]
    pub detach: bool,
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad arguments or environment.
    #[error("{0}")]
    Usage(String),
    /// The node could not be reached.
    #[error("cannot reach the admin API at {url}: {reason}")]
    Connect {
        /// The admin URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node refused.
    #[error("the admin API answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its error message.
        message: String,
    },
    /// The job stopped on an error.
    #[error("the re-wrap job failed: {0}")]
    JobFailed(String),
}

impl AdminCommand {
    /// Runs the command to its end, printing progress on stderr.
    pub async fn run(self) -> Result<(), AdminError> {
        match self {
            AdminCommand::Rewrap(args) => rewrap(args).await,
            AdminCommand::Health(args) => health(args).await,
        }
    }
}

struct Client {
    url: url_parts::Parts,
    /// None: endpoints that need no token (health).
    token: Option<Zeroizing<String>>,
    tls: Option<tokio_rustls::TlsConnector>,
    raw_url: String,
}

async fn health(args: HealthArgs) -> Result<(), AdminError> {
    let client = Client::anonymous(&args.node.admin_url, args.node.ca.as_deref())?;
    let answer = tokio::time::timeout(
        Duration::from_millis(args.timeout_ms),
        client.send(Method::GET, "/api/v1/health", None),
    )
    .await
    .map_err(|_| client.connect_err(format!("no answer within {} ms", args.timeout_ms)))?;
    println!("{}", answer?);
    Ok(())
}

async fn rewrap(args: RewrapArgs) -> Result<(), AdminError> {
    let client = Client::new(&args.node.admin_url, args.node.ca.as_deref())?;
    let path = format!("/api/v1/buckets/{}/rewrap", args.bucket);
    let mut body = json!({});
    if let Some(k) = &args.to_key {
        body["to_key"] = json!(k);
    }
    if let Some(n) = args.max_per_second {
        body["max_per_second"] = json!(n);
    }
    let job = client.send(Method::POST, &path, Some(body)).await?;
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    progress.started(&job);
    if args.detach {
        return Ok(());
    }
    loop {
        let job = client.send(Method::GET, &path, None).await?;
        progress.show(&job);
        match job["state"].as_str() {
            Some("done") => {
                progress.finish(&job);
                return Ok(());
            }
            Some("failed") => {
                progress.finish(&job);
                let why = job["error"].as_str().unwrap_or("unknown error").to_owned();
                return Err(AdminError::JobFailed(why));
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

impl Client {
    fn new(url: &str, ca: Option<&std::path::Path>) -> Result<Self, AdminError> {
        let token = crate::secret_env::secret_var("COFFER_ADMIN_TOKEN")
            .map_err(|e| AdminError::Usage(e.to_string()))?
            .ok_or_else(|| {
                AdminError::Usage(
                    "set COFFER_ADMIN_TOKEN (or COFFER_ADMIN_TOKEN_FILE) to the node's admin token"
                        .into(),
                )
            })?;
        Self::with_token(url, ca, Some(token))
    }

    fn anonymous(url: &str, ca: Option<&std::path::Path>) -> Result<Self, AdminError> {
        Self::with_token(url, ca, None)
    }

    fn with_token(
        url: &str,
        ca: Option<&std::path::Path>,
        token: Option<Zeroizing<String>>,
    ) -> Result<Self, AdminError> {
        let parts = url_parts::parse(url).map_err(AdminError::Usage)?;
        let tls = if parts.https {
            Some(tls_connector(ca)?)
        } else {
            None
        };
        Ok(Self {
            url: parts,
            token,
            tls,
            raw_url: url.to_owned(),
        })
    }

    fn connect_err(&self, reason: impl ToString) -> AdminError {
        AdminError::Connect {
            url: self.raw_url.clone(),
            reason: reason.to_string(),
        }
    }

    /// One request on a fresh connection (a poll every 250 ms needs no pool).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let addr = format!("{}:{}", self.url.host, self.url.port);
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| self.connect_err(e))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &addr)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.as_str()),
            );
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| AdminError::Usage(e.to_string()))?;
        let resp = match &self.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.url.host.clone())
                    .map_err(|e| AdminError::Usage(e.to_string()))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.connect_err(e))?;
                exchange(TokioIo::new(stream), req).await
            }
            None => exchange(TokioIo::new(tcp), req).await,
        }
        .map_err(|e| self.connect_err(e))?;
        let (status, bytes) = resp;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(v)
        } else {
            Err(AdminError::Refused {
                status,
                message: v["message"].as_str().unwrap_or("").to_owned(),
            })
        }
    }
}

async fn exchange<T>(
    io: TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

fn tls_connector(ca: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, AdminError> {
    let ca = ca.ok_or_else(|| {
        AdminError::Usage("an https admin URL needs --ca (or COFFER_ADMIN_CA)".into())
    })?;
    let pem = std::fs::read(ca)
        .map_err(|e| AdminError::Usage(format!("cannot read {}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem)? {
        roots
            .add(cert)
            .map_err(|e| AdminError::Usage(format!("bad CA certificate: {e}")))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(coffer_cluster::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| AdminError::Usage(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

fn rustls_pemfile_certs(
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, AdminError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdminError::Usage(format!("bad CA file: {e}")))
}

/// Progress on stderr: a redrawn bar with rate and ETA on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
    started: Instant,
    first_scanned: u64,
    last_line: Option<Instant>,
}

impl Progress {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            started: Instant::now(),
            first_scanned: 0,
            last_line: None,
        }
    }

    fn started(&mut self, job: &Value) {
        self.first_scanned = job["scanned"].as_u64().unwrap_or(0);
        let runs = job["runs"].as_u64().unwrap_or(1);
        let verb = if runs > 1 { "resumed" } else { "started" };
        let after = job["after"]
            .as_str()
            .map(|a| format!(" after {a:?}"))
            .unwrap_or_default();
        eprintln!(
            "re-wrap {verb} on bucket {} ({} objects{after})",
            job["bucket"].as_str().unwrap_or("?"),
            job["total"].as_u64().unwrap_or(0)
        );
    }

    fn line(&self, job: &Value) -> (String, f64) {
        let scanned = job["scanned"].as_u64().unwrap_or(0);
        let total = job["total"].as_u64().unwrap_or(0).max(scanned);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = scanned.saturating_sub(self.first_scanned) as f64 / secs;
        let eta = if rate > 0.0 {
            format!("{:.0}s", total.saturating_sub(scanned) as f64 / rate)
        } else {
            "?".to_owned()
        };
        let pct = job["percent"].as_f64().unwrap_or(0.0);
        let text = format!(
            "{scanned}/{total} objects ({pct:.1}%), {rate:.0}/s, ETA {eta}; re-wrapped {}, current {}, skipped {}",
            job["rewrapped"].as_u64().unwrap_or(0),
            job["current"].as_u64().unwrap_or(0),
            job["skipped"].as_u64().unwrap_or(0),
        );
        (text, pct)
    }

    fn show(&mut self, job: &Value) {
        let (text, pct) = self.line(job);
        let mut err = std::io::stderr();
        if self.tty {
            let filled = ((pct / 100.0) * 30.0).round() as usize;
            let bar = format!(
                "{}{}",
                "#".repeat(filled.min(30)),
                ".".repeat(30 - filled.min(30))
            );
            let _ = write!(err, "\r\x1b[2K[{bar}] {text}");
            let _ = err.flush();
        } else if self
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
        {
            let _ = writeln!(err, "{text}");
            self.last_line = Some(Instant::now());
        }
    }

    fn finish(&mut self, job: &Value) {
        if self.tty {
            eprintln!();
        }
        let (text, _) = self.line(job);
        eprintln!("re-wrap {}: {text}", job["state"].as_str().unwrap_or("?"));
    }
}

/// The few parts of an `http(s)://host[:port]` URL this client needs.
mod url_parts {
    pub(super) struct Parts {
        pub(super) https: bool,
        pub(super) host: String,
        pub(super) port: u16,
    }

    pub(super) fn parse(url: &str) -> Result<Parts, String> {
        let bad = || format!("admin URL {url:?} is not http(s)://host[:port]");
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse().map_err(|_| bad())?)
            }
            _ => (rest, if https { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Parts { https, host, port })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn parses_what_operators_type() {
            let p = super::parse("http://127.0.0.1:9001").unwrap();
            assert!(!p.https && p.host == "127.0.0.1" && p.port == 9001);
            let p = super::parse("https://node1.example/").unwrap();
            assert!(p.https && p.host == "node1.example" && p.port == 443);
            let p = super::parse("http://[::1]:9001").unwrap();
            assert!(p.host == "::1" && p.port == 9001);
            assert!(super::parse("ftp://x").is_err());
            assert!(super::parse("http://x:notaport").is_err());
            assert!(super::parse("http://x/path").is_err());
        }
    }
}
