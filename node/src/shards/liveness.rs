//! Which peers answer: a peer whose call failed to connect or timed out is "down" until a
//! heartbeat reaches it again. Shard calls to a down peer fail at once instead of each waiting
//! for its deadline, so a PUT with a dead node in its placement is as fast as one without.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// True for the shard-call errors that mean "the peer did not answer" (it is down or cut off),
/// as opposed to a peer that answered with a refusal or a missing shard.
pub fn is_unreachable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
    )
}

/// Peer health as seen from this node.
#[derive(Debug, Default)]
pub struct Liveness {
    down: Mutex<HashMap<u64, Instant>>,
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

    /// The peers down now, with when they went down, by id.
    pub fn down_nodes(&self) -> Vec<(u64, Instant)> {
        let mut v: Vec<_> = self.lock().iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable_by_key(|x| x.0);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.down.lock().unwrap_or_else(|p| p.into_inner())
    }
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
}
