//! A tiny HTTP/1.1 client (one request per connection), for the admin API, anonymous requests and
//! presigned URLs, where the point is to send exactly what we mean.
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status and the start of the body, printable, for assertion messages.
    pub fn brief(&self) -> String {
        let shown: String = self.body[..self.body.len().min(600)]
            .iter()
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        let more = if self.body.len() > 600 { "..." } else { "" };
        format!("HTTP {} ({} B) {shown}{more}", self.status, self.body.len())
    }

    /// The `<Code>` of an S3 XML error body, if any.
    pub fn s3_error_code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<Code>")? + "<Code>".len();
        let end = t[start..].find("</Code>")? + start;
        Some(t[start..end].to_string())
    }
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends one request to `addr` ("127.0.0.1:port") and reads the whole response.
pub async fn http_request(
    addr: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse, String> {
    tokio::time::timeout(
        HTTP_TIMEOUT,
        http_request_inner(addr, method, path_and_query, headers, body),
    )
    .await
    .map_err(|_| format!("{method} {path_and_query}: timed out"))?
}

async fn http_request_inner(
    addr: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse, String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let head = request_head(addr, method, path_and_query, headers, body.len());
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream
        .write_all(body)
        .await
        .map_err(|e| format!("write body: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read: {e}"))?;
    parse_response(&raw, method == "HEAD")
}

/// The request line and headers (Host, Content-Length and Connection: close are added unless
/// given).
pub fn request_head(
    addr: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    content_length: usize,
) -> String {
    let mut head = format!("{method} {path_and_query} HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if !has("content-length") && (content_length > 0 || method == "PUT" || method == "POST") {
        head.push_str(&format!("Content-Length: {content_length}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

pub fn parse_response(raw: &[u8], head_request: bool) -> Result<RawResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if head_request {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for _ in 0..10_000_000 {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked: no size line")?;
        let size_line = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("chunked: bad size {size_hex:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunked: truncated".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    Err("chunked: too many chunks".into())
}

/// Splits "http://host:port/path?query" into ("host:port", "/path?query").
pub fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}
