//! HashiCorp Vault / OpenBao transit as a KMS provider, through `vaultrs`.
//!
//! Data keys come from `datakey/plaintext/<key>`; the wrapped blob Coffer stores is Vault's
//! ciphertext string as bytes (`vault:v<N>:<base64>`), so the key version travels with every
//! wrapped key and a rotated key keeps old objects readable.
//!
//! The encryption context is bound through transit's key derivation: every call sends the
//! context's canonical bytes as `context`, and Coffer only makes data keys under keys created
//! with `derived=true` (Vault silently ignores `context` for other keys, which would leave the
//! context unbound). Keys Coffer creates are derived; any other key is refused with
//! [`KmsError::KeyUnusable`].

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use coffer_crypto::SecretKey;
use vaultrs::api::transit::requests::{
    CreateKeyRequest, DataKeyType, DecryptDataRequest, EncryptDataRequest, GenerateDataKeyRequest,
    RewrapDataRequest,
};
use vaultrs::api::transit::responses::{ReadKeyData, ReadKeyResponse};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::error::KmsError;
use crate::provider::{validate_key_id, Capabilities, DataKey, KeyInfo, KeyState, Kms, Rewrapped};
use crate::secret::SecretString;

/// The transit mount Coffer uses when none is configured.
pub const DEFAULT_VAULT_MOUNT: &str = "transit";

/// How Coffer logs in to Vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token (`COFFER_KMS_VAULT_TOKEN`).
    Token(SecretString),
    /// AppRole: a token is fetched at start-up and again whenever Vault refuses it.
    AppRole {
        /// Mount of the AppRole auth method (default `approle`).
        mount: String,
        /// Role id.
        role_id: String,
        /// Secret id.
        secret_id: SecretString,
    },
}

/// Settings of the Vault provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultConfig {
    /// Server address, `http://` or `https://`.
    pub address: String,
    /// How to log in.
    pub auth: VaultAuth,
    /// Vault Enterprise / OpenBao namespace.
    pub namespace: Option<String>,
    /// Transit mount path.
    pub mount: String,
    /// PEM bundle of CAs that HTTPS to Vault is verified against (besides the system roots).
    pub ca_bundle: Option<PathBuf>,
    /// Per-request HTTP timeout (the resilience wrapper has its own, per attempt).
    pub request_timeout: Duration,
}

/// The Vault / OpenBao transit provider.
pub struct VaultKms {
    config: VaultConfig,
    client: RwLock<Arc<VaultClient>>,
    // key name -> derived; read once per key (derivation cannot be changed after creation).
    derived: Mutex<HashMap<String, bool>>,
}

impl VaultKms {
    /// Builds the client and, for AppRole, logs in. Does not otherwise contact Vault: call
    /// [`Kms::health`] and [`Kms::describe_key`] to check the address, token and key.
    pub async fn connect(config: VaultConfig) -> Result<Self, KmsError> {
        let url = url::Url::parse(&config.address)
            .map_err(|e| KmsError::Config(format!("vault address {:?}: {e}", config.address)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(KmsError::Config(format!(
                "vault address {:?} must start with http:// or https://",
                config.address
            )));
        }
        if let Some(ca) = &config.ca_bundle {
            if !ca.is_file() {
                return Err(KmsError::Config(format!(
                    "vault CA bundle {} is not a readable file",
                    ca.display()
                )));
            }
        }
        let token = match &config.auth {
            VaultAuth::Token(t) => t.clone(),
            VaultAuth::AppRole { .. } => SecretString::new(String::new()),
        };
        let kms = Self {
            client: RwLock::new(Arc::new(build_client(&config, &token)?)),
            config,
            derived: Mutex::new(HashMap::new()),
        };
        if matches!(kms.config.auth, VaultAuth::AppRole { .. }) {
            kms.login().await?;
        }
        Ok(kms)
    }

    fn client(&self) -> Arc<VaultClient> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn mount(&self) -> &str {
        &self.config.mount
    }

    /// AppRole login; replaces the client with one holding the new token.
    async fn login(&self) -> Result<(), KmsError> {
        let VaultAuth::AppRole {
            mount,
            role_id,
            secret_id,
        } = &self.config.auth
        else {
            return Ok(());
        };
        let auth = vaultrs::auth::approle::login(
            self.client().as_ref(),
            mount,
            role_id,
            secret_id.expose(),
        )
        .await
        .map_err(|e| map_err(e, "AppRole login"))?;
        let token = SecretString::new(auth.client_token);
        let client = build_client(&self.config, &token)?;
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(client);
        tracing::info!(
            lease_s = auth.lease_duration,
            "vault: AppRole login succeeded"
        );
        Ok(())
    }

    /// Runs `op` with the current client; with AppRole, a refused token triggers one new
    /// login and one more try (tokens from AppRole expire).
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, KmsError>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        match op(self.client()).await {
            Err(e) => {
                let err = map_err(e, what);
                if matches!(err, KmsError::PermissionDenied(_))
                    && matches!(self.config.auth, VaultAuth::AppRole { .. })
                {
                    self.login().await?;
                    return op(self.client()).await.map_err(|e| map_err(e, what));
                }
                Err(err)
            }
            Ok(v) => Ok(v),
        }
    }

