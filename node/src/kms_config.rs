//! The `[kms]` configuration: which provider, its settings, and the resilience limits.
//!
//! Precedence as everywhere: flags > `COFFER_KMS_*` environment > TOML `[kms]` > defaults.
//! Secrets (the Vault token, the AppRole secret id) have no flag, so they never show in `ps`;
//! they come from the environment or the file and live in [`SecretString`]s.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use coffer_kms::{
    AwsConfig, ResilienceConfig, SecretString, VaultAuth, VaultConfig, DEFAULT_KEY_ID,
    DEFAULT_VAULT_MOUNT,
};
use serde::Deserialize;

use crate::config::ConfigError;

/// Provider names accepted by `provider =` and `COFFER_KMS_PROVIDER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// Built in: keys derived from the local root key.
    Local,
    /// HashiCorp Vault or OpenBao transit.
    Vault,
    /// AWS KMS (or a KMS-compatible endpoint).
    Aws,
}

/// KMS options of `coffer server` (non-secret ones only; see the module doc).
#[derive(Debug, Default, Clone, Args)]
pub struct KmsArgs {
    /// KMS provider [TOML: kms.provider] [default: local]
    #[arg(long, env = "COFFER_KMS_PROVIDER", value_enum)]
    pub kms_provider: Option<ProviderName>,
    /// KMS key for SSE-S3 and SSE-KMS without a key id; required for vault and aws
    /// [TOML: kms.default_key] [default for local: coffer-default]
    #[arg(long, env = "COFFER_KMS_DEFAULT_KEY", value_name = "KEY")]
    pub kms_default_key: Option<String>,
    /// Vault/OpenBao address, e.g. https://vault:8200 [TOML: kms.vault.address]
    #[arg(long, env = "COFFER_KMS_VAULT_ADDR", value_name = "URL")]
    pub kms_vault_addr: Option<String>,
    /// Transit mount path [TOML: kms.vault.mount] [default: transit]
    #[arg(long, env = "COFFER_KMS_VAULT_MOUNT", value_name = "PATH")]
    pub kms_vault_mount: Option<String>,
    /// PEM CA bundle for HTTPS to Vault [TOML: kms.vault.ca_file]
    #[arg(long, env = "COFFER_KMS_VAULT_CA", value_name = "FILE")]
    pub kms_vault_ca: Option<PathBuf>,
    /// Vault namespace [TOML: kms.vault.namespace]
    #[arg(long, env = "COFFER_KMS_VAULT_NAMESPACE", value_name = "NS")]
    pub kms_vault_namespace: Option<String>,
    /// AppRole role id (with COFFER_KMS_VAULT_SECRET_ID instead of a token)
    /// [TOML: kms.vault.approle.role_id]
    #[arg(long, env = "COFFER_KMS_VAULT_ROLE_ID", value_name = "ID")]
    pub kms_vault_role_id: Option<String>,
    /// AWS region [TOML: kms.aws.region] [default: the SDK's chain, e.g. AWS_REGION]
    #[arg(long, env = "COFFER_KMS_AWS_REGION", value_name = "REGION")]
    pub kms_aws_region: Option<String>,
    /// AWS KMS endpoint override [TOML: kms.aws.endpoint]
    #[arg(long, env = "COFFER_KMS_AWS_ENDPOINT", value_name = "URL")]
    pub kms_aws_endpoint: Option<String>,
    /// PEM CA bundle for HTTPS to the AWS endpoint [TOML: kms.aws.ca_file]
    #[arg(long, env = "COFFER_KMS_AWS_CA", value_name = "FILE")]
    pub kms_aws_ca: Option<PathBuf>,
}

