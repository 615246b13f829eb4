//! The client's reads: GET (whole and ranged), HEAD, SSE-C key probes, listings and the
//! versioning calls every S3 tool makes. Every body is checked against what was written.

use super::{is_ssec, xml_values, Client, CustomerKey, Reply, BUCKET};
use crate::check::{Op, Outcome};
use crate::objects::{body, id_of, micros, now};
use crate::s3wire::WireRequest;

impl Client {
    /// The values (id, length) ever sent to `key`.
    fn sent_to(&self, key: &str) -> Vec<(String, usize)> {
        self.shared
            .lock()
            .sent
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Checks a body read as value `id` is exactly that value's bytes.
    fn check_body(&self, key: &str, got: &[u8]) -> Option<String> {
        let Some(id) = id_of(got) else {
            self.shared.violation(
                &self.who,
                format!("GET {key}: {} bytes that no client wrote", got.len()),
            );
            return None;
        };
        if body(&id, got.len()) != got {
            self.shared
                .violation(&self.who, format!("GET {key}: wrong bytes for {id}"));
            return None;
        }
        if !self
            .sent_to(key)
            .iter()
            .any(|(i, l)| *i == id && *l == got.len())
        {
            self.shared.violation(
                &self.who,
                format!(
                    "GET {key}: {id} with {} bytes was never written there",
                    got.len()
                ),
            );
            return None;
        }
        Some(id)
    }

    /// GETs `key`; whether the answer was definite (the object, or NoSuchKey).
    pub(super) async fn get(&mut self, key: &str) -> bool {
        let invoked = micros(now());
        let req = self.object_request("GET", key, "", Some(CustomerKey::Right));
        let reply = self.call(req).await;
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 => match self.check_body(key, &r.body) {
                Some(id) => {
                    let etag = r.header("etag").unwrap_or_default();
                    self.learned_etag(key, etag, &id, r.body.len());
                    (Some(Outcome::Value(Some(id.clone()))), id)
                }
                None => (None, "wrong bytes".to_owned()),
            },
            Reply::Http(r) if r.error_code().as_deref() == Some("NoSuchKey") => {
                (Some(Outcome::Value(None)), "NoSuchKey".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("GET", r, &[]);
                (None, format!("{}", r.status))
            }
            _ => (None, "no answer".to_owned()),
        };
        let definite = outcome.is_some();
        self.history(key, Op::Read, outcome, invoked, &format!("GET -> {what}"));
        definite
    }

    pub(super) async fn get_range(&mut self, key: &str) {
        let start = self.rng_range(0..1_200_000u64);
        let len = self.rng_range(1..200_000u64);
        let mut req = self.object_request("GET", key, "", Some(CustomerKey::Right));
        req.headers
            .push(("range".into(), format!("bytes={start}-{}", start + len - 1)));
        let reply = self.call(req).await;
        let what = match &reply {
            Reply::Http(r) if r.status == 206 => {
                let total: Option<usize> = r
                    .header("content-range")
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|t| t.parse().ok());
                let from = start as usize;
                let ok = total.is_some_and(|total| {
                    self.sent_to(key).iter().any(|(id, l)| {
                        *l == total
                            && from < *l
                            && body(id, *l)[from..(from + r.body.len()).min(*l)] == r.body[..]
                    })
                });
                if !ok {
                    self.shared.violation(
                        &self.who,
                        format!("GET {key} range {start}+{len}: bytes no client wrote there"),
                    );
                }
                format!("206 {} B", r.body.len())
            }
            Reply::Http(r) => {
                self.unexpected("ranged GET", r, &["NoSuchKey", "InvalidRange"]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        let desc = format!("GET range {start}+{len} -> {what}");
        self.history(key, Op::Read, None, 0, &desc);
    }

    fn rng_range(&mut self, r: std::ops::Range<u64>) -> u64 {
        rand::Rng::gen_range(&mut self.rng, r)
    }

    pub(super) async fn head(&mut self, key: &str) {
        let req = self.object_request("HEAD", key, "", Some(CustomerKey::Right));
        let reply = self.call(req).await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let len: Option<usize> = r.header("content-length").and_then(|v| v.parse().ok());
                let sent = self.sent_to(key);
                if !len.is_some_and(|n| sent.iter().any(|(_, l)| *l == n)) {
                    self.shared.violation(
                        &self.who,
                        format!("HEAD {key}: length {len:?} never written"),
                    );
                }
                format!("200 {len:?}")
            }
            Reply::Http(r) => {
                self.unexpected("HEAD", r, &["404"]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.history(key, Op::Read, None, 0, &format!("HEAD -> {what}"));
    }

    /// GET and HEAD of an SSE-C key without its customer key, or with another one: never the
    /// object. AWS answers 400 InvalidRequest without the key and 403 AccessDenied with a wrong
    /// one (404 when there is no object).
    pub(super) async fn probe_customer_key(&mut self, key: &str) {
        if !is_ssec(key) {
            return self.head(key).await;
        }
        let wrong = rand::Rng::gen_bool(&mut self.rng, 0.5);
        let (customer, expect, status) = if wrong {
            (Some(CustomerKey::Wrong), "AccessDenied", 403)
        } else {
            (None, "InvalidRequest", 400)
        };
        let head = rand::Rng::gen_bool(&mut self.rng, 0.3);
        let method = if head { "HEAD" } else { "GET" };
        let req = self.object_request(method, key, "", customer);
        let reply = self.call(req).await;
        let what = match &reply {
            Reply::Http(r) => {
                let code = r.error_code();
                // HEAD answers carry no error document: the status alone tells.
                let right = r.status == 503
                    || r.status == 404
                    || (r.status == status && (head || code.as_deref() == Some(expect)));
                if !right {
                    self.shared.violation(
                        &self.who,
                        format!(
                            "{method} {key} with {} customer key: {} {} (expected {status} {expect})",
                            if wrong { "a wrong" } else { "no" },
                            r.status,
                            code.unwrap_or_default()
                        ),
                    );
                }
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        let desc = format!("{method} without the right customer key -> {what}");
        self.history(key, Op::Read, None, 0, &desc);
    }

    /// ListObjectsV2: every key listed was written.
    pub(super) async fn list(&mut self) {
        let req = WireRequest {
            method: "GET".into(),
            target: format!("/{BUCKET}?list-type=2"),
            ..Default::default()
        };
        let reply = self.call(req).await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let keys = xml_values(&r.body, "Key");
                self.check_listed("LIST", &keys);
                format!("200 {keys:?}")
            }
            Reply::Http(r) => {
                self.unexpected("LIST", r, &[]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.shared.lock().ops += 1;
        self.shared.record(&self.who, &format!("LIST -> {what}"));
    }

    fn check_listed(&self, what: &str, keys: &[String]) {
        let s = self.shared.lock();
        let unknown: Vec<&String> = keys.iter().filter(|k| !s.sent.contains_key(*k)).collect();
        drop(s);
        for k in unknown {
            self.shared
                .violation(&self.who, format!("{what}: key {k} was never written"));
        }
    }

    /// What cleanup tools ask of an unversioned bucket: GetBucketVersioning (no status) and
    /// ListObjectVersions (every version `null`, every key written).
    pub(super) async fn versioning(&mut self) {
        let asked = WireRequest {
            method: "GET".into(),
            target: format!("/{BUCKET}?versioning"),
            ..Default::default()
        };
        let status = match self.call(asked).await {
            Reply::Http(r) => {
                if r.status == 200 && !xml_values(&r.body, "Status").is_empty() {
                    self.shared.violation(
                        &self.who,
                        "GetBucketVersioning: a status on a bucket never versioned".into(),
                    );
                }
                self.unexpected("GetBucketVersioning", &r, &[]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        let listed = WireRequest {
            method: "GET".into(),
            target: format!("/{BUCKET}?versions"),
            ..Default::default()
        };
        let versions = match self.call(listed).await {
            Reply::Http(r) if r.status == 200 => {
                let keys = xml_values(&r.body, "Key");
                self.check_listed("ListObjectVersions", &keys);
                let ids = xml_values(&r.body, "VersionId");
                if ids.len() < keys.len() || ids.iter().any(|v| v != "null") {
                    self.shared.violation(
                        &self.who,
                        format!("ListObjectVersions: version ids {ids:?} for keys {keys:?}"),
                    );
                }
                format!("200 {keys:?}")
            }
            Reply::Http(r) => {
                self.unexpected("ListObjectVersions", &r, &[]);
                format!("{}", r.status)
            }
            _ => "no answer".to_owned(),
        };
        self.shared.lock().ops += 2;
        let line = format!("versioning -> {status}; versions -> {versions}");
        self.shared.record(&self.who, &line);
    }
}