    async fn read_key(&self, key_id: &str) -> Result<ReadKeyResponse, KmsError> {
        validate_key_id(key_id)?;
        let mount = self.mount().to_owned();
        let r = self
            .run("read key", |c| {
                let (mount, name) = (mount.clone(), key_id.to_owned());
                async move { vaultrs::transit::key::read(c.as_ref(), &mount, &name).await }
            })
            .await;
        match r {
            Err(KmsError::KeyNotFound(_)) => Err(KmsError::KeyNotFound(key_id.to_owned())),
            other => other,
        }
    }

    /// Whether `key_id` is a derived key, asking Vault the first time.
    async fn ensure_derived(&self, key_id: &str) -> Result<(), KmsError> {
        let known = self
            .derived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .copied();
        let derived = match known {
            Some(d) => d,
            None => {
                let d = self.read_key(key_id).await?.derived;
                self.derived
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key_id.to_owned(), d);
                d
            }
        };
        if derived {
            Ok(())
        } else {
            Err(not_derived(key_id))
        }
    }

    /// After a 400 from a key operation: a missing key is `KeyNotFound`, else `otherwise`.
    async fn classify_bad_request(&self, key_id: &str, otherwise: KmsError) -> KmsError {
        match self.read_key(key_id).await {
            Err(e @ KmsError::KeyNotFound(_)) => e,
            Err(e) if e.is_transient() => e,
            _ => otherwise,
        }
    }
}

fn not_derived(key_id: &str) -> KmsError {
    KmsError::KeyUnusable {
        key_id: key_id.to_owned(),
        reason: "the transit key was not created with derived=true, so Vault would ignore the \
                 encryption context; create the key with derived=true"
            .into(),
    }
}

fn build_client(config: &VaultConfig, token: &SecretString) -> Result<VaultClient, KmsError> {
    let mut b = VaultClientSettingsBuilder::default();
    // Every field is set here: vaultrs would otherwise fill them from VAULT_* variables.
    b.address(&config.address)
        .token(token.expose())
        .timeout(Some(config.request_timeout))
        .verify(true)
        .identity(None)
        .namespace(config.namespace.clone())
        .ca_certs(
            config
                .ca_bundle
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        );
    let settings = b
        .build()
        .map_err(|e| KmsError::Config(format!("vault client settings: {e}")))?;
    VaultClient::new(settings).map_err(|e| KmsError::Config(format!("vault client: {e}")))
}

/// Maps a vaultrs error by HTTP status (never by message text).
fn map_err(e: ClientError, what: &str) -> KmsError {
    match e {
        ClientError::APIError { code, .. } => match code {
            401 | 403 => KmsError::PermissionDenied(format!(
                "vault refused the token for {what} (HTTP {code})"
            )),
            404 => KmsError::KeyNotFound(String::new()),
            400 => KmsError::InvalidCiphertext,
            // 429 rate limited, 5xx (503 sealed or standby, 500, 502) and anything else odd.
            _ => KmsError::Unavailable(format!("vault answered HTTP {code} to {what}")),
        },
        // Connection refused or reset, TLS failure, timeout, or a body that does not parse.
        ClientError::RestClientError { .. } => KmsError::Unavailable(format!(
            "vault could not be reached (or answered unreadably) for {what}"
        )),
        ClientError::FileReadError { path, .. }
        | ClientError::FileNotFoundError { path }
        | ClientError::ParseCertificateError { path, .. } => {
            KmsError::Config(format!("vault CA bundle {path} is unusable"))
        }
        ClientError::RestClientBuildError { .. } => {
            KmsError::Config("vault HTTP client could not be built".into())
        }
        other => KmsError::Unavailable(format!("vault {what}: {other}")),
    }
}

/// The canonical context bytes as Vault wants them (base64).
fn context_b64(ctx: &EncryptionContext) -> String {
    STANDARD.encode(ctx.canonical_bytes())
}

