//! `DriveActor`: one per local drive. Owns shard deletions and the drive's health; a crash
//! (panic) is caught by `NodeSupervisor`, which starts a fresh one on the same drive.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::drive::{DataId, Drive};

/// Messages a drive actor takes.
pub enum DriveMsg {
    /// Remove one shard file.
    Delete {
        /// Data stream.
        id: DataId,
        /// Shard index.
        shard: usize,
    },
    /// Report the number of deletions done and failed since start.
    Stats(RpcReplyPort<(u64, u64)>),
    /// Fails the actor on purpose, to exercise supervision in tests.
    Crash,
}

/// The actor type.
pub struct DriveActor;

/// Its state.
pub struct DriveState {
    drive: Arc<Drive>,
    deleted: u64,
    failed: u64,
}

impl Actor for DriveActor {
    type Msg = DriveMsg;
    type State = DriveState;
    type Arguments = Arc<Drive>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        drive: Arc<Drive>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(DriveState {
            drive,
            deleted: 0,
            failed: 0,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DriveMsg::Delete { id, shard } => {
                let drive = state.drive.clone();
                match crate::seams::stages::spawn_blocking(move || drive.remove(id, shard)).await {
                    Ok(Ok(())) => state.deleted += 1,
                    Ok(Err(e)) => {
                        state.failed += 1;
                        tracing::warn!(drive = state.drive.index(), error = %e, "shard delete failed");
                    }
                    Err(e) => return Err(Box::new(e)),
                }
            }
            DriveMsg::Stats(reply) => {
                let _ = reply.send((state.deleted, state.failed));
            }
            DriveMsg::Crash => return Err("crash requested".into()),
        }
        Ok(())
    }
}
