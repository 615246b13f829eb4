//! Where the data path's blocking stages run: on tokio's blocking pool (production), or as
//! ordinary tasks on the calling runtime (the deterministic simulation).
//!
//! Drive I/O, MD5 and the sealing stage block a thread, so the pipelines hand them to the
//! blocking pool. The simulation cannot replay work on other threads (their timing is the OS's),
//! and its in-memory disks never block, so a simulated host switches its thread to inline
//! stages: the same code then runs as tasks of the host's own runtime, in an order the seed
//! decides. The switch is per thread because turmoil runs every host on the simulation thread
//! and production never touches it.

use std::cell::Cell;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

thread_local! {
    static INLINE: Cell<bool> = const { Cell::new(false) };
}

/// Runs the data-path stages started from this thread as tasks of the current runtime (`true`)
/// or on the blocking pool (`false`, the default). Only for hosts whose drives never block.
pub fn run_inline_on_this_thread(inline: bool) {
    INLINE.with(|c| c.set(inline));
}

/// Whether stages started from this thread run inline.
pub fn inline() -> bool {
    INLINE.with(Cell::get)
}

/// Runs blocking work `f`: on the blocking pool, or inline as a task.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if inline() {
        tokio::spawn(async move { f() })
    } else {
        tokio::task::spawn_blocking(f)
    }
}

/// A stage that consumes messages from `rx` with blocking work per message: `init` makes its
/// state (or its result, at once), `step` handles one message and returns `Some(result)` to
/// stop; when the channel closes, `closed` gives the result. On the blocking pool the stage
/// owns a thread for its life; inline it is a task awaiting each message.
pub fn spawn_consumer<M, S, R>(
    mut rx: mpsc::Receiver<M>,
    init: impl FnOnce() -> Result<S, R> + Send + 'static,
    mut step: impl FnMut(&mut S, M) -> Option<R> + Send + 'static,
    closed: impl FnOnce(S) -> R + Send + 'static,
) -> JoinHandle<R>
where
    M: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
{
    if inline() {
        tokio::spawn(async move {
            let mut state = match init() {
                Ok(s) => s,
                Err(r) => return r,
            };
            while let Some(m) = rx.recv().await {
                if let Some(r) = step(&mut state, m) {
                    return r;
                }
            }
            closed(state)
        })
    } else {
        tokio::task::spawn_blocking(move || {
            let mut state = match init() {
                Ok(s) => s,
                Err(r) => return r,
            };
            while let Some(m) = rx.blocking_recv() {
                if let Some(r) = step(&mut state, m) {
                    return r;
                }
            }
            closed(state)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sum_of(inline_stages: bool) -> (u32, bool) {
        run_inline_on_this_thread(inline_stages);
        let (tx, rx) = mpsc::channel(2);
        let main_thread = std::thread::current().id();
        let task = spawn_consumer(
            rx,
            || Ok((0u32, true)),
            move |s, m: u32| {
                s.0 += m;
                s.1 &= std::thread::current().id() == main_thread;
                (m == 0).then_some(*s)
            },
            |s| s,
        );
        for m in [1, 2, 3, 0, 9] {
            let _ = tx.send(m).await;
        }
        let r = task.await.expect("stage");
        run_inline_on_this_thread(false);
        r
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_consumer_stops_at_its_result_inline_or_threaded() {
        assert_eq!(sum_of(true).await, (6, true), "inline: on this thread");
        assert_eq!(
            sum_of(false).await,
            (6, false),
            "blocking pool: another thread"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_consumer_reports_a_closed_channel() {
        for inline_stages in [true, false] {
            run_inline_on_this_thread(inline_stages);
            let (tx, rx) = mpsc::channel::<u8>(1);
            let task = spawn_consumer(rx, || Ok(5u8), |_, _| None::<u8>, |s| s + 1);
            drop(tx);
            assert_eq!(task.await.expect("stage"), 6);
            let on = spawn_blocking(|| std::thread::current().id())
                .await
                .expect("work");
            assert_eq!(on == std::thread::current().id(), inline_stages);
        }
        run_inline_on_this_thread(false);
    }
}
