//! The `[cluster]` configuration: this node's QUIC endpoint, its certificate, and the peers it
//! joins through. Without it (no table, no `--cluster-*` flag) the node runs alone, as before.
//!
//! Precedence as everywhere: flags > `COFFER_CLUSTER_*` environment > TOML `[cluster]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::config::ConfigError;

/// Default QUIC port of the cluster transport (house plan §8).
pub const DEFAULT_CLUSTER_PORT: u16 = 9002;

/// Cluster options of `coffer server`.
#[derive(Debug, Default, Clone, Args)]
pub struct ClusterArgs {
    /// Node certificate chain (PEM) from `coffer certs node --node-id N`; turns cluster mode on
    /// [TOML: cluster.cert]
    #[arg(long, env = "COFFER_CLUSTER_CERT", value_name = "FILE")]
    pub cluster_cert: Option<PathBuf>,
    /// Private key of --cluster-cert [TOML: cluster.key]
    #[arg(long, env = "COFFER_CLUSTER_KEY", value_name = "FILE")]
    pub cluster_key: Option<PathBuf>,
    /// The cluster CA certificate (PEM) peers must be signed by [TOML: cluster.ca]
    #[arg(long, env = "COFFER_CLUSTER_CA", value_name = "FILE")]
    pub cluster_ca: Option<PathBuf>,
    /// UDP address of the QUIC listener [TOML: cluster.listen] [default: 127.0.0.1:9002]
    #[arg(long, env = "COFFER_CLUSTER_LISTEN", value_name = "ADDR")]
    pub cluster_listen: Option<SocketAddr>,
    /// host:port peers reach this node's QUIC listener at [TOML: cluster.advertise]
    /// [default: the listen address]
    #[arg(long, env = "COFFER_CLUSTER_ADVERTISE", value_name = "HOST:PORT")]
    pub cluster_advertise: Option<String>,
    /// Members to join through, as ID@HOST:PORT, repeatable or comma-separated
    /// [TOML: cluster.peers]
    #[arg(
        long,
        env = "COFFER_CLUSTER_PEERS",
        value_name = "ID@HOST:PORT",
        value_delimiter = ','
    )]
    pub peers: Option<Vec<String>>,
    /// Start a new cluster with this node as its first member (only acts on an empty data
    /// directory) [TOML: cluster.bootstrap] [default: false]
    #[arg(long, env = "COFFER_CLUSTER_BOOTSTRAP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub bootstrap: Option<bool>,
    /// This node's id; must match the id in --cluster-cert [TOML: cluster.node_id]
    /// [default: the certificate's]
    #[arg(long, env = "COFFER_NODE_ID", value_name = "N")]
    pub node_id: Option<u64>,
    /// Parity shards per object [TOML: cluster.parity] [default: by total drive count]
    #[arg(long, env = "COFFER_CLUSTER_PARITY", value_name = "M")]
    pub parity: Option<usize>,
    /// host:port clients reach this node's S3 API at, shown by the admin API
    /// [TOML: cluster.s3_advertise] [default: the S3 listen address]
    #[arg(long, env = "COFFER_CLUSTER_S3_ADVERTISE", value_name = "HOST:PORT")]
    pub s3_advertise: Option<String>,
}

/// The TOML `[cluster]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterFile {
    node_id: Option<u64>,
    listen: Option<SocketAddr>,
    advertise: Option<String>,
    peers: Option<Vec<String>>,
    bootstrap: Option<bool>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
    parity: Option<usize>,
    s3_advertise: Option<String>,
}

/// A member to join through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its node id (checked against its certificate when connecting).
    pub id: u64,
    /// Where its QUIC listener is.
    pub addr: String,
}

impl std::str::FromStr for Peer {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            ConfigError::Invalid(format!(
                "peer {s:?}: expected ID@HOST:PORT, e.g. 1@10.0.0.1:9002"
            ))
        };
        let (id, addr) = s.trim().split_once('@').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() || id == 0 {
            return Err(bad());
        }
        Ok(Self {
            id,
            addr: addr.to_string(),
        })
    }
}

/// The resolved cluster settings of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// Id the configuration asks for (the certificate's id rules; a mismatch stops start-up).
    pub node_id: Option<u64>,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Address peers reach the QUIC listener at.
    pub advertise: String,
    /// Members to join through.
    pub peers: Vec<Peer>,
    /// Start a new cluster (on an empty data directory).
    pub bootstrap: bool,
    /// Node certificate chain.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// Cluster CA certificate.
    pub ca: PathBuf,
    /// Parity shards; `None`: by total drive count.
    pub parity: Option<usize>,
    /// Address clients reach this node's S3 API at (for the admin API's node list).
    pub s3_advertise: Option<String>,
}

