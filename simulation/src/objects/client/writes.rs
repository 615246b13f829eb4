//! The client's writes: PUT (plain, conditional, SSE-KMS, SSE-C), multipart uploads,
//! CopyObject, DELETE, and the bucket's default encryption (admin API and S3 API).

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use rand::Rng;

use super::{bare_etag, is_ssec, xml_value, Client, CustomerKey, Reply, BUCKET};
use crate::check::{Op, Outcome};
use crate::objects::{body, micros, now};
use crate::s3node::ADMIN_CHANNEL;
use crate::s3wire::{WireRequest, WireResponse};

impl Client {
    /// Notes that value `id` (`len` bytes) may from now on be found under `key`.
    fn sending(&self, key: &str, id: &str, len: usize) {
        self.shared
            .lock()
            .sent
            .entry(key.to_owned())
            .or_default()
            .push((id.to_owned(), len));
    }

    /// Notes that `key` held value `id` (`len` bytes) with ETag `raw_etag`.
    pub(super) fn learned_etag(&self, key: &str, raw_etag: &str, id: &str, len: usize) {
        let etag = bare_etag(raw_etag);
        if etag.is_empty() {
            return;
        }
        let mut s = self.shared.lock();
        s.etags.insert(etag.clone(), (id.to_owned(), len));
        s.key_etags.insert(key.to_owned(), etag);
    }

