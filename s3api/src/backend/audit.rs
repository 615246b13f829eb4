//! One record per request, handed to an observer (the audit log and metrics).

/// One finished S3 or admin request, for metrics and the audit log. Never holds a secret.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Time the request arrived, ms since the epoch.
    pub time_ms: i64,
    /// Unique request id (also sent as `x-amz-request-id`).
    pub request_id: String,
    /// Access key of the signer, if authenticated.
    pub access_key: Option<String>,
    /// Operation name (`PutObject`, `admin:PutBucketEncryption`, ...).
    pub operation: String,
    /// Bucket, if any.
    pub bucket: Option<String>,
    /// Key, if any.
    pub key: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Time to response headers, seconds.
    pub duration_secs: f64,
}

/// Receives a record for every finished request.
pub trait RequestObserver: Send + Sync + 'static {
    /// Called once per request.
    fn record(&self, rec: RequestRecord);
}
