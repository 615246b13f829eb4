//! The admin API's KMS operations, answered from the provider behind the data-key cache: key
//! ids, states and versions, never key material.

use coffer_kms::{Kms, KmsError};
use coffer_s3api::backend::{KmsAdminRequest, StoreError};
use serde_json::{json, Value};

use crate::keys::kms_error;

/// Runs one admin request against `kms`; `default_key` is the key SSE-S3 uses.
pub async fn run(
    kms: &dyn Kms,
    default_key: &str,
    req: KmsAdminRequest,
) -> Result<Value, StoreError> {
    let provider = kms.provider();
    let err = |e: KmsError| admin_error(provider, e);
    match req {
        KmsAdminRequest::Status => {
            let health = kms.health().await;
            Ok(json!({
                "provider": provider,
                "healthy": health.is_ok(),
                // KmsError messages name the provider and the cause, never a credential.
                "error": health.err().map(|e| e.to_string()),
                "default_key": default_key,
                "capabilities": kms.capabilities(),
            }))
        }
        KmsAdminRequest::ListKeys => {
            let keys = kms.list_keys().await.map_err(err)?;
            Ok(json!({ "provider": provider, "keys": keys }))
        }
        KmsAdminRequest::CreateKey(id) => {
            coffer_kms::validate_key_id(&id).map_err(err)?;
            kms.create_key(&id).await.map_err(err)?;
            describe_or_id(kms, &id).await
        }
        KmsAdminRequest::DescribeKey(id) => {
            let info = kms.describe_key(&id).await.map_err(err)?;
            Ok(json!(info))
        }
        KmsAdminRequest::RotateKey(id) => {
            let info = kms.rotate_key(&id).await.map_err(err)?;
            Ok(json!(info))
        }
    }
}

/// A new key's description, or just its id where the provider cannot describe keys.
async fn describe_or_id(kms: &dyn Kms, id: &str) -> Result<Value, StoreError> {
    match kms.describe_key(id).await {
        Ok(info) => Ok(json!(info)),
        Err(KmsError::Unsupported { .. }) => Ok(json!({ "key_id": id })),
        Err(e) => Err(admin_error(kms.provider(), e)),
    }
}

/// Admin answers for what the data path maps differently: an existing key is a conflict and
/// an operation the provider lacks is not implemented (the data path never asks either).
fn admin_error(provider: &str, e: KmsError) -> StoreError {
    match e {
        KmsError::KeyAlreadyExists(_) => StoreError::Conflict,
        KmsError::Unsupported { .. } => StoreError::NotImplemented(e.to_string()),
        other => kms_error(provider, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_crypto::{OsEntropy, SecretKey};
    use coffer_kms::LocalKms;
    use std::sync::Arc;

    fn local() -> LocalKms {
        LocalKms::new(SecretKey::from_bytes([3; 32]), Arc::new(OsEntropy))
    }

    #[tokio::test]
    async fn local_provider_answers_every_request() {
        let kms = local();
        let status = run(&kms, "coffer-default", KmsAdminRequest::Status)
            .await
            .unwrap();
        assert_eq!(status["provider"], "local");
        assert_eq!(status["healthy"], true);
        assert_eq!(status["capabilities"]["create"], true);

        let made = run(&kms, "d", KmsAdminRequest::CreateKey("tenant-a".into()))
            .await
            .unwrap();
        assert_eq!(made["key_id"], "tenant-a");
        assert!(matches!(
            run(&kms, "d", KmsAdminRequest::CreateKey("tenant-a".into())).await,
            Err(StoreError::Conflict)
        ));
        assert!(matches!(
            run(&kms, "d", KmsAdminRequest::CreateKey("bad id!".into())).await,
            Err(StoreError::InvalidArgument(_))
        ));
        let keys = run(&kms, "d", KmsAdminRequest::ListKeys).await.unwrap();
        assert!(keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "tenant-a"));
        let info = run(&kms, "d", KmsAdminRequest::DescribeKey("tenant-a".into()))
            .await
            .unwrap();
        assert_eq!(info["state"], "enabled");
        assert!(matches!(
            run(&kms, "d", KmsAdminRequest::DescribeKey("nope".into())).await,
            Err(StoreError::KmsKeyNotFound(_))
        ));
        // The built-in provider's key registry cannot rotate yet: a typed 501, not a 500.
        assert!(matches!(
            run(&kms, "d", KmsAdminRequest::RotateKey("tenant-a".into())).await,
            Err(StoreError::NotImplemented(_))
        ));
    }
}
