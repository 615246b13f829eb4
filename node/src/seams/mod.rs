//! The effects the node may cause, each behind a seam (house plan §5) so that the simulation can
//! run the same code with virtual time, seeded randomness and in-memory disks.

pub mod audit;
pub mod clock;
pub mod drive_io;
pub mod stages;

pub use clock::{Clock, SystemClock};
pub use drive_io::{DriveIo, FsDriveIo, ShardSink, ShardSource};
