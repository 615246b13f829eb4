//! Checkers over what the simulated clients saw: per-key linearizability of a register with
//! write, compare-and-set and read, and at most one Raft leader per term.
//!
//! The linearizability check is Wing–Gong–Lowe's search with memoization (Lowe's refinement):
//! repeatedly pick an operation that may come next (none of the unlinearized operations
//! returned before it was invoked), apply it to the register, backtrack on a contradiction, and
//! remember (set of linearized operations, register value) pairs already explored. An operation
//! whose outcome the client never learned (a timeout, a crash mid-call) may take effect at any
//! point after its invocation or not at all.

use std::collections::{BTreeMap, HashSet};

/// What a client asked of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set the value.
    Write(String),
    /// Remove the value.
    Delete,
    /// Set the value to `new` if it is `expect` (`None`: absent).
    Cas {
        /// Required current value.
        expect: Option<String>,
        /// Value to set.
        new: String,
    },
    /// Read the value.
    Read,
}

/// What the client learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A write or compare-and-set took effect.
    Done,
    /// A compare-and-set found another value and changed nothing.
    Failed,
    /// A read returned this value.
    Value(Option<String>),
    /// Unknown: it may or may not have taken effect (never used for reads: a failed read
    /// tells nothing and is left out of the history).
    Unknown,
}

/// One operation with its invocation and return times (sim microseconds).
#[derive(Debug, Clone)]
pub struct Event {
    /// Which client (for reports).
    pub client: u64,
    /// What it asked.
    pub op: Op,
    /// What it learned.
    pub outcome: Outcome,
    /// When it was invoked.
    pub invoked: u64,
    /// When it returned (`u64::MAX` for an unknown outcome).
    pub returned: u64,
}

/// Appends an operation that returned at `returned` to `key`'s history; an unknown outcome is
/// recorded as never returning (it may take effect at any time after its invocation). True
/// when the outcome was unknown.
pub fn push_event(
    histories: &mut BTreeMap<String, Vec<Event>>,
    key: &str,
    (client, op, outcome): (u64, Op, Outcome),
    invoked: u64,
    returned: u64,
) -> bool {
    let unknown = outcome == Outcome::Unknown;
    histories.entry(key.to_owned()).or_default().push(Event {
        client,
        op,
        outcome,
        invoked,
        returned: if unknown { u64::MAX } else { returned },
    });
    unknown
}

/// Why a history is not linearizable, for the failure report.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Its history, in invocation order.
    pub history: Vec<Event>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "key {:?} is not linearizable; its history:", self.key)?;
        for e in &self.history {
            let ret = if e.returned == u64::MAX {
                "?".to_owned()
            } else {
                format!("{:.3}", e.returned as f64 / 1e6)
            };
            writeln!(
                f,
                "  client {} [{:.3} s, {ret} s] {:?} -> {:?}",
                e.client,
                e.invoked as f64 / 1e6,
                e.op,
                e.outcome
            )?;
        }
        Ok(())
    }
}

/// The register's next value if `e` may take effect on `value` now, or `None` if that
/// contradicts what the client saw.
fn step(value: &Option<String>, e: &Event) -> Option<Option<String>> {
    match (&e.op, &e.outcome) {
        (Op::Read, Outcome::Value(v)) => (v == value).then(|| value.clone()),
        (Op::Write(v), Outcome::Done | Outcome::Unknown) => Some(Some(v.clone())),
        (Op::Delete, Outcome::Done | Outcome::Unknown) => Some(None),
        (Op::Cas { expect, new }, Outcome::Done) => (expect == value).then(|| Some(new.clone())),
        (Op::Cas { expect, new }, Outcome::Unknown) => {
            // Taking effect with another value present changes nothing, which is the same as
            // not taking effect: only the matching case is worth exploring.
            (expect == value).then(|| Some(new.clone()))
        }
        (Op::Cas { expect, .. }, Outcome::Failed) => (expect != value).then(|| value.clone()),
        _ => None,
    }
}

