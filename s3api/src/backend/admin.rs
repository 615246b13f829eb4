//! What the admin API asks of the backend beyond S3.

/// What the admin API asks of the KMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsAdminRequest {
    /// Provider, health, default key, capabilities.
    Status,
    /// Key ids the provider knows.
    ListKeys,
    /// Create a key (an existing id → 409).
    CreateKey(String),
    /// One key's state and versions.
    DescribeKey(String),
    /// Add a new key version; new data keys use it, old ones stay readable.
    RotateKey(String),
}

/// What the admin API asks of the re-wrap job (`/api/v1/buckets/{bucket}/rewrap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewrapAdminRequest {
    /// Start a job for `bucket`, or resume its interrupted or failed one from its checkpoint;
    /// a running job with the same target is returned as it is.
    Start {
        /// Bucket.
        bucket: String,
        /// Move SSE-KMS objects to this key; `None`: each object's own key, newest version.
        to_key: Option<String>,
        /// Throttle, objects per second (protects a rate-limited KMS); `None`: as fast as it goes.
        max_per_second: Option<u32>,
    },
    /// The bucket's current or last job.
    Status {
        /// Bucket.
        bucket: String,
    },
}

/// What the admin API asks of cluster membership (`/api/v1/cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAdminRequest {
    /// Nodes, roles, leader, term, commit index, replication lag, drives and their health.
    Status,
    /// Add node `id`, reachable at `addr` (its QUIC `host:port`), as a learner, then promote
    /// it to voter once it has caught up.
    AddNode {
        /// Node id (the one in its certificate).
        id: u64,
        /// QUIC address.
        addr: String,
    },
    /// Remove node `id` from the group and from the layout.
    RemoveNode(u64),
}
