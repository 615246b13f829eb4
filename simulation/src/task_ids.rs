//! Puts tokio's process-global task-id counter at the same residue before every run.
//!
//! tokio numbers tasks from one global atomic and keeps a runtime's tasks in a sharded list
//! chosen by `id & (shards - 1)` (4 shards on a current-thread runtime). When a crash drops a
//! host's runtime, its tasks are dropped shard by shard, and what their drops wake on other
//! hosts (closed channels, failed requests) happens in that order. A second run of a seed in the
//! same process starts from a higher id, so without this it dropped tasks in another order and
//! hashed another trace (seeds 671, 758, 918, 1081). Runs on several threads at once still draw
//! ids from one counter in an order the OS picks, which is why the CLI runs one seed at a time
//! when it checks determinism.

/// Ids are advanced to the next multiple of this (a power of two ≥ any shard count tokio uses
/// for a current-thread runtime).
const ALIGN: u64 = 1 << 12;

/// Advances tokio's task-id counter so that the next task spawned gets an id that is a
/// multiple of [`ALIGN`]; returns that id.
pub fn align_task_ids() -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime for aligning task ids");
    loop {
        let id: u64 = rt
            .spawn(async {})
            .id()
            .to_string()
            .parse()
            .expect("tokio task ids print as integers");
        if (id + 1).is_multiple_of(ALIGN) {
            return id + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_task_gets_an_aligned_id() {
        let next = align_task_ids();
        assert!(next.is_multiple_of(ALIGN));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let id: u64 = rt.spawn(async {}).id().to_string().parse().expect("id");
        // Other tests in this process may spawn tasks meanwhile; ids only grow.
        assert!(id >= next);
    }
}
