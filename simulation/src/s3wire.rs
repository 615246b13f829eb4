//! S3 requests and responses as messages on the simulated network, and a minimal SigV4 signer
//! for the simulated clients.
//!
//! A real client speaks HTTP over TCP; here the request travels as one message on the client's
//! link (so the network's delays, losses and cuts apply) and the node hands it to the real S3
//! service, SigV4 check and routing included. Framing: every field is a `u32` length (little
//! endian) and its bytes; a request is method, target (path and query), header count, headers
//! as name and value, body; a response is the status as a 3-byte decimal string, then headers
//! and body the same way.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// An HTTP request as a client builds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireRequest {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query (`/bucket/key?uploads`), already percent-encoded.
    pub target: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// An HTTP response as a client sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl WireResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The S3 error code of an error response (`<Code>…</Code>`), if any.
    pub fn error_code(&self) -> Option<String> {
        let text = std::str::from_utf8(&self.body).ok()?;
        let start = text.find("<Code>")? + "<Code>".len();
        let end = text[start..].find("</Code>")? + start;
        Some(text[start..end].to_owned())
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn field(&mut self) -> Result<&'a [u8], String> {
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or("truncated length")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("truncated field".into());
        }
        let (f, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(f)
    }

    fn text(&mut self) -> Result<String, String> {
        String::from_utf8(self.field()?.to_vec()).map_err(|_| "field is not UTF-8".into())
    }

    fn headers(&mut self) -> Result<Vec<(String, String)>, String> {
        let n: usize = self.text()?.parse().map_err(|_| "bad header count")?;
        (0..n).map(|_| Ok((self.text()?, self.text()?))).collect()
    }
}

fn encode_headers(out: &mut Vec<u8>, headers: &[(String, String)]) {
    put(out, headers.len().to_string().as_bytes());
    for (k, v) in headers {
        put(out, k.as_bytes());
        put(out, v.as_bytes());
    }
}

impl WireRequest {
    /// The message bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        put(&mut out, self.method.as_bytes());
        put(&mut out, self.target.as_bytes());
        encode_headers(&mut out, &self.headers);
        put(&mut out, &self.body);
        out.into()
    }

    /// Parses [`WireRequest::encode`]'s bytes.
    pub fn decode(b: &Bytes) -> Result<Self, String> {
        let mut r = Reader(b);
        let method = r.text()?;
        let target = r.text()?;
        let headers = r.headers()?;
        let body = r.field()?;
        let offset = b.len() - r.0.len() - body.len();
        Ok(Self {
            method,
            target,
            headers,
            body: b.slice(offset..offset + body.len()),
        })
    }

    /// Signs with SigV4 (header auth, `UNSIGNED-PAYLOAD`) as `access_key`. The date is the
    /// host's real clock: s3s checks it against its own, and it is never part of a trace.
    pub fn sign(mut self, access_key: &str, secret: &str) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (amz, date) = amz_dates(now);
        let payload = "UNSIGNED-PAYLOAD";
        self.headers.push(("host".into(), "coffer.sim".into()));
        self.headers.push(("x-amz-date".into(), amz.clone()));
        self.headers
            .push(("x-amz-content-sha256".into(), payload.into()));
        let mut hs: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let (path, query) = self
            .target
            .split_once('?')
            .unwrap_or((self.target.as_str(), ""));
        let creq = format!(
            "{}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload}",
            self.method,
            canonical_query(query)
        );
        let scope = format!("{date}/us-east-1/s3/aws4_request");
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        for part in ["us-east-1", "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let sig = hex::encode(hmac(&key, sts.as_bytes()));
        self.headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, \
                 Signature={sig}"
            ),
        ));
        self
    }
}

impl WireResponse {
    /// The message bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        put(&mut out, format!("{:03}", self.status).as_bytes());
        encode_headers(&mut out, &self.headers);
        put(&mut out, &self.body);
        out.into()
    }

    /// Parses [`WireResponse::encode`]'s bytes.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        let mut r = Reader(b);
        let status = r.text()?.parse().map_err(|_| "bad status")?;
        let headers = r.headers()?;
        let body = Bytes::copy_from_slice(r.field()?);
        Ok(Self {
            status,
            headers,
            body,
        })
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// SigV4's canonical query: pairs sorted, `key=` for a bare key (the target is already encoded).
fn canonical_query(q: &str) -> String {
    if q.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `(yyyymmddThhmmssZ, yyyymmdd)` for Unix time `secs`.
fn amz_dates(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}{m:02}{d:02}");
    let amz = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (amz, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_survive_the_wire() {
        let req = WireRequest {
            method: "PUT".into(),
            target: "/b/k?partNumber=1&uploadId=x".into(),
            headers: vec![("x-amz-meta-a".into(), "1".into())],
            body: Bytes::from_static(b"hello"),
        };
        assert_eq!(WireRequest::decode(&req.encode()).unwrap(), req);
        let resp = WireResponse {
            status: 206,
            headers: vec![("etag".into(), "\"x\"".into())],
            body: Bytes::from_static(b"<Error><Code>NoSuchKey</Code></Error>"),
        };
        let back = WireResponse::decode(&resp.encode()).unwrap();
        assert_eq!(back, resp);
        assert_eq!(back.error_code().as_deref(), Some("NoSuchKey"));
        assert!(WireRequest::decode(&Bytes::from_static(b"\x05\0\0\0ab")).is_err());
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(amz_dates(0), ("19700101T000000Z".into(), "19700101".into()));
        // 2026-12-02T03:51:09Z
        assert_eq!(amz_dates(1_796_183_469).0, "20261202T035109Z");
        assert_eq!(canonical_query("uploads"), "uploads=");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
    }
}
