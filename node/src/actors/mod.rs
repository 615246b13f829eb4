//! The node's actors (house plan §2). The control plane runs through them; bulk bytes do not.

pub mod drive;
pub mod key;
pub mod supervisor;

pub use drive::{DriveActor, DriveMsg};
pub use key::{KeyActor, KeyHandle, KeyMsg};
pub use supervisor::{DriveActors, NodeSupervisor, SupervisorArgs, SupervisorMsg};
