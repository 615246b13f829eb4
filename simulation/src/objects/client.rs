//! A simulated S3 client of the whole-node scenario: signs requests with the node's root
//! credentials, issues a seeded mix of operations and records what it learned for the checkers.

use std::time::Duration;

use bytes::Bytes;
use coffer_cluster::{Handlers, Transport, TransportError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    body, id_of, micros, now, ObjectsConfig, SharedRef, BODY_MARK, BUCKET, CLIENT_DEADLINE,
    MIN_PART, NODE, STREAM_CLIENT,
};
use crate::check::{Event, Op, Outcome};
use crate::cluster::sub_seed;
use crate::net::SimNet;
use crate::s3node;
use crate::s3wire::{WireRequest, WireResponse};

/// What one S3 call came to.
enum Reply {
    /// An HTTP response.
    Http(WireResponse),
    /// The request never reached the node (it was down): no effect.
    NotDelivered,
    /// No answer (lost, timed out, crashed mid-call): the effect is unknown.
    NoAnswer,
}

pub(super) struct Client {
    index: u64,
    who: String,
    transport: crate::net::SimTransport,
    shared: SharedRef,
    rng: StdRng,
    keys: usize,
    creds: (String, String),
}

impl Client {
    pub(super) fn new(cfg: &ObjectsConfig, index: u64, net: &SimNet, shared: SharedRef) -> Self {
        Self {
            index,
            who: format!("c{index}"),
            transport: net.attach_client(100 + index, Handlers::default()),
            shared,
            rng: StdRng::seed_from_u64(sub_seed(cfg.seed, STREAM_CLIENT + index)),
            keys: cfg.keys,
            creds: (String::new(), String::new()),
        }
    }

