//! Which peers answer: a peer whose call failed to connect or timed out is "down" until a
//! heartbeat reaches it again. Shard calls to a down peer fail at once instead of each waiting
//! for its deadline, so a PUT with a dead node in its placement is as fast as one without.

use std::collections::HashMap;
use std::sync::Mutex;
// tokio's clock: a simulated node ages its view of peers in simulated time.
use tokio::time::Instant;

/// True for the shard-call errors that mean "the peer did not answer" (it is down or cut off),
/// as opposed to a peer that answered with a refusal or a missing shard.
pub fn is_unreachable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
    )
}

/// True for the errors of a shard call that may succeed when retried later: the peer did not
/// answer, or the connection broke during the call.
pub fn is_transient(e: &std::io::Error) -> bool {
    is_unreachable(e)
        || matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        )
}

/// Peer health as seen from this node.
#[derive(Debug, Default)]
pub struct Liveness {
    down: Mutex<HashMap<u64, Instant>>,
    /// When each peer last answered anything.
    heard: Mutex<HashMap<u64, Instant>>,
}

impl Liveness {
    /// True while `node` is considered down.
    pub fn is_down(&self, node: u64) -> bool {
        self.lock().contains_key(&node)
    }

    /// Records the outcome of a call or heartbeat to `node`; true when its state changed.
    pub fn report(&self, node: u64, reachable: bool) -> bool {
        let mut down = self.lock();
        if reachable {
            down.remove(&node).is_some()
        } else if let std::collections::hash_map::Entry::Vacant(e) = down.entry(node) {
            e.insert(Instant::now());
            true
        } else {
            false
        }
    }

    /// Notes that `node` answered a call (it is not marked up by this; heartbeats do that).
    pub fn heard_from(&self, node: u64) {
        lock(&self.heard).insert(node, Instant::now());
    }

    /// Records that a call to `node` begun at `started` got no answer, unless the peer has
    /// answered something since that call began: a call lost while the peer was cut off or
    /// restarting times out long after it is back, and must not mark it down again.
    pub fn report_failure(&self, node: u64, started: Instant) -> bool {
        if lock(&self.heard).get(&node).is_some_and(|&t| t >= started) {
            return false;
        }
        self.report(node, false)
    }

    /// The peers down now, with when they went down, by id.
    pub fn down_nodes(&self) -> Vec<(u64, Instant)> {
        let mut v: Vec<_> = self.lock().iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable_by_key(|x| x.0);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        lock(&self.down)
    }
}

fn lock(m: &Mutex<HashMap<u64, Instant>>) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_until_reached_again() {
        let l = Liveness::default();
        assert!(!l.is_down(2));
        assert!(l.report(2, false));
        assert!(!l.report(2, false), "already down");
        assert!(l.is_down(2));
        assert_eq!(l.down_nodes().len(), 1);
        assert!(l.report(2, true));
        assert!(!l.is_down(2));
        assert!(!l.report(3, true));
    }

    #[test]
    fn a_stale_timeout_does_not_mark_a_peer_down() {
        let l = Liveness::default();
        let started = Instant::now();
        // The peer answered something after the lost call began: it is back.
        l.heard_from(2);
        assert!(!l.report_failure(2, started));
        assert!(!l.is_down(2));
        // A call begun after the last answer that fails does mark it down.
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(l.report_failure(2, Instant::now()));
        assert!(l.is_down(2));
    }
}
