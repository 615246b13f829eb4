//! `KeyActor`: owns the KMS provider (behind its data-key cache) and issues and unseals object
//! keys. Each KMS call runs in its own task so a slow KMS never blocks the mailbox; bulk
//! encryption stays in the request's pipeline with the key this actor hands out.

use std::sync::{Arc, RwLock};

use coffer_crypto::SecretKey;
use coffer_s3api::backend::{KmsAdminRequest, SseCustomerKey, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use zeroize::Zeroizing;

use crate::keys::{kms_error, KeyService, KeySpec, NewObjectKey};
use crate::manifest::SseRecord;

/// Messages the key actor takes.
pub enum KeyMsg {
    /// An object key (fresh, or the given one re-sealed) sealed for `bucket/key`.
    Seal {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// How to protect it.
        spec: KeySpec,
        /// SSE-C key.
        customer: Option<SseCustomerKey>,
        /// An existing object key to re-seal; `None` for a fresh one.
        oek: Option<SecretKey>,
        /// Answer.
        reply: RpcReplyPort<Result<NewObjectKey, StoreError>>,
    },
    /// The object key of `bucket/key`, unsealed from its record.
    Open {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// The stored record.
        record: SseRecord,
        /// SSE-C key.
        customer: Option<SseCustomerKey>,
        /// Answer.
        reply: RpcReplyPort<Result<SecretKey, StoreError>>,
    },
    /// Whether a KMS key exists.
    KeyExists {
        /// Key id.
        id: String,
        /// Answer.
        reply: RpcReplyPort<Result<bool, StoreError>>,
    },
    /// The KMS key version recorded in a wrapped data key, when the provider records one.
    WrappedVersion {
        /// The wrapped data key.
        ciphertext: Vec<u8>,
        /// Answer.
        reply: RpcReplyPort<Result<Option<u32>, StoreError>>,
    },
    /// The version new data keys under a KMS key get now (`KeyService::current_version`).
    CurrentVersion {
        /// Key id.
        id: String,
        /// Answer.
        reply: RpcReplyPort<Result<Option<u32>, StoreError>>,
    },
    /// A record with its data key re-wrapped under another key or version.
    Rewrap {
        /// Bucket (part of the KMS context).
        bucket: String,
        /// The stored record.
        record: SseRecord,
        /// Key to wrap under (its newest version).
        to_key: String,
        /// Answer.
        reply: RpcReplyPort<Result<SseRecord, StoreError>>,
    },
    /// An admin API request about the KMS (`crate::kms_admin`).
    Admin {
        /// What is asked.
        req: KmsAdminRequest,
        /// Answer (JSON for the admin API).
        reply: RpcReplyPort<Result<serde_json::Value, StoreError>>,
    },
    /// Fails the actor on purpose, to exercise supervision in tests.
    Crash,
}

/// The actor type.
pub struct KeyActor;

impl Actor for KeyActor {
    type Msg = KeyMsg;
    type State = Arc<KeyService>;
    type Arguments = Arc<KeyService>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        svc: Arc<KeyService>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(svc)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        svc: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let svc = svc.clone();
        match msg {
            KeyMsg::Seal {
                bucket,
                key,
                spec,
                customer,
                oek,
                reply,
            } => {
                tokio::spawn(async move {
                    let r = svc.seal(&bucket, &key, spec, customer.as_ref(), oek).await;
                    let _ = reply.send(r);
                });
            }
            KeyMsg::Open {
                bucket,
                key,
                record,
                customer,
                reply,
            } => {
                tokio::spawn(async move {
                    let r = svc.open(&bucket, &key, &record, customer.as_ref()).await;
                    let _ = reply.send(r);
                });
            }
            KeyMsg::KeyExists { id, reply } => {
                tokio::spawn(async move {
                    let r = svc
                        .kms()
                        .key_exists(&id)
                        .await
                        .map_err(|e| kms_error(svc.kms().provider(), e));
                    let _ = reply.send(r);
                });
            }
            KeyMsg::WrappedVersion { ciphertext, reply } => {
                let _ = reply.send(Ok(svc.kms().wrapped_key_version(&ciphertext)));
            }
            KeyMsg::CurrentVersion { id, reply } => {
                tokio::spawn(async move {
                    let _ = reply.send(svc.current_version(&id).await);
                });
            }
            KeyMsg::Rewrap {
                bucket,
                record,
                to_key,
                reply,
            } => {
                tokio::spawn(async move {
                    let _ = reply.send(svc.rewrap(&bucket, &record, &to_key).await);
                });
            }
            KeyMsg::Admin { req, reply } => {
                tokio::spawn(async move {
                    let rotated = match &req {
                        KmsAdminRequest::RotateKey(id) => Some(id.clone()),
                        _ => None,
                    };
                    let r = crate::kms_admin::run(svc.provider().as_ref(), svc.default_key(), req)
                        .await;
                    // The rotation went past the cache: new objects must not keep getting
                    // cached data keys of the old version.
                    if let (Some(id), Ok(_)) = (rotated, &r) {
                        svc.kms().forget_generated(&id);
                    }
                    let _ = reply.send(r);
                });
            }
            KeyMsg::Crash => return Err("crash requested".into()),
        }
        Ok(())
    }
}

