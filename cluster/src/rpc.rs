//! The receiving side of the transport: handlers by channel name.
//!
//! Transport-neutral, so that the QUIC server and the simulation's network dispatch the same
//! way. The caller's node id is the one its transport authenticated (for QUIC: the id in the
//! peer's verified certificate), never one a message claims.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::identity::NodeId;

/// A handler's refusal; the message travels back to the caller as `TransportError::Remote`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong (for the caller's logs; callers do not match on it).
    pub message: String,
}

impl HandlerError {
    /// A refusal saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Serves one channel.
#[async_trait::async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// Answers `payload` sent by node `from`.
    async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError>;
}

/// The channel → handler table of one node; handlers may be added while the server runs
/// (the metadata store registers its handlers after the endpoint it sends through exists).
#[derive(Default, Clone)]
pub struct Handlers {
    map: Arc<RwLock<HashMap<String, Arc<dyn RpcHandler>>>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<_> = map.keys().collect();
        names.sort();
        f.debug_struct("Handlers")
            .field("channels", &names)
            .finish()
    }
}

impl Handlers {
    /// Installs (or replaces) the handler of `channel`.
    pub fn register(&self, channel: impl Into<String>, handler: Arc<dyn RpcHandler>) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.into(), handler);
    }

    /// Removes the handler of `channel`.
    pub fn unregister(&self, channel: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(channel);
    }

    /// The handler of `channel`, if any.
    pub fn get(&self, channel: &str) -> Option<Arc<dyn RpcHandler>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(channel)
            .cloned()
    }
}
