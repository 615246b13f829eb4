//! AWS KMS as a provider, through `aws-sdk-kms`.
//!
//! The wrapped blob Coffer stores is AWS's `CiphertextBlob` unchanged; AWS binds the
//! encryption context (sent as `EncryptionContext`, Coffer's pairs verbatim) and records the
//! backing key inside the blob, so rotation keeps old data readable without Coffer tracking
//! versions (key version 0 = "provider-managed"). Keys are named by key id, key ARN, alias name
//! (`alias/...`) or alias ARN; the record keeps the key ARN AWS answers with, so a re-pointed
//! alias does not orphan old objects.
//!
//! Credentials come from the SDK's standard chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
//! profiles, web identity, IMDS ...); Coffer never sees or logs them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::operation::generate_data_key::GenerateDataKeyError;
use aws_sdk_kms::operation::re_encrypt::ReEncryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, KeyMetadata, KeySpec, KeyState as AwsKeyState, KeyUsageType,
};
use coffer_crypto::SecretKey;
use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::provider::{validate_key_id, Capabilities, DataKey, KeyInfo, KeyState, Kms, Rewrapped};

/// Settings of the AWS KMS provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsConfig {
    /// Region; the SDK's chain (`AWS_REGION`, profile) when `None`.
    pub region: Option<String>,
    /// Endpoint override (a KMS-compatible server, a VPC endpoint, a test server).
    pub endpoint: Option<String>,
    /// PEM bundle of CAs trusted for HTTPS to the endpoint, besides the system roots.
    pub ca_bundle: Option<PathBuf>,
}

/// The AWS KMS provider.
pub struct AwsKms {
    client: aws_sdk_kms::Client,
    config: AwsConfig,
}

impl AwsKms {
    /// Loads the SDK configuration (credential chain, region) and builds the client. Does not
    /// contact AWS: call [`Kms::health`] and [`Kms::describe_key`] for that.
    pub async fn connect(config: AwsConfig) -> Result<Self, KmsError> {
        // Retries are ResilientKms's job (with the breaker seeing every failure); SDK retries
        // inside one attempt would only stretch it past its timeout.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(KmsError::Config(format!(
                    "aws endpoint {endpoint:?} must start with http:// or https://"
                )));
            }
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(ca) = &config.ca_bundle {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(tls_context_trusting(ca)?)
                .build_https();
            loader = loader.http_client(http);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(KmsError::Config(
                "aws region not set: set COFFER_KMS_AWS_REGION (or AWS_REGION)".into(),
            ));
        }
        Ok(Self {
            client: aws_sdk_kms::Client::new(&sdk),
            config,
        })
    }

    fn context_map(ctx: &EncryptionContext) -> HashMap<String, String> {
        ctx.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    async fn metadata(&self, key_id: &str) -> Result<KeyMetadata, KmsError> {
        validate_key_id(key_id)?;
        let out = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| {
                sdk_err(e, "DescribeKey", key_id, |e| match e {
                    DescribeKeyError::NotFoundException(_)
                    | DescribeKeyError::InvalidArnException(_) => {
                        Some(KmsError::KeyNotFound(key_id.to_owned()))
                    }
                    _ => None,
                })
            })?;
        out.key_metadata
            .ok_or_else(|| KmsError::Unavailable("aws DescribeKey returned no metadata".into()))
    }
}

/// TLS settings that trust the system roots and the CAs in the PEM file `ca`.
fn tls_context_trusting(
    ca: &std::path::Path,
) -> Result<aws_smithy_http_client::tls::TlsContext, KmsError> {
    use aws_smithy_http_client::tls;
    let pem = std::fs::read(ca)
        .map_err(|e| KmsError::Config(format!("aws CA bundle {}: {e}", ca.display())))?;
    let trust = tls::TrustStore::empty()
        .with_native_roots(true)
        .with_pem_certificate(pem);
    tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| KmsError::Config(format!("aws CA bundle {}: {e}", ca.display())))
}

