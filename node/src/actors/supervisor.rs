//! `NodeSupervisor`: the root actor. Starts the `KeyActor` and one `DriveActor` per drive and
//! restarts any that fails, publishing the new reference so callers always reach a live actor.

use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::drive::{DriveActor, DriveMsg};
use super::key::{KeyActor, KeyHandle};
use crate::drive::{DataId, Drive};
use crate::keys::KeyService;

/// Current references to the drive actors, by drive index.
#[derive(Clone, Default)]
pub struct DriveActors {
    refs: Arc<RwLock<Vec<Option<ActorRef<DriveMsg>>>>>,
}

impl DriveActors {
    /// The live actor of drive `index`.
    pub fn get(&self, index: usize) -> Option<ActorRef<DriveMsg>> {
        self.refs
            .read()
            .ok()
            .and_then(|r| r.get(index).cloned().flatten())
    }

    /// Asks drive `drive` to remove a shard file (fire and forget).
    pub fn delete(&self, drive: usize, id: DataId, shard: usize) {
        match self.get(drive) {
            Some(a) => {
                if a.cast(DriveMsg::Delete { id, shard }).is_err() {
                    tracing::warn!(drive, "drive actor gone; shard left for the scrubber");
                }
            }
            None => tracing::warn!(drive, "no drive actor; shard left for the scrubber"),
        }
    }

    fn set(&self, index: usize, a: Option<ActorRef<DriveMsg>>) {
        if let Ok(mut r) = self.refs.write() {
            if r.len() <= index {
                r.resize(index + 1, None);
            }
            r[index] = a;
        }
    }
}

/// Messages the supervisor takes.
pub enum SupervisorMsg {
    /// Number of restarts so far.
    Restarts(ractor::RpcReplyPort<u64>),
}

/// What the supervisor starts.
pub struct SupervisorArgs {
    /// Local drives.
    pub drives: Vec<Arc<Drive>>,
    /// Where drive actor references are published.
    pub drive_actors: DriveActors,
    /// The key service the key actor owns.
    pub keys: Arc<KeyService>,
    /// Where the key actor reference is published.
    pub key_handle: KeyHandle,
}

/// The root actor.
pub struct NodeSupervisor;

/// Its state.
pub struct SupervisorState {
    drives: Vec<Arc<Drive>>,
    actors: DriveActors,
    cells: Vec<Option<ActorCell>>,
    keys: Arc<KeyService>,
    key_handle: KeyHandle,
    key_cell: Option<ActorCell>,
    restarts: u64,
}

/// Starts a child linked to the supervisor, so its failure reaches `handle_supervisor_evt`.
async fn start_child<A: Actor>(
    myself: &ActorRef<SupervisorMsg>,
    actor: A,
    args: A::Arguments,
) -> Result<ActorRef<A::Msg>, ActorProcessingErr> {
    let (a, _) = Actor::spawn_linked(None, actor, args, myself.get_cell()).await?;
    Ok(a)
}

