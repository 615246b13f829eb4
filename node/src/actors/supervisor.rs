//! `NodeSupervisor`: the root actor. Starts one `DriveActor` per drive and restarts any that
//! fails, publishing the new reference so callers always reach a live actor.

use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::drive::{DriveActor, DriveMsg};
use crate::drive::{DataId, Drive};

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

/// The root actor.
pub struct NodeSupervisor;

/// Its state.
pub struct SupervisorState {
    drives: Vec<Arc<Drive>>,
    actors: DriveActors,
    cells: Vec<Option<ActorCell>>,
    restarts: u64,
}

async fn start_drive(
    myself: &ActorRef<SupervisorMsg>,
    drive: Arc<Drive>,
) -> Result<ActorRef<DriveMsg>, ActorProcessingErr> {
    let (a, _) = Actor::spawn_linked(None, DriveActor, drive, myself.get_cell()).await?;
    Ok(a)
}

impl Actor for NodeSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = (Vec<Arc<Drive>>, DriveActors);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (drives, actors): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut cells = Vec::with_capacity(drives.len());
        for (i, d) in drives.iter().enumerate() {
            let a = start_drive(&myself, d.clone()).await?;
            cells.push(Some(a.get_cell()));
            actors.set(i, Some(a));
        }
        Ok(SupervisorState {
            drives,
            actors,
            cells,
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
                tracing::error!(actor = %cell.get_id(), error = %err, "drive actor failed; restarting");
                cell.get_id()
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => cell.get_id(),
            _ => return Ok(()),
        };
        let Some(index) = state
            .cells
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.get_id() == who))
        else {
            return Ok(());
        };
        state.actors.set(index, None);
        state.cells[index] = None;
        let a = start_drive(&myself, state.drives[index].clone()).await?;
        state.cells[index] = Some(a.get_cell());
        state.actors.set(index, Some(a));
        state.restarts += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seams::FsDriveIo;

    #[tokio::test]
    async fn crashed_drive_actor_is_restarted_and_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let drive = Arc::new(Drive::open(0, dir.path(), Arc::new(FsDriveIo)).unwrap());
        let actors = DriveActors::default();
        let (sup, handle) =
            Actor::spawn(None, NodeSupervisor, (vec![drive.clone()], actors.clone()))
                .await
                .unwrap();
        let first = actors.get(0).unwrap();
        first.cast(DriveMsg::Crash).unwrap();
        let mut restarted = None;
        for _ in 0..200 {
            if let Some(a) = actors.get(0) {
                if a.get_id() != first.get_id() {
                    restarted = Some(a);
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let a = restarted.expect("drive actor was not restarted");
        let stats = ractor::call!(a, DriveMsg::Stats).unwrap();
        assert_eq!(stats, (0, 0));
        let restarts = ractor::call!(sup, SupervisorMsg::Restarts).unwrap();
        assert_eq!(restarts, 1);
        sup.stop(None);
        handle.await.unwrap();
    }
}
