//! Prometheus metrics and the request observer that feeds them and the audit log.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use coffer_s3api::backend::{RequestObserver, RequestRecord};

use crate::seams::audit::AuditLog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CryptoLabels {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsLabels {
    provider: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsOpLabels {
    provider: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    operation: String,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OpLabels, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    heal: Family<CryptoLabels, Counter>,
    degraded: prometheus_client::metrics::gauge::Gauge,
    crypto_ops: Family<CryptoLabels, Counter>,
    crypto_bytes: Family<CryptoLabels, Counter>,
    kms_calls: Family<KmsLabels, Counter>,
    kms_latency: Family<KmsOpLabels, Histogram>,
    cache_hits: Family<CacheLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
    tls_handshakes: Family<TlsLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("coffer");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        let crypto_ops = Family::<CryptoLabels, Counter>::default();
        let crypto_bytes = Family::<CryptoLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by operation and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to response headers",
            latency.clone(),
        );
        registry.register("bytes_received", "Request body bytes", bytes_in.clone());
        registry.register("bytes_sent", "Response body bytes", bytes_out.clone());
        registry.register(
            "crypto_operations",
            "Encrypt/decrypt operations (segments or packages)",
            crypto_ops.clone(),
        );
        registry.register(
            "crypto_plaintext_bytes",
            "Plaintext bytes encrypted or decrypted",
            crypto_bytes.clone(),
        );
        let kms_calls = Family::<KmsLabels, Counter>::default();
        let kms_latency = Family::<KmsOpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let cache_hits = Family::<CacheLabels, Counter>::default();
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "kms_calls",
            "Calls that reached the KMS provider, by operation and outcome (ok or error)",
            kms_calls.clone(),
        );
        registry.register(
            "kms_call_duration_seconds",
            "Latency of calls to the KMS provider",
            kms_latency.clone(),
        );
        registry.register(
            "kms_cache_hits",
            "Data-key cache lookups answered from the cache",
            cache_hits.clone(),
        );
        registry.register(
            "kms_cache_misses",
            "Data-key cache lookups that went to the KMS provider",
            cache_misses.clone(),
        );
        let heal = Family::<CryptoLabels, Counter>::default();
        registry.register(
            "heal_events",
            "Healer and orphan sweep events: segments_checked, shards_healed, shards_moved, heal_failures, scans, orphans_removed",
            heal.clone(),
        );
        let degraded = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "degraded_objects",
            "Objects below full redundancy in the last completed heal scan",
            degraded.clone(),
        );
        let tls_handshakes = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes by negotiated key-exchange group",
            tls_handshakes.clone(),
        );
        Self {
            registry,
            heal,
            degraded,
            tls_handshakes,
            requests,
            latency,
            bytes_in,
            bytes_out,
            crypto_ops,
            crypto_bytes,
            kms_calls,
            kms_latency,
            cache_hits,
            cache_misses,
        }
    }

    /// Counts `n` healer events of `kind`.
    pub fn record_heal(&self, kind: &str, n: u64) {
        self.heal
            .get_or_create(&CryptoLabels {
                op: kind.to_string(),
            })
            .inc_by(n);
    }

    /// Sets the degraded-object count of the last heal scan.
    pub fn set_degraded(&self, n: u64) {
        self.degraded.set(n as i64);
    }

    /// Counts one call to the KMS provider.
    pub fn record_kms_call(&self, provider: &str, operation: &str, ok: bool, secs: f64) {
        self.kms_calls
            .get_or_create(&KmsLabels {
                provider: provider.to_string(),
                operation: operation.to_string(),
                outcome: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
        self.kms_latency
            .get_or_create(&KmsOpLabels {
                provider: provider.to_string(),
                operation: operation.to_string(),
            })
            .observe(secs);
    }

    /// Counts one completed TLS handshake.
    pub fn record_tls_handshake(&self, group: &str) {
        self.tls_handshakes
            .get_or_create(&TlsLabels {
                group: group.to_string(),
            })
            .inc();
    }

    /// Counts an encrypted segment.
    pub fn record_encrypt(&self, bytes: u64) {
        self.crypto(&"encrypt", bytes);
    }

    /// Counts a decrypted package.
    pub fn record_decrypt(&self, bytes: u64) {
        self.crypto(&"decrypt", bytes);
    }

    fn crypto(&self, op: &&str, bytes: u64) {
        let l = CryptoLabels { op: op.to_string() };
        self.crypto_ops.get_or_create(&l).inc();
        self.crypto_bytes.get_or_create(&l).inc_by(bytes);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    fn observe(&self, r: &RequestRecord) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: r.operation.clone(),
                status: r.status,
            })
            .inc();
        self.latency
            .get_or_create(&OpLabels {
                operation: r.operation.clone(),
            })
            .observe(r.duration_secs);
        self.bytes_in.inc_by(r.bytes_in);
        self.bytes_out.inc_by(r.bytes_out);
    }
}

impl coffer_kms::CacheEvents for Metrics {
    fn lookup(&self, operation: &'static str, hit: bool) {
        let family = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        family
            .get_or_create(&CacheLabels {
                operation: operation.to_string(),
            })
            .inc();
    }
}

/// Feeds every finished request to the metrics and, when configured, the audit log.
pub struct Observer {
    metrics: Arc<Metrics>,
    audit: Option<AuditLog>,
}

impl Observer {
    /// An observer over `metrics` and an optional audit log.
    pub fn new(metrics: Arc<Metrics>, audit: Option<AuditLog>) -> Self {
        Self { metrics, audit }
    }

    /// Flushes the audit log.
    pub fn flush(&self) {
        if let Some(a) = &self.audit {
            a.flush();
        }
    }
}

impl RequestObserver for Observer {
    fn record(&self, rec: RequestRecord) {
        self.metrics.observe(&rec);
        if let Some(a) = &self.audit {
            a.write(&rec);
        }
    }
}
