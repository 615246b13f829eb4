//! If-None-Match / If-Match on PutObject as the S3 layer parses them: which conditions reach
//! the backend, and which are refused before any byte is stored.

mod common;

use std::sync::atomic::Ordering;

use common::*;

async fn setup() -> Harness {
    let h = harness();
    let r = send(&h.svc, Req::new("PUT", "/bkt").sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    h
}

fn put(key: &str, body: &'static [u8]) -> Req {
    Req::new("PUT", &format!("/bkt/{key}")).body(body)
}

#[tokio::test]
async fn create_only_and_replace_only_writes() {
    let h = setup().await;
    let r = send(&h.svc, put("k", b"one").h("if-none-match", "*").sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = r.header("etag").unwrap().to_owned();
    let r = send(&h.svc, put("k", b"two").h("if-none-match", "*").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    let r = send(&h.svc, put("k", b"two").h("if-match", "\"abc\"").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    let r = send(&h.svc, put("k", b"two").h("if-match", &etag).sign()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(&h.svc, put("nope", b"x").h("if-match", "*").sign()).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
}

#[tokio::test]
async fn conditions_s3_does_not_have_are_refused_before_the_backend() {
    let h = setup().await;
    let before = h.backend.writes.load(Ordering::SeqCst);
    for req in [
        put("k", b"x").h("if-none-match", "\"0123\""),
        put("k", b"x")
            .h("if-none-match", "*")
            .h("if-match", "\"0123\""),
    ] {
        let r = send(&h.svc, req.sign()).await;
        assert_eq!((r.status, r.code().as_str()), (501, "NotImplemented"));
    }
    assert_eq!(h.backend.writes.load(Ordering::SeqCst), before);
}
