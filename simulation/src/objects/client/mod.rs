//! A simulated S3 client of the whole-node scenario: signs requests with the node's root
//! credentials, issues a seeded mix of operations and records what it learned for the checkers.
//!
//! Keys `k*` hold objects sealed under the bucket's default or an explicit SSE-KMS request;
//! keys `s*` hold SSE-C objects only, each under a customer key that is a pure function of the
//! seed and the key name (so any client can read any of them). Writes are in `writes.rs`,
//! reads in `reads.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use coffer_cluster::{Handlers, NodeId, Transport, TransportError};
use md5::Md5;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::{micros, now, ObjectsConfig, SharedRef, BUCKET, CLIENT_DEADLINE, NODE, STREAM_CLIENT};
use crate::check::{self, Op, Outcome};
use crate::cluster::sub_seed;
use crate::net::SimNet;
use crate::s3node;
use crate::s3wire::{WireRequest, WireResponse};

mod reads;
mod writes;

/// What one S3 call came to.
enum Reply {
    /// An HTTP response.
    Http(WireResponse),
    /// The request never reached the node (it was down): no effect.
    NotDelivered,
    /// No answer (lost, timed out, crashed mid-call): the effect is unknown.
    NoAnswer,
}

/// Which customer key an SSE-C header set carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CustomerKey {
    /// The key's own.
    Right,
    /// A key of the same form that the object was not written with.
    Wrong,
}

pub(super) struct Client {
    index: u64,
    seed: u64,
    who: String,
    transport: crate::net::SimTransport,
    shared: SharedRef,
    rng: StdRng,
    keys: usize,
    ssec_keys: usize,
    /// Nodes of the cluster (1: the single node).
    nodes: usize,
    /// The node this operation goes to.
    node: NodeId,
    /// Each node's root credentials.
    creds: BTreeMap<NodeId, (String, String)>,
}

/// Whether objects under `key` are SSE-C.
fn is_ssec(key: &str) -> bool {
    key.starts_with('s')
}

