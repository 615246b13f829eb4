//! Start-up secrets: the local KMS root key, the root S3 credentials and the admin token.
//! Each comes from the environment or is generated once, kept in the data directory (the
//! credentials and token sealed under the KMS), and printed only when generated.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use coffer_crypto::{Entropy, SecretKey};
use coffer_kms::{EncryptionContext, Kms};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::seams::DriveIo;

/// Start-up secret failures.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// An environment variable holds a bad value.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a secret file failed.
    #[error("secret file {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A `NAME` / `NAME_FILE` secret variable could not be read.
    #[error(transparent)]
    Env(#[from] crate::secret_env::SecretEnvError),
    /// A sealed file could not be opened with the current KMS root key.
    #[error("sealed secret {0} cannot be opened: was the KMS root key changed?")]
    Unseal(String),
}

/// Root S3 credentials.
pub struct RootCredentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: Zeroizing<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
    move |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The local KMS root key: `COFFER_KMS_LOCAL_KEY` (or the file `COFFER_KMS_LOCAL_KEY_FILE`
/// names) or a generated development key file.
pub fn kms_root_key(
    env: Option<&str>,
    data: &Path,
    io: &dyn DriveIo,
    entropy: &dyn Entropy,
) -> Result<SecretKey, SecretError> {
    let decode = |b64: &str| -> Result<SecretKey, SecretError> {
        let bytes = Zeroizing::new(STANDARD.decode(b64.trim()).map_err(|_| {
            SecretError::Invalid("COFFER_KMS_LOCAL_KEY must be base64 of 32 bytes".into())
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SecretError::Invalid("COFFER_KMS_LOCAL_KEY must be base64 of 32 bytes".into())
        })?;
        Ok(SecretKey::from_bytes(arr))
    };
    if let Some(v) = env {
        return decode(v);
    }
    let path = data.join("kms").join("local-root.key");
    if let Some(bytes) = io.read_file(&path).map_err(io_err(&path))? {
        let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        return decode(&text);
    }
    let key = SecretKey::random(entropy);
    let text = Zeroizing::new(STANDARD.encode(key.as_bytes()));
    io.write_file(&path, text.as_bytes(), 0o600)
        .map_err(io_err(&path))?;
    tracing::warn!(
        path = %path.display(),
        "generated a local KMS root key in the data directory: for development only; \
         set COFFER_KMS_LOCAL_KEY(_FILE) or use an external KMS in production"
    );
    Ok(key)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedSecret {
    label: String,
    public: String,
    key_id: String,
    wrapped_data_key: String,
    sealed: String,
}

fn context(label: &str) -> EncryptionContext {
    let mut m = BTreeMap::new();
    m.insert("coffer:secret".to_string(), label.to_string());
    EncryptionContext::from(m)
}

/// The KMS that seals the start-up secrets, and the key new secrets are sealed under.
#[derive(Clone, Copy)]
pub struct Sealer<'a> {
    /// The KMS.
    pub kms: &'a dyn Kms,
    /// The key new secrets are sealed under (the cluster's default key).
    pub key_id: &'a str,
}

/// Loads a sealed 32-byte secret (with its public companion string) or generates and seals one.
/// Returns (public, secret bytes, newly generated).
async fn sealed_secret(
    label: &str,
    data: &Path,
    io: &dyn DriveIo,
    sealer: Sealer<'_>,
    entropy: &dyn Entropy,
    make_public: impl FnOnce() -> String,
) -> Result<(String, SecretKey, bool), SecretError> {
    let path = data.join("secrets").join(format!("{label}.sealed"));
    let ctx = context(label);
    let aad = format!("coffer/secret/{label}");
    if let Some(bytes) = io.read_file(&path).map_err(io_err(&path))? {
        let s: SealedSecret =
            serde_json::from_slice(&bytes).map_err(|_| SecretError::Unseal(label.into()))?;
        let wrapped =
            hex::decode(&s.wrapped_data_key).map_err(|_| SecretError::Unseal(label.into()))?;
        let sealed = hex::decode(&s.sealed).map_err(|_| SecretError::Unseal(label.into()))?;
        let dk = sealer
            .kms
            .decrypt_data_key(&s.key_id, &wrapped, &ctx)
            .await
            .map_err(|_| SecretError::Unseal(label.into()))?;
        let kek = coffer_crypto::derive_kek(&dk, aad.as_bytes());
        let secret = coffer_crypto::unseal_key(&kek, &sealed, aad.as_bytes())
            .map_err(|_| SecretError::Unseal(label.into()))?;
        return Ok((s.public, secret, false));
    }
    let secret = SecretKey::random(entropy);
    let dk = sealer
        .kms
        .generate_data_key(sealer.key_id, &ctx)
        .await
        .map_err(|e| SecretError::Invalid(format!("cannot seal {label}: {e}")))?;
    let kek = coffer_crypto::derive_kek(&dk.plaintext, aad.as_bytes());
    let public = make_public();
    let s = SealedSecret {
        label: label.to_string(),
        public: public.clone(),
        key_id: dk.key_id.clone(),
        wrapped_data_key: hex::encode(&dk.ciphertext),
        sealed: hex::encode(coffer_crypto::seal_key(
            &kek,
            &secret,
            aad.as_bytes(),
            entropy,
        )),
    };
    let bytes = serde_json::to_vec(&s).map_err(|e| SecretError::Invalid(e.to_string()))?;
    io.write_file(&path, &bytes, 0o600).map_err(io_err(&path))?;
    Ok((public, secret, true))
}

/// Root credentials from `COFFER_ROOT_USER`/`COFFER_ROOT_PASSWORD`, or generated once.
pub async fn root_credentials(
    env: (Option<String>, Option<Zeroizing<String>>),
    data: &Path,
    io: &dyn DriveIo,
    sealer: Sealer<'_>,
    entropy: &dyn Entropy,
) -> Result<(RootCredentials, bool), SecretError> {
    match env {
        (Some(user), Some(pass)) => {
            if user.len() < 3 || pass.len() < 8 {
                return Err(SecretError::Invalid(
                    "COFFER_ROOT_USER needs 3+ characters and COFFER_ROOT_PASSWORD 8+".into(),
                ));
            }
            Ok((
                RootCredentials {
                    access_key: user,
                    secret: pass,
                },
                false,
            ))
        }
        (None, None) => {
            let mut id = [0u8; 10];
            entropy.fill(&mut id);
            let make = || format!("COFFER{}", hex::encode_upper(id));
            let (access_key, secret, new) =
                sealed_secret("root-credentials", data, io, sealer, entropy, make).await?;
            let secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_bytes()));
            Ok((RootCredentials { access_key, secret }, new))
        }
        _ => Err(SecretError::Invalid(
            "set both COFFER_ROOT_USER and COFFER_ROOT_PASSWORD, or neither".into(),
        )),
    }
}

/// The admin bearer token from `COFFER_ADMIN_TOKEN` (or `_FILE`), or generated once.
pub async fn admin_token(
    env: Option<Zeroizing<String>>,
    data: &Path,
    io: &dyn DriveIo,
    sealer: Sealer<'_>,
    entropy: &dyn Entropy,
) -> Result<(Zeroizing<String>, bool), SecretError> {
    if let Some(t) = env {
        if t.len() < 16 {
            return Err(SecretError::Invalid(
                "COFFER_ADMIN_TOKEN needs 16+ characters".into(),
            ));
        }
        return Ok((t, false));
    }
    let (_, secret, new) =
        sealed_secret("admin-token", data, io, sealer, entropy, String::new).await?;
    Ok((
        Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_bytes())),
        new,
    ))
}