    async fn call(&self, mut req: WireRequest) -> Reply {
        if matches!(req.method.as_str(), "PUT" | "POST") {
            // What an HTTP client always sends with a body (s3s requires it on XML bodies).
            req.headers
                .push(("content-length".into(), req.body.len().to_string()));
        }
        let req = req.sign(&self.creds.0, &self.creds.1);
        match self
            .transport
            .call_with_deadline(NODE, s3node::S3_CHANNEL, req.encode(), CLIENT_DEADLINE)
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

    pub(super) async fn run(&mut self, cfg: &ObjectsConfig) {
        // The node's root credentials (it generates them on its first start).
        loop {
            if let Some(c) = self.shared.lock().creds.clone() {
                self.creds = c;
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
        for k in 0..self.keys {
            let key = format!("k{k}");
            if !self.get(&key).await {
                self.shared.violation(
                    &self.who,
                    format!("final read of {key} failed after the heal: an acknowledged object is unreadable"),
                );
            }
        }
        self.shared.lock().clients_done += 1;
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
        let key = format!("k{}", self.rng.gen_range(0..self.keys));
        match self.rng.gen_range(0..20) {
            0 => {
                let id = format!("c{}o{op}", self.index);
                let first = MIN_PART + self.rng.gen_range(0..50_000);
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
                let id = format!("c{}o{op}", self.index);
                let conditional = self.rng.gen_bool(0.2);
                self.put(
                    &key,
                    &id,
                    len.max(BODY_MARK.len() + id.len() + 1),
                    conditional,
                )
                .await;
            }
            8..=11 => {
                self.get(&key).await;
            }
            12..=13 => self.get_range(&key).await,
            14..=15 => self.head(&key).await,
            16..=17 => self.delete(&key).await,
            _ => self.list().await,
        }
    }

    /// Records `op` on `key` with what the client learned; `None` leaves it out (a failed read).
    fn history(&self, key: &str, op: Op, outcome: Option<Outcome>, invoked: u64, what: &str) {
        let returned = micros(now());
        let mut s = self.shared.lock();
        s.ops += 1;
        if let Some(outcome) = outcome {
            let returned = if outcome == Outcome::Unknown {
                s.unknown += 1;
                u64::MAX
            } else {
                returned
            };
            s.histories.entry(key.to_owned()).or_default().push(Event {
                client: self.index,
                op,
                outcome,
                invoked,
                returned,
            });
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

    async fn put(&mut self, key: &str, id: &str, len: usize, conditional: bool) -> bool {
        let invoked = micros(now());
        let data = body(id, len);
        self.shared
            .lock()
            .sent
            .entry(key.to_owned())
            .or_default()
            .push((id.to_owned(), len));
        let mut headers = vec![("x-amz-meta-note".into(), format!("SIMMETA:{id}"))];
        if self.rng.gen_bool(0.5) {
            headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        if conditional {
            headers.push(("if-none-match".into(), "*".into()));
        }
        let reply = self
            .call(WireRequest {
                method: "PUT".into(),
                target: format!("/{BUCKET}/{key}"),
                headers,
                body: Bytes::from(data),
            })
            .await;
        let op = if conditional {
            Op::Cas {
                expect: None,
                new: id.to_owned(),
            }
        } else {
            Op::Write(id.to_owned())
        };
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 => (Some(Outcome::Done), "ok".to_owned()),
            Reply::Http(r) if conditional && r.status == 412 => {
                (Some(Outcome::Failed), "412".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("PUT", r, &["ServiceUnavailable", "SlowDown"]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        let done = matches!(outcome, Some(Outcome::Done));
        let desc = format!("{op:?} {len} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
        done
    }

    /// A two-part upload of value `id` (`parts` bytes each) as one write: invoked at
    /// CreateMultipartUpload, done at CompleteMultipartUpload. A failure before the complete
    /// call leaves no object (an abandoned upload); a failed or lost complete is unknown.
    async fn multipart(&mut self, key: &str, id: &str, parts: [usize; 2]) {
        let invoked = micros(now());
        let total = parts[0] + parts[1];
        let data = Bytes::from(body(id, total));
        self.shared
            .lock()
            .sent
            .entry(key.to_owned())
            .or_default()
            .push((id.to_owned(), total));
        let op = Op::Write(id.to_owned());
        let mut headers = vec![("x-amz-meta-note".into(), format!("SIMMETA:{id}"))];
        if self.rng.gen_bool(0.5) {
            headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        let created = self
            .call(WireRequest {
                method: "POST".into(),
                target: format!("/{BUCKET}/{key}?uploads"),
                headers,
                ..Default::default()
            })
            .await;
        let upload = match &created {
            Reply::Http(r) if r.status == 200 => xml_value(&r.body, "UploadId"),
            Reply::Http(r) => {
                self.unexpected("CreateMultipartUpload", r, &[]);
                None
            }
            _ => None,
        };
        let Some(upload) = upload else {
            self.history(key, op, None, invoked, "multipart: no upload");
            return;
        };
        let mut etags = Vec::new();
        let mut from = 0;
        for (i, len) in parts.iter().enumerate() {
            let reply = self
                .call(WireRequest {
                    method: "PUT".into(),
                    target: format!("/{BUCKET}/{key}?partNumber={}&uploadId={upload}", i + 1),
                    body: data.slice(from..from + len),
                    ..Default::default()
                })
                .await;
            from += len;
            match &reply {
                Reply::Http(r) if r.status == 200 => {
                    etags.push(r.header("etag").unwrap_or_default().to_owned())
                }
                Reply::Http(r) => {
                    self.unexpected("UploadPart", r, &[]);
                    break;
                }
                _ => break,
            }
        }
        if etags.len() < parts.len() {
            self.history(
                key,
                op,
                None,
                invoked,
                "multipart: a part failed; abandoned",
            );
            return;
        }
        let list: String = etags
            .iter()
            .enumerate()
            .map(|(i, e)| {
                format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                    i + 1
                )
            })
            .collect();
        let reply = self
            .call(WireRequest {
                method: "POST".into(),
                target: format!("/{BUCKET}/{key}?uploadId={upload}"),
                body: Bytes::from(format!(
                    "<CompleteMultipartUpload>{list}</CompleteMultipartUpload>"
                )),
                ..Default::default()
            })
            .await;
        // CompleteMultipartUpload may answer 200 with an error document.
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 && xml_value(&r.body, "ETag").is_some() => {
                (Some(Outcome::Done), "ok".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("CompleteMultipartUpload", r, &["ServiceUnavailable"]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        let desc = format!("multipart {op:?} {parts:?} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
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
        let sent = self
            .shared
            .lock()
            .sent
            .get(key)
            .cloned()
            .unwrap_or_default();
        if !sent.iter().any(|(i, l)| *i == id && *l == got.len()) {
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
    async fn get(&mut self, key: &str) -> bool {
        let invoked = micros(now());
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 200 => match self.check_body(key, &r.body) {
                Some(id) => (Some(Outcome::Value(Some(id.clone()))), id),
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

    async fn get_range(&mut self, key: &str) {
        let start = self.rng.gen_range(0..1_200_000u64);
        let len = self.rng.gen_range(1..200_000u64);
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}/{key}"),
                headers: vec![("range".into(), format!("bytes={start}-{}", start + len - 1))],
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 206 => {
                let total: Option<usize> = r
                    .header("content-range")
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|t| t.parse().ok());
                let sent = self
                    .shared
                    .lock()
                    .sent
                    .get(key)
                    .cloned()
                    .unwrap_or_default();
                let from = start as usize;
                let ok = total.is_some_and(|total| {
                    sent.iter().any(|(id, l)| {
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
        self.history(
            key,
            Op::Read,
            None,
            0,
            &format!("GET range {start}+{len} -> {what}"),
        );
    }

    async fn head(&mut self, key: &str) {
        let reply = self
            .call(WireRequest {
                method: "HEAD".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let len: Option<usize> = r.header("content-length").and_then(|v| v.parse().ok());
                let sent = self
                    .shared
                    .lock()
                    .sent
                    .get(key)
                    .cloned()
                    .unwrap_or_default();
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

    async fn delete(&mut self, key: &str) {
        let invoked = micros(now());
        let reply = self
            .call(WireRequest {
                method: "DELETE".into(),
                target: format!("/{BUCKET}/{key}"),
                ..Default::default()
            })
            .await;
        let (outcome, what) = match &reply {
            Reply::Http(r) if r.status == 204 || r.status == 200 => {
                (Some(Outcome::Done), "ok".to_owned())
            }
            Reply::Http(r) => {
                self.unexpected("DELETE", r, &[]);
                (Some(Outcome::Unknown), format!("{}", r.status))
            }
            Reply::NotDelivered => (None, "not delivered".to_owned()),
            Reply::NoAnswer => (Some(Outcome::Unknown), "no answer".to_owned()),
        };
        self.history(
            key,
            Op::Delete,
            outcome,
            invoked,
            &format!("DELETE -> {what}"),
        );
    }

    async fn list(&mut self) {
        let reply = self
            .call(WireRequest {
                method: "GET".into(),
                target: format!("/{BUCKET}?list-type=2"),
                ..Default::default()
            })
            .await;
        let what = match &reply {
            Reply::Http(r) if r.status == 200 => {
                let text = String::from_utf8_lossy(&r.body);
                let keys: Vec<&str> = text
                    .split("<Key>")
                    .skip(1)
                    .filter_map(|s| s.split("</Key>").next())
                    .collect();
                let sent = self.shared.lock().sent.clone();
                for k in &keys {
                    if !sent.contains_key(*k) {
                        self.shared
                            .violation(&self.who, format!("LIST: key {k} was never written"));
                    }
                }
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
}

/// The text of the first `<tag>…</tag>` in an XML body.
fn xml_value(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::xml_value;

    #[test]
    fn xml_values_are_found() {
        assert_eq!(
            xml_value(b"<R><UploadId>ab12</UploadId></R>", "UploadId").as_deref(),
            Some("ab12")
        );
        assert_eq!(xml_value(b"<R></R>", "UploadId"), None);
    }
}
