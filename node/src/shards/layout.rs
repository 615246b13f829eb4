//! The cluster layout: which nodes hold how many drives, as each node registers itself in Raft
//! (records namespace [`NAMESPACE`]), and where a new object's shards go.
//!
//! Placement is rendezvous hashing over the nodes (highest score first), so shards land on
//! distinct nodes whenever there are at least as many nodes as shards, and adding or removing
//! a node moves only the objects it gains or loses. Each segment records where its shards went
//! (manifest `nodes`/`drives`), so placement is not a stored format: reads never recompute it.

use serde::{Deserialize, Serialize};

/// Records namespace of the node entries.
pub const NAMESPACE: &str = "cluster-nodes";

/// One node as the layout knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Raft node id (the id in its certificate).
    pub id: u64,
    /// Where its QUIC listener is reached.
    pub quic: String,
    /// Where clients reach its S3 API.
    pub s3: String,
    /// Where its admin API listens.
    pub admin: String,
    /// Number of drives.
    pub drives: usize,
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Rendezvous score of `node` for the object hashed to `hash`.
fn score(hash: u64, node: u64) -> u64 {
    fmix64(hash ^ fmix64(node.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// `(node, drive)` for each of `width` shards of the object hashed to `hash`, over `nodes`
/// (`(id, drive count)`); `None` when the nodes hold fewer than `width` drives.
///
/// Nodes are ranked by score; shards go round the ranking, each to the next node that still has
/// a free drive, so a node gets a second shard only when there are fewer nodes than shards.
/// Within a node the drives are a rotation chosen by the hash, so shard positions spread.
pub fn place(hash: u64, nodes: &[(u64, usize)], width: usize) -> Option<Vec<(u64, usize)>> {
    let total: usize = nodes.iter().map(|(_, d)| d).sum();
    if width == 0 || width > total {
        return None;
    }
    let mut ranked: Vec<(u64, u64, usize)> = nodes
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|&(id, d)| (score(hash, id), id, d))
        .collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut used = vec![0usize; ranked.len()];
    let mut out = Vec::with_capacity(width);
    let mut i = 0;
    while out.len() < width {
        let (s, id, drives) = ranked[i % ranked.len()];
        let slot = i % ranked.len();
        if used[slot] < drives {
            let drive = ((s >> 32) as usize + used[slot]) % drives;
            out.push((id, drive));
            used[slot] += 1;
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap};

    #[test]
    fn distinct_nodes_when_there_are_enough() {
        let nodes: Vec<(u64, usize)> = (1..=5).map(|i| (i, 1)).collect();
        let mut first = HashMap::new();
        for h in 0..2000u64 {
            let p = place(fmix64(h), &nodes, 5).unwrap();
            let ids: BTreeSet<u64> = p.iter().map(|x| x.0).collect();
            assert_eq!(ids.len(), 5);
            *first.entry(p[0].0).or_insert(0) += 1;
        }
        // Every node leads (holds shard 0) for a fair share of objects.
        for id in 1..=5 {
            let n = first[&id];
            assert!((250..=550).contains(&n), "node {id} first {n} times");
        }
        assert!(place(1, &nodes, 6).is_none());
        assert!(place(1, &nodes, 0).is_none());
    }

    #[test]
    fn fewer_nodes_than_shards_uses_distinct_drives() {
        let nodes = [(1, 2), (2, 2)];
        for h in 0..200u64 {
            let p = place(fmix64(h), &nodes, 4).unwrap();
            let set: BTreeSet<(u64, usize)> = p.iter().copied().collect();
            assert_eq!(set.len(), 4, "{p:?}");
        }
        // Uneven drives: the node with more drives takes the rest.
        let p = place(7, &[(1, 1), (2, 3)], 4).unwrap();
        let set: BTreeSet<(u64, usize)> = p.iter().copied().collect();
        assert_eq!(set.len(), 4);
        assert_eq!(p.iter().filter(|x| x.0 == 1).count(), 1);
    }

    #[test]
    fn adding_a_node_moves_few_objects() {
        let four: Vec<(u64, usize)> = (1..=4).map(|i| (i, 1)).collect();
        let five: Vec<(u64, usize)> = (1..=5).map(|i| (i, 1)).collect();
        let mut kept = 0;
        for h in 0..1000u64 {
            let a: BTreeSet<u64> = place(fmix64(h), &four, 2)
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect();
            let b: BTreeSet<u64> = place(fmix64(h), &five, 2)
                .unwrap()
                .iter()
                .map(|x| x.0)
                .collect();
            if a == b {
                kept += 1;
            }
        }
        // Rendezvous: an object keeps its two nodes unless node 5 outranks one (~40%).
        assert!(kept > 500, "kept {kept}");
    }
}