/// Maps an SDK error: the operation's typed variants first (`typed`), then the transport
/// failure kinds, then AWS's error code (the protocol's identifier of the error type, not a
/// message) for the errors every operation shares.
fn sdk_err<E, R>(
    e: SdkError<E, R>,
    what: &str,
    key_id: &str,
    typed: impl FnOnce(&E) -> Option<KmsError>,
) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    match &e {
        SdkError::ConstructionFailure(_) => KmsError::Config(format!(
            "aws {what} could not be built (credentials or region missing?)"
        )),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            KmsError::Unavailable(format!("aws kms could not be reached for {what}"))
        }
        SdkError::ServiceError(ctx) => {
            if let Some(mapped) = typed(ctx.err()) {
                return mapped;
            }
            match ctx.err().code() {
                Some(
                    "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "IncompleteSignature"
                    | "ExpiredTokenException",
                ) => KmsError::PermissionDenied(format!("aws refused the credentials for {what}")),
                Some("NotFoundException") => KmsError::KeyNotFound(key_id.to_owned()),
                Some("DisabledException") => KmsError::KeyUnusable {
                    key_id: key_id.to_owned(),
                    reason: "the key is disabled".into(),
                },
                Some("KMSInvalidStateException") => KmsError::KeyUnusable {
                    key_id: key_id.to_owned(),
                    reason: "the key is not in a usable state".into(),
                },
                Some(code) => KmsError::Unavailable(format!("aws {what} failed: {code}")),
                None => KmsError::Unavailable(format!("aws {what} failed")),
            }
        }
        _ => KmsError::Unavailable(format!("aws {what} failed")),
    }
}

fn state_of(m: &KeyMetadata) -> KeyState {
    match m.key_state() {
        Some(AwsKeyState::Enabled) => KeyState::Enabled,
        Some(AwsKeyState::Disabled) => KeyState::Disabled,
        Some(AwsKeyState::PendingDeletion) | Some(AwsKeyState::PendingReplicaDeletion) => {
            KeyState::PendingDeletion
        }
        None if m.enabled() => KeyState::Enabled,
        _ => KeyState::Other,
    }
}

fn secret_of(blob: &Blob) -> Result<SecretKey, KmsError> {
    let bytes = Zeroizing::new(blob.as_ref().to_vec());
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KmsError::InvalidCiphertext)?;
    Ok(SecretKey::from_bytes(arr))
}