/// The version in a `vault:v<N>:` ciphertext.
pub fn vault_blob_version(blob: &[u8]) -> Option<u32> {
    let rest = blob.strip_prefix(b"vault:v")?;
    let end = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn blob_str(blob: &[u8]) -> Result<&str, KmsError> {
    match std::str::from_utf8(blob) {
        Ok(s) if vault_blob_version(blob).is_some() => Ok(s),
        _ => Err(KmsError::InvalidCiphertext),
    }
}

fn decode_key(b64: &str) -> Result<SecretKey, KmsError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(b64)
            .map_err(|_| KmsError::InvalidCiphertext)?,
    );
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KmsError::InvalidCiphertext)?;
    Ok(SecretKey::from_bytes(arr))
}

fn key_info(key_id: &str, r: &ReadKeyResponse) -> KeyInfo {
    let mut versions: Vec<u32> = match &r.keys {
        ReadKeyData::Symmetric(m) => m.keys().filter_map(|k| k.parse().ok()).collect(),
        ReadKeyData::Asymmetric(m) => m.keys().filter_map(|k| k.parse().ok()).collect(),
    };
    versions.sort_unstable();
    let usable = r.supports_encryption && r.supports_decryption && r.derived;
    KeyInfo {
        key_id: key_id.to_owned(),
        provider_key_id: None,
        state: if usable {
            KeyState::Enabled
        } else {
            KeyState::Other
        },
        current_version: versions.last().copied(),
        min_decryption_version: u32::try_from(r.min_decryption_version).ok(),
        versions,
    }
}

