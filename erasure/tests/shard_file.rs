//! Shard file header and layout arithmetic, checked against files actually built.

use coffer_erasure::{
    block_offset_in_file, block_range_for_bytes, checksum, framed_block_len, shard_file_len,
    unframe_block, Codec, CodecId, ErasureConfig, ErasureError, ShardHeader, CODEC_ID,
    FORMAT_VERSION, HEADER_LEN,
};

fn header() -> ShardHeader {
    let cfg = ErasureConfig::new(4, 2, 1 << 20).unwrap();
    ShardHeader::new(cfg, 5, 0x0123_4567_89ab_cdef, *b"0123456789abcdef").unwrap()
}

/// Rewrites the header CRC so a test reaches the checks that come after it.
fn reseal(b: &mut [u8; HEADER_LEN]) {
    let crc = checksum(&b[..44]);
    b[44..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn header_round_trip_and_pinned_layout() {
    let h = header();
    let b = h.encode();
    assert_eq!(ShardHeader::decode(&b).unwrap(), h);
    // Longer input (header + first frame) is accepted.
    let mut longer = b.to_vec();
    longer.extend_from_slice(&[9; 10]);
    assert_eq!(ShardHeader::decode(&longer).unwrap(), h);

    // The documented byte layout (docs/format/shards.md).
    assert_eq!(&b[0..4], b"CFSH");
    assert_eq!(b[4], 1);
    assert_eq!(b[5], 1);
    assert_eq!((b[6], b[7]), (4, 2));
    assert_eq!(&b[8..12], &(1u32 << 20).to_le_bytes());
    assert_eq!(b[12], 5);
    assert_eq!(&b[13..16], &[0; 3]);
    assert_eq!(&b[16..24], &0x0123_4567_89ab_cdefu64.to_le_bytes());
    assert_eq!(&b[24..40], b"0123456789abcdef");
    assert_eq!(&b[40..44], &[0; 4]);
    assert_eq!(&b[44..48], &checksum(&b[..44]).to_le_bytes());
    assert_eq!(h.version, FORMAT_VERSION);
    assert_eq!(h.codec, CodecId::RsGf8V1);
}

#[test]
fn header_rejects_corruption() {
    let good = header().encode();

    let mut b = good;
    b[0] = b'X';
    assert!(matches!(
        ShardHeader::decode(&b),
        Err(ErasureError::BadHeader(_))
    ));

    let mut b = good;
    b[4] = 2;
    reseal(&mut b);
    assert_eq!(
        ShardHeader::decode(&b),
        Err(ErasureError::UnsupportedVersion(2))
    );

    // Any single flipped bit after the version byte fails the CRC (or, for the
    // version byte itself, the version check).
    for i in 4..HEADER_LEN {
        let mut b = good;
        b[i] ^= 0x10;
        assert!(ShardHeader::decode(&b).is_err(), "flip at {i}");
    }
    let mut b = good;
    b[30] ^= 1;
    assert_eq!(
        ShardHeader::decode(&b),
        Err(ErasureError::BadHeader("header checksum mismatch".into()))
    );

    assert!(matches!(
        ShardHeader::decode(&good[..HEADER_LEN - 1]),
        Err(ErasureError::BadHeader(_))
    ));

    // Well-sealed but inconsistent headers.
    for (offset, value) in [(5, 7u8), (6, 0), (12, 6), (14, 1), (41, 1)] {
        let mut b = good;
        b[offset] = value;
        reseal(&mut b);
        assert!(
            matches!(ShardHeader::decode(&b), Err(ErasureError::BadHeader(_))),
            "byte {offset} = {value}"
        );
    }
    let cfg = ErasureConfig::new(2, 1, 64).unwrap();
    assert!(ShardHeader::new(cfg, 3, 0, [0; 16]).is_err());
}

#[test]
fn codec_id_names() {
    assert_eq!(CodecId::RsGf8V1.as_str(), CODEC_ID);
    assert_eq!(CodecId::from_name("rs-gf8-v1").unwrap(), CodecId::RsGf8V1);
    assert!(matches!(
        CodecId::from_name("rs-gf16"),
        Err(ErasureError::UnknownCodec(_))
    ));
    assert_eq!(
        serde_json::to_string(&CodecId::RsGf8V1).unwrap(),
        "\"rs-gf8-v1\""
    );
    assert_eq!(
        CodecId::from_byte(CodecId::RsGf8V1.to_byte()).unwrap(),
        CodecId::RsGf8V1
    );
}

fn object(len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 11) as u8)
        .collect()
}