#[async_trait]
impl Kms for AwsKms {
    fn provider(&self) -> &'static str {
        "aws"
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        validate_key_id(key_id)?;
        let out = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(Self::context_map(ctx)))
            .send()
            .await
            .map_err(|e| {
                sdk_err(e, "GenerateDataKey", key_id, |e| match e {
                    GenerateDataKeyError::NotFoundException(_) => {
                        Some(KmsError::KeyNotFound(key_id.to_owned()))
                    }
                    GenerateDataKeyError::DisabledException(_)
                    | GenerateDataKeyError::KmsInvalidStateException(_)
                    | GenerateDataKeyError::InvalidKeyUsageException(_) => {
                        Some(KmsError::KeyUnusable {
                            key_id: key_id.to_owned(),
                            reason: "the key is disabled, not enabled yet, or not for encryption"
                                .into(),
                        })
                    }
                    _ => None,
                })
            })?;
        let (Some(plain), Some(blob)) = (out.plaintext(), out.ciphertext_blob()) else {
            return Err(KmsError::Unavailable(
                "aws GenerateDataKey returned no key".into(),
            ));
        };
        Ok(DataKey {
            key_id: out.key_id().unwrap_or(key_id).to_owned(),
            key_version: 0,
            plaintext: secret_of(plain)
                .map_err(|_| KmsError::Unavailable("aws data key malformed".into()))?,
            ciphertext: blob.as_ref().to_vec(),
        })
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        validate_key_id(key_id)?;
        let out = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(Self::context_map(ctx)))
            .send()
            .await
            .map_err(|e| {
                sdk_err(e, "Decrypt", key_id, |e| match e {
                    DecryptError::InvalidCiphertextException(_)
                    | DecryptError::IncorrectKeyException(_) => Some(KmsError::InvalidCiphertext),
                    DecryptError::NotFoundException(_) => {
                        Some(KmsError::KeyNotFound(key_id.to_owned()))
                    }
                    DecryptError::DisabledException(_)
                    | DecryptError::KmsInvalidStateException(_) => Some(KmsError::KeyUnusable {
                        key_id: key_id.to_owned(),
                        reason: "the key is disabled or not in a usable state".into(),
                    }),
                    _ => None,
                })
            })?;
        let plain = out
            .plaintext()
            .ok_or_else(|| KmsError::Unavailable("aws Decrypt returned no key".into()))?;
        secret_of(plain)
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        validate_key_id(key_id)?;
        // AWS names keys itself; the name Coffer is given becomes an alias.
        let alias = if key_id.starts_with("alias/") {
            key_id.to_owned()
        } else {
            format!("alias/{key_id}")
        };
        match self.metadata(&alias).await {
            Ok(_) => return Err(KmsError::KeyAlreadyExists(key_id.to_owned())),
            Err(KmsError::KeyNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let out = self
            .client
            .create_key()
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            .description("created by coffer")
            .send()
            .await
            .map_err(|e| sdk_err(e, "CreateKey", key_id, |_| None))?;
        let id = out
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .ok_or_else(|| KmsError::Unavailable("aws CreateKey returned no key id".into()))?;
        self.client
            .create_alias()
            .alias_name(&alias)
            .target_key_id(id)
            .send()
            .await
            .map_err(|e| sdk_err(e, "CreateAlias", key_id, |_| None))?;
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        // Bounded: 100 pages of 100 aliases is far more than any Coffer deployment names.
        for _ in 0..100 {
            let out = self
                .client
                .list_aliases()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_err(e, "ListAliases", "", |_| None))?;
            names.extend(
                out.aliases()
                    .iter()
                    .filter(|a| a.target_key_id().is_some())
                    .filter_map(|a| a.alias_name())
                    // AWS-managed aliases (alias/aws/s3, ...) are not the operator's keys.
                    .filter(|n| !n.starts_with("alias/aws/"))
                    .map(str::to_owned),
            );
            match (out.truncated(), out.next_marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        names.sort();
        Ok(names)
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        match self.metadata(key_id).await {
            Ok(_) => Ok(true),
            Err(KmsError::KeyNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn health(&self) -> Result<(), KmsError> {
        self.client
            .list_keys()
            .limit(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_err(e, "ListKeys", "", |_| None))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create: true,
            rotate: true,
            enable_disable: true,
            versions: false,
            rewrap: true,
        }
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let m = self.metadata(key_id).await?;
        Ok(KeyInfo {
            key_id: key_id.to_owned(),
            provider_key_id: m.arn().map(str::to_owned).or(Some(m.key_id().to_owned())),
            state: state_of(&m),
            current_version: None,
            min_decryption_version: None,
            versions: Vec::new(),
        })
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let m = self.metadata(key_id).await?;
        self.client
            .rotate_key_on_demand()
            .key_id(m.key_id())
            .send()
            .await
            .map_err(|e| sdk_err(e, "RotateKeyOnDemand", key_id, |_| None))?;
        self.describe_key(key_id).await
    }

    async fn set_key_enabled(&self, key_id: &str, enabled: bool) -> Result<(), KmsError> {
        // EnableKey/DisableKey take a key id or ARN, not an alias.
        let m = self.metadata(key_id).await?;
        if enabled {
            self.client
                .enable_key()
                .key_id(m.key_id())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_err(e, "EnableKey", key_id, |_| None))
        } else {
            self.client
                .disable_key()
                .key_id(m.key_id())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_err(e, "DisableKey", key_id, |_| None))
        }
    }

    async fn rewrap_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
        to_key_id: &str,
    ) -> Result<Rewrapped, KmsError> {
        validate_key_id(key_id)?;
        validate_key_id(to_key_id)?;
        let map = Self::context_map(ctx);
        // ReEncrypt never shows the data key to the caller.
        let out = self
            .client
            .re_encrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .source_key_id(key_id)
            .set_source_encryption_context(Some(map.clone()))
            .destination_key_id(to_key_id)
            .set_destination_encryption_context(Some(map))
            .send()
            .await
            .map_err(|e| {
                sdk_err(e, "ReEncrypt", key_id, |e| match e {
                    ReEncryptError::InvalidCiphertextException(_)
                    | ReEncryptError::IncorrectKeyException(_) => Some(KmsError::InvalidCiphertext),
                    ReEncryptError::NotFoundException(_) => {
                        Some(KmsError::KeyNotFound(key_id.to_owned()))
                    }
                    _ => None,
                })
            })?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| KmsError::Unavailable("aws ReEncrypt returned no ciphertext".into()))?;
        Ok(Rewrapped {
            key_id: out.key_id().unwrap_or(to_key_id).to_owned(),
            key_version: 0,
            ciphertext: blob.as_ref().to_vec(),
        })
    }
}

impl fmt::Debug for AwsKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKms")
            .field("region", &self.config.region)
            .field("endpoint", &self.config.endpoint)
            .finish_non_exhaustive()
    }
}