/// The TOML `[kms]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KmsFile {
    provider: Option<ProviderName>,
    default_key: Option<String>,
    /// Per-attempt timeout of a KMS call, milliseconds.
    timeout_ms: Option<u64>,
    /// Attempts per call (1 = no retries).
    max_attempts: Option<u32>,
    /// Consecutive failures that open the circuit breaker.
    breaker_threshold: Option<u32>,
    /// How long the breaker stays open, milliseconds.
    breaker_open_ms: Option<u64>,
    vault: Option<VaultFile>,
    aws: Option<AwsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    address: Option<String>,
    token: Option<String>,
    mount: Option<String>,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
    approle: Option<AppRoleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppRoleFile {
    mount: Option<String>,
    role_id: Option<String>,
    secret_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsFile {
    region: Option<String>,
    endpoint: Option<String>,
    ca_file: Option<PathBuf>,
}

/// The resolved provider and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum KmsProvider {
    /// Built-in.
    Local,
    /// Vault / OpenBao transit.
    Vault(VaultConfig),
    /// AWS KMS.
    Aws(AwsConfig),
}

impl KmsProvider {
    /// The provider's name, as in the config.
    pub fn name(&self) -> &'static str {
        match self {
            KmsProvider::Local => "local",
            KmsProvider::Vault(_) => "vault",
            KmsProvider::Aws(_) => "aws",
        }
    }
}

/// The resolved KMS configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct KmsSettings {
    /// Provider.
    pub provider: KmsProvider,
    /// Key of SSE-S3 and of SSE-KMS without a key id; also seals the start-up secrets.
    pub default_key: String,
    /// Timeouts, retries, breaker.
    pub resilience: ResilienceConfig,
}

impl Default for KmsSettings {
    fn default() -> Self {
        Self {
            provider: KmsProvider::Local,
            default_key: DEFAULT_KEY_ID.to_string(),
            resilience: ResilienceConfig::default(),
        }
    }
}

fn missing(provider: &str, what: &str) -> ConfigError {
    ConfigError::Invalid(format!("KMS provider {provider}: {what}"))
}