impl ClusterSettings {
    /// Merges flags/env over the file; `None` when nothing asks for cluster mode.
    pub(crate) fn resolve(
        args: ClusterArgs,
        file: Option<ClusterFile>,
    ) -> Result<Option<Self>, ConfigError> {
        let file = file.unwrap_or_default();
        let cert = args.cluster_cert.or(file.cert);
        let key = args.cluster_key.or(file.key);
        let ca = args.cluster_ca.or(file.ca);
        let peers_raw = args.peers.or(file.peers).unwrap_or_default();
        let bootstrap = args.bootstrap.or(file.bootstrap).unwrap_or(false);
        let (cert, key, ca) = match (cert, key, ca) {
            (None, None, None) => {
                if !peers_raw.is_empty() || bootstrap {
                    return Err(ConfigError::Invalid(
                        "cluster mode needs --cluster-cert, --cluster-key and --cluster-ca \
                         (make them with `coffer certs ca` and `coffer certs node --node-id N`)"
                            .into(),
                    ));
                }
                return Ok(None);
            }
            (Some(c), Some(k), Some(a)) => (c, k, a),
            _ => {
                return Err(ConfigError::Invalid(
                    "--cluster-cert, --cluster-key and --cluster-ca must be given together".into(),
                ))
            }
        };
        let peers = peers_raw
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse())
            .collect::<Result<Vec<Peer>, _>>()?;
        // Neither bootstrap nor peers is fine for a restarting member (its data directory
        // knows the cluster); a fresh node with neither is refused at start-up.
        let listen = args
            .cluster_listen
            .or(file.listen)
            .unwrap_or(([127, 0, 0, 1], DEFAULT_CLUSTER_PORT).into());
        let advertise = args
            .cluster_advertise
            .or(file.advertise)
            .unwrap_or_else(|| listen.to_string());
        if listen.ip().is_unspecified() && advertise == listen.to_string() {
            return Err(ConfigError::Invalid(format!(
                "cluster listen address {listen} is unspecified: set --cluster-advertise to \
                 the host:port peers reach this node at"
            )));
        }
        Ok(Some(Self {
            node_id: args.node_id.or(file.node_id),
            listen,
            advertise,
            peers,
            bootstrap,
            cert,
            key,
            ca,
            parity: args.parity.or(file.parity),
            s3_advertise: args.s3_advertise.or(file.s3_advertise),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_certs() -> ClusterArgs {
        ClusterArgs {
            cluster_cert: Some("n.pem".into()),
            cluster_key: Some("n.key".into()),
            cluster_ca: Some("ca.pem".into()),
            ..Default::default()
        }
    }

    #[test]
    fn off_without_settings_and_defaults_when_on() {
        assert_eq!(
            ClusterSettings::resolve(ClusterArgs::default(), None).unwrap(),
            None
        );
        let s = ClusterSettings::resolve(with_certs(), None)
            .unwrap()
            .unwrap();
        assert_eq!(s.listen, "127.0.0.1:9002".parse().unwrap());
        assert_eq!(s.advertise, "127.0.0.1:9002");
        assert!(!s.bootstrap);
        assert!(s.peers.is_empty());
    }

    #[test]
    fn peers_parse_and_bad_ones_are_refused() {
        let args = ClusterArgs {
            peers: Some(vec!["1@127.0.0.1:9002".into(), "2@node-2:9102".into()]),
            ..with_certs()
        };
        let s = ClusterSettings::resolve(args, None).unwrap().unwrap();
        assert_eq!(
            s.peers,
            vec![
                Peer {
                    id: 1,
                    addr: "127.0.0.1:9002".into()
                },
                Peer {
                    id: 2,
                    addr: "node-2:9102".into()
                }
            ]
        );
        for bad in [
            "127.0.0.1:9002",
            "x@h:1",
            "1@h",
            "1@h:99999",
            "0@h:1",
            "1@:1",
        ] {
            let args = ClusterArgs {
                peers: Some(vec![bad.into()]),
                ..with_certs()
            };
            assert!(
                matches!(
                    ClusterSettings::resolve(args, None),
                    Err(ConfigError::Invalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn partial_tls_and_unspecified_listen_are_refused() {
        let partial = ClusterArgs {
            cluster_cert: Some("n.pem".into()),
            ..Default::default()
        };
        assert!(ClusterSettings::resolve(partial, None).is_err());
        let bootstrap_only = ClusterArgs {
            bootstrap: Some(true),
            ..Default::default()
        };
        assert!(ClusterSettings::resolve(bootstrap_only, None).is_err());
        let wildcard = ClusterArgs {
            cluster_listen: Some("0.0.0.0:9002".parse().unwrap()),
            ..with_certs()
        };
        assert!(ClusterSettings::resolve(wildcard, None).is_err());
        let advertised = ClusterArgs {
            cluster_listen: Some("0.0.0.0:9002".parse().unwrap()),
            cluster_advertise: Some("node-1:9002".into()),
            ..with_certs()
        };
        assert!(ClusterSettings::resolve(advertised, None).is_ok());
    }

    #[test]
    fn file_table_is_read() {
        let file: ClusterFile = toml::from_str(
            "node_id = 3\nlisten = \"127.0.0.1:9302\"\npeers = [\"1@127.0.0.1:9002\"]\n\
             cert = \"n3.pem\"\nkey = \"n3.key\"\nca = \"ca.pem\"\nparity = 2\n",
        )
        .unwrap();
        let s = ClusterSettings::resolve(ClusterArgs::default(), Some(file))
            .unwrap()
            .unwrap();
        assert_eq!(s.node_id, Some(3));
        assert_eq!(s.parity, Some(2));
        assert_eq!(s.advertise, "127.0.0.1:9302");
        assert!(toml::from_str::<ClusterFile>("lisen = \"x\"").is_err());
    }
}