#[async_trait]
impl Kms for VaultKms {
    fn provider(&self) -> &'static str {
        "vault"
    }

    async fn generate_data_key(
        &self,
        key_id: &str,
        ctx: &EncryptionContext,
    ) -> Result<DataKey, KmsError> {
        validate_key_id(key_id)?;
        self.ensure_derived(key_id).await?;
        let (mount, context) = (self.mount().to_owned(), context_b64(ctx));
        let r = self
            .run("datakey", |c| {
                let (mount, name, context) = (mount.clone(), key_id.to_owned(), context.clone());
                async move {
                    let mut opts = GenerateDataKeyRequest::builder();
                    opts.context(context).bits(256u16);
                    vaultrs::transit::generate::data_key(
                        c.as_ref(),
                        &mount,
                        &name,
                        DataKeyType::Plaintext,
                        Some(&mut opts),
                    )
                    .await
                }
            })
            .await;
        let r = match r {
            Err(KmsError::InvalidCiphertext) => {
                let unusable = KmsError::KeyUnusable {
                    key_id: key_id.to_owned(),
                    reason: "vault refused to make a data key under it".into(),
                };
                return Err(self.classify_bad_request(key_id, unusable).await);
            }
            Err(KmsError::KeyNotFound(_)) => return Err(KmsError::KeyNotFound(key_id.to_owned())),
            other => other?,
        };
        let plaintext = r
            .plaintext
            .as_deref()
            .ok_or_else(|| KmsError::Unavailable("vault returned no plaintext data key".into()))
            .and_then(|p| {
                decode_key(p).map_err(|_| KmsError::Unavailable("vault data key malformed".into()))
            })?;
        let key_version = vault_blob_version(r.ciphertext.as_bytes())
            .ok_or_else(|| KmsError::Unavailable("vault ciphertext has no version".into()))?;
        Ok(DataKey {
            key_id: key_id.to_owned(),
            key_version,
            plaintext,
            ciphertext: r.ciphertext.into_bytes(),
        })
    }

    async fn decrypt_data_key(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        ctx: &EncryptionContext,
    ) -> Result<SecretKey, KmsError> {
        validate_key_id(key_id)?;
        let blob = blob_str(ciphertext)?;
        let (mount, context) = (self.mount().to_owned(), context_b64(ctx));
        let r = self
            .run("decrypt", |c| {
                let (mount, name, context) = (mount.clone(), key_id.to_owned(), context.clone());
                async move {
                    let mut opts = DecryptDataRequest::builder();
                    opts.context(context);
                    vaultrs::transit::data::decrypt(
                        c.as_ref(),
                        &mount,
                        &name,
                        blob,
                        Some(&mut opts),
                    )
                    .await
                }
            })
            .await;
        match r {
            Ok(r) => decode_key(&r.plaintext),
            Err(KmsError::InvalidCiphertext) => Err(self
                .classify_bad_request(key_id, KmsError::InvalidCiphertext)
                .await),
            Err(KmsError::KeyNotFound(_)) => Err(KmsError::KeyNotFound(key_id.to_owned())),
            Err(e) => Err(e),
        }
    }

    async fn create_key(&self, key_id: &str) -> Result<(), KmsError> {
        // Vault answers 200 to creating an existing key and leaves it as it was.
        match self.read_key(key_id).await {
            Ok(_) => return Err(KmsError::KeyAlreadyExists(key_id.to_owned())),
            Err(KmsError::KeyNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let mount = self.mount().to_owned();
        self.run("create key", |c| {
            let (mount, name) = (mount.clone(), key_id.to_owned());
            async move {
                let mut opts = CreateKeyRequest::builder();
                opts.derived(true);
                vaultrs::transit::key::create(c.as_ref(), &mount, &name, Some(&mut opts)).await
            }
        })
        .await
    }

    async fn list_keys(&self) -> Result<Vec<String>, KmsError> {
        let mount = self.mount().to_owned();
        let r = self
            .run("list keys", |c| {
                let mount = mount.clone();
                async move { vaultrs::transit::key::list(c.as_ref(), &mount).await }
            })
            .await;
        match r {
            Ok(r) => {
                let mut keys = r.keys;
                keys.sort();
                Ok(keys)
            }
            // Vault answers 404 to listing an empty mount.
            Err(KmsError::KeyNotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn key_exists(&self, key_id: &str) -> Result<bool, KmsError> {
        match self.read_key(key_id).await {
            Ok(_) => Ok(true),
            Err(KmsError::KeyNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn health(&self) -> Result<(), KmsError> {
        // Token self-lookup: answered by any reachable, unsealed, active server for any valid
        // token (the default policy allows it), so it checks the credentials too. (vaultrs'
        // sys/health response type requires fields OpenBao does not send.)
        self.run("health check", |c| async move {
            vaultrs::token::lookup_self(c.as_ref()).await
        })
        .await
        .map(|_| ())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            create: true,
            rotate: true,
            enable_disable: false,
            versions: true,
            rewrap: true,
        }
    }

    async fn describe_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        let r = self.read_key(key_id).await?;
        Ok(key_info(key_id, &r))
    }

    async fn rotate_key(&self, key_id: &str) -> Result<KeyInfo, KmsError> {
        validate_key_id(key_id)?;
        let mount = self.mount().to_owned();
        self.run("rotate key", |c| {
            let (mount, name) = (mount.clone(), key_id.to_owned());
            async move { vaultrs::transit::key::rotate(c.as_ref(), &mount, &name).await }
        })
        .await
        .map_err(|e| match e {
            KmsError::KeyNotFound(_) | KmsError::InvalidCiphertext => {
                KmsError::KeyNotFound(key_id.to_owned())
            }
            e => e,
        })?;
        self.describe_key(key_id).await
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
        let (mount, context) = (self.mount().to_owned(), context_b64(ctx));
        let new_blob = if key_id == to_key_id {
            // Same key: Vault re-wraps under its latest version without revealing the key.
            let blob = blob_str(ciphertext)?;
            self.run("rewrap", |c| {
                let (mount, name, context) = (mount.clone(), key_id.to_owned(), context.clone());
                async move {
                    let mut opts = RewrapDataRequest::builder();
                    opts.context(context);
                    vaultrs::transit::data::rewrap(c.as_ref(), &mount, &name, blob, Some(&mut opts))
                        .await
                }
            })
            .await?
            .ciphertext
        } else {
            // Another key: transit cannot move ciphertext between keys, so unwrap and wrap.
            self.ensure_derived(to_key_id).await?;
            let dk = self.decrypt_data_key(key_id, ciphertext, ctx).await?;
            let plain = Zeroizing::new(STANDARD.encode(dk.as_bytes()));
            self.run("encrypt", |c| {
                let (mount, name, context) = (mount.clone(), to_key_id.to_owned(), context.clone());
                let plain = plain.clone();
                async move {
                    let mut opts = EncryptDataRequest::builder();
                    opts.context(context);
                    vaultrs::transit::data::encrypt(
                        c.as_ref(),
                        &mount,
                        &name,
                        plain.as_str(),
                        Some(&mut opts),
                    )
                    .await
                }
            })
            .await?
            .ciphertext
        };
        let key_version = vault_blob_version(new_blob.as_bytes())
            .ok_or_else(|| KmsError::Unavailable("vault ciphertext has no version".into()))?;
        Ok(Rewrapped {
            key_id: to_key_id.to_owned(),
            key_version,
            ciphertext: new_blob.into_bytes(),
        })
    }

    fn wrapped_key_version(&self, ciphertext: &[u8]) -> Option<u32> {
        vault_blob_version(ciphertext)
    }
}

impl fmt::Debug for VaultKms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The address and mount are not secrets; the token is never shown.
        f.debug_struct("VaultKms")
            .field("address", &self.config.address)
            .field("mount", &self.config.mount)
            .field("namespace", &self.config.namespace)
            .finish_non_exhaustive()
    }
}