impl Client {
    pub(super) fn new(cfg: &ObjectsConfig, index: u64, net: &SimNet, shared: SharedRef) -> Self {
        Self {
            index,
            seed: cfg.seed,
            who: format!("c{index}"),
            transport: net.attach_client(100 + index, Handlers::default()),
            shared,
            rng: StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_CLIENT + index)),
            keys: cfg.keys,
            ssec_keys: cfg.ssec_keys,
            nodes: cfg.nodes,
            node: NODE,
            creds: BTreeMap::new(),
        }
    }

    /// Sends `req` on `channel` (signed with SigV4 when `sign`) and waits for the answer.
    async fn send(&self, channel: &str, mut req: WireRequest, sign: bool) -> Reply {
        if matches!(req.method.as_str(), "PUT" | "POST") {
            // What an HTTP client always sends with a body (s3s requires it on XML bodies).
            req.headers
                .push(("content-length".into(), req.body.len().to_string()));
        }
        if sign {
            if let Some((access, secret)) = self.creds.get(&self.node) {
                req = req.sign(access, secret);
            }
        }
        match self
            .transport
            .call_with_deadline(self.node, channel, req.encode(), CLIENT_DEADLINE)
            .await
        {
            Ok(b) => match WireResponse::decode(&b) {
                Ok(r) => Reply::Http(r),
                Err(_) => Reply::NoAnswer,
            },
            Err(TransportError::Unreachable { .. }) => Reply::NotDelivered,
            Err(_) => Reply::NoAnswer,
        }
    }

    /// An S3 call.
    async fn call(&self, req: WireRequest) -> Reply {
        self.send(s3node::S3_CHANNEL, req, true).await
    }

    /// `method` on object `key` with `query` (empty or `?…`), carrying the key's SSE-C headers
    /// when it is an SSE-C key and `customer` is set.
    fn object_request(
        &self,
        method: &str,
        key: &str,
        query: &str,
        customer: Option<CustomerKey>,
    ) -> WireRequest {
        let mut headers = Vec::new();
        if let Some(which) = customer.filter(|_| is_ssec(key)) {
            headers = self.customer_headers("x-amz-server-side-encryption-customer", key, which);
        }
        WireRequest {
            method: method.into(),
            target: format!("/{BUCKET}/{key}{query}"),
            headers,
            ..Default::default()
        }
    }

    /// The three SSE-C headers (`prefix`-algorithm, -key, -key-MD5) for `key`'s customer key.
    fn customer_headers(
        &self,
        prefix: &str,
        key: &str,
        which: CustomerKey,
    ) -> Vec<(String, String)> {
        customer_headers(prefix, &customer_key(self.seed, key, which))
    }

    /// What a write learned from `reply`: done when `ok` holds, unknown for any other answer
    /// (and a violation if that answer is not one of `allowed`), left out when the request
    /// never arrived.
    fn write_outcome(
        &self,
        what: &str,
        reply: &Reply,
        ok: impl Fn(&WireResponse) -> bool,
        allowed: &[&str],
    ) -> (Option<Outcome>, String) {
        match reply {
            Reply::Http(r) if ok(r) => (Some(Outcome::Done), "ok".to_owned()),
            Reply::Http(r) => {
                self.unexpected(what, r, allowed);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        }
    }

    pub(super) async fn run(&mut self, cfg: &ObjectsConfig) {
        // Every node's root credentials (each generates its own on its first start, and
        // shows them once it serves the whole cluster's layout).
        loop {
            let creds = self.shared.lock().creds.clone();
            if creds.len() == self.nodes {
                self.creds = creds;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.index == 0 {
            self.create_bucket().await;
        }
        while !self.shared.lock().bucket_ready {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shared.lock().started_at.get_or_insert(micros(now()));
        for op in 0..cfg.ops {
            self.random_op(op).await;
            let pause = self.rng.gen_range(0..300);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        while !self.shared.lock().healed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Liveness: a write goes through within 15 s of the heal.
        let deadline = now() + Duration::from_secs(15);
        let id = format!("c{}live", self.index);
        loop {
            if self
                .put(&format!("live{}", self.index), &id, 100, false)
                .await
            {
                break;
            }
            if now() > deadline {
                self.shared.violation(
                    &self.who,
                    "liveness: no PUT succeeded within 15 s of the heal".into(),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Final reads, faults healed: every key answers definitely, and (by linearizability)
        // with its last acknowledged write.
        for key in self.all_keys() {
            if !self.get(&key).await {
                self.shared.violation(
                    &self.who,
                    format!("final read of {key} failed after the heal: an acknowledged object is unreadable"),
                );
            }
        }
        self.shared.lock().clients_done += 1;
    }

    fn all_keys(&self) -> Vec<String> {
        (0..self.keys)
            .map(|k| format!("k{k}"))
            .chain((0..self.ssec_keys).map(|k| format!("s{k}")))
            .collect()
    }

    async fn create_bucket(&mut self) {
        loop {
            let r = self
                .call(WireRequest {
                    method: "PUT".into(),
                    target: format!("/{BUCKET}"),
                    ..Default::default()
                })
                .await;
            if let Reply::Http(r) = r {
                let code = r.error_code();
                if r.status == 200 || code.as_deref() == Some("BucketAlreadyOwnedByYou") {
                    self.shared.record(&self.who, "bucket created");
                    self.shared.lock().bucket_ready = true;
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn random_op(&mut self, op: usize) {
        if self.nodes > 1 {
            // Any node serves any request: reads must see writes made through the others.
            self.node = 1 + self.rng.gen_range(0..self.nodes as NodeId);
        }
        let keys = self.all_keys();
        let key = keys[self.rng.gen_range(0..keys.len())].clone();
        let id = format!("c{}o{op}", self.index);
        match self.rng.gen_range(0..24) {
            0 => {
                let first = super::MIN_PART + self.rng.gen_range(0..50_000);
                let last = self.rng.gen_range(1..300_000);
                self.multipart(&key, &id, [first, last]).await;
            }
            1..=7 => {
                let len = match self.rng.gen_range(0..4) {
                    0 => self.rng.gen_range(0..64),
                    1 => self.rng.gen_range(64..70_000),
                    2 => self.rng.gen_range(200_000..400_000),
                    _ => self.rng.gen_range(1_000_000..1_300_000),
                };
                let conditional = self.rng.gen_bool(0.2);
                let len = len.max(super::BODY_MARK.len() + id.len() + 1);
                self.put(&key, &id, len, conditional).await;
            }
            8..=10 | 23 => {
                self.get(&key).await;
            }
            11..=12 => self.get_range(&key).await,
            13..=14 => self.head(&key).await,
            15..=16 => self.delete(&key).await,
            17..=18 => {
                let dest = keys[self.rng.gen_range(0..keys.len())].clone();
                if dest == key {
                    self.get(&key).await;
                } else {
                    self.copy(&key, &dest).await;
                }
            }
            19 => self.probe_customer_key(&key).await,
            20 => self.set_bucket_encryption().await,
            21 => self.versioning().await,
            _ => self.list().await,
        }
    }

    /// Records `op` on `key` with what the client learned; `None` leaves it out (a failed read).
    fn history(&self, key: &str, op: Op, outcome: Option<Outcome>, invoked: u64, what: &str) {
        let returned = micros(now());
        let mut s = self.shared.lock();
        s.ops += 1;
        if let Some(outcome) = outcome {
            let what = (self.index, op, outcome);
            if check::push_event(&mut s.histories, key, what, invoked, returned) {
                s.unknown += 1;
            }
        }
        drop(s);
        self.shared.record(&self.who, &format!("{key}: {what}"));
    }

    /// A 500 is never a right answer, and a 4xx other than `allowed` means a request the
    /// client built correctly was refused.
    fn unexpected(&self, what: &str, r: &WireResponse, allowed: &[&str]) -> bool {
        let code = r.error_code().unwrap_or_default();
        let ok = r.status < 300
            || r.status == 503
            || allowed.contains(&code.as_str())
            || (r.status == 404 && allowed.contains(&"404"));
        if !ok {
            self.shared
                .violation(&self.who, format!("{what}: unexpected {} {code}", r.status));
        }
        !ok
    }
}

/// The customer key of SSE-C key `key` in run `seed` (or a wrong one): a pure function of both.
fn customer_key(seed: u64, key: &str, which: CustomerKey) -> [u8; 32] {
    let mut h = Sha256::new_with_prefix(b"coffer-sim customer key");
    h.update(seed.to_le_bytes());
    h.update(key.as_bytes());
    if which == CustomerKey::Wrong {
        h.update(b"wrong");
    }
    h.finalize().into()
}

/// `prefix`-algorithm, -key and -key-MD5 as S3 expects them (base64 key and MD5 of the key).
fn customer_headers(prefix: &str, secret: &[u8; 32]) -> Vec<(String, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        (format!("{prefix}-algorithm"), "AES256".into()),
        (format!("{prefix}-key"), b64.encode(secret)),
        (format!("{prefix}-key-md5"), b64.encode(Md5::digest(secret))),
    ]
}

/// The text of the first `<tag>…</tag>` in an XML body.
fn xml_value(body: &[u8], tag: &str) -> Option<String> {
    xml_values(body, tag).into_iter().next()
}

/// The text of every `<tag>…</tag>` in an XML body, in order.
fn xml_values(body: &[u8], tag: &str) -> Vec<String> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(open.as_str())
        .skip(1)
        .filter_map(|s| s.split_once(close.as_str()).map(|(v, _)| v.to_owned()))
        .collect()
}

/// An ETag as a bare token: without the quotes a header or an XML document (`&quot;`) puts
/// around it.
fn bare_etag(raw: &str) -> String {
    raw.replace("&quot;", "").trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_keys_are_per_run_and_key_and_their_md5_matches() {
        let k = customer_key(7, "s0", CustomerKey::Right);
        assert_eq!(
            k,
            customer_key(7, "s0", CustomerKey::Right),
            "a pure function"
        );
        assert_ne!(k, customer_key(8, "s0", CustomerKey::Right));
        assert_ne!(k, customer_key(7, "s1", CustomerKey::Right));
        assert_ne!(k, customer_key(7, "s0", CustomerKey::Wrong));
        let h = customer_headers("x-amz-server-side-encryption-customer", &k);
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(h[0].1, "AES256");
        let key = b64.decode(&h[1].1).unwrap();
        assert_eq!(key, k);
        assert_eq!(b64.decode(&h[2].1).unwrap(), Md5::digest(&key).to_vec());
        assert!(is_ssec("s0") && !is_ssec("k0"));
    }

    #[test]
    fn xml_values_are_found() {
        assert_eq!(
            xml_value(b"<R><UploadId>ab12</UploadId></R>", "UploadId").as_deref(),
            Some("ab12")
        );
        assert_eq!(xml_value(b"<R></R>", "UploadId"), None);
        assert_eq!(
            xml_values(b"<L><Key>a</Key><Key>b/c</Key></L>", "Key"),
            vec!["a", "b/c"]
        );
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(bare_etag("\"abc\""), "abc");
        assert_eq!(bare_etag("&quot;abc-2&quot;"), "abc-2");
        assert_eq!(bare_etag("abc"), "abc");
    }
}