impl KmsSettings {
    /// Merges flags/env (`args`), the secrets from `env`, and the file's `[kms]` table.
    pub(crate) fn resolve(
        args: KmsArgs,
        file: Option<KmsFile>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file = file.unwrap_or_default();
        let name = args
            .kms_provider
            .or(file.provider)
            .unwrap_or(ProviderName::Local);
        let mut resilience = ResilienceConfig::default();
        if let Some(ms) = file.timeout_ms {
            resilience.call_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = file.max_attempts {
            resilience.max_attempts = n.max(1);
        }
        if let Some(n) = file.breaker_threshold {
            resilience.failure_threshold = n.max(1);
        }
        if let Some(ms) = file.breaker_open_ms {
            resilience.open_for = Duration::from_millis(ms);
        }
        let default_key = args.kms_default_key.or(file.default_key);
        let provider = match name {
            ProviderName::Local => KmsProvider::Local,
            ProviderName::Vault => {
                let v = file.vault.unwrap_or_default();
                let approle = v.approle.unwrap_or_default();
                let address = args.kms_vault_addr.or(v.address).ok_or_else(|| {
                    missing("vault", "set COFFER_KMS_VAULT_ADDR (or kms.vault.address)")
                })?;
                let token = env("COFFER_KMS_VAULT_TOKEN").or(v.token);
                let role_id = args.kms_vault_role_id.or(approle.role_id);
                let secret_id = env("COFFER_KMS_VAULT_SECRET_ID").or(approle.secret_id);
                let auth = match (token, role_id, secret_id) {
                    (Some(t), None, None) if !t.is_empty() => {
                        VaultAuth::Token(SecretString::new(t))
                    }
                    (None, Some(role_id), Some(secret_id)) => VaultAuth::AppRole {
                        mount: approle.mount.unwrap_or_else(|| "approle".into()),
                        role_id,
                        secret_id: SecretString::new(secret_id),
                    },
                    (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                        return Err(missing(
                            "vault",
                            "give either a token or an AppRole role id and secret id, not both",
                        ))
                    }
                    _ => {
                        return Err(missing(
                            "vault",
                            "set COFFER_KMS_VAULT_TOKEN, or COFFER_KMS_VAULT_ROLE_ID and \
                             COFFER_KMS_VAULT_SECRET_ID",
                        ))
                    }
                };
                let mount = args
                    .kms_vault_mount
                    .or(v.mount)
                    .unwrap_or_else(|| DEFAULT_VAULT_MOUNT.to_string());
                KmsProvider::Vault(VaultConfig {
                    address,
                    auth,
                    namespace: args.kms_vault_namespace.or(v.namespace),
                    mount: mount.trim_matches('/').to_string(),
                    ca_bundle: args.kms_vault_ca.or(v.ca_file),
                    request_timeout: resilience.call_timeout,
                })
            }
            ProviderName::Aws => {
                let a = file.aws.unwrap_or_default();
                KmsProvider::Aws(AwsConfig {
                    region: args.kms_aws_region.or(a.region),
                    endpoint: args.kms_aws_endpoint.or(a.endpoint),
                    ca_bundle: args.kms_aws_ca.or(a.ca_file),
                })
            }
        };
        let default_key = match (&provider, default_key) {
            (_, Some(k)) => k,
            (KmsProvider::Local, None) => DEFAULT_KEY_ID.to_string(),
            (p, None) => {
                return Err(missing(
                    p.name(),
                    "set COFFER_KMS_DEFAULT_KEY (or kms.default_key): the key SSE-S3 uses",
                ))
            }
        };
        coffer_kms::validate_key_id(&default_key)
            .map_err(|e| ConfigError::Invalid(format!("COFFER_KMS_DEFAULT_KEY: {e}")))?;
        Ok(Self {
            provider,
            default_key,
            resilience,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn local_is_the_default() {
        let s = KmsSettings::resolve(KmsArgs::default(), None, &no_env).unwrap();
        assert_eq!(s, KmsSettings::default());
    }

    #[test]
    fn vault_from_file_env_and_flags() {
        let file: KmsFile = toml::from_str(
            "provider = \"vault\"\ndefault_key = \"k1\"\ntimeout_ms = 500\n\
             [vault]\naddress = \"http://127.0.0.1:8200\"\nmount = \"/transit2/\"\n",
        )
        .unwrap();
        let env = |k: &str| (k == "COFFER_KMS_VAULT_TOKEN").then(|| "s.secret-token".to_string());
        let s = KmsSettings::resolve(KmsArgs::default(), Some(file), &env).unwrap();
        let KmsProvider::Vault(v) = &s.provider else {
            panic!("vault expected")
        };
        assert_eq!(v.mount, "transit2");
        assert_eq!(v.request_timeout, Duration::from_millis(500));
        assert_eq!(s.default_key, "k1");
        assert!(matches!(&v.auth, VaultAuth::Token(t) if t.expose() == "s.secret-token"));
        // The token never reaches Debug output (config is logged at debug level).
        assert!(!format!("{s:?}").contains("secret-token"));

        let args = KmsArgs {
            kms_vault_addr: Some("https://vault.test:8200".into()),
            kms_default_key: Some("k2".into()),
            ..Default::default()
        };
        let file: KmsFile = toml::from_str("provider = \"vault\"").unwrap();
        let s = KmsSettings::resolve(args, Some(file), &env).unwrap();
        let KmsProvider::Vault(v) = &s.provider else {
            panic!("vault expected")
        };
        assert_eq!(v.address, "https://vault.test:8200");
        assert_eq!(v.mount, "transit");
        assert_eq!(s.default_key, "k2");
    }

    #[test]
    fn missing_pieces_are_named() {
        let args = |p| KmsArgs {
            kms_provider: Some(p),
            ..Default::default()
        };
        let err = KmsSettings::resolve(args(ProviderName::Vault), None, &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vault") && err.contains("COFFER_KMS_VAULT_ADDR"),
            "{err}"
        );
        let mut a = args(ProviderName::Vault);
        a.kms_vault_addr = Some("http://127.0.0.1:1".into());
        a.kms_default_key = Some("k".into());
        let err = KmsSettings::resolve(a, None, &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("COFFER_KMS_VAULT_TOKEN"), "{err}");
        let err = KmsSettings::resolve(args(ProviderName::Aws), None, &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aws") && err.contains("COFFER_KMS_DEFAULT_KEY"),
            "{err}"
        );
        assert!(toml::from_str::<KmsFile>("[vault]\naddr = \"x\"").is_err());
    }
}
