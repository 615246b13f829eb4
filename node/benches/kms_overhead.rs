//! What the KMS costs a PUT and a GET once the data-key cache is warm (issue 4's benchmark),
//! for each provider: the built-in one, OpenBao transit (a real `bao server -dev`) and AWS KMS
//! (moto's server). A PUT touches the KMS only through `KeyService::seal` (a fresh object key
//! sealed under a cached data key) and a GET only through `KeyService::open`, so the bench
//! drives exactly those through the production stack (`kms_setup::build`: cache → resilient →
//! metered → provider) and reports
//! - KMS calls per 1,000 PUTs and per 1,000 GETs of distinct objects (from the node's
//!   `coffer_kms_calls_total`; target ≤ 2 each), and
//! - p50 / p99 of the time `seal` and `open` take (the latency the KMS path adds to a 4 KiB PUT
//!   or GET; target < 1 ms), for SSE-S3 and for SSE-KMS with a bucket key.
//!
//! `cargo bench -p coffer-node --bench kms_overhead` (needs `bao` and `moto_server` in .venv, as
//! scripts/test.sh installs them, or in COFFER_BAO_BIN / COFFER_MOTO_BIN; with
//! COFFER_SKIP_KMS_SERVERS=1 a missing one is skipped with a line saying so).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_crypto::{CipherSuite, Entropy, OsEntropy};
use coffer_kms::{AwsConfig, ResilienceConfig, SecretString, VaultAuth, VaultConfig};
use coffer_node::keys::{KeyService, KeySpec};
use coffer_node::kms_config::{KmsProvider, KmsSettings};
use coffer_node::manifest::SseMode;
use coffer_node::metrics::Metrics;
use common::kms::{aws_env, Bao, Moto};

const OPS: usize = 1000;
const WARMUP: usize = 20;

fn kms_calls(metrics: &Metrics) -> u64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("coffer_kms_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn spec(mode: SseMode, key: Option<&str>) -> KeySpec {
    KeySpec {
        mode,
        kms_key_id: key.map(str::to_owned),
        kms_context: None,
        bucket_key: mode == SseMode::Kms,
        suite: CipherSuite::Aes256Gcm,
    }
}

async fn measure(name: &str, settings: KmsSettings, kms_key: &str) {
    let metrics = Arc::new(Metrics::new());
    let entropy: Arc<dyn Entropy> = Arc::new(OsEntropy);
    let root = coffer_crypto::SecretKey::from_bytes([7; 32]);
    let stack = match coffer_node::kms_setup::build(
        &settings,
        || Ok(root),
        entropy.clone(),
        metrics.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => panic!("{name}: {e}"),
    };
    let keys = KeyService::new(stack.cached, entropy)
        .with_provider(stack.provider)
        .with_default_key(settings.default_key.clone());
    for (label, mode, key) in [
        ("SSE-S3", SseMode::S3, None),
        ("SSE-KMS+bucket key", SseMode::Kms, Some(kms_key)),
    ] {
        let bucket = format!("bench-{}", label.len());
        for i in 0..WARMUP {
            let k = keys
                .seal(&bucket, &format!("warm-{i}"), spec(mode, key), None, None)
                .await
                .unwrap();
            keys.open(&bucket, &format!("warm-{i}"), &k.record, None)
                .await
                .unwrap();
        }
        let before = kms_calls(&metrics);
        let mut seal_t = Vec::with_capacity(OPS);
        let mut records = Vec::with_capacity(OPS);
        for i in 0..OPS {
            let t = Instant::now();
            let k = keys
                .seal(&bucket, &format!("obj-{i}"), spec(mode, key), None, None)
                .await
                .unwrap();
            seal_t.push(t.elapsed());
            records.push(k.record);
        }
        let put_calls = kms_calls(&metrics) - before;
        let before = kms_calls(&metrics);
        let mut open_t = Vec::with_capacity(OPS);
        for (i, r) in records.iter().enumerate() {
            let t = Instant::now();
            keys.open(&bucket, &format!("obj-{i}"), r, None)
                .await
                .unwrap();
            open_t.push(t.elapsed());
        }
        let get_calls = kms_calls(&metrics) - before;
        seal_t.sort();
        open_t.sort();
        println!(
            "{name:<6} {label:<19} KMS calls/1000 PUTs {put_calls:>2}  /1000 GETs {get_calls:>2}   \
             PUT key path p50 {:>6.1} µs p99 {:>7.1} µs   GET key path p50 {:>6.1} µs p99 {:>7.1} µs",
            pct(&seal_t, 0.5),
            pct(&seal_t, 0.99),
            pct(&open_t, 0.5),
            pct(&open_t, 0.99),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = KmsSettings {
        resilience: ResilienceConfig::default(),
        ..KmsSettings::default()
    };
    measure("local", base.clone(), "coffer-default").await;

    match Bao::start().await {
        Some(bao) => {
            for k in ["coffer-sse", "tenant"] {
                bao.create_key(k, true).await;
            }
            let settings = KmsSettings {
                provider: KmsProvider::Vault(VaultConfig {
                    address: bao.url(),
                    auth: VaultAuth::Token(SecretString::new(&bao.root_token)),
                    namespace: None,
                    mount: "transit".into(),
                    ca_bundle: None,
                    request_timeout: Duration::from_secs(5),
                }),
                default_key: "coffer-sse".into(),
                ..base.clone()
            };
            measure("vault", settings, "tenant").await;
        }
        None => println!("vault  skipped: no bao binary (COFFER_BAO_BIN)"),
    }

    match Moto::start().await {
        Some(moto) => {
            let dir = tempfile::tempdir().unwrap();
            for (k, v) in aws_env(dir.path()) {
                std::env::set_var(k, v);
            }
            let cfg = AwsConfig {
                region: Some("us-east-1".into()),
                endpoint: Some(moto.url()),
                ca_bundle: None,
            };
            let admin = coffer_kms::AwsKms::connect(cfg.clone()).await.unwrap();
            use coffer_kms::Kms as _;
            for k in ["alias/coffer-sse", "alias/tenant"] {
                admin.create_key(k).await.unwrap();
            }
            let settings = KmsSettings {
                provider: KmsProvider::Aws(cfg),
                default_key: "alias/coffer-sse".into(),
                ..base
            };
            measure("aws", settings, "alias/tenant").await;
        }
        None => println!("aws    skipped: no moto_server binary (COFFER_MOTO_BIN)"),
    }
}
