//! Node identity, certificates (the cluster CA, node and self-signed certificates), server-side
//! TLS for the HTTP listeners, and the `Transport` seam between nodes.
//!
//! Only a single node runs today; the QUIC + mutual-TLS transport arrives with the cluster issue.
//! The seam exists now so that the node and the simulation are written against it from day one.

#![forbid(unsafe_code)]

pub mod certs;
pub mod identity;
pub mod tls;
pub mod transport;

pub use identity::{node_id_of_cert, node_id_uri, CertIdError, NodeId, NodeIdentity};
pub use transport::{LocalOnlyTransport, Transport, TransportError};
