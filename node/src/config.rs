//! Configuration: flags > `COFFER_*` environment > TOML file > built-in defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use coffer_cluster::tls::TlsSource;
use serde::Deserialize;

use crate::kms_config::{KmsArgs, KmsFile, KmsSettings};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: an encrypted, S3-compatible object store"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per process: the size of `ServerArgs` beside the small variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node. With no options: one node, data under ./data, S3 on 127.0.0.1:9000.
    Server(ServerArgs),
    /// Make TLS certificates: a cluster CA, node certificates signed by it, or a self-signed one.
    Certs {
        /// Which certificate.
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Operate a running node through its admin API (COFFER_ADMIN_TOKEN holds the token).
    Admin {
        /// Which operation.
        #[command(subcommand)]
        command: crate::admin_cli::AdminCommand,
    },
}

/// Subcommands of `coffer certs`. Keys are written with mode 0600; existing files are never
/// overwritten without --force.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// A new cluster CA: DIR/ca.pem and DIR/ca-key.pem.
    Ca {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// A node certificate (server and client auth) signed by the CA: DIR/NAME.pem (certificate
    /// and CA chain) and DIR/NAME.key.
    Node {
        /// Directory holding ca.pem and ca-key.pem.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Node name: the certificate's common name and the file names.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Raft node id, written as the SAN `coffer://node/N`; the cluster transport takes a
        /// peer's id from it and refuses node certificates without one.
        #[arg(long, value_name = "N")]
        node_id: Option<u64>,
        /// DNS names (SANs), repeatable or comma-separated.
        #[arg(long, value_name = "NAME", value_delimiter = ',')]
        dns: Vec<String>,
        /// IP addresses (SANs), repeatable or comma-separated.
        #[arg(long, value_name = "IP", value_delimiter = ',')]
        ip: Vec<IpAddr>,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// A self-signed certificate for development: DIR/NAME.pem and DIR/NAME.key.
    SelfSigned {
        /// DNS names (SANs), repeatable or comma-separated.
        #[arg(long, value_name = "NAME", value_delimiter = ',')]
        dns: Vec<String>,
        /// IP addresses (SANs), repeatable or comma-separated.
        #[arg(long, value_name = "IP", value_delimiter = ',')]
        ip: Vec<IpAddr>,
        /// The certificate's common name and the file names.
        #[arg(long, value_name = "NAME", default_value = "server")]
        name: String,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

impl CertsCommand {
    /// Writes the files and returns what was written.
    pub fn run(&self) -> Result<coffer_cluster::certs::Written, coffer_cluster::certs::CertError> {
        use coffer_cluster::certs;
        match self {
            CertsCommand::Ca { out, force } => certs::write_ca(out, *force),
            CertsCommand::Node {
                ca,
                name,
                node_id,
                dns,
                ip,
                out,
                force,
            } => certs::write_node(ca, name, *node_id, dns, ip, out, *force),
            CertsCommand::SelfSigned {
                dns,
                ip,
                name,
                out,
                force,
            } => certs::write_self_signed(name, dns, ip, out, *force),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `coffer server`; each also reads a `COFFER_*` variable and a TOML key.
#[derive(Debug, Default, Args)]
pub struct ServerArgs {
    /// Data directory: metadata, sealed secrets, and the drive when --drives is not given
    /// [TOML: data] [default: ./data]
    #[arg(long, env = "COFFER_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// S3 listen address [TOML: s3_addr] [default: 127.0.0.1:9000]
    #[arg(long, env = "COFFER_S3_ADDR", value_name = "ADDR")]
    pub s3_addr: Option<SocketAddr>,
    /// Admin API listen address [TOML: admin_addr] [default: 127.0.0.1:9001]
    #[arg(long, env = "COFFER_ADMIN_ADDR", value_name = "ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Drive directories, comma-separated; parity follows the drive count (4 drives: 2+2)
    /// [TOML: drives = ["..."]] [default: <data>/drive]
    #[arg(
        long,
        env = "COFFER_DRIVES",
        value_name = "DIR,DIR,...",
        value_delimiter = ','
    )]
    pub drives: Option<Vec<PathBuf>>,
    /// TOML configuration file
    #[arg(long, env = "COFFER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Append one JSON audit record per request to this file [TOML: audit_log]
    #[arg(long, env = "COFFER_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Log format [TOML: log_format] [default: text]
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Allow plain HTTP on a non-loopback address [TOML: insecure_http] [default: false]
    #[arg(long, env = "COFFER_INSECURE_HTTP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_http: Option<bool>,
    /// Base domain for virtual-host-style requests (bucket.DOMAIN) [TOML: domain]
    #[arg(long, env = "COFFER_DOMAIN", value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key) [TOML: tls_cert]
    #[arg(long, env = "COFFER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert [TOML: tls_key]
    #[arg(long, env = "COFFER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with the NAME.pem + NAME.key pairs in DIR, chosen by SNI (default.pem, else
    /// the first, when there is no match) [TOML: tls_dir]
    #[arg(long, env = "COFFER_TLS_DIR", value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// How often to check the certificate files for changes and reload them, in milliseconds;
    /// 0 turns the check off (SIGHUP still reloads) [TOML: tls_watch_ms] [default: 2000]
    #[arg(long, env = "COFFER_TLS_WATCH_MS", value_name = "MS")]
    pub tls_watch_ms: Option<u64>,
    /// KMS provider options (docs/kms.md).
    #[command(flatten)]
    pub kms: KmsArgs,
    #[command(flatten)]
    pub cluster: crate::cluster_config::ClusterArgs,
}

/// The TOML file's keys (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    s3_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    drives: Option<Vec<PathBuf>>,
    audit_log: Option<PathBuf>,
    log_format: Option<LogFormat>,
    insecure_http: Option<bool>,
    domain: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_dir: Option<PathBuf>,
    tls_watch_ms: Option<u64>,
    kms: Option<KmsFile>,
    cluster: Option<crate::cluster_config::ClusterFile>,
}

/// How often the certificate files are checked for changes when nothing else is configured.
pub const DEFAULT_TLS_WATCH: Duration = Duration::from_secs(2);

/// The resolved configuration of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Data directory.
    pub data: PathBuf,
    /// S3 address.
    pub s3_addr: SocketAddr,
    /// Admin address.
    pub admin_addr: SocketAddr,
    /// Drive directories (at least one).
    pub drives: Vec<PathBuf>,
    /// Audit log file.
    pub audit_log: Option<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Plain HTTP allowed off loopback.
    pub insecure_http: bool,
    /// Virtual-host base domain.
    pub domain: Option<String>,
    /// HTTPS certificates for the S3 and admin listeners; plain HTTP when absent.
    pub tls: Option<TlsSource>,
    /// Interval of the check for changed certificate files; `None`: no check (SIGHUP only).
    pub tls_watch: Option<Duration>,
    /// The KMS provider and its settings.
    pub kms: KmsSettings,
    /// Cluster mode: the QUIC endpoint, certificates and peers; `None`: a single node.
    pub cluster: Option<crate::cluster_config::ClusterSettings>,
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for us.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },
    /// Something is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Merges flags/env (already combined by clap) over the file over the defaults.
    pub fn resolve(args: ServerArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let data = args
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let drives = args
            .drives
            .or(file.drives)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| vec![data.join("drive")]);
        if drives.len() > 16 {
            return Err(ConfigError::Invalid("at most 16 drives per node".into()));
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            args.tls_dir.or(file.tls_dir),
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), None) => Some(TlsSource::Pair { cert, key }),
            (None, None, Some(dir)) => Some(TlsSource::Dir(dir)),
            (Some(_), None, None) | (None, Some(_), None) => {
                return Err(ConfigError::Invalid(
                    "--tls-cert and --tls-key must be given together".into(),
                ))
            }
            (_, _, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "--tls-dir cannot be combined with --tls-cert/--tls-key".into(),
                ))
            }
        };
        let tls_watch = match args
            .tls_watch_ms
            .or(file.tls_watch_ms)
            .map(Duration::from_millis)
        {
            None => Some(DEFAULT_TLS_WATCH),
            Some(Duration::ZERO) => None,
            Some(d) => Some(d),
        };
        // The Vault credentials may come from files (`COFFER_KMS_VAULT_TOKEN_FILE`, ...).
        let vault_secret = |name: &str| {
            crate::secret_env::secret_var(name)
                .map(|v| v.map(|v| v.to_string()))
                .map_err(|e| ConfigError::Invalid(e.to_string()))
        };
        let vault_token = vault_secret("COFFER_KMS_VAULT_TOKEN")?;
        let vault_secret_id = vault_secret("COFFER_KMS_VAULT_SECRET_ID")?;
        let env = |k: &str| match k {
            "COFFER_KMS_VAULT_TOKEN" => vault_token.clone(),
            "COFFER_KMS_VAULT_SECRET_ID" => vault_secret_id.clone(),
            _ => std::env::var(k).ok(),
        };
        let kms = KmsSettings::resolve(args.kms, file.kms, &env)?;
        let cluster = crate::cluster_config::ClusterSettings::resolve(args.cluster, file.cluster)?;
        Ok(Self {
            kms,
            cluster,
            tls,
            tls_watch,
            s3_addr: args
                .s3_addr
                .or(file.s3_addr)
                .unwrap_or(([127, 0, 0, 1], 9000).into()),
            admin_addr: args
                .admin_addr
                .or(file.admin_addr)
                .unwrap_or(([127, 0, 0, 1], 9001).into()),
            drives,
            audit_log: args.audit_log.or(file.audit_log),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            insecure_http: args.insecure_http.or(file.insecure_http).unwrap_or(false),
            domain: args.domain.or(file.domain),
            data,
        })
    }

    /// Refuses plain HTTP on a non-loopback address unless explicitly allowed.
    pub fn check_listeners(&self) -> Result<(), ConfigError> {
        if self.tls.is_some() {
            return Ok(());
        }
        for addr in [self.s3_addr, self.admin_addr] {
            if !addr.ip().is_loopback() && !self.insecure_http {
                return Err(ConfigError::Invalid(format!(
                    "refusing plain HTTP on non-loopback address {addr}: configure TLS \
                     (--tls-cert/--tls-key or --tls-dir), bind to 127.0.0.1, or pass \
                     --insecure-http"
                )));
            }
        }
        Ok(())
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    use crate::seams::DriveIo;
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::seams::FsDriveIo
        .read_file(path)
        .map_err(read_err)?
        .ok_or_else(|| read_err(std::io::ErrorKind::NotFound.into()))?;
    let text = String::from_utf8_lossy(&bytes);
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        let c = Config::resolve(ServerArgs::default()).unwrap();
        assert_eq!(c.data, PathBuf::from("./data"));
        assert_eq!(c.s3_addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(c.drives, vec![PathBuf::from("./data/drive")]);
        assert!(c.check_listeners().is_ok());

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "data = \"/d\"\ns3_addr = \"0.0.0.0:9100\"\ndrives = [\"/a\", \"/b\"]\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(f.clone()),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.data, PathBuf::from("/d"));
        assert_eq!(c.drives.len(), 2);
        assert!(
            c.check_listeners().is_err(),
            "plain HTTP on 0.0.0.0 must be refused"
        );

        let args = ServerArgs {
            config: Some(f),
            s3_addr: Some("127.0.0.1:9200".parse().unwrap()),
            insecure_http: Some(true),
            ..Default::default()
        };
        let c = Config::resolve(args).unwrap();
        assert_eq!(c.s3_addr, "127.0.0.1:9200".parse().unwrap());
        assert!(c.insecure_http);
    }

    #[test]
    fn tls_options() {
        let args = |cert: Option<&str>, key: Option<&str>, dir: Option<&str>| ServerArgs {
            s3_addr: Some("0.0.0.0:9000".parse().unwrap()),
            tls_cert: cert.map(PathBuf::from),
            tls_key: key.map(PathBuf::from),
            tls_dir: dir.map(PathBuf::from),
            ..Default::default()
        };
        let c = Config::resolve(args(Some("c.pem"), Some("k.pem"), None)).unwrap();
        assert_eq!(
            c.tls,
            Some(TlsSource::Pair {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert!(c.check_listeners().is_ok(), "TLS lifts the loopback rule");
        assert_eq!(c.tls_watch, Some(DEFAULT_TLS_WATCH));
        let watch = |ms| {
            Config::resolve(ServerArgs {
                tls_watch_ms: Some(ms),
                ..args(Some("c.pem"), Some("k.pem"), None)
            })
            .unwrap()
            .tls_watch
        };
        assert_eq!(watch(250), Some(Duration::from_millis(250)));
        assert_eq!(watch(0), None, "0 turns the file check off");
        let c = Config::resolve(args(None, None, Some("certs"))).unwrap();
        assert_eq!(c.tls, Some(TlsSource::Dir("certs".into())));
        for bad in [
            args(Some("c.pem"), None, None),
            args(None, Some("k.pem"), None),
            args(Some("c.pem"), Some("k.pem"), Some("certs")),
        ] {
            assert!(matches!(Config::resolve(bad), Err(ConfigError::Invalid(_))));
        }
        let err = Config::resolve(args(None, None, None))
            .unwrap()
            .check_listeners()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--insecure-http") && err.contains("--tls-cert"),
            "{err}"
        );
    }

    #[test]
    fn certs_subcommands_parse() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "coffer",
            "certs",
            "node",
            "--ca",
            "ca",
            "--name",
            "n1",
            "--dns",
            "a.test,b.test",
            "--ip",
            "10.0.0.1",
            "--ip",
            "::1",
            "--out",
            "o",
        ])
        .unwrap();
        let Command::Certs {
            command: CertsCommand::Node { dns, ip, force, .. },
        } = cli.command
        else {
            panic!("certs node expected")
        };
        assert_eq!(dns, vec!["a.test", "b.test"]);
        assert_eq!(ip.len(), 2);
        assert!(!force);
        assert!(
            Cli::try_parse_from(["coffer", "certs", "ca"]).is_err(),
            "--out is required"
        );
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "dta = \"/d\"\n").unwrap();
        let err = Config::resolve(ServerArgs {
            config: Some(f),
            ..Default::default()
        });
        assert!(matches!(err, Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn env_is_read_by_clap() {
        use clap::Parser;
        let cli =
            Cli::try_parse_from(["coffer", "server", "--drives", "a,b,c,d", "--insecure-http"])
                .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("server expected")
        };
        assert_eq!(args.drives.unwrap().len(), 4);
        assert_eq!(args.insecure_http, Some(true));
    }
}