/// Builds every shard file of an object the way a writer would.
fn build_files(cfg: ErasureConfig, obj: &[u8]) -> (Codec, Vec<Vec<u8>>) {
    let codec = Codec::new(cfg).unwrap();
    let mut files: Vec<Vec<u8>> = (0..cfg.width())
        .map(|i| {
            ShardHeader::new(cfg, i as u8, obj.len() as u64, [7; 16])
                .unwrap()
                .encode()
                .to_vec()
        })
        .collect();
    for block in obj.chunks(cfg.block_size) {
        codec.encode_framed(block, &mut files).unwrap();
    }
    (codec, files)
}

const SHAPES: [(usize, usize, usize); 4] = [(1, 0, 16), (2, 1, 10), (4, 2, 37), (3, 3, 64)];

#[test]
fn offsets_match_a_built_file() {
    for (d, p, bs) in SHAPES {
        let cfg = ErasureConfig::new(d, p, bs).unwrap();
        let bs = bs as u64;
        for len in [0, 1, bs - 1, bs, bs + 1, 3 * bs + 7, 5 * bs] {
            let obj = object(len);
            let (codec, files) = build_files(cfg, &obj);
            let count = cfg.block_count(len);
            for (i, file) in files.iter().enumerate() {
                assert_eq!(file.len() as u64, shard_file_len(&cfg, len));
                let h = ShardHeader::decode(file).unwrap();
                assert_eq!((h.shard_index as usize, h.object_len), (i, len));
                assert_eq!(h.file_len(), file.len() as u64);
            }
            // Walk the file frame by frame (the brute-force layout) and compare.
            let mut pos = HEADER_LEN as u64;
            for (bi, block) in obj.chunks(bs as usize).enumerate() {
                let bi = bi as u64;
                let flen = framed_block_len(&cfg, len, bi);
                assert_eq!(
                    block_offset_in_file(&cfg, len, bi),
                    pos,
                    "{d}+{p} len {len} block {bi}"
                );
                assert_eq!(flen, 4 + block.len().div_ceil(d));
                let shards = codec.encode(block).unwrap();
                for (file, shard) in files.iter().zip(&shards) {
                    let frame = &file[pos as usize..pos as usize + flen];
                    assert_eq!(unframe_block(frame).unwrap(), shard.as_slice());
                }
                pos += flen as u64;
            }
            assert_eq!(block_offset_in_file(&cfg, len, count), pos);
            assert_eq!(pos, shard_file_len(&cfg, len));
            assert_eq!(framed_block_len(&cfg, len, count), 0);
            assert_eq!(block_offset_in_file(&cfg, len, count + 5), pos);
        }
    }
}

#[test]
fn block_range_matches_brute_force() {
    let cfg = ErasureConfig::new(2, 1, 10).unwrap();
    let len = 47u64;
    for start in 0..len {
        for end in start..len {
            let first = (start..=end).map(|b| b / 10).min().unwrap();
            let last = (start..=end).map(|b| b / 10).max().unwrap();
            assert_eq!(
                block_range_for_bytes(&cfg, len, start, end).unwrap(),
                (first, last)
            );
        }
    }
    for (s, e) in [(5, 4), (0, 47), (47, 47), (100, 200)] {
        assert_eq!(
            block_range_for_bytes(&cfg, len, s, e),
            Err(ErasureError::InvalidRange {
                start: s,
                end_inclusive: e,
                object_len: len
            })
        );
    }
    assert!(block_range_for_bytes(&cfg, 0, 0, 0).is_err());
}

#[test]
fn range_read_with_missing_shards() {
    // What a GET does: read only the frames the range needs, from any k shard
    // files, rebuild those blocks, cut the range out.
    let cfg = ErasureConfig::new(4, 2, 37).unwrap();
    let obj = object(1000);
    let (codec, files) = build_files(cfg, &obj);
    let len = obj.len() as u64;
    let present = [false, true, true, false, true, true];
    for (start, end) in [
        (0, 0),
        (0, 999),
        (36, 37),
        (100, 500),
        (999, 999),
        (370, 406),
    ] {
        let (first, last) = block_range_for_bytes(&cfg, len, start, end).unwrap();
        let mut out = Vec::new();
        for bi in first..=last {
            let off = block_offset_in_file(&cfg, len, bi) as usize;
            let flen = framed_block_len(&cfg, len, bi);
            let mut slots: Vec<Option<Vec<u8>>> = files
                .iter()
                .zip(present)
                .map(|(f, ok)| ok.then(|| unframe_block(&f[off..off + flen]).unwrap().to_vec()))
                .collect();
            out.extend(
                codec
                    .reconstruct_data(&mut slots, cfg.block_len(len, bi))
                    .unwrap(),
            );
        }
        let skip = (start - first * cfg.block_size as u64) as usize;
        let take = (end - start + 1) as usize;
        assert_eq!(&out[skip..skip + take], &obj[start as usize..=end as usize]);
    }
}
