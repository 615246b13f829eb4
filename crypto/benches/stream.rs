//! Seal/open throughput of the stream format per cipher suite.
//!
//! `cargo bench -p coffer-crypto --bench stream`; kept short on purpose.

use std::time::Duration;

use coffer_crypto::{
    derive_stream_key, plan_full, CipherSuite, Decryptor, Encryptor, SecretKey, StreamBinding,
    PACKAGE_SIZE,
};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};

const LEN: usize = 64 * 1024 * 1024;
// Typical network read size: the encryptor must cope with chunks smaller than a package.
const CHUNK: usize = 256 * 1024;

fn bench(c: &mut Criterion) {
    let oek = SecretKey::from_bytes([7; 32]);
    let binding = StreamBinding::new("bench", "object", "", 0);
    let data = vec![0x5Au8; LEN];
    let mut group = c.benchmark_group("stream");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(LEN as u64));
    for suite in CipherSuite::ALL {
        let key = || derive_stream_key(&oek, suite, &[1; 32], &binding);
        let mut sealed = Vec::with_capacity(LEN + LEN / PACKAGE_SIZE * 16 + 16);
        group.bench_function(BenchmarkId::new("seal", suite.name()), |b| {
            b.iter(|| {
                sealed.clear();
                let mut enc = Encryptor::new(key());
                for chunk in data.chunks(CHUNK) {
                    enc.push(chunk, &mut sealed).unwrap();
                }
                enc.finish(&mut sealed).unwrap();
            })
        });
        let mut plain = Vec::with_capacity(LEN);
        group.bench_function(BenchmarkId::new("open", suite.name()), |b| {
            b.iter(|| {
                plain.clear();
                let mut dec = Decryptor::new(key(), LEN as u64, &plan_full(LEN as u64)).unwrap();
                for chunk in sealed.chunks(CHUNK) {
                    dec.push(chunk, &mut plain).unwrap();
                }
                dec.finish().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
