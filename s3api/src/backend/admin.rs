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
