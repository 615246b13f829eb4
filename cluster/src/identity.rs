//! Who this node is, and how its Raft node id is carried in its certificate.
//!
//! A node certificate names its node id in one subject-alternative-name URI,
//! `coffer://node/<id>` (decimal, no sign, no leading zeros). The QUIC transport reads the
//! peer's id from there after the certificate chain verified under the cluster CA, so a peer
//! can only speak as the node its certificate was issued for; no message ever claims an id.

use serde::{Deserialize, Serialize};

/// A node's numeric id, as Raft knows it.
pub type NodeId = u64;

/// Prefix of the SAN URI that carries a node id.
pub const NODE_ID_URI_PREFIX: &str = "coffer://node/";

/// The identity a node presents to its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// Raft node id.
    pub id: NodeId,
    /// Address peers dial (QUIC, default port 9002).
    pub cluster_addr: String,
}

impl NodeIdentity {
    /// The identity of a node that runs alone.
    pub fn single(cluster_addr: impl Into<String>) -> Self {
        Self {
            id: 1,
            cluster_addr: cluster_addr.into(),
        }
    }
}

/// Why no node id could be read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertIdError {
    /// The certificate is not parsable X.509.
    #[error("certificate is not valid X.509")]
    Unparsable,
    /// No `coffer://node/<id>` SAN: not a node certificate (or issued without `--node-id`).
    #[error("certificate carries no coffer://node/<id> name")]
    Missing,
    /// More than one node-id SAN: ambiguous, refused.
    #[error("certificate carries more than one node id")]
    Ambiguous,
    /// A node-id SAN whose id is not a canonical decimal u64.
    #[error("malformed node id in certificate: {0:?}")]
    Malformed(String),
}

/// The SAN URI for `id`.
pub fn node_id_uri(id: NodeId) -> String {
    format!("{NODE_ID_URI_PREFIX}{id}")
}

/// Parses a SAN URI as a node id; `None` if it is not a node-id URI at all.
fn parse_node_uri(uri: &str) -> Option<Result<NodeId, CertIdError>> {
    let digits = uri.strip_prefix(NODE_ID_URI_PREFIX)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    Some(
        digits
            .parse::<NodeId>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| CertIdError::Malformed(uri.to_owned())),
    )
}

/// The node id in a DER certificate's `coffer://node/<id>` SAN. Does not verify the
/// certificate: call it only on a certificate whose chain was verified.
pub fn node_id_of_cert(der: &[u8]) -> Result<NodeId, CertIdError> {
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertIdError::Unparsable)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| CertIdError::Unparsable)?
        .ok_or(CertIdError::Missing)?;
    let mut found = None;
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name {
            if let Some(id) = parse_node_uri(uri) {
                if found.is_some() {
                    return Err(CertIdError::Ambiguous);
                }
                found = Some(id?);
            }
        }
    }
    found.ok_or(CertIdError::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trip_and_strictness() {
        assert_eq!(node_id_uri(7), "coffer://node/7");
        assert_eq!(parse_node_uri("coffer://node/7"), Some(Ok(7)));
        assert_eq!(parse_node_uri("coffer://node/0"), Some(Ok(0)));
        assert_eq!(parse_node_uri("https://x"), None);
        for bad in [
            "coffer://node/",
            "coffer://node/07",
            "coffer://node/+7",
            "coffer://node/7a",
        ] {
            assert!(matches!(parse_node_uri(bad), Some(Err(_))), "{bad}");
        }
        assert!(matches!(
            parse_node_uri("coffer://node/99999999999999999999"),
            Some(Err(_))
        ));
    }
}
