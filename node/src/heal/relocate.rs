//! Moving shards off nodes that left the cluster. A manifest names the node of every shard, and
//! reads never recompute placement, so a node removed for good (a dead machine taken out with
//! the admin API) would leave its shards missing forever: every object it held one shard of
//! would stay one loss closer to being lost. The healer rebuilds such shards on drives of the
//! current layout and then swaps the placement in the manifest with a compare-and-set on the
//! record it read, so an object replaced meanwhile is never touched (the rebuilt files are then
//! unreferenced and go to the orphan sweep).
//!
//! A node counts as gone only when it is not in the Raft membership the leader (where the
//! healer runs) has applied; a node that is merely down stays in the membership and its shards
//! wait for it.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::Segment;

/// `seg` with every shard whose node is not in `members` moved to a drive of `layout` (node id,
/// drive count), and the indices of the moved shards; `None` when nothing has to move (or
/// there is nowhere to move to).
///
/// Targets are drawn to spread the segment: the node holding fewest of its shards first, then
/// the drive holding fewest, then a hash of the data id (so segments do not all pick the same
/// drive). With fewer drives than shards left, a drive may hold two shards of one segment:
/// that is still one shard further from loss than leaving it missing.
pub fn replan(
    seg: &Segment,
    members: &BTreeSet<u64>,
    layout: &[(u64, usize)],
) -> Option<(Segment, Vec<usize>)> {
    if seg.nodes.is_empty() || seg.nodes.len() != seg.drives.len() {
        return None;
    }
    let moved: Vec<usize> = (0..seg.nodes.len())
        .filter(|&i| !members.contains(&seg.nodes[i]))
        .collect();
    let drives: Vec<(u64, usize)> = layout
        .iter()
        .filter(|(n, _)| members.contains(n))
        .flat_map(|&(n, count)| (0..count).map(move |d| (n, d)))
        .collect();
    if moved.is_empty() || drives.is_empty() {
        return None;
    }
    let mut on_node: BTreeMap<u64, usize> = BTreeMap::new();
    let mut on_drive: BTreeMap<(u64, usize), usize> = BTreeMap::new();
    for i in (0..seg.nodes.len()).filter(|i| !moved.contains(i)) {
        *on_node.entry(seg.nodes[i]).or_default() += 1;
        *on_drive.entry((seg.nodes[i], seg.drives[i])).or_default() += 1;
    }
    let salt = fnv(seg.data_id.as_bytes());
    let mut out = seg.clone();
    for &i in &moved {
        let &(n, d) = drives
            .iter()
            .min_by_key(|&&(n, d)| {
                (
                    on_node.get(&n).copied().unwrap_or(0),
                    on_drive.get(&(n, d)).copied().unwrap_or(0),
                    mix(salt ^ (i as u64), n, d),
                )
            })
            .expect("drives is not empty");
        *on_node.entry(n).or_default() += 1;
        *on_drive.entry((n, d)).or_default() += 1;
        out.nodes[i] = n;
        out.drives[i] = d;
    }
    Some((out, moved))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn mix(salt: u64, node: u64, drive: usize) -> u64 {
    let mut x = salt ^ node.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (drive as u64).rotate_left(32);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(nodes: &[u64], drives: &[usize]) -> Segment {
        Segment {
            data_id: "00112233445566778899aabbccddeeff".into(),
            plain_len: 1,
            sealed_len: 1,
            salt: vec![0; 16],
            codec: "rs".into(),
            data: 2,
            parity: 2,
            block_size: 1 << 20,
            drives: drives.to_vec(),
            nodes: nodes.to_vec(),
            stream_version: 2,
            part: 0,
        }
    }

    #[test]
    fn nothing_moves_while_every_node_is_a_member() {
        let s = seg(&[1, 2, 3, 4], &[0, 0, 0, 0]);
        let members = BTreeSet::from([1, 2, 3, 4]);
        assert!(replan(&s, &members, &[(1, 1), (2, 1), (3, 1), (4, 1)]).is_none());
        // A single node's segment names no nodes.
        assert!(replan(&seg(&[], &[0, 1, 2, 3]), &BTreeSet::new(), &[(1, 4)]).is_none());
    }

    #[test]
    fn a_removed_nodes_shard_goes_to_a_free_drive_of_the_emptiest_node() {
        let s = seg(&[1, 2, 3, 4], &[0, 0, 0, 0]);
        let members = BTreeSet::from([1, 2, 3, 5]);
        // Node 5 replaced node 4: it holds nothing of the segment, so it gets the shard.
        let (out, moved) = replan(&s, &members, &[(1, 1), (2, 1), (3, 1), (5, 1), (4, 1)]).unwrap();
        assert_eq!(moved, vec![3]);
        assert_eq!(out.nodes, vec![1, 2, 3, 5]);
        assert_eq!(out.drives, vec![0, 0, 0, 0]);
        assert_eq!(out.data_id, s.data_id);
    }

    #[test]
    fn with_too_few_drives_a_shard_doubles_up_on_the_least_used_drive() {
        // Two drives per node: node 1's second drive is free, so it is preferred over a
        // drive that already holds a shard.
        let s = seg(&[1, 2, 3, 4], &[0, 0, 0, 0]);
        let members = BTreeSet::from([1, 2, 3]);
        let (out, moved) = replan(&s, &members, &[(1, 1), (2, 2), (3, 1)]).unwrap();
        assert_eq!(moved, vec![3]);
        assert_eq!((out.nodes[3], out.drives[3]), (2, 1));
        // One drive each: the shard shares a drive with another shard of the segment.
        let (out, _) = replan(&s, &members, &[(1, 1), (2, 1), (3, 1)]).unwrap();
        assert!([1, 2, 3].contains(&out.nodes[3]) && out.drives[3] == 0);
        // Nowhere to go: nothing planned.
        assert!(replan(&s, &members, &[(4, 1)]).is_none());
    }

    #[test]
    fn two_moved_shards_spread_over_nodes() {
        let s = seg(&[1, 2, 3, 4], &[0, 0, 0, 0]);
        let members = BTreeSet::from([1, 2, 5, 6]);
        let (out, moved) = replan(&s, &members, &[(1, 1), (2, 1), (5, 2), (6, 2)]).unwrap();
        assert_eq!(moved, vec![2, 3]);
        let mut new_nodes = vec![out.nodes[2], out.nodes[3]];
        new_nodes.sort();
        assert_eq!(new_nodes, vec![5, 6]);
    }
}