/// The current reference to the key actor; the supervisor replaces it after a restart.
#[derive(Clone, Default)]
pub struct KeyHandle {
    actor: Arc<RwLock<Option<ActorRef<KeyMsg>>>>,
    // The KMS's name, for the "unavailable" error when the actor itself cannot be reached.
    provider: Arc<RwLock<&'static str>>,
}

fn copy_customer(c: Option<&SseCustomerKey>) -> Option<SseCustomerKey> {
    c.map(|c| SseCustomerKey {
        key: Zeroizing::new(*c.key),
        key_md5: c.key_md5.clone(),
    })
}

impl KeyHandle {
    pub(crate) fn set(&self, a: Option<ActorRef<KeyMsg>>) {
        if let Ok(mut slot) = self.actor.write() {
            *slot = a;
        }
    }

    pub(crate) fn set_provider(&self, name: &'static str) {
        if let Ok(mut slot) = self.provider.write() {
            *slot = name;
        }
    }

    fn unavailable(&self) -> StoreError {
        let name = self.provider.read().map(|p| *p).unwrap_or("kms");
        StoreError::KmsUnavailable(if name.is_empty() { "kms" } else { name }.to_string())
    }

    /// The live actor.
    pub fn get(&self) -> Option<ActorRef<KeyMsg>> {
        self.actor.read().ok().and_then(|a| a.clone())
    }

    async fn ask<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<Result<T, StoreError>>) -> KeyMsg,
    ) -> Result<T, StoreError> {
        let actor = self.get().ok_or_else(|| self.unavailable())?;
        match actor.call(msg, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err(self.unavailable()),
        }
    }

    /// Creates and seals a fresh object key for `bucket/key`.
    pub async fn seal_new(
        &self,
        bucket: &str,
        key: &str,
        spec: KeySpec,
        customer: Option<&SseCustomerKey>,
    ) -> Result<NewObjectKey, StoreError> {
        self.seal(bucket, key, spec, customer, None).await
    }

    /// Seals an existing object key anew (a copy onto itself with new encryption settings).
    pub async fn reseal(
        &self,
        bucket: &str,
        key: &str,
        spec: KeySpec,
        customer: Option<&SseCustomerKey>,
        oek: SecretKey,
    ) -> Result<SseRecord, StoreError> {
        Ok(self
            .seal(bucket, key, spec, customer, Some(oek))
            .await?
            .record)
    }

    async fn seal(
        &self,
        bucket: &str,
        key: &str,
        spec: KeySpec,
        customer: Option<&SseCustomerKey>,
        oek: Option<SecretKey>,
    ) -> Result<NewObjectKey, StoreError> {
        let customer = copy_customer(customer);
        let (bucket, key) = (bucket.to_string(), key.to_string());
        self.ask(|reply| KeyMsg::Seal {
            bucket,
            key,
            spec,
            customer,
            oek,
            reply,
        })
        .await
    }

    /// Opens the object key of `bucket/key` from its record.
    pub async fn open(
        &self,
        bucket: &str,
        key: &str,
        record: &SseRecord,
        customer: Option<&SseCustomerKey>,
    ) -> Result<SecretKey, StoreError> {
        let customer = copy_customer(customer);
        let (bucket, key, record) = (bucket.to_string(), key.to_string(), record.clone());
        self.ask(|reply| KeyMsg::Open {
            bucket,
            key,
            record,
            customer,
            reply,
        })
        .await
    }

    /// The KMS key version recorded in a wrapped data key (None: the provider records none).
    pub async fn wrapped_key_version(&self, ciphertext: &[u8]) -> Result<Option<u32>, StoreError> {
        let ciphertext = ciphertext.to_vec();
        self.ask(|reply| KeyMsg::WrappedVersion { ciphertext, reply })
            .await
    }

    /// The version new data keys under `id` get now; `None` when the provider has no versions.
    pub async fn current_version(&self, id: &str) -> Result<Option<u32>, StoreError> {
        let id = id.to_string();
        self.ask(|reply| KeyMsg::CurrentVersion { id, reply }).await
    }

    /// `record` with its data key re-wrapped under the newest version of `to_key`.
    pub async fn rewrap(
        &self,
        bucket: &str,
        record: &SseRecord,
        to_key: &str,
    ) -> Result<SseRecord, StoreError> {
        let (bucket, record, to_key) = (bucket.to_string(), record.clone(), to_key.to_string());
        self.ask(|reply| KeyMsg::Rewrap {
            bucket,
            record,
            to_key,
            reply,
        })
        .await
    }

    /// Answers an admin API request about the KMS.
    pub async fn admin(&self, req: KmsAdminRequest) -> Result<serde_json::Value, StoreError> {
        self.ask(|reply| KeyMsg::Admin { req, reply }).await
    }

    /// Whether a KMS key exists.
    pub async fn key_exists(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.ask(|reply| KeyMsg::KeyExists { id, reply }).await
    }
}
