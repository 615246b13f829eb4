//! The async runtime openraft runs on: tokio, except that openraft's only source of randomness
//! (`thread_rng`, which draws each node's election timeout) can be seeded per thread. In
//! production nothing seeds it and it draws from the OS, as openraft's own `TokioRuntime` does;
//! the simulation seeds each node's thread from its seed so a run can be replayed.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::async_runtime::{AsyncRuntime, TokioOneShotSender};
use openraft::{OptionalSend, TokioInstant};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

thread_local! {
    /// The seeded generator of this thread, if any.
    static SEEDED: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// From now on, Raft instances created on this thread draw from a generator seeded by `seed`
/// (the same seed, the same election timeouts). Only the simulation calls this.
pub fn seed_thread_rng(seed: u64) {
    SEEDED.with(|s| *s.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
}

/// Back to OS randomness on this thread.
pub fn unseed_thread_rng() {
    SEEDED.with(|s| *s.borrow_mut() = None);
}

/// 16 random bytes: from this thread's seeded generator if it has one (request ids in the
/// simulation), else from the OS.
pub fn random_id_bytes() -> [u8; 16] {
    SEEDED.with(|s| match s.borrow_mut().as_mut() {
        Some(seeded) => {
            let mut b = [0u8; 16];
            seeded.fill_bytes(&mut b);
            b
        }
        None => *uuid::Uuid::new_v4().as_bytes(),
    })
}

/// tokio for openraft, with a seedable `thread_rng` (see the module docs).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedableRuntime;

impl AsyncRuntime for SeedableRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = StdRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        // Each call gets its own generator: forked from the thread's seeded one (so a seeded
        // thread replays), else from the OS.
        SEEDED.with(|s| match s.borrow_mut().as_mut() {
            Some(seeded) => StdRng::seed_from_u64(seeded.next_u64()),
            None => StdRng::from_entropy(),
        })
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn draws() -> Vec<u64> {
        (0..4)
            .map(|_| SeedableRuntime::thread_rng().gen_range(150..300))
            .collect()
    }

    #[test]
    fn a_seeded_thread_replays_and_an_unseeded_one_does_not_repeat() {
        seed_thread_rng(7);
        let a = draws();
        seed_thread_rng(7);
        assert_eq!(draws(), a, "same seed, same election timeouts");
        seed_thread_rng(8);
        assert_ne!(draws(), a);
        unseed_thread_rng();
        let wide: Vec<u64> = (0..4)
            .map(|_| SeedableRuntime::thread_rng().gen())
            .collect();
        let again: Vec<u64> = (0..4)
            .map(|_| SeedableRuntime::thread_rng().gen())
            .collect();
        assert_ne!(wide, again, "OS randomness when unseeded");
    }

    #[test]
    fn request_ids_follow_the_seed_too() {
        seed_thread_rng(3);
        let a = (random_id_bytes(), random_id_bytes());
        seed_thread_rng(3);
        assert_eq!((random_id_bytes(), random_id_bytes()), a);
        assert_ne!(a.0, a.1);
        unseed_thread_rng();
        assert_ne!(random_id_bytes(), random_id_bytes());
    }

    #[tokio::test]
    async fn a_raft_config_draws_its_election_timeout_from_the_seed() {
        // openraft draws the timeout in `Config::new_rand_election_timeout::<RT>()`.
        let cfg = openraft::Config {
            election_timeout_min: 150,
            election_timeout_max: 300,
            ..Default::default()
        };
        seed_thread_rng(42);
        let a = cfg.new_rand_election_timeout::<SeedableRuntime>();
        seed_thread_rng(42);
        let b = cfg.new_rand_election_timeout::<SeedableRuntime>();
        unseed_thread_rng();
        assert_eq!(a, b);
        assert!((150..300).contains(&a));
    }
}
