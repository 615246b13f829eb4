//! Test support: a recording observer, a test harness, and a minimal SigV4 signer.
#![allow(dead_code)]

mod mem;
pub use mem::MemBackend;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coffer_s3api::*;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full};
use sha2::Sha256;

/// Collects every record.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<RequestRecord>>);

impl RequestObserver for Recorder {
    fn record(&self, rec: RequestRecord) {
        self.0.lock().unwrap().push(rec);
    }
}

impl Recorder {
    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub const AK: &str = "AKIDCOFFERTEST";
pub const SK: &str = "coffer-test-secret-key";

/// A built service with its backend and recorder.
pub struct Harness {
    pub backend: Arc<MemBackend>,
    pub recorder: Arc<Recorder>,
    pub svc: S3HttpService,
}

pub fn harness() -> Harness {
    let backend = Arc::new(MemBackend::default());
    let recorder = Arc::new(Recorder::default());
    let svc = s3_service(
        Arc::clone(&backend),
        vec![Credentials::new(AK, SK)],
        recorder.clone(),
        None,
    )
    .unwrap();
    Harness {
        backend,
        recorder,
        svc,
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(<Sha256 as sha2::Digest>::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it (`/` encoded too).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn amz_dates(t: time::OffsetDateTime) -> (String, String) {
    let amz = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    (amz.clone(), amz[..8].to_owned())
}

fn signing_key(secret: &str, date: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

fn canonical_query(query: &[(String, String)]) -> String {
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    q.sort();
    q.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request to send: path must already be URI-encoded; query pairs are raw.
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Req {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
    pub fn q(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn h(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.to_owned()));
        self
    }
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.body = b.into();
        self
    }

    fn uri(&self) -> String {
        let q = self
            .query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    uri_encode(k)
                } else {
                    format!("{}={}", uri_encode(k), uri_encode(v))
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        if q.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, q)
        }
    }

    /// Signs with SigV4 header auth; `payload` is the x-amz-content-sha256 value (None = hash of body).
    pub fn sign_with(mut self, ak: &str, sk: &str, payload: Option<&str>) -> Self {
        let (amz, date) = amz_dates(time::OffsetDateTime::now_utc());
        let payload = payload.map_or_else(|| sha256_hex(&self.body), str::to_owned);
        self.headers.push(("host".into(), "localhost".into()));
        self.headers.push(("x-amz-date".into(), amz.clone()));
        self.headers
            .push(("x-amz-content-sha256".into(), payload.clone()));
        let mut hs: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().to_owned()))
            .collect();
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed: Vec<&str> = hs.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let creq = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.path,
            canonical_query(&self.query),
            canonical_headers,
            signed,
            payload
        );
        let scope = format!("{date}/us-east-1/s3/aws4_request");
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let sig = hex::encode(hmac(&signing_key(sk, &date), sts.as_bytes()));
        self.headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signed}, Signature={sig}"
            ),
        ));
        self
    }

    /// Signs as STREAMING-AWS4-HMAC-SHA256-PAYLOAD and frames `data` in signed chunks of `size`.
    pub fn sign_chunked(self, data: &[u8], size: usize) -> Self {
        let mut req = self.sign_with(AK, SK, Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"));
        let auth = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone();
        let amz = req
            .headers
            .iter()
            .find(|(k, _)| k == "x-amz-date")
            .unwrap()
            .1
            .clone();
        let mut prev = auth.rsplit("Signature=").next().unwrap().to_owned();
        let date = &amz[..8];
        let scope = format!("{date}/us-east-1/s3/aws4_request");
        let key = signing_key(SK, date);
        let empty = sha256_hex(b"");
        let mut body = Vec::new();
        let mut chunks: Vec<&[u8]> = data.chunks(size).collect();
        chunks.push(&[]);
        for chunk in chunks {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{amz}\n{scope}\n{prev}\n{empty}\n{}",
                sha256_hex(chunk)
            );
            let sig = hex::encode(hmac(&key, sts.as_bytes()));
            body.extend_from_slice(
                format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes(),
            );
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
            prev = sig;
        }
        req.body = Bytes::from(body);
        req
    }

    pub fn sign(self) -> Self {
        self.sign_with(AK, SK, None)
    }

    /// Presigns (query auth) as of `at`, valid for `expires` seconds.
    pub fn presign(mut self, at: time::OffsetDateTime, expires: u32) -> Self {
        let (amz, date) = amz_dates(at);
        let scope = format!("{date}/us-east-1/s3/aws4_request");
        self.headers.push(("host".into(), "localhost".into()));
        self.query
            .push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
        self.query
            .push(("X-Amz-Credential".into(), format!("{AK}/{scope}")));
        self.query.push(("X-Amz-Date".into(), amz.clone()));
        self.query
            .push(("X-Amz-Expires".into(), expires.to_string()));
        self.query
            .push(("X-Amz-SignedHeaders".into(), "host".into()));
        let creq = format!(
            "{}\n{}\n{}\nhost:localhost\n\nhost\nUNSIGNED-PAYLOAD",
            self.method,
            self.path,
            canonical_query(&self.query)
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let sig = hex::encode(hmac(&signing_key(SK, &date), sts.as_bytes()));
        self.query.push(("X-Amz-Signature".into(), sig));
        self
    }

    pub fn build(&self) -> http::Request<Full<Bytes>> {
        let mut b = http::Request::builder().method(self.method).uri(self.uri());
        if !self.headers.iter().any(|(k, _)| k == "host") {
            b = b.header("host", "localhost");
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b = b.header("content-length", self.body.len().to_string());
        b.body(Full::new(self.body.clone())).unwrap()
    }
}

/// A finished response.
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `<Code>` of an S3 error body.
    pub fn code(&self) -> String {
        let t = self.text();
        t.split("<Code>")
            .nth(1)
            .and_then(|s| s.split("</Code>").next())
            .unwrap_or("")
            .to_owned()
    }
}

pub async fn send(svc: &S3HttpService, req: Req) -> Resp {
    let resp = svc.handle(req.build()).await;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}
