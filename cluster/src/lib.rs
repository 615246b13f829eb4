//! Node identity, certificates (the cluster CA, node and self-signed certificates), server-side
//! TLS for the HTTP listeners, the `Transport` seam between nodes, and its production
//! implementation over QUIC with mutual TLS (`quic`).

#![forbid(unsafe_code)]

pub mod certs;
pub mod identity;
pub mod quic;
pub mod rpc;
pub mod tls;
pub mod transport;

pub use identity::{node_id_of_cert, node_id_uri, CertIdError, NodeId, NodeIdentity};
pub use quic::{NodeTls, QuicConfig, QuicError, QuicNode, QuicTransport};
pub use rpc::{HandlerError, Handlers, RpcHandler};
pub use transport::{LocalOnlyTransport, Transport, TransportError, DEFAULT_DEADLINE};