impl Actor for NodeSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let SupervisorArgs {
            drives,
            drive_actors: actors,
            keys,
            key_handle,
        } = args;
        key_handle.set_provider(keys.kms().provider());
        let key = start_child(&myself, KeyActor, keys.clone()).await?;
        let key_cell = Some(key.get_cell());
        key_handle.set(Some(key));
        let mut cells = Vec::with_capacity(drives.len());
        for (i, d) in drives.iter().enumerate() {
            let a = start_child(&myself, DriveActor, d.clone()).await?;
            cells.push(Some(a.get_cell()));
            actors.set(i, Some(a));
        }
        Ok(SupervisorState {
            drives,
            actors,
            cells,
            keys,
            key_handle,
            key_cell,
            restarts: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Restarts(reply) => {
                let _ = reply.send(state.restarts);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let who = match &event {
            SupervisionEvent::ActorFailed(cell, err) => {
                tracing::error!(actor = %cell.get_id(), error = %err, "actor failed; restarting");
                cell.get_id()
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => cell.get_id(),
            _ => return Ok(()),
        };
        if state.key_cell.as_ref().is_some_and(|c| c.get_id() == who) {
            state.key_handle.set(None);
            let a = start_child(&myself, KeyActor, state.keys.clone()).await?;
            state.key_cell = Some(a.get_cell());
            state.key_handle.set(Some(a));
            state.restarts += 1;
            return Ok(());
        }
        let Some(index) = state
            .cells
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.get_id() == who))
        else {
            return Ok(());
        };
        state.actors.set(index, None);
        state.cells[index] = None;
        let a = start_child(&myself, DriveActor, state.drives[index].clone()).await?;
        state.cells[index] = Some(a.get_cell());
        state.actors.set(index, Some(a));
        state.restarts += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::seams::FsDriveIo;

    async fn start() -> (
        tempfile::TempDir,
        ActorRef<SupervisorMsg>,
        ractor::concurrency::JoinHandle<()>,
        SupervisorArgs,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let drive = Arc::new(Drive::open(0, dir.path(), Arc::new(FsDriveIo)).unwrap());
        let entropy: Arc<dyn coffer_crypto::Entropy> =
            Arc::new(coffer_crypto::SeededEntropy::new(1));
        let kms: Arc<dyn coffer_kms::Kms> = Arc::new(coffer_kms::LocalKms::new(
            coffer_crypto::SecretKey::from_bytes([7; 32]),
            entropy.clone(),
        ));
        let keys = Arc::new(KeyService::new(kms, entropy));
        let args = SupervisorArgs {
            drives: vec![drive],
            drive_actors: DriveActors::default(),
            keys: keys.clone(),
            key_handle: KeyHandle::default(),
        };
        let handles = SupervisorArgs {
            drives: vec![],
            drive_actors: args.drive_actors.clone(),
            keys,
            key_handle: args.key_handle.clone(),
        };
        let (sup, handle) = Actor::spawn(None, NodeSupervisor, args).await.unwrap();
        (dir, sup, handle, handles)
    }

    async fn wait_for_new<T>(
        old: ractor::ActorId,
        get: impl Fn() -> Option<ActorRef<T>>,
    ) -> ActorRef<T> {
        for _ in 0..200 {
            if let Some(a) = get() {
                if a.get_id() != old {
                    return a;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("actor was not restarted");
    }

    #[tokio::test]
    async fn crashed_drive_actor_is_restarted_and_keeps_serving() {
        let (_dir, sup, handle, h) = start().await;
        let first = h.drive_actors.get(0).unwrap();
        first.cast(DriveMsg::Crash).unwrap();
        let a = wait_for_new(first.get_id(), || h.drive_actors.get(0)).await;
        let stats = ractor::call!(a, DriveMsg::Stats).unwrap();
        assert_eq!(stats, (0, 0));
        let restarts = ractor::call!(sup, SupervisorMsg::Restarts).unwrap();
        assert_eq!(restarts, 1);
        sup.stop(None);
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn key_actor_seals_opens_and_survives_a_crash() {
        use crate::actors::KeyMsg;
        use crate::manifest::SseMode;
        let (_dir, sup, handle, h) = start().await;
        let sealed = h
            .key_handle
            .seal_new(
                "bkt",
                "obj",
                crate::keys::KeySpec {
                    mode: SseMode::S3,
                    kms_key_id: None,
                    kms_context: None,
                    bucket_key: false,
                    suite: coffer_crypto::CipherSuite::Aes256Gcm,
                },
                None,
            )
            .await
            .unwrap();
        let opened = h
            .key_handle
            .open("bkt", "obj", &sealed.record, None)
            .await
            .unwrap();
        assert_eq!(opened.as_bytes(), sealed.oek.as_bytes());
        // Re-sealing keeps the object key and changes only how it is wrapped.
        let spec = crate::keys::KeySpec {
            mode: SseMode::Kms,
            kms_key_id: None,
            kms_context: Some([("team".to_string(), "a".to_string())].into()),
            bucket_key: false,
            suite: coffer_crypto::CipherSuite::Aes256Gcm,
        };
        let resealed = h
            .key_handle
            .reseal("bkt", "obj", spec, None, opened.clone())
            .await
            .unwrap();
        assert_ne!(resealed.sealed_oek, sealed.record.sealed_oek);
        assert_eq!(resealed.mode, SseMode::Kms);
        let reopened = h
            .key_handle
            .open("bkt", "obj", &resealed, None)
            .await
            .unwrap();
        assert_eq!(reopened.as_bytes(), sealed.oek.as_bytes());
        // The client's KMS context is part of the KMS context: changing it breaks the unwrap.
        let mut wrong_ctx = resealed.clone();
        wrong_ctx.kms_context = Some([("team".to_string(), "b".to_string())].into());
        assert!(h
            .key_handle
            .open("bkt", "obj", &wrong_ctx, None)
            .await
            .is_err());
        // Bound to the object's name: the same record does not open for another key.
        assert!(h
            .key_handle
            .open("bkt", "other", &sealed.record, None)
            .await
            .is_err());

        let first = h.key_handle.get().unwrap();
        first.cast(KeyMsg::Crash).unwrap();
        wait_for_new(first.get_id(), || h.key_handle.get()).await;
        let again = h
            .key_handle
            .open("bkt", "obj", &sealed.record, None)
            .await
            .unwrap();
        assert_eq!(again.as_bytes(), sealed.oek.as_bytes());
        sup.stop(None);
        handle.await.unwrap();
    }
}