/// Whether one key's history (starting from an absent value) is linearizable.
pub fn linearizable(history: &[Event]) -> bool {
    let mut events: Vec<&Event> = history.iter().collect();
    events.sort_by_key(|e| (e.invoked, e.returned));
    let n = events.len();
    let must: Vec<bool> = events
        .iter()
        .map(|e| e.outcome != Outcome::Unknown)
        .collect();
    let mut done = vec![false; n];
    let mut seen: HashSet<(Vec<bool>, Option<String>)> = HashSet::new();
    // Explicit stack of (chosen index, value before it) for backtracking.
    let mut stack: Vec<(usize, Option<String>)> = Vec::new();
    let mut value: Option<String> = None;
    let mut next_from = 0usize;
    loop {
        if (0..n).all(|i| done[i] || !must[i]) {
            return true;
        }
        // The earliest return among operations not yet linearized bounds which may go next.
        let horizon = (0..n)
            .filter(|&i| !done[i])
            .map(|i| events[i].returned)
            .min()
            .unwrap_or(u64::MAX);
        let mut chosen = None;
        for i in next_from..n {
            if done[i] || events[i].invoked > horizon {
                continue;
            }
            if let Some(next) = step(&value, events[i]) {
                done[i] = true;
                if seen.insert((done.clone(), next.clone())) {
                    chosen = Some((i, next));
                    break;
                }
                done[i] = false;
            }
        }
        if let Some((i, next)) = chosen {
            stack.push((i, std::mem::replace(&mut value, next)));
            next_from = 0;
        } else {
            let Some((i, before)) = stack.pop() else {
                return false;
            };
            done[i] = false;
            value = before;
            next_from = i + 1;
        }
    }
}

/// Every key whose history is not linearizable.
pub fn check_keys(histories: &BTreeMap<String, Vec<Event>>) -> Vec<Violation> {
    histories
        .iter()
        .filter(|(_, h)| !linearizable(h))
        .map(|(key, h)| {
            let mut history = h.clone();
            history.sort_by_key(|e| e.invoked);
            Violation {
                key: key.clone(),
                history,
            }
        })
        .collect()
}

/// Election safety as openraft (advanced mode, the one Coffer builds) defines it.
///
/// openraft identifies a leader by `(term, node id)`, ordered lexicographically, and a node
/// grants only a vote greater than any it granted before; so one term may see several leaders
/// one after another (each later one with a greater node id), which standard Raft forbids. What
/// quorum intersection does forbid, and what this records: a leader elected later in a term with
/// a *smaller* id than one elected before it (a quorum granted a smaller vote after a greater
/// one), and a node whose term goes backwards, across restarts included (its vote was not
/// durable, so it could vote twice in a term).
#[derive(Debug, Default, Clone)]
pub struct Leaders {
    /// Per term, its leaders in the order they were first seen leading.
    by_term: BTreeMap<u64, Vec<u64>>,
    /// Per node, the highest term it has reported.
    terms: BTreeMap<u64, u64>,
    violations: Vec<String>,
}

impl Leaders {
    /// `node` reports `term` (from its metrics), leading it or not.
    pub fn saw_term(&mut self, node: u64, term: u64) {
        let last = self.terms.entry(node).or_default();
        if term < *last {
            self.violations
                .push(format!("n{node}'s term went back from {last} to {term}"));
        }
        *last = (*last).max(term);
    }

    /// `node` acted as leader in `term`.
    pub fn saw_leader(&mut self, term: u64, node: u64) {
        self.saw_term(node, term);
        let leaders = self.by_term.entry(term).or_default();
        if leaders.contains(&node) {
            return;
        }
        if let Some(&before) = leaders.iter().find(|&&l| l > node) {
            self.violations.push(format!(
                "term {term}: n{node} became leader after n{before}, whose leader id is greater"
            ));
        }
        leaders.push(node);
    }

    /// Every election-safety violation seen.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// How many terms had a leader.
    pub fn terms(&self) -> usize {
        self.by_term.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: Op, outcome: Outcome, invoked: u64, returned: u64) -> Event {
        Event {
            client: 0,
            op,
            outcome,
            invoked,
            returned,
        }
    }

