//! Codec round trips, reconstruction under every erasure pattern, and error cases.

use coffer_erasure::{
    frame_block, Codec, ErasureConfig, ErasureError, CODEC_ID, DEFAULT_BLOCK_SIZE,
};
use proptest::prelude::*;

/// The configs the brief names, over a block size no data count divides evenly.
const SHAPES: [(usize, usize); 5] = [(1, 0), (2, 1), (2, 2), (4, 2), (8, 4)];
const BLOCK_SIZE: usize = 1003;

fn codec(data: usize, parity: usize) -> Codec {
    Codec::new(ErasureConfig::new(data, parity, BLOCK_SIZE).unwrap()).unwrap()
}

/// Deterministic, non-repeating-looking bytes (no RNG needed).
fn block(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

fn block_lens(data: usize) -> Vec<usize> {
    let mut v = vec![
        1,
        2,
        7,
        13,
        data,
        data + 1,
        2 * data - 1,
        BLOCK_SIZE - 1,
        BLOCK_SIZE,
    ];
    v.retain(|&l| (1..=BLOCK_SIZE).contains(&l));
    v.sort_unstable();
    v.dedup();
    v
}

/// Every subset of `0..width` with at most `max` members, as bitmasks.
fn erasure_patterns(width: usize, max: usize) -> impl Iterator<Item = u32> {
    (0u32..1 << width).filter(move |m| m.count_ones() as usize <= max)
}

#[test]
fn id_is_pinned() {
    assert_eq!(CODEC_ID, "rs-gf8-v1");
    assert_eq!(codec(4, 2).id(), CODEC_ID);
}

#[test]
fn encode_is_systematic_and_padded() {
    for (d, p) in SHAPES {
        let c = codec(d, p);
        for len in block_lens(d) {
            let b = block(len, 1);
            let shards = c.encode(&b).unwrap();
            let shard_len = len.div_ceil(d);
            assert_eq!(shards.len(), d + p);
            assert!(shards.iter().all(|s| s.len() == shard_len));
            let mut joined: Vec<u8> = shards[..d].concat();
            assert!(joined[len..].iter().all(|&x| x == 0), "padding is zeros");
            joined.truncate(len);
            assert_eq!(joined, b, "{d}+{p} len {len}");
        }
    }
}

#[test]
fn encode_into_and_encode_framed_agree_with_encode() {
    for (d, p) in SHAPES {
        let c = codec(d, p);
        // Reused buffers start dirty and of the wrong shape on purpose.
        let mut reused = vec![vec![0xEE; 5000]; 3];
        let mut outs = vec![b"prefix".to_vec(); d + p];
        let mut expected_outs = outs.clone();
        for len in block_lens(d) {
            let b = block(len, 2);
            let shards = c.encode(&b).unwrap();
            c.encode_into(&b, &mut reused).unwrap();
            assert_eq!(reused, shards, "{d}+{p} len {len}");
            c.encode_framed(&b, &mut outs).unwrap();
            for (out, s) in expected_outs.iter_mut().zip(&shards) {
                frame_block(s, out);
            }
            assert_eq!(outs, expected_outs, "{d}+{p} len {len}");
        }
    }
}

#[test]
fn reconstruct_every_pattern_up_to_parity() {
    for (d, p) in SHAPES {
        let c = codec(d, p);
        for len in block_lens(d) {
            let b = block(len, 3);
            let shards = c.encode(&b).unwrap();
            for mask in erasure_patterns(d + p, p) {
                let mut slots: Vec<Option<Vec<u8>>> = shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                    .collect();
                let mut data_only = slots.clone();
                let got = c.reconstruct(&mut slots, len).unwrap();
                assert_eq!(got, b, "{d}+{p} len {len} missing {mask:b}");
                // Every missing shard, data or parity, is rebuilt for healing.
                let healed: Vec<Vec<u8>> = slots.into_iter().map(Option::unwrap).collect();
                assert_eq!(healed, shards, "{d}+{p} len {len} missing {mask:b}");

                let got = c.reconstruct_data(&mut data_only, len).unwrap();
                assert_eq!(got, b);
                for (i, slot) in data_only.iter().enumerate() {
                    match slot {
                        Some(s) => assert_eq!(s, &shards[i]),
                        None => assert!(i >= d && mask & (1 << i) != 0),
                    }
                }
            }
        }
    }
}

#[test]
fn reconstruct_data_into_recycles_spares() {
    for (d, p) in SHAPES {
        let c = codec(d, p);
        // Dirty spares of the wrong sizes must not leak into the result.
        let mut spares = vec![vec![0xAB; 3], vec![0xCD; 5000]];
        let mut out = b"head".to_vec();
        for mask in erasure_patterns(d + p, p) {
            let b = block(555, mask as u8);
            let shards = c.encode(&b).unwrap();
            let mut slots: Vec<Option<Vec<u8>>> = shards
                .iter()
                .enumerate()
                .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                .collect();
            out.truncate(4);
            c.reconstruct_data_into(&mut slots, b.len(), &mut spares, &mut out)
                .unwrap();
            assert_eq!(&out[4..], &b[..], "{d}+{p} missing {mask:b}");
            for (i, slot) in slots.iter().enumerate() {
                match slot {
                    Some(s) => assert_eq!(s, &shards[i]),
                    None => assert!(i >= d && mask & (1 << i) != 0),
                }
            }
            // The reader is done with the block: recycle its buffers.
            spares.extend(slots.into_iter().flatten());
        }
    }
}

#[test]
fn too_few_shards_is_an_error_and_touches_nothing() {
    for (d, p) in SHAPES {
        let c = codec(d, p);
        let b = block(100, 4);
        let shards = c.encode(&b).unwrap();
        // Every pattern with exactly parity + 1 shards missing.
        for mask in (0u32..1 << (d + p)).filter(|m| m.count_ones() as usize == p + 1) {
            let mut slots: Vec<Option<Vec<u8>>> = shards
                .iter()
                .enumerate()
                .map(|(i, s)| (mask & (1 << i) == 0).then(|| s.clone()))
                .collect();
            let before = slots.clone();
            let err = c.reconstruct(&mut slots, 100).unwrap_err();
            assert_eq!(
                err,
                ErasureError::TooFewShards {
                    have: d - 1,
                    need: d
                }
            );
            assert_eq!(slots, before);
            assert!(c.reconstruct_data(&mut slots, 100).is_err());
        }
    }
    let c = codec(2, 2);
    let mut none = vec![None; 4];
    assert_eq!(
        c.reconstruct(&mut none, 10),
        Err(ErasureError::TooFewShards { have: 0, need: 2 })
    );
}

#[test]
fn rejects_malformed_input() {
    let c = codec(4, 2);
    let too_big = ErasureError::InvalidBlockLen {
        len: BLOCK_SIZE + 1,
        max: BLOCK_SIZE,
    };
    assert_eq!(
        c.encode(&[]),
        Err(ErasureError::InvalidBlockLen {
            len: 0,
            max: BLOCK_SIZE
        })
    );
    assert_eq!(c.encode(&vec![0; BLOCK_SIZE + 1]), Err(too_big.clone()));

    let shards = c.encode(&block(100, 5)).unwrap();
    let mut slots: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
    assert_eq!(c.reconstruct(&mut slots, BLOCK_SIZE + 1), Err(too_big));
    // Block length must match the shard length the shards were made with.
    assert_eq!(
        c.reconstruct(&mut slots, 200),
        Err(ErasureError::ShardSizeMismatch {
            index: 0,
            len: 25,
            expected: 50
        })
    );
    slots[3].as_mut().unwrap().push(0);
    assert_eq!(
        c.reconstruct(&mut slots, 100),
        Err(ErasureError::ShardSizeMismatch {
            index: 3,
            len: 26,
            expected: 25
        })
    );
    slots.pop();
    assert_eq!(
        c.reconstruct(&mut slots, 100),
        Err(ErasureError::ShardCountMismatch {
            have: 5,
            expected: 6
        })
    );
    let mut outs = vec![Vec::new(); 5];
    assert_eq!(
        c.encode_framed(&[1, 2, 3], &mut outs),
        Err(ErasureError::ShardCountMismatch {
            have: 5,
            expected: 6
        })
    );
    assert!(outs.iter().all(Vec::is_empty));
}

#[test]
fn default_block_size_round_trip() {
    // 6 drives → 3+3 by the parity table; 4+2 is the benchmarked shape.
    let from_table = ErasureConfig::for_drives(6).unwrap();
    assert_eq!((from_table.data, from_table.parity), (3, 3));
    for cfg in [
        from_table,
        ErasureConfig::new(4, 2, DEFAULT_BLOCK_SIZE).unwrap(),
    ] {
        default_block_round_trip(cfg);
    }
}

fn default_block_round_trip(cfg: ErasureConfig) {
    let c = Codec::new(cfg).unwrap();
    for len in [cfg.block_size, cfg.block_size - 3, 12_345] {
        let b = block(len, 6);
        let shards = c.encode(&b).unwrap();
        let mut slots: Vec<Option<Vec<u8>>> = shards.into_iter().map(Some).collect();
        slots[0] = None;
        slots[3] = None;
        assert_eq!(c.reconstruct(&mut slots, len).unwrap(), b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_blocks_and_erasures(
        shape in 0usize..SHAPES.len(),
        bytes in proptest::collection::vec(any::<u8>(), 1..=BLOCK_SIZE),
        order in Just((0..12usize).collect::<Vec<_>>()).prop_shuffle(),
        missing in 0usize..=4,
    ) {
        let (d, p) = SHAPES[shape];
        let c = codec(d, p);
        let shards = c.encode(&bytes).unwrap();
        let mut slots: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
        let drop: Vec<usize> = order.into_iter().filter(|&i| i < d + p).take(missing.min(p)).collect();
        for &i in &drop {
            slots[i] = None;
        }
        prop_assert_eq!(c.reconstruct(&mut slots, bytes.len()).unwrap(), bytes);
        prop_assert_eq!(slots.into_iter().map(Option::unwrap).collect::<Vec<_>>(), shards);
    }
}