    /// Headers every new object of `key` carries: its metadata marker, and either the key's
    /// SSE-C headers or, half the time, an explicit SSE-KMS request.
    fn new_object_headers(&mut self, key: &str, id: &str) -> Vec<(String, String)> {
        let mut headers = vec![("x-amz-meta-note".into(), format!("SIMMETA:{id}"))];
        if is_ssec(key) {
            headers.extend(self.customer_headers(
                "x-amz-server-side-encryption-customer",
                key,
                CustomerKey::Right,
            ));
        } else if self.rng.gen_bool(0.5) {
            headers.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        headers
    }

    /// Encryption is never optional: a stored object's answer names how it was sealed.
    fn check_sealed(&self, what: &str, key: &str, r: &WireResponse) {
        let ok = if is_ssec(key) {
            r.header("x-amz-server-side-encryption-customer-algorithm") == Some("AES256")
        } else {
            matches!(
                r.header("x-amz-server-side-encryption"),
                Some("AES256" | "aws:kms")
            )
        };
        if !ok {
            self.shared.violation(
                &self.who,
                format!("{what} {key}: the answer does not say how the object was encrypted"),
            );
        }
    }

    pub(super) async fn put(&mut self, key: &str, id: &str, len: usize, conditional: bool) -> bool {
        let invoked = micros(now());
        self.sending(key, id, len);
        let mut req = self.object_request("PUT", key, "", None);
        req.headers = self.new_object_headers(key, id);
        if conditional {
            req.headers.push(("if-none-match".into(), "*".into()));
        }
        req.body = Bytes::from(body(id, len));
        let reply = self.call(req).await;
        let op = if conditional {
            Op::Cas {
                expect: None,
                new: id.to_owned(),
            }
        } else {
            Op::Write(id.to_owned())
        };
        let (outcome, what) = match &reply {
            Reply::Http(r) if conditional && r.status == 412 => {
                (Some(Outcome::Failed), "412".to_owned())
            }
            _ => self.write_outcome(
                "PUT",
                &reply,
                |r| r.status == 200,
                &["ServiceUnavailable", "SlowDown"],
            ),
        };
        if let Reply::Http(r) = &reply {
            if r.status == 200 {
                self.check_sealed("PUT", key, r);
                self.learned_etag(key, r.header("etag").unwrap_or_default(), id, len);
            }
        }
        let done = matches!(outcome, Some(Outcome::Done));
        let desc = format!("{op:?} {len} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
        done
    }

    /// A two-part upload of value `id` (`parts` bytes each) as one write: invoked at
    /// CreateMultipartUpload, done at CompleteMultipartUpload. A failure before the complete
    /// call leaves no object (an abandoned upload); a failed or lost complete is unknown.
    pub(super) async fn multipart(&mut self, key: &str, id: &str, parts: [usize; 2]) {
        let invoked = micros(now());
        let total = parts[0] + parts[1];
        let data = Bytes::from(body(id, total));
        self.sending(key, id, total);
        let op = Op::Write(id.to_owned());
        let mut create = self.object_request("POST", key, "?uploads", None);
        create.headers = self.new_object_headers(key, id);
        let created = self.call(create).await;
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
            // UploadPart repeats the upload's SSE-C key.
            let query = format!("?partNumber={}&uploadId={upload}", i + 1);
            let mut req = self.object_request("PUT", key, &query, Some(CustomerKey::Right));
            req.body = data.slice(from..from + len);
            from += len;
            match &self.call(req).await {
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
            let what = "multipart: a part failed; abandoned";
            self.history(key, op, None, invoked, what);
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
        let mut complete = self.object_request("POST", key, &format!("?uploadId={upload}"), None);
        complete.body = Bytes::from(format!(
            "<CompleteMultipartUpload>{list}</CompleteMultipartUpload>"
        ));
        let reply = self.call(complete).await;
        // CompleteMultipartUpload may answer 200 with an error document.
        let completed = |r: &WireResponse| r.status == 200 && xml_value(&r.body, "ETag").is_some();
        let (outcome, what) = self.write_outcome(
            "CompleteMultipartUpload",
            &reply,
            completed,
            &["ServiceUnavailable"],
        );
        if let Reply::Http(r) = &reply {
            if let Some(etag) = xml_value(&r.body, "ETag").filter(|_| r.status == 200) {
                self.learned_etag(key, &etag, id, total);
            }
        }
        let desc = format!("multipart {op:?} {parts:?} B -> {what}");
        self.history(key, op, outcome, invoked, &desc);
    }

    /// CopyObject from `src` to `dest`, conditional on the source's last known ETag: a copy
    /// that succeeds wrote exactly that value to `dest` (and read it from `src`), so both
    /// keys' histories gain an event. Without a known ETag it reads `src` instead.
    pub(super) async fn copy(&mut self, src: &str, dest: &str) {
        let known = {
            let s = self.shared.lock();
            s.key_etags
                .get(src)
                .and_then(|e| s.etags.get(e).map(|v| (e.clone(), v.clone())))
        };
        let Some((etag, (id, len))) = known else {
            self.get(src).await;
            return;
        };
        let invoked = micros(now());
        self.sending(dest, &id, len);
        let mut req = self.object_request("PUT", dest, "", Some(CustomerKey::Right));
        req.headers
            .push(("x-amz-copy-source".into(), format!("/{BUCKET}/{src}")));
        req.headers
            .push(("x-amz-copy-source-if-match".into(), format!("\"{etag}\"")));
        if is_ssec(src) {
            req.headers.extend(self.customer_headers(
                "x-amz-copy-source-server-side-encryption-customer",
                src,
                CustomerKey::Right,
            ));
        }
        if !is_ssec(dest) && self.rng.gen_bool(0.5) {
            req.headers
                .push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
        }
        let reply = self.call(req).await;
        // CopyObject may answer 200 with an error document.
        let copied = |r: &WireResponse| r.status == 200 && xml_value(&r.body, "ETag").is_some();
        let op = Op::Write(id.clone());
        let (outcome, what) = match &reply {
            // The source no longer has that ETag, or no object: nothing was written.
            Reply::Http(r) if r.status == 412 => (None, "412".to_owned()),
            Reply::Http(r) if r.error_code().as_deref() == Some("NoSuchKey") => {
                let what = "copy source: NoSuchKey";
                self.history(src, Op::Read, Some(Outcome::Value(None)), invoked, what);
                (None, "source NoSuchKey".to_owned())
            }
            _ => self.write_outcome("CopyObject", &reply, copied, &["ServiceUnavailable"]),
        };
        if let Reply::Http(r) = &reply {
            if copied(r) {
                self.check_sealed("CopyObject", dest, r);
                if let Some(new_etag) = xml_value(&r.body, "ETag") {
                    self.learned_etag(dest, &new_etag, &id, len);
                }
                let read = format!("copy source read {id}");
                self.history(
                    src,
                    Op::Read,
                    Some(Outcome::Value(Some(id.clone()))),
                    invoked,
                    &read,
                );
            }
        }
        let desc = format!("copy from {src} if-match {etag} {op:?} -> {what}");
        self.history(dest, op, outcome, invoked, &desc);
    }

    pub(super) async fn delete(&mut self, key: &str) {
        let invoked = micros(now());
        let reply = self
            .call(self.object_request("DELETE", key, "", None))
            .await;
        let deleted = |r: &WireResponse| r.status == 204 || r.status == 200;
        let (outcome, what) = self.write_outcome("DELETE", &reply, deleted, &[]);
        let desc = format!("DELETE -> {what}");
        self.history(key, Op::Delete, outcome, invoked, &desc);
    }

    /// Changes the bucket's default encryption: through the admin API (which also picks the
    /// cipher) or S3's PutBucketEncryption. Objects written before keep their own settings.
    pub(super) async fn set_bucket_encryption(&mut self) {
        let token = self.shared.lock().admin_tokens.get(&self.node).cloned();
        let (what, reply) = match (self.rng.gen_range(0..4), token) {
            (0..=1, Some(token)) => {
                let algorithm = ["AES256", "CHACHA20-POLY1305"][self.rng.gen_range(0..2)];
                let json = format!(r#"{{"enabled":true,"algorithm":"{algorithm}"}}"#);
                let req = WireRequest {
                    method: "PUT".into(),
                    target: format!("/api/v1/buckets/{BUCKET}/encryption"),
                    headers: vec![
                        ("authorization".into(), format!("Bearer {token}")),
                        ("content-type".into(), "application/json".into()),
                    ],
                    body: Bytes::from(json),
                };
                (
                    format!("admin: {algorithm}"),
                    self.send(ADMIN_CHANNEL, req, false).await,
                )
            }
            (n, _) => {
                let (algorithm, bucket_key) = if n % 2 == 0 {
                    ("AES256", false)
                } else {
                    ("aws:kms", true)
                };
                let xml = format!(
                    "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
                     <SSEAlgorithm>{algorithm}</SSEAlgorithm></ApplyServerSideEncryptionByDefault>\
                     <BucketKeyEnabled>{bucket_key}</BucketKeyEnabled></Rule>\
                     </ServerSideEncryptionConfiguration>"
                );
                let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&xml));
                let req = WireRequest {
                    method: "PUT".into(),
                    target: format!("/{BUCKET}?encryption"),
                    headers: vec![("content-md5".into(), md5)],
                    body: Bytes::from(xml),
                };
                (format!("S3: {algorithm}"), self.call(req).await)
            }
        };
        let status = match &reply {
            Reply::Http(r) => {
                self.unexpected("set bucket encryption", r, &["ServiceUnavailable"]);
                format!("{}", r.status)
            }
            Reply::NotDelivered => "not delivered".to_owned(),
            Reply::NoAnswer => "no answer".to_owned(),
        };
        self.shared.lock().ops += 1;
        let line = format!("bucket encryption {what} -> {status}");
        self.shared.record(&self.who, &line);
    }
}
