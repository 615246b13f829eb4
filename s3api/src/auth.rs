//! Credentials, the SigV4 secret lookup for s3s, and the access check that refuses anonymous
//! requests before any operation (and so the backend) runs.
//!
//! What s3s 0.14.1 itself does, read from its source (`ops/signature.rs`) and pinned by tests:
//! header SigV4 and presigned SigV4/SigV2 are verified with constant-time comparison; a wrong
//! secret is `SignatureDoesNotMatch` (403); an expired presigned URL is `AccessDenied` "Request
//! has expired" (403), checked before the key lookup; clock skew beyond 15 minutes is
//! `RequestTimeTooSkewed` (403). The unknown-key error comes from our [`S3Auth`] impl.

use std::collections::HashMap;
use std::fmt;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Result};
use zeroize::Zeroizing;

use crate::audit::AuditSlot;

/// An access key and its secret; the secret is zeroized on drop and never printed.
#[derive(Clone)]
pub struct Credentials {
    /// The public access key id.
    pub access_key: String,
    secret: Zeroizing<String>,
}

impl Credentials {
    /// Creates credentials from an access key id and its secret.
    pub fn new(access_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret: Zeroizing::new(secret.into()),
        }
    }

    /// The secret key (for signing in tests and tools; never log it).
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// The secret-key store s3s consults while verifying signatures.
pub(crate) struct CofferAuth {
    keys: HashMap<String, Credentials>,
}

impl CofferAuth {
    /// Builds the store from a list of credentials (later duplicates win).
    pub(crate) fn new(creds: Vec<Credentials>) -> Self {
        Self {
            keys: creds
                .into_iter()
                .map(|c| (c.access_key.clone(), c))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for CofferAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.get(access_key) {
            Some(c) => Ok(SecretKey::from(c.secret.as_str())),
            None => Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )),
        }
    }
}

/// Refuses unsigned requests and records the operation for the audit log.
///
/// s3s calls this for every routed request once an auth provider is set, after the signature
/// was checked and before the input is parsed or the operation runs.
pub(crate) struct CofferAccess;

#[async_trait::async_trait]
impl S3Access for CofferAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let op = cx.s3_op().name().to_owned();
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let authenticated = access_key.is_some();
        if let Some(slot) = cx.extensions_mut().get::<AuditSlot>() {
            slot.set_resolved(op, bucket, key, access_key);
        }
        if !authenticated {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Anonymous access is not allowed; sign the request with SigV4.",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secret() {
        let c = Credentials::new("AKID", "super-secret-value");
        let s = format!("{c:?}");
        assert!(s.contains("AKID"));
        assert!(!s.contains("super-secret-value"));
    }

    #[tokio::test]
    async fn unknown_key_is_invalid_access_key_id() {
        let auth = CofferAuth::new(vec![Credentials::new("AKID", "s")]);
        assert_eq!(auth.get_secret_key("AKID").await.unwrap().expose(), "s");
        let err = auth.get_secret_key("NOPE").await.unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidAccessKeyId);
    }
}