    fn w(v: &str) -> Op {
        Op::Write(v.to_owned())
    }

    fn read(v: Option<&str>) -> Outcome {
        Outcome::Value(v.map(str::to_owned))
    }

    #[test]
    fn sequential_histories() {
        assert!(linearizable(&[]));
        assert!(linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(Op::Read, read(Some("a")), 2, 3),
        ]));
        // A read after an acknowledged write that sees the older value: a lost write.
        assert!(!linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(w("b"), Outcome::Done, 2, 3),
            ev(Op::Read, read(Some("a")), 4, 5),
        ]));
        assert!(!linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(Op::Read, read(None), 2, 3),
        ]));
    }

    #[test]
    fn concurrent_operations_may_order_either_way() {
        assert!(linearizable(&[
            ev(w("a"), Outcome::Done, 0, 10),
            ev(w("b"), Outcome::Done, 1, 9),
            ev(Op::Read, read(Some("a")), 11, 12),
        ]));
        // Two reads that disagree on the order of two completed writes.
        assert!(!linearizable(&[
            ev(w("a"), Outcome::Done, 0, 10),
            ev(w("b"), Outcome::Done, 1, 9),
            ev(Op::Read, read(Some("a")), 11, 12),
            ev(Op::Read, read(Some("b")), 13, 14),
        ]));
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_happen() {
        let lost = ev(w("x"), Outcome::Unknown, 0, u64::MAX);
        assert!(linearizable(&[
            lost.clone(),
            ev(Op::Read, read(None), 5, 6)
        ]));
        assert!(linearizable(&[
            lost.clone(),
            ev(Op::Read, read(Some("x")), 5, 6)
        ]));
        // ...but once seen, it cannot be unseen.
        assert!(!linearizable(&[
            lost,
            ev(Op::Read, read(Some("x")), 5, 6),
            ev(Op::Read, read(None), 7, 8),
        ]));
    }

    #[test]
    fn deletes() {
        assert!(linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(Op::Delete, Outcome::Done, 2, 3),
            ev(Op::Read, read(None), 4, 5),
        ]));
        // A delete that comes back.
        assert!(!linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(Op::Delete, Outcome::Done, 2, 3),
            ev(Op::Read, read(Some("a")), 4, 5),
        ]));
    }

    #[test]
    fn compare_and_set() {
        let cas = |e: Option<&str>, n: &str| Op::Cas {
            expect: e.map(str::to_owned),
            new: n.to_owned(),
        };
        assert!(linearizable(&[
            ev(cas(None, "a"), Outcome::Done, 0, 1),
            ev(cas(None, "b"), Outcome::Failed, 2, 3),
            ev(cas(Some("a"), "c"), Outcome::Done, 4, 5),
            ev(Op::Read, read(Some("c")), 6, 7),
        ]));
        // Two creates of an absent key cannot both succeed.
        assert!(!linearizable(&[
            ev(cas(None, "a"), Outcome::Done, 0, 1),
            ev(cas(None, "b"), Outcome::Done, 2, 3),
        ]));
        // A failed compare-and-set against the value that is there.
        assert!(!linearizable(&[
            ev(w("a"), Outcome::Done, 0, 1),
            ev(cas(Some("a"), "b"), Outcome::Failed, 2, 3),
        ]));
    }

    #[test]
    fn election_safety_follows_advanced_mode_leader_ids() {
        let mut l = Leaders::default();
        l.saw_leader(1, 1);
        l.saw_leader(1, 1);
        l.saw_leader(2, 3);
        // A greater leader id later in the same term: openraft's advanced mode allows it.
        l.saw_leader(2, 4);
        assert!(l.violations().is_empty());
        assert_eq!(l.terms(), 2);
        // A smaller one after a greater one: two quorums that do not intersect.
        l.saw_leader(2, 2);
        assert_eq!(l.violations().len(), 1);
        // A node's term going backwards (a vote that was not durable).
        l.saw_term(5, 3);
        l.saw_term(5, 3);
        assert_eq!(l.violations().len(), 1);
        l.saw_term(5, 2);
        assert_eq!(l.violations().len(), 2);
    }
}
