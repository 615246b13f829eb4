//! Encode and reconstruct throughput of 1 MiB blocks for the default small-cluster shapes.

use coffer_erasure::{Codec, ErasureConfig, DEFAULT_BLOCK_SIZE};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn block() -> Vec<u8> {
    (0..DEFAULT_BLOCK_SIZE)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(9) as u8)
        .collect()
}

fn codec(data: usize, parity: usize) -> Codec {
    Codec::new(ErasureConfig::new(data, parity, DEFAULT_BLOCK_SIZE).unwrap()).unwrap()
}

fn encode(c: &mut Criterion) {
    let b = block();
    let mut g = c.benchmark_group("encode_1MiB");
    g.throughput(Throughput::Bytes(b.len() as u64));
    for (d, p) in [(4, 2), (2, 2)] {
        let codec = codec(d, p);
        let name = format!("{d}+{p}");
        g.bench_function(BenchmarkId::new("encode", &name), |bench| {
            bench.iter(|| codec.encode(black_box(&b)).unwrap())
        });
        let mut shards = Vec::new();
        g.bench_function(BenchmarkId::new("encode_into", &name), |bench| {
            bench.iter(|| codec.encode_into(black_box(&b), &mut shards).unwrap())
        });
        let mut outs = vec![Vec::with_capacity(DEFAULT_BLOCK_SIZE); d + p];
        g.bench_function(BenchmarkId::new("encode_framed", &name), |bench| {
            bench.iter(|| {
                for o in outs.iter_mut() {
                    o.clear();
                }
                codec.encode_framed(black_box(&b), &mut outs).unwrap()
            })
        });
    }
    g.finish();
}

fn reconstruct(c: &mut Criterion) {
    let b = block();
    let mut g = c.benchmark_group("reconstruct_1MiB_two_missing");
    g.throughput(Throughput::Bytes(b.len() as u64));
    for (d, p) in [(4, 2), (2, 2)] {
        let codec = codec(d, p);
        let shards = codec.encode(&b).unwrap();
        // Lose two data shards: the expensive case (both rebuilt through the inverse matrix).
        let slots: Vec<Option<Vec<u8>>> = shards
            .into_iter()
            .enumerate()
            .map(|(i, s)| (i >= 2).then_some(s))
            .collect();
        let name = format!("{d}+{p}");
        g.bench_function(BenchmarkId::new("reconstruct", &name), |bench| {
            bench.iter_batched_ref(
                || slots.clone(),
                |s| codec.reconstruct(s, b.len()).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
        g.bench_function(BenchmarkId::new("reconstruct_data", &name), |bench| {
            bench.iter_batched_ref(
                || slots.clone(),
                |s| codec.reconstruct_data(s, b.len()).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
        // Steady state of a reader that recycles buffers (no allocation per block).
        let mut slots = slots.clone();
        let mut spares = Vec::new();
        let mut out = Vec::with_capacity(b.len());
        g.bench_function(BenchmarkId::new("reconstruct_data_into", &name), |bench| {
            bench.iter(|| {
                for slot in &mut slots[..2] {
                    spares.extend(slot.take());
                }
                out.clear();
                codec
                    .reconstruct_data_into(&mut slots, b.len(), &mut spares, &mut out)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, reconstruct);
criterion_main!(benches);
